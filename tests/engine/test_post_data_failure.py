"""Failures of the source's code inside the window: one line, exit 3, naming the step and
the object; the rerun after the fix on the source resumes and finishes, verify at 0.

- post-data, on the corpus (tests/data/corpus.sql, its n8n part): an expression
  statistic's function resolves nothing on the target;
- copy, on PostgreSQL 15: the source's own planner expands an expression statistic's
  function (no SET search_path) with the migrator's search_path = pg_catalog."""

from __future__ import annotations

import pglast
import pytest

from tests.support import corpus
from tests.support import assert_ok, run_migrator, start_postgres, write_stack_config

pytestmark = pytest.mark.integration

MAPPING = '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n'


@pytest.fixture
def target(target_db):
    """Each test's target: a database of its own on the session's unified server (conftest)."""
    return target_db


@pytest.fixture
def source(images):
    """The corpus's n8n part on a PostgreSQL 17 + pgvector server, with probe() pinned to a
    schema that does not move (`util`, where the source keeps an inner_probe() of its own)."""
    server = start_postgres(images["LETTA_DB_IMAGE"], user="n8n", dbname="n8n")
    with server.connect() as conn:
        for statement in pglast.split(corpus.parts()["n8n"]):
            conn.execute(statement)
        conn.execute("CREATE SCHEMA util; CREATE FUNCTION util.inner_probe() RETURNS int LANGUAGE sql"
                     " IMMUTABLE AS 'SELECT 7'; ALTER FUNCTION probe(bigint) SET search_path = util")
    yield server
    server.container.stop()


def test_post_data_failure_names_the_object_and_resumes_after_the_fix(tmp_path, target, source):
    """The source reads fine, but on the target post-data's ANALYZE of the expression
    statistic finds no inner_probe(): one line, exit 3, naming the step and the table.
    Pinning the function to its own schema on the source is the fix, and the rerun
    carries it over (rewritten to `n8n`) and finishes, verify at 0."""
    config = write_stack_config(tmp_path, target, {"n8n": source}, MAPPING)
    failed = run_migrator(config, "migrate")
    assert failed.returncode == 3, failed.stdout[-2000:] + failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("FAILED: source database 'n8n': post-data: ANALYZE n8n.documents failed on "
                                    "the target: function inner_probe() does not exist"), failed.stderr

    with source.connect() as conn:
        conn.execute("ALTER FUNCTION probe(bigint) SET search_path = public")
    rerun = run_migrator(config, "migrate")
    assert_ok(rerun)
    assert "routines replaced by the source's current definitions" in rerun.stdout
    assert "rewritten n8n.probe(bigint): SET search_path = public -> n8n, extensions" in rerun.stdout
    assert "rewritten n8n.tenant_exists(text) line 1: public.tenants -> n8n.tenants (relation)" in rerun.stdout
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as tgt:
        assert tgt.execute("SELECT n8n.probe(12)").fetchone()[0] == 5
        assert tgt.execute("SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'documents_probe'"
                           ).fetchone()[0] == 1


def test_a_source_read_failing_on_the_source_is_the_source_s_and_resumes(tmp_path, target, source_db):
    """PostgreSQL 15 ANALYZEs with the caller's search_path, so the statistic was built; the
    copy's read then has the planner expand probe() with search_path = pg_catalog, where
    inner_probe() does not resolve. Exit 3 naming the source and the table (it was the
    target's exit 4); SET search_path on the source is the fix, the rerun resumes."""
    source = source_db      # PostgreSQL 15: a database of its own on the session's source server
    with source.connect() as conn:
        conn.execute("CREATE TABLE docs (id bigint PRIMARY KEY, t text);"
                     " INSERT INTO docs SELECT i, 'doc ' || i FROM generate_series(1, 100) i;"
                     " CREATE FUNCTION inner_probe() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 7';"
                     " CREATE FUNCTION probe(x bigint) RETURNS bigint LANGUAGE sql IMMUTABLE"
                     "   AS 'SELECT x % inner_probe()';"
                     " CREATE STATISTICS docs_probe ON (probe(id)) FROM docs; ANALYZE docs")
    config = write_stack_config(tmp_path, target, {"n8n": source}, MAPPING)
    failed = run_migrator(config, "migrate")
    assert failed.returncode == 3, failed.stdout[-2000:] + failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("FAILED: source database 'n8n': copy of n8n.docs failed on the source: "
                                    "function inner_probe() does not exist (the source's planner expands"), \
        failed.stderr
    with source.connect() as conn:
        conn.execute("ALTER FUNCTION probe(bigint) SET search_path = public")
    assert_ok(run_migrator(config, "migrate"))
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as tgt:
        assert tgt.execute("SELECT count(*) FROM pg_stats_ext_exprs WHERE statistics_name = 'docs_probe'"
                           ).fetchone()[0] == 1
