"""Faults during migrate, and the rerun that finishes without manual help.

Each case breaks a run the way the world does (a crash in the final pass, a
dead migrator's sessions still holding locks, a source that goes away, a disk
that fills up, a copy resumed with other options, a target that must be
rebuilt), then checks the one-line error and exit code, and that the next
`migrate` finishes within a bounded time with verify at 0.
"""

from __future__ import annotations

import json
import subprocess
import time

import psycopg
import pytest

from migrator.engine import journal
from tests.support import migrator_command, run_migrator, start_postgres, write_stack_config
from tests.support import assert_ok, wait_for_units, wait_until

pytestmark = pytest.mark.integration

ONE_SOURCE = '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n'
LONG = "sandbox_environment_variables_with_long_name"     # its "<table> <table>_pkey" tag is 94 characters


@pytest.fixture
def target(target_db):
    """Each test's target: a database of its own on the session's unified server (conftest);
    a test that restarts the target or fills its disk has a server of its own."""
    return target_db


@pytest.fixture
def source(source_db):
    """A database of its own on the session's PostgreSQL 15 source server (conftest)."""
    with source_db.connect() as conn:
        conn.execute(f"CREATE TABLE {LONG} (id int PRIMARY KEY, value text);"
                     f"INSERT INTO {LONG} SELECT i, md5(i::text) FROM generate_series(1, 500) i;"
                     "CREATE TABLE small (id int PRIMARY KEY, n int); INSERT INTO small SELECT i, i FROM generate_series(1, 100) i;"
                     "ANALYZE")
    return source_db


def timed(config, *args: str, timeout: float = 180) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = run_migrator(config, *args, timeout=timeout)
    return result, time.monotonic() - started


