"""Commands started together, configurations changed between runs, refusals before
any write, and messages that name the real cause (issue 24).

Two commands are made to overlap without timing: the test holds an ACCESS EXCLUSIVE
lock on a source table, so the first command waits on the source while it holds the
target's lock (migrator/engine/runlock.py); the second is started then, and the source is
released afterwards. One source and one target serve the whole module; each test
uses its own source names and target schemas.
"""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import db, runlock, space
from migrator.errors import DatabaseError
from tests.support import assert_ok, migrator_command, run_migrator, start_postgres, wait_until, write_stack_config

pytestmark = pytest.mark.integration

MAIN = '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n'


@pytest.fixture(scope="module")
def source(images):
    server = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    with server.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, v text);"
                     "INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 2000) i;"
                     "CREATE SCHEMA side; CREATE TABLE side.t (id int PRIMARY KEY);"
                     "INSERT INTO side.t SELECT generate_series(1, 10); ANALYZE")
    yield server
    server.container.stop()


@pytest.fixture(scope="module")
def target(images):
    server = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    yield server
    server.container.stop()


@pytest.fixture(scope="module")
def main_config(tmp_path_factory, source, target) -> Path:
    return write_stack_config(tmp_path_factory.mktemp("main"), target, {"n8n": source}, MAIN)


@contextmanager
def source_held(source, table: str = "items"):
    """The source table locked: a command reading it waits, holding the target's lock."""
    conn = psycopg.connect(**source.conninfo())
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def wait_for_holder(target, command: str, timeout: float = 120, holders: int = 1) -> None:
    """Until `command` holds the target's lock (its session is named after it), ``holders`` times."""
    with target.connect() as conn:
        wait_until(lambda: conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                                        " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s"
                                        " AND a.application_name = %s", (runlock.KEY, runlock.APP_PREFIX + command)
                                        ).fetchone()[0] >= holders, timeout, f"`{command}` to hold the target's lock",
                   interval=0.1)


