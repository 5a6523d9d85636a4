"""The superuser matrix: every command of the CLI, run as an operator runs it, against
an instance where every party the tool does not trust has planted code
(tests/support/attacker.py). The test fails if any planted code ran as a superuser.

The parties: whoever controls each legacy database (tests/data/attacker.sql: CHECK,
domain, DEFAULT, generated column, index expression, trigger, matview), the app roles on
the unified instance (casts from their row types to text, pg_catalog shadows by
argument type, an operator, index and statistics expressions, CHECK, DEFAULT, trigger,
rule, policy with FORCE RLS, view, matview), Supabase's `postgres` (shadows in
`public`, the tool's schemas created before the tool does) and a connection that races
into the scratch database of a live app restore. Which command runs where is
attacker.MATRIX (tests/unit/test_attacker_matrix_coverage.py keeps it equal to the CLI's
registry); the commands that need a compose stack (restore-drill, restore-instance,
cutover, rollback, decommission) check the same evidence in tests/stack/.

The five findings of issue 22, each a named case here: the drill's cast (every
checksum reader: verify, app-backup, app-restore; the drill itself in
tests/stack/test_backups.py), the racing scratch database, a planted cast stopping
verify and app-backup with exit 1, pre-created tool schemas, a retired loader's session.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from migrator.config.mapping import load_mappings
from migrator.config.settings import load_settings
from migrator.engine import loader
from tests.support import ROOT, run_cli, run_migrator, start_postgres
from tests.support import attacker

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def world(images, tmp_path_factory):
    world = attacker.hostile_world(images, tmp_path_factory.mktemp("matrix"))
    with world["target"].connect() as conn:   # as on a real Supabase instance: postgres may create schemas
        conn.execute("GRANT CREATE ON DATABASE postgres TO postgres")
    yield world
    attacker.stop_world(world)


def evidence(world) -> list[str]:
    with world["target"].connect() as conn:
        return attacker.evidence(conn, world["target"].container, attacker.UNIFIED_SUPERUSERS)


def login(world, user: str, password: str, dbname: str = "postgres") -> psycopg.Connection:
    t = world["target"]
    return psycopg.connect(host=t.host, port=t.port, dbname=dbname, user=user, password=password,
                           autocommit=True, connect_timeout=3)


def run(world, command: str, *args: str, expect: tuple[int, ...] = (0,), host: bool = False) -> str:
    """One command as an operator runs it; its exit code is one of ``expect`` (never 1, an
    internal error) and afterwards no planted code has run as a superuser."""
    config = world["config"]
    result = (run_cli("--config", str(config / "consolidation.toml"), command, *args) if host
              else run_migrator(config, command, *args))
    output = result.stdout + result.stderr
    assert result.returncode in expect, f"{command}: exit {result.returncode}\n{output[-3000:]}"
    assert "internal error" not in output, output[-3000:]
    assert evidence(world) == [], f"after {command}"
    return output


def test_precreated_tool_schemas_are_refused(world):
    """Finding 4: a tool schema that Supabase's `postgres` created first is refused with
    exit 4, never adopted; nothing else is written."""
    cases = {"consolidation_admin": "roles", "consolidation_pooler": "roles", "consolidation_monitoring": "roles",
             "_consolidation": "migrate"}
    for schema, command in cases.items():
        with world["target"].connect() as conn:
            conn.execute("SET ROLE postgres")
            conn.execute(attacker.PRECREATED_TOOL_SCHEMA.format(schema=schema))
        output = run(world, command, expect=(4,), host=command == "roles")
        assert schema in output and "refusing to use it" in output, output[-2000:]
        with world["target"].connect() as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_%'"
                                " OR rolname IN ('n8n', 'letta', 'rag')").fetchone()[0] == 0, f"{command} wrote roles"
            assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
                                (schema,)).fetchone()[0] == "postgres"
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    # The pgBackRest scheduler's own schema refuses itself in SQL (compose/pgbackrest/backup_runs.sql).
    with world["target"].connect() as conn:
        conn.execute("SET ROLE postgres")
        conn.execute(attacker.PRECREATED_TOOL_SCHEMA.format(schema="_consolidation_ops"))
        conn.execute("RESET ROLE")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot be trusted"):
            conn.execute((ROOT / "compose/pgbackrest/backup_runs.sql").read_text())
        conn.execute("DROP SCHEMA _consolidation_ops CASCADE")


def test_every_command_under_attack(world):
    target, passwords = world["target"], world["passwords"]
    run(world, "roles", host=True)                  # roles and empty schemas first, as an operator may
    with target.connect() as conn:
        conn.execute("SET ROLE postgres")
        conn.execute(attacker.POSTGRES_VECTORS.format(schema="public", role="postgres"))
    for command in ("preflight", "assess", "backup-sources", "schema", "copy", "post-data", "migrate", "verify"):
        run(world, command)
    run(world, "roles", host=True)                  # hands the migrated schemas to the app roles

    # The app roles plant every vector in their own schemas (as themselves: harmless).
    for role, schema in (("n8n", "n8n"), ("letta", "letta_agents")):
        with login(world, role, passwords[role]) as conn:
            conn.execute(attacker.app_vectors(schema, role, tag=role + "_"))
            conn.execute(attacker.APP_TABLE_CAST.format(schema=schema, table="secrets", tag=role + "_"))
    assert evidence(world) == []

    # Findings 1 and 3: the planted casts are never called by a checksum reader, and never
    # turn verify or app-backup into an internal error (verify names the plants as objects
    # only on the target: exit 5).
    output = run(world, "verify", expect=(5,))
    assert "only on the target" in output and "different content" not in output
    run(world, "app-backup", "n8n")
    run(world, "app-backup", "letta")

    # Finding 2: while the live restore runs, n8n keeps trying to get into its scratch
    # database to plant what the hand-over would call as the superuser.
    attempts = race_into_scratch(world, lambda: run(world, "app-restore", "n8n", "--force"))
    assert attempts["connected"] == 0, attempts
    run(world, "app-restore", "letta", "--force")
    with login(world, "n8n", passwords["n8n"]) as conn:    # the restored plants still work for n8n
        assert conn.execute("SELECT count(*) FROM n8n.hooked_rows").fetchone()[0] == 20

    empty = start_postgres(world["images"]["LETTA_DB_IMAGE"], user="postgres", dbname="postgres")
    try:
        (world["config"] / "env/empty.env").write_text(empty.env_text())
        run(world, "app-restore", "n8n", "--into-empty", "/work/env/empty.env")
        with empty.connect() as conn:
            assert attacker.evidence(conn, empty.container, {"postgres"}) == []
    finally:
        empty.container.stop()

    run(world, "status", "--json", host=True)
    run(world, "verify", expect=(5,))
    run(world, "roles", host=True)
    assert evidence(world) == []


def race_into_scratch(world, action) -> dict[str, int]:
    """Run ``action`` while n8n polls its app-restore scratch database; count what got in."""
    stop, counts = threading.Event(), {"connected": 0, "refused": 0}
    plant = ("CREATE SCHEMA consolidation_admin;"
             " CREATE TABLE consolidation_admin.app_schema (schema_name name, app text);"
             " INSERT INTO consolidation_admin.app_schema VALUES ('n8n', 'n8n');"
             " CREATE FUNCTION consolidation_admin.apply_privileges(name) RETURNS void LANGUAGE plpgsql AS"
             " $f$ BEGIN EXECUTE 'ALTER ROLE n8n SUPERUSER'; END $f$")

    def poll() -> None:
        while not stop.is_set():
            try:
                with login(world, "n8n", world["passwords"]["n8n"], dbname="consolidation_apprestore_n8n") as conn:
                    counts["connected"] += 1
                    conn.execute(plant)
            except psycopg.Error:
                counts["refused"] += 1
            time.sleep(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        action()
    finally:
        stop.set()
        thread.join(10)
    return counts


def test_a_retired_loader_keeps_no_session(world):
    """Finding 5: code running as a loader sets a password it knows and keeps its session;
    retire() ends that session and the password is gone."""
    settings = load_settings(world["config"] / "consolidation.toml")
    mapping = load_mappings(settings)[0]
    t = world["target"]
    with t.connect(options="-c search_path=pg_catalog,pg_temp") as admin:
        hands = loader.ensure(admin, settings, mapping)
        held = psycopg.connect(host=t.host, port=t.port, dbname="postgres", user=hands.user,
                               password=hands.password, autocommit=True)
        held.execute("ALTER ROLE CURRENT_USER PASSWORD 'known-to-the-attacker'")
        loader.retire(admin, settings, mapping)
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=t.host, port=t.port, dbname="postgres", user=hands.user,
                            password="known-to-the-attacker", connect_timeout=3).close()
        assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                             (hands.user,)).fetchone()[0] == 0
