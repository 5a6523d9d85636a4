"""The migration engine against real servers: a PostgreSQL 15 source full of
edge cases (-> schema n8n) and a Letta-shaped PostgreSQL 17 + pgvector source
(-> letta_agents / letta_embeddings), into a fresh Supabase stand-in.

Data is compared here independently of the tool's own verify (row values
fetched through psycopg on both sides), so a verify bug cannot hide a loss."""

from __future__ import annotations

import collections
import re
import subprocess
import time

import pytest

from tests.support import MAPPING, ROOT, assert_ok, leaf_tables, migrator_command, run_migrator, start_postgres, table_rows, wait_for_units, write_stack_config

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def sources(images):
    n8n = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    letta = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="letta",
                           volumes=[(str(ROOT / "compose/letta-db/init.sql"), "/docker-entrypoint-initdb.d/init.sql")])
    with n8n.connect() as conn:
        conn.execute((ROOT / "tests/data/edge_cases.sql").read_text())
    with letta.connect() as conn:
        conn.execute((ROOT / "tests/data/letta_like.sql").read_text())
    yield {"n8n": n8n, "letta": letta}
    n8n.container.stop()
    letta.container.stop()


@pytest.fixture
def target(target_db):
    """Each test's target: a database of its own on the session's unified server (conftest);
    the tests that need a server of their own (no pgvector, a small disk) start one."""
    return target_db


@pytest.fixture
def config(tmp_path, target, sources):
    return write_stack_config(tmp_path, target, sources, MAPPING)





def source_fingerprint(server) -> dict[str, collections.Counter]:
    schema = "public" if server.dbname == "n8n_restore" else "letta"
    with server.connect() as conn:
        return {t: table_rows(conn, schema, t) for t in leaf_tables(conn, schema)}





def test_migrates_every_edge_case_and_verifies(config, target, sources):
    before = {name: source_fingerprint(s) for name, s in sources.items()}
    assert_ok(run_migrator(config, "migrate", "--jobs", "2"))
    verify = run_migrator(config, "verify")
    assert_ok(verify)
    assert "identical" in verify.stdout

    with target.connect() as tgt:
        # Independent check: every row of every table, compared as Python values.
        for name, schema_of in (("n8n", lambda t: "n8n"),
                                ("letta", lambda t: "letta_embeddings" if "passages" in t else "letta_agents")):
            for table, rows in before[name].items():
                assert table_rows(tgt, schema_of(table), table) == rows, f"{name}.{table}"
        types = dict(tgt.execute(
            "SELECT c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) || ' in ' || tn.nspname"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid"
            " JOIN pg_namespace tn ON tn.oid = t.typnamespace JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname LIKE 'letta%' AND a.attnum > 0 AND c.relkind = 'r'").fetchall())
        assert types["archival_passages.embedding"] == "vector(16) in extensions"
        assert types["source_passages.embedding"] == "vector(16) in extensions"
        assert types["agents.sandbox"].endswith("in letta_agents")
        assert tgt.execute("SELECT last_value FROM letta_agents.message_seq_id").fetchone()[0] == 300
        assert tgt.execute("SELECT last_value FROM n8n.negative_seq").fetchone()[0] == -42
        # Triggers did not fire on copied rows, and work for new rows.
        assert tgt.execute("SELECT count(*) FROM n8n.messages WHERE msg LIKE '%!'").fetchone()[0] == 1
        tgt.execute("INSERT INTO n8n.messages (msg) VALUES ('new')")
        assert tgt.execute("SELECT msg FROM n8n.messages ORDER BY id DESC LIMIT 1").fetchone()[0] == "NEW!"
        # Identity kept its values and continues after them; generated column recomputed.
        assert tgt.execute("SELECT min(id), max(id), sum(doubled) FROM n8n.everything").fetchone() == (1, 500, 250500)
        tgt.execute("INSERT INTO n8n.everything (note) VALUES ('after')")
        assert tgt.execute("SELECT max(id) FROM n8n.everything").fetchone()[0] == 501
        # Deferred circular FKs and RLS came across.
        assert tgt.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'chicken_egg_fk'"
                           " AND condeferred").fetchone()[0] == 1
        assert tgt.execute("SELECT relrowsecurity FROM pg_class WHERE oid = 'n8n.secrets'::regclass").fetchone()[0]
        assert tgt.execute("SELECT sum(n) FROM n8n.mood_counts").fetchone()[0] == 500
        # Supabase's own data is untouched and nothing landed in public.
        assert tgt.execute("SELECT count(*) FROM auth.users").fetchone()[0] == 3
        assert tgt.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname = 'public'").fetchone()[0] == 0
        assert tgt.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '_consolidation_scratch%'"
                           ).fetchone()[0] == 0
        # Plain tables got their indexes and keys while the copy ran (journal: which
        # TOC entries); partitions and their parent were left to the final pass.
        early = dict(tgt.execute("SELECT schema_name || '.' || table_name, cardinality(toc_ids)"
                                 " FROM _consolidation.finished_tables").fetchall())
        assert early["n8n.everything"] == 5       # primary key + 4 indexes
        assert early["letta_agents.messages"] == 2 and early["n8n.empty_one"] == 1
        assert not {"n8n.events", "n8n.events_2024", "n8n.events_2025", "n8n.animals"} & set(early)
        assert early["n8n.dogs"] == 0             # no index of its own, analyzed early
        assert tgt.execute("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'n8n'"
                           " AND relname = 'everything' AND last_analyze IS NOT NULL").fetchone()[0] == 1
    # Sources were only read.
    assert {name: source_fingerprint(s) for name, s in sources.items()} == before

    again = run_migrator(config, "migrate")
    assert_ok(again)
    assert "already done on a previous run" in again.stdout