def start(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(migrator_command(config, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_refused_by(result, holder: str) -> None:
    assert result.returncode == 7, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"another migrator is already running against this target: `{holder}` (pid" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def finished(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_verify_started_during_migrate_is_refused_and_the_migrate_finishes(main_config, source, target):
    with source_held(source):
        migrate = start(main_config, "migrate")
        wait_for_holder(target, "migrate")
        refused = run_migrator(main_config, "verify", timeout=120)
    assert_refused_by(refused, "migrate")
    assert_ok(finished(migrate))
    assert_ok(run_migrator(main_config, "verify"))


def test_app_backup_started_during_migrate_is_refused(main_config, source, target):
    with source_held(source):
        migrate = start(main_config, "migrate", "--from-scratch")
        wait_for_holder(target, "migrate")
        refused = run_migrator(main_config, "app-backup", "n8n", timeout=120)
    assert_refused_by(refused, "migrate")
    assert_ok(finished(migrate))
    assert not (main_config / "backups/apps").exists() or not any((main_config / "backups/apps").iterdir())
    assert_ok(run_migrator(main_config, "verify"))


def test_two_verifies_run_together_each_with_a_reader_of_its_own(main_config, source, target):
    """verify reads through a throwaway reader (checksums.reader), never a loader: two at
    once share the lock and neither resets the other's credentials."""
    assert_ok(run_migrator(main_config, "migrate"))
    with source_held(source):
        first = start(main_config, "verify")
        second = start(main_config, "verify")
        wait_for_holder(target, "verify", holders=2)     # both hold the target at the same time
    for result in (finished(first), finished(second)):
        assert_ok(result)
        assert "identical" in result.stdout
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_reader_%'").fetchone()[0] == 0


def test_a_reader_holding_the_target_is_named_to_a_writer(main_config, target):
    with target.connect(application_name=runlock.APP_PREFIX + "restore-drill") as reader:
        reader.execute("SELECT pg_advisory_lock_shared(%s)", (runlock.KEY,))
        refused = run_migrator(main_config, "migrate", timeout=120)
    assert_refused_by(refused, "restore-drill")


def test_a_changed_mapping_is_refused_naming_what_changed(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"remap": source},
                                '[sources.remap]\nschema = "side"\ntarget_schema = "remap"\n')
    assert_ok(run_migrator(config, "migrate"))
    toml = config / "consolidation.toml"
    toml.write_text(toml.read_text().replace('target_schema = "remap"', 'target_schema = "remap_v2"'))
    refused = run_migrator(config, "migrate")
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "[sources.remap] changed since it was migrated (target_schema remap -> remap_v2)" in refused.stderr
    assert "--from-scratch" in refused.stderr and refused.stderr.strip().count("\n") == 0
    with target.connect() as conn:
        assert conn.execute("SELECT to_regnamespace('remap_v2') IS NULL").fetchone()[0]
    assert_ok(run_migrator(config, "migrate", "--from-scratch"))
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM remap_v2.t").fetchone()[0] == 10
        assert conn.execute("SELECT to_regnamespace('remap') IS NULL").fetchone()[0]


def test_a_migrated_source_schema_that_is_gone_is_refused(tmp_path, source, target):
    with source.connect() as conn:
        conn.execute("CREATE SCHEMA leaving; CREATE TABLE leaving.t (id int PRIMARY KEY); INSERT INTO leaving.t VALUES (1)")
    config = write_stack_config(tmp_path, target, {"leaving": source},
                                '[sources.leaving]\nschema = "leaving"\ntarget_schema = "leaving_copy"\n')
    assert_ok(run_migrator(config, "migrate"))
    with source.connect() as conn:
        conn.execute("ALTER SCHEMA leaving RENAME TO left_behind")
    refused = run_migrator(config, "migrate")
    assert refused.returncode == 3, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "source database 'leaving': schema 'leaving' does not exist" in refused.stderr


def test_a_postgres_15_target_and_a_reserved_name_are_refused_before_any_write(tmp_path, images, source):
    old = start_postgres(images["N8N_DB_IMAGE"], user="postgres", dbname="postgres")
    try:
        reserved = write_stack_config(tmp_path / "reserved", old, {"n8n": source},
                                      '[sources.n8n]\nschema = "public"\ntarget_schema = "pg_n8n"\n')
        result = run_migrator(reserved, "migrate")
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert "target schema 'pg_n8n' is reserved" in result.stderr and result.stderr.strip().count("\n") == 0

        config = write_stack_config(tmp_path / "pg15", old, {"n8n": source}, MAIN)
        result = run_migrator(config, "migrate")
        assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
        assert "PostgreSQL 15." in result.stderr and "needs PostgreSQL 17 or later" in result.stderr
        assert result.stderr.strip().count("\n") == 0
        with old.connect() as conn:          # nothing written: no journal, no loader role
            assert conn.execute("SELECT to_regnamespace('_consolidation') IS NULL").fetchone()[0]
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation%'").fetchone()[0] == 0
    finally:
        old.container.stop()


def as_settings(server, role: str, name: str) -> DatabaseSettings:
    return DatabaseSettings(name=name, role=role, host=server.host, port=server.port, dbname=server.dbname,
                            user=server.user, password=server.password, env_file=Path("env/unified.env"))


def test_a_loaders_failed_login_names_no_env_file(target):
    loader = replace(as_settings(target, "target", "unified"), user="consolidation_loader_n8n", password="stale")
    with pytest.raises(DatabaseError) as err:
        db.connect(loader, wait_seconds=1)
    assert "its password is in no env file" in err.value.message and "env/unified.env" not in err.value.message


def test_a_source_lost_mid_run_is_not_an_unknown_host(source):
    reached = as_settings(source, "source", "lost-later")
    db.connect(reached, wait_seconds=5).close()
    with pytest.raises(DatabaseError) as err:      # its name stops resolving (a stopped container's does)
        db.connect(replace(reached, host="gone.invalid"), wait_seconds=1)
    assert err.value.problem.startswith("connection lost: gone.invalid:")
    with pytest.raises(DatabaseError) as err:      # never reached in this run: really an unknown host
        db.connect(replace(as_settings(source, "source", "never-reached"), host="gone.invalid"), wait_seconds=1)
    assert err.value.problem == "unknown host 'gone.invalid'"


def test_the_disk_watch_stops_a_fast_copy_within_its_bound(target):
    """Free space is always under a 16 TB reserve: however fast the copy reports bytes,
    it is stopped within 2 x WATCH_BYTES plus the 1 MB in flight."""
    settings = Settings(config_file=Path("consolidation.toml"), target=as_settings(target, "target", "unified"),
                        sources=(), raw={})
    watchdog = space.DiskWatchdog(settings, reserve_mb=1 << 24)
    sent = 0
    try:
        with pytest.raises(DatabaseError, match="disk nearly full"):
            while sent < 100 * space.WATCH_BYTES:
                watchdog.raise_if_low(1 << 20)
                sent += 1 << 20
    finally:
        watchdog.close()
    assert sent <= 2 * space.WATCH_BYTES + (1 << 20)