def test_crash_in_the_final_pass_resumes_with_long_constraint_tags(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    assert_ok(run_migrator(config, "migrate"))
    with target.connect() as conn:
        early = conn.execute("SELECT cardinality(toc_ids) FROM _consolidation.finished_tables"
                             " WHERE table_name = %s", (LONG,)).fetchone()[0]
        assert early == 1                      # its primary key was built early, and journaled as such
        conn.execute("UPDATE _consolidation.steps SET status = 'running' WHERE step = 'post-data'")
    rerun, _ = timed(config, "migrate")
    assert_ok(rerun)
    assert "left by an interrupted post-data" in rerun.stdout
    assert_ok(run_migrator(config, "verify"))


def test_sessions_of_a_killed_run_are_ended_and_the_rerun_does_not_wait(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    assert_ok(run_migrator(config, "migrate"))
    with target.connect() as conn:
        conn.execute("UPDATE _consolidation.steps SET status = 'running' WHERE step = 'post-data'")
        conn.execute("ALTER ROLE consolidation_loader_n8n LOGIN PASSWORD 'left-over-session'")
    # What a migrator killed mid-copy leaves: its loader session, in a transaction, holding its table.
    leftover = psycopg.connect(host=target.host, port=target.port, dbname=target.dbname, user="consolidation_loader_n8n",
                               password="left-over-session", application_name="consolidation-migrator")
    leftover.execute("LOCK TABLE n8n.small IN ROW EXCLUSIVE MODE")
    try:
        rerun, seconds = timed(config, "migrate", timeout=120)
        assert_ok(rerun)
        assert "ended 1 session(s) left open by an earlier, interrupted run" in rerun.stdout
        assert seconds < 60
        assert leftover.broken or leftover.closed or _dead(leftover)
    finally:
        leftover.close()
    assert_ok(run_migrator(config, "verify"))


def _dead(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_second_migrator_exits_7(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    with target.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (0x636F6E73,))
        result = run_migrator(config, "migrate")
    assert result.returncode == 7, result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_from_scratch_rebuilds_after_verify_found_a_difference(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    assert_ok(run_migrator(config, "migrate"))
    with target.connect() as conn:
        conn.execute("DELETE FROM n8n.small WHERE id <= 10")
    assert run_migrator(config, "verify").returncode == 5
    assert_ok(run_migrator(config, "migrate"))                 # all done: nothing repairs it
    assert run_migrator(config, "verify").returncode == 5

    state = tmp_path / "env/.cutover.json"
    state.write_text(json.dumps({"phase": "done", "history": []}))
    refused = run_migrator(config, "migrate", "--from-scratch")
    assert refused.returncode == 1 and "--from-scratch refused" in refused.stderr
    state.write_text(json.dumps({"phase": "rolled-back", "history": []}))

    rebuilt = run_migrator(config, "migrate", "--from-scratch")
    assert_ok(rebuilt)
    assert "starting over (dropped n8n)" in rebuilt.stdout
    assert_ok(run_migrator(config, "verify"))


def fill_big(server, rows: int):
    with server.connect() as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, payload text);"
                     f"INSERT INTO big SELECT i, repeat(md5(i::text), 40) FROM generate_series(1, {rows}) i;"
                     "ANALYZE")
    return server


def big_source(images, rows: int):
    """A source server of its own, for the tests that kill it or go with a target of their own."""
    return fill_big(start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore"), rows)


def test_source_gone_mid_copy_exits_3_naming_it_and_the_rerun_completes(tmp_path, images, target):
    src = big_source(images, 150000)
    try:
        config = write_stack_config(tmp_path, target, {"n8n": src}, ONE_SOURCE)
        proc = subprocess.Popen(migrator_command(config, "migrate", "--jobs", "1", "--split-mb", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_units(target, minimum=2, timeout=120)
        src.container.get_wrapped_container().kill()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, out[-2000:] + err[-2000:]
        assert err.startswith("FAILED: source database 'n8n'") and err.strip().count("\n") == 0

        src.container.get_wrapped_container().start()
        src.container.get_wrapped_container().reload()
        port = src.container.get_wrapped_container().attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        env = tmp_path / "env/n8n.env"
        env.write_text(env.read_text().replace(f"POSTGRES_PORT={src.port}", f"POSTGRES_PORT={port}"))
        wait_until(lambda: psycopg.connect(**src.conninfo(port=int(port), connect_timeout=2)).close() or True, 60,
                   "the source to answer again", interval=0.5, retry_on=(psycopg.OperationalError,))
        rerun, _ = timed(config, "migrate", "--jobs", "1", timeout=300)
        assert_ok(rerun)
        assert "from an earlier run" in rerun.stdout
        assert_ok(run_migrator(config, "verify"))
    finally:
        src.container.stop()


def test_disk_filling_up_mid_copy_stops_cleanly_and_the_rerun_completes(tmp_path, images):
    src = big_source(images, 200000)
    target = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres",
                            tmpfs={"/var/lib/postgresql/data": "size=2400m"})
    container = target.container.get_wrapped_container()
    try:
        config = write_stack_config(tmp_path, target, {"n8n": src}, ONE_SOURCE)
        proc = subprocess.Popen(migrator_command(config, "migrate", "--jobs", "1", "--split-mb", "4"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_units(target, minimum=1, timeout=120)
        # Someone else fills the shared disk: leave 400 MB, under the 512 MB reserve.
        free_kb = int(container.exec_run(["sh", "-c", "df -Pk /var/lib/postgresql/data | tail -1"]
                                         ).output.split()[3])
        filler = (free_kb - 400 * 1024) * 1024
        assert container.exec_run(["fallocate", "-l", str(filler), "/var/lib/postgresql/data/filler"]).exit_code == 0
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 4, out[-2000:] + err[-2000:]
        assert "disk nearly full" in err and err.strip().count("\n") == 0
        with target.connect() as conn:       # the server is up and answering
            assert conn.execute("SELECT 1").fetchone()[0] == 1
        container.exec_run(["rm", "-f", "/var/lib/postgresql/data/filler"])
        rerun, _ = timed(config, "migrate", "--jobs", "1", timeout=300)
        assert_ok(rerun)
        assert_ok(run_migrator(config, "verify"))
    finally:
        src.container.stop()
        target.container.stop()


def test_disk_check_runs_on_every_run(tmp_path, images):
    """A resumed migrate (journal present) is checked too."""
    src = big_source(images, 20000)
    target = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres",
                            tmpfs={"/var/lib/postgresql/data": "size=200m"})
    try:
        config = write_stack_config(tmp_path, target, {"n8n": src}, ONE_SOURCE)
        with target.connect() as conn:     # an earlier run's journal
            journal.ensure(conn)
        result = run_migrator(config, "migrate")
        assert result.returncode == 4, result.stdout + result.stderr
        assert "not enough disk space" in result.stderr and "of WAL" in result.stderr
    finally:
        src.container.stop()
        target.container.stop()


def assert_refused_before_any_write(result, target, *expected: str) -> None:
    """Exit 3, one line holding every ``expected`` fragment, and nothing on the target."""
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in expected:
        assert fragment in result.stderr
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', '_consolidation')"
                            ).fetchone()[0] == 0


def test_routine_bodies_naming_the_old_schema_unchecked_are_refused_before_any_write(tmp_path, source, target):
    """Dynamic SQL naming the schema cannot be checked: refused in one line (exit 3) that
    says how to accept it, before anything is written; a name in accept_unchecked_routines
    that is no routine of the schema is a configuration error (exit 2)."""
    with source.connect() as conn:
        conn.execute("CREATE FUNCTION small_total() RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE t bigint; BEGIN"
                     " EXECUTE 'SELECT sum(n) FROM public.small' INTO t; RETURN t; END $$")
    try:
        config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
        assert_refused_before_any_write(
            run_migrator(config, "migrate"), target,
            "public.small_total() names schema 'public' in its body where the rewrite cannot check it: line 1: "
            "the string 'SELECT sum(n) FROM public.small' names schema 'public'",
            'accept_unchecked_routines = ["small_total()"]')
        (config / "consolidation.toml").write_text((config / "consolidation.toml").read_text()
                                                   + 'accept_unchecked_routines = ["small_totl()"]\n')
        typo = run_migrator(config, "migrate")
        assert typo.returncode == 2 and "names 'small_totl()', which is no routine of schema 'public'" in typo.stderr
    finally:
        with source.connect() as conn:
            conn.execute("DROP FUNCTION small_total()")


def test_a_custom_setting_naming_the_old_schema_is_refused_before_any_write(tmp_path, source, target):
    """`SET app.home = 'public'` on a routine: what it means only its application knows, so
    the move cannot rewrite it; refused in one line (exit 3) naming the routine and the
    setting, before anything is written."""
    with source.connect() as conn:
        conn.execute("CREATE FUNCTION home() RETURNS text LANGUAGE sql SET app.home = 'public.small'"
                     " AS $$ SELECT current_setting('app.home') $$")
    try:
        config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
        assert_refused_before_any_write(
            run_migrator(config, "migrate"), target,
            "public.home(): SET app.home = 'public.small' names schema 'public', a custom setting the move "
            "cannot rewrite", "change it on the source")
    finally:
        with source.connect() as conn:
            conn.execute("DROP FUNCTION home()")


# kill -9 of the migrator at each point of a migrate: the journal says where it is.
KILL_POINTS = {
    "schema": "SELECT count(*) FROM _consolidation.steps WHERE step = 'schema' AND status = 'running'",
    "copy-early": "SELECT count(*) FROM _consolidation.units",
    "copy-late": "SELECT (count(*) >= 20)::int FROM _consolidation.units",
    "table-builds": "SELECT count(*) FROM _consolidation.finished_tables",
    "final-pass": "SELECT count(*) FROM _consolidation.steps WHERE step = 'post-data' AND status = 'running'",
}


def wait_for(target, query: str, timeout: float = 120) -> None:
    with target.connect() as conn:
        wait_until(lambda: conn.execute(query).fetchone()[0], timeout, f"reached: {query}", interval=0.02,
                   retry_on=(psycopg.errors.UndefinedTable,))


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_at_each_point_then_the_rerun_finishes(tmp_path, source_db, target, point):
    src = fill_big(source_db, 60000)
    with src.connect() as conn:      # more tables: some finish (and build their keys) while others copy
        for i in range(6):
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, v text); INSERT INTO t{i}"
                         f" SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        conn.execute("CREATE INDEX big_payload ON big (left(payload, 8)); ANALYZE")
    config = write_stack_config(tmp_path, target, {"n8n": src}, ONE_SOURCE)
    name = f"migrator-kill-{point}-{time.time_ns()}"
    proc = subprocess.Popen(migrator_command(config, "migrate", "--jobs", "2", "--split-mb", "1", name=name),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(target, KILL_POINTS[point])
        subprocess.run(["docker", "kill", "--signal", "KILL", name], capture_output=True)
    finally:
        proc.wait(timeout=60)
    rerun, seconds = timed(config, "migrate", "--jobs", "2", timeout=300)
    assert_ok(rerun)
    assert seconds < 240
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM n8n.big").fetchone() == (60000, 1800030000)


def test_target_restarted_mid_copy_exits_4_and_the_rerun_finishes(tmp_path, images, target_server):
    target = target_server          # restarted below: a server of its own
    src = big_source(images, 150000)
    container = target.container.get_wrapped_container()
    try:
        config = write_stack_config(tmp_path, target, {"n8n": src}, ONE_SOURCE)
        proc = subprocess.Popen(migrator_command(config, "migrate", "--jobs", "1", "--split-mb", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_units(target, minimum=2, timeout=120)
        container.restart(timeout=5)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 4, out[-2000:] + err[-2000:]
        assert err.startswith("FAILED: target database 'unified'") and err.strip().count("\n") == 0
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        env = tmp_path / "env/target.env"
        env.write_text(env.read_text().replace(f"POSTGRES_PORT={target.port}", f"POSTGRES_PORT={port}"))
        rerun, _ = timed(config, "--wait", "60", "migrate", "--jobs", "1", timeout=300)
        assert_ok(rerun)
        assert_ok(run_migrator(config, "verify"))
    finally:
        src.container.stop()