LETTA_OWNED = """
[sources.letta]
schema = "letta"
target_schema = "letta_agents"
owner = "letta_owner"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""


def test_migrated_objects_are_handed_to_the_owner_role(tmp_path, target, sources):
    with target.connect() as tgt:
        tgt.execute("CREATE ROLE letta_owner NOLOGIN")
    config = write_stack_config(tmp_path, target, {"letta": sources["letta"]}, LETTA_OWNED)
    result = run_migrator(config, "migrate")
    assert_ok(result)
    assert "handed over to role 'letta_owner'" in result.stdout
    from migrator.engine.ownership import foreign_owned
    with target.connect() as tgt:
        for schema in ("letta_agents", "letta_embeddings"):
            assert foreign_owned(tgt, schema, "letta_owner") == [], schema
        assert tgt.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'archival_passages'").fetchone()[0] \
            == "letta_owner"
    assert_ok(run_migrator(config, "verify"))


def test_verify_names_tampered_missing_and_sequence(config, target):
    assert_ok(run_migrator(config, "migrate"))
    with target.connect() as tgt:
        tgt.execute("SET session_replication_role = replica")
        tgt.execute("UPDATE n8n.tree SET label = 'tampered' WHERE id = 2")
        tgt.execute("DELETE FROM letta_embeddings.source_passages WHERE id = 'src-7'")
        tgt.execute("SELECT setval('letta_agents.message_seq_id', 5)")
    result = run_migrator(config, "verify")
    assert result.returncode == 5, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert ("table n8n.tree: source 4 rows / target 4 rows (same count, different content);"
            " differing key ranges: id in [2, 3): 1 vs 1 rows") in out
    assert "table letta_embeddings.source_passages: source 40 rows / target 39 rows" in out
    assert "sequence letta_agents.message_seq_id: source (300, True) != target (5, True)" in out
    assert result.stderr.startswith("FAILED: verification found 3 difference(s)")
    report = (config / "reports/verification.json").read_text()
    assert '"identical": false' in report


def test_refuses_occupied_target_schema_without_change(config, target):
    with target.connect() as tgt:
        tgt.execute("CREATE SCHEMA n8n; CREATE TABLE n8n.theirs (id int)")
        before = tgt.execute("SELECT count(*) FROM pg_namespace").fetchone()[0]
    result = run_migrator(config, "migrate")
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr.strip() == ("FAILED: target database 'unified': schema 'n8n' already exists and holds "
                                     "1 objects not created by this tool; move them away or choose another "
                                     "target_schema for 'n8n'")
    with target.connect() as tgt:
        assert tgt.execute("SELECT count(*) FROM pg_namespace").fetchone()[0] == before
        assert tgt.execute("SELECT to_regnamespace('_consolidation')").fetchone()[0] is None


def test_refuses_target_without_pgvector(tmp_path, images, sources):
    # A PostgreSQL 17 server (an older one is refused for its version first) without pgvector.
    plain = start_postgres(images["LETTA_DB_IMAGE"], user="postgres", dbname="postgres")
    try:
        removed = plain.container.get_wrapped_container().exec_run(
            ["sh", "-c", "rm -f /usr/share/postgresql/*/extension/vector*"])
        assert removed.exit_code == 0
        config = write_stack_config(tmp_path, plain, sources, MAPPING)
        result = run_migrator(config, "migrate")
        assert result.returncode == 4, result.stdout + result.stderr
        assert "extension 'vector' (used by source 'letta') is not available on the target server" in result.stderr
        with plain.connect() as conn:
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', '_consolidation')"
                                ).fetchone()[0] == 0
    finally:
        plain.container.stop()


def test_refuses_target_with_too_little_disk(tmp_path, images, sources):
    """Target data directory on a 48 MB tmpfs; the source needs more than that."""
    big = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    small = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres",
                           tmpfs={"/var/lib/postgresql/data": "size=48m"})
    try:
        with big.connect() as conn:
            conn.execute("CREATE TABLE blob AS SELECT i, repeat('x', 1000) AS pad FROM generate_series(1, 40000) i")
        config = write_stack_config(tmp_path, small, {"n8n": big},
                                    '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n')
        result = run_migrator(config, "migrate")
        assert result.returncode == 4, result.stdout + result.stderr
        assert "target database 'unified': not enough disk space: the sources need about" in result.stderr
        with small.connect() as conn:
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', '_consolidation')"
                                ).fetchone()[0] == 0
    finally:
        big.container.stop()
        small.container.stop()


def test_second_migrator_is_refused(config, target):
    with target.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (0x636F6E73,))
        result = run_migrator(config, "migrate")
    assert result.returncode == 7, result.stderr
    assert "another migrator is already running against this target" in result.stderr


def test_unreachable_source_is_refused(config, target):
    env = config / "env/letta.env"
    env.write_text(re.sub(r"POSTGRES_PORT=\d+", "POSTGRES_PORT=1", env.read_text()))
    result = run_migrator(config, "--wait", "2", "migrate")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "source database 'letta': nothing listens on" in result.stderr


def test_kill_9_during_copy_then_rerun_resumes_and_verifies(tmp_path, source_db, target):
    """A big-enough source, split into many small units, killed mid-copy."""
    src = source_db         # PostgreSQL 15: a database of its own on the session's source server
    with src.connect() as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, payload text);"
                     "INSERT INTO big SELECT i, repeat(md5(i::text), 20) FROM generate_series(1, 150000) i;"
                     "CREATE TABLE small (id int PRIMARY KEY); INSERT INTO small SELECT generate_series(1, 10);"
                     "CREATE TABLE wide (id int PRIMARY KEY, doc text); INSERT INTO wide VALUES (1, repeat('x', 100000));"
                     "ANALYZE")
    config = write_stack_config(tmp_path, target, {"n8n": src},
                                '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n')
    name = f"migrator-kill-{time.time_ns()}"
    proc = subprocess.Popen(migrator_command(config, "migrate", "--jobs", "1", "--split-mb", "2", name=name),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        units_done = wait_for_units(target, minimum=2, timeout=120)
        subprocess.run(["docker", "kill", "--signal", "KILL", name], capture_output=True)
    finally:
        proc.wait(timeout=60)
    with target.connect() as tgt:
        assert tgt.execute("SELECT status FROM _consolidation.steps WHERE step = 'copy'").fetchone()[0] == "running"
        kept = tgt.execute("SELECT chunk, finished_at FROM _consolidation.units WHERE table_name = 'big'").fetchall()
    assert len(kept) >= units_done
    result = run_migrator(config, "migrate", "--jobs", "1")   # default split: the journaled plan wins
    assert_ok(result)
    assert "from an earlier run" in result.stdout
    assert "continuing the copy begun with --split-mb 2" in result.stdout
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as tgt:
        # Units finished before the kill were not copied again.
        for chunk, finished_at in kept:
            assert tgt.execute("SELECT finished_at FROM _consolidation.units WHERE table_name = 'big'"
                               " AND chunk = %s", (chunk,)).fetchone()[0] == finished_at
        assert tgt.execute("SELECT count(*), sum(id) FROM n8n.big").fetchone() == (150000, 11250075000)
        assert tgt.execute("SELECT array_agg(table_name ORDER BY table_name) FROM _consolidation.finished_tables"
                           ).fetchone()[0] == ["big", "small", "wide"]
        # Large values were stored with lz4 (the default), the value itself unchanged.
        assert tgt.execute("SELECT pg_column_compression(doc), doc = repeat('x', 100000) FROM n8n.wide"
                           ).fetchone() == ("lz4", True)


def test_interrupted_post_data_is_cleared_and_redone(config, target):
    """Post-data builds in parallel (not one transaction): a rerun after a crash
    must drop what the dead attempt left and build everything once."""
    assert_ok(run_migrator(config, "schema"))
    assert_ok(run_migrator(config, "copy"))
    with target.connect() as tgt:   # what a crash half-way through post-data leaves behind
        tgt.execute("INSERT INTO _consolidation.steps (source, step, status) VALUES ('n8n', 'post-data', 'running')")
        tgt.execute("ALTER TABLE n8n.tree ADD CONSTRAINT tree_pkey PRIMARY KEY (id)")
        tgt.execute("CREATE INDEX everything_jb ON n8n.everything USING gin (jb)")
        tgt.execute("CREATE UNIQUE INDEX codes_code ON n8n.codes (code)")   # an FK onto it must not shield it
        tgt.execute("ALTER TABLE n8n.uses_code ADD CONSTRAINT uses_code_c_fkey FOREIGN KEY (c) REFERENCES n8n.codes (code)")
    result = run_migrator(config, "post-data")
    assert_ok(result)
    assert "n8n: removed 4 objects left by an interrupted post-data" in result.stdout
    assert_ok(run_migrator(config, "verify"))


def test_final_post_data_rerun_keeps_what_tables_built_early(config, target):
    """A crash in the final pass after tables got their keys early: the rerun
    clears only final-pass objects and builds the rest, without rebuilding keys."""
    assert_ok(run_migrator(config, "migrate"))
    with target.connect() as tgt:
        pkey = tgt.execute("SELECT oid FROM pg_class WHERE relname = 'tree_pkey'").fetchone()[0]
        tgt.execute("UPDATE _consolidation.steps SET status = 'running' WHERE source = 'n8n' AND step = 'post-data'")
    result = run_migrator(config, "post-data")
    assert_ok(result)
    assert "n8n: removed" in result.stdout
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as tgt:
        assert tgt.execute("SELECT oid FROM pg_class WHERE relname = 'tree_pkey'").fetchone()[0] == pkey
        assert tgt.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'tree_parent_fkey'").fetchone()[0] == 1


def test_failed_index_build_stops_with_one_line_and_rerun_completes(config, target):
    """A per-table index build that fails (here an event trigger on the target
    refuses one CREATE INDEX) stops migrate with one line naming the table; the
    failed build left nothing, and a rerun builds it and verifies."""
    with target.connect() as tgt:
        tgt.execute("CREATE FUNCTION public.refuse_jb() RETURNS event_trigger LANGUAGE plpgsql AS $$"
                    " BEGIN IF current_query() LIKE '%everything_jb%' THEN"
                    " RAISE EXCEPTION 'refused by test'; END IF; END $$;"
                    "CREATE EVENT TRIGGER refuse_jb ON ddl_command_start WHEN TAG IN ('CREATE INDEX')"
                    " EXECUTE FUNCTION public.refuse_jb()")
    failed = run_migrator(config, "migrate")
    assert failed.returncode != 0
    assert failed.stderr.strip() == "FAILED: target database 'unified': indexes of n8n.everything failed: refused by test"
    assert "Traceback" not in failed.stdout + failed.stderr
    with target.connect() as tgt:
        assert tgt.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'n8n' AND tablename = 'everything'"
                           ).fetchone()[0] == 0      # the primary key too: one transaction per table
        tgt.execute("DROP EVENT TRIGGER refuse_jb; DROP FUNCTION public.refuse_jb()")
    assert_ok(run_migrator(config, "migrate"))
    verify = run_migrator(config, "verify")
    assert_ok(verify)
    with target.connect() as tgt:
        assert tgt.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'n8n' AND tablename = 'everything'"
                           ).fetchone()[0] == 5


