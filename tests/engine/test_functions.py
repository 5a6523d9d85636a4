"""Functions that name where they live (tests/data/rag_functions.sql): Supabase's pgvector
RAG setup with match_documents pinned by SET search_path, a Letta function pinned to
`letta` across a split move, and an expression statistic calling a pinned function.

After the move each function is called on the target as the app role that owns it and
must return what it returned on the source; verify must find 0 differences; and a
post-data failure inside the window must be one line, exit 3, naming the object, with
the rerun after the fix on the source finishing the move."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.support import ROOT, assert_ok, run_migrator, start_postgres, write_stack_config

pytestmark = pytest.mark.integration

CORPUS = ROOT / "tests/data/rag_functions.sql"

MAPPING = """
[sources.rag]
schema = "public"
target_schema = "rag"
owner = "rag_owner"

[sources.letta]
schema = "letta"
target_schema = "letta_agents"
owner = "letta_owner"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""

# Each function of the corpus, called the same way on both sides: (source schema, target schema, call).
CALLS = [
    ("public", "rag", "{}.match_documents('[3,5,7]', 5)"),
    ("public", "rag", "{}.probe(12)"),
    ("letta", "letta_agents", "{}.recall('agent-2', '[1,2,1]', 4)"),
    ("letta", "letta_agents", "{}.passage_count('agent-1')"),
]


def corpus_parts() -> dict[str, str]:
    """The corpus file's parts, by database."""
    parts = re.split(r"^-- database: (\w+)$", CORPUS.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module")
def pgvector_server(images):
    """One PostgreSQL 17 + pgvector server: database letta as Letta lays it out, and
    databases rag and rag_elsewhere holding the RAG setup (the latter for the failure case)."""
    server = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="letta",
                            volumes=[(str(ROOT / "compose/letta-db/init.sql"),
                                      "/docker-entrypoint-initdb.d/init.sql")])
    parts = corpus_parts()
    with server.connect() as conn:
        conn.execute("CREATE DATABASE rag")
        conn.execute("CREATE DATABASE rag_elsewhere")
    for dbname, part in (("letta", parts["letta"]), ("rag", parts["rag"]), ("rag_elsewhere", parts["rag"])):
        with server.connect(dbname=dbname) as conn:
            conn.execute(part)
    yield server
    server.container.stop()


def in_db(server, dbname: str):
    return dataclasses.replace(server, dbname=dbname)


def call(conn, expression: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM {expression}").fetchall()


def test_corpus_functions_follow_their_schema_and_verify(tmp_path, target, pgvector_server):
    sources = {"rag": in_db(pgvector_server, "rag"), "letta": pgvector_server}
    config = write_stack_config(tmp_path, target, sources, MAPPING)
    with target.connect() as tgt:
        tgt.execute("CREATE ROLE rag_owner NOLOGIN; CREATE ROLE letta_owner NOLOGIN")
    before = {}
    for name, server in sources.items():
        with server.connect() as conn:
            for schema, _, expression in CALLS:
                if (schema == "public") == (name == "rag"):
                    before[expression] = call(conn, expression.format(schema))
    assert len(before[CALLS[0][2]]) == 5 and len(before[CALLS[2][2]]) == 4

    assess = run_migrator(config, "assess")
    assert_ok(assess)
    report = (config / "reports/assessment.md").read_text()
    assert "public.match_documents(public.vector,integer): SET search_path = public -> rag, extensions" in report
    assert "letta.recall(text,letta.vector,integer): SET search_path = letta -> " \
           "letta_agents, letta_embeddings, extensions" in report

    migrate = run_migrator(config, "migrate")
    assert_ok(migrate)
    assert "rewritten rag.probe(bigint): SET search_path = public -> rag, extensions" in migrate.stdout
    verify = run_migrator(config, "verify")
    assert_ok(verify)
    assert "DIFFERENT" not in verify.stdout and verify.stdout.count("identical") >= 2

    with target.connect() as tgt:
        settings = dict(tgt.execute(
            "SELECT p.proname, array_to_string(p.proconfig, ';') FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('rag', 'letta_agents')"
            " AND p.proconfig IS NOT NULL").fetchall())
        assert settings == {
            "match_documents": "search_path=rag, extensions",
            "probe": "search_path=rag, extensions",
            "recall": "search_path=letta_agents, letta_embeddings, extensions",
            "passage_count": 'search_path="$user", letta_agents, letta_embeddings, extensions, pg_temp'}
        # The expression statistic was built by post-data's ANALYZE, through probe().
        assert tgt.execute("SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'documents_probe'"
                           ).fetchone()[0] == 1
        # What `consolidate roles` grants an app role besides its schemas (sql/30-schemas.sql).
        tgt.execute("GRANT USAGE ON SCHEMA extensions TO rag_owner, letta_owner")
        for _, schema, expression in CALLS:
            role = "rag_owner" if schema == "rag" else "letta_owner"
            tgt.execute(f"SET ROLE {role}")
            assert call(tgt, expression.format(schema)) == before[expression], expression
            tgt.execute("RESET ROLE")


ELSEWHERE = '[sources.rag]\nschema = "public"\ntarget_schema = "rag"\n'


def test_post_data_failure_names_the_object_and_resumes_after_the_fix(tmp_path, target, pgvector_server):
    """probe() pinned to a schema that does not move (`util`, where the source keeps an
    inner_probe()): the source reads fine, but on the target post-data's ANALYZE of the
    expression statistic finds no inner_probe(). One line, exit 3, naming the step and the
    table; pinning the function to its own schema on the source is the fix, and the rerun
    carries it over (rewritten to `rag`) and finishes, verify at 0."""
    source = in_db(pgvector_server, "rag_elsewhere")
    with source.connect() as conn:
        conn.execute("CREATE SCHEMA util; CREATE FUNCTION util.inner_probe() RETURNS int LANGUAGE sql"
                     " IMMUTABLE AS 'SELECT 7'; ALTER FUNCTION probe(bigint) SET search_path = util")
    config = write_stack_config(tmp_path, target, {"rag": source}, ELSEWHERE)
    failed = run_migrator(config, "migrate")
    assert failed.returncode == 3, failed.stdout[-2000:] + failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("FAILED: source database 'rag': post-data: ANALYZE rag.documents failed on "
                                    "the target: function inner_probe() does not exist"), failed.stderr

    with source.connect() as conn:
        conn.execute("ALTER FUNCTION probe(bigint) SET search_path = public")
    rerun = run_migrator(config, "migrate")
    assert_ok(rerun)
    assert "routines replaced by the source's current definitions" in rerun.stdout
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as tgt:
        assert tgt.execute("SELECT rag.probe(12)").fetchone()[0] == 5
        assert tgt.execute("SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'documents_probe'"
                           ).fetchone()[0] == 1
