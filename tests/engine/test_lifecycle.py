"""Where the lifecycle stands (before cutover, interrupted, cut over, rolled back,
decommissioned) and what each command may do there, without the real apps.

A config of the test's own in a temp dir, its env files rewritten and recorded the
way the cutover does it (migrator/steps/cutover.py: originals saved, sha256 in
env/.cutover.json). The first tests need no database: a refusal must come before
any connection. The last ones point the env files that rollback would restore at
real PostgreSQL servers: one holding the app's tables, one without them, one not
listening, one with a wrong password."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from migrator.config import envfile
from migrator.config.settings import load_settings
from migrator.errors import RollbackRefused
from migrator.ops import cutover_state
from migrator.ops.cutover_state import Lifecycle
from migrator.steps import rollback
from tests.support import free_port, run_cli, start_postgres

TOML = """
[target]
name = "unified"
env_file = "env/unified.env"

[sources.n8n]
env_file = "env/n8n-db.env"
schema = "public"
target_schema = "n8n"
owner = "n8n"

[sources.letta]
env_file = "env/letta-db.env"
schema = "letta"
target_schema = "letta_agents"
owner = "letta"

[apps.n8n]
url = "http://127.0.0.1:9"
env_file = "env/n8n.env"

[apps.letta]
url = "http://127.0.0.1:9"
env_file = "env/letta.env"
"""


def db_env(host: str, port: int, db: str, user: str, password: str) -> str:
    return f"POSTGRES_HOST={host}\nPOSTGRES_PORT={port}\nPOSTGRES_DB={db}\nPOSTGRES_USER={user}\nPOSTGRES_PASSWORD={password}\n"


def make_config(tmp: Path, n8n: tuple, letta: tuple) -> Path:
    """A config whose apps were cut over: env files pointing at the unified instance, the
    originals (pointing at ``n8n`` / ``letta``: host, port, db, user, password) saved
    beside them and recorded, phase done."""
    env = tmp / "env"
    env.mkdir()
    (tmp / "consolidation.toml").write_text(TOML)
    (env / "unified.env").write_text(db_env("127.0.0.1", free_port(), "postgres", "supabase_admin", "pw-target-0123"))
    (env / "n8n-db.env").write_text(db_env(*n8n))
    (env / "letta-db.env").write_text(db_env(*letta))
    (env / "app-roles.env").write_text("".join(f"{k}_ROLE_PASSWORD=pw-{k.lower()}-role-0123\n"
                                               for k in ("N8N", "LETTA", "RAG", "READONLY", "MONITORING")))
    host, port, db, user, password = n8n
    # comments and odd quoting: rollback must give these bytes back exactly
    (env / "n8n.env").write_text(f"# n8n\nDB_TYPE=postgresdb\nDB_POSTGRESDB_HOST={host}\nDB_POSTGRESDB_PORT={port}\n"
                                 f"DB_POSTGRESDB_DATABASE={db}\nDB_POSTGRESDB_USER={user}\n"
                                 f"DB_POSTGRESDB_PASSWORD='{password}'\nN8N_ENCRYPTION_KEY=k-0123456789\n")
    host, port, db, user, password = letta
    (env / "letta.env").write_text(f"LETTA_PG_URI=postgresql://{user}:{password}@{host}:{port}/{db}\r\n")
    settings = load_settings(tmp / "consolidation.toml")
    state = cutover_state.CutoverState(fingerprint_label=None)
    stamp = envfile.new_stamp()
    new = {"n8n": {"DB_POSTGRESDB_HOST": "unified", "DB_POSTGRESDB_SCHEMA": "n8n"},
           "letta": {"LETTA_PG_URI": "postgresql://letta:role-pw-0123@unified:5432/postgres"}}
    for name, app in settings.apps.items():
        record = cutover_state.EnvRecord(str(app.env_file), cutover_state.sha256_file(app.env_file),
                                         str(envfile.backup_path(app.env_file, stamp)))
        state.env_files[name] = record
        envfile.rewrite(app.env_file, new[name], stamp=stamp)
    state.move_to("done", cutover_state.state_path(settings))
    return tmp


def snapshot(config: Path) -> dict[str, str]:
    """sha256 of every file of env/ (env files, their saved originals, the state files)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((config / "env").iterdir())}


def consolidate(config: Path, *args: str):
    return run_cli("--config", str(config / "consolidation.toml"), "--wait", "5", *args, timeout=120)


UNREACHABLE = ("127.0.0.1", 1, "nowhere", "nobody", "pw-nobody-0123")


# --- the states, from the files alone ----------------------------------------------------

def test_each_state_from_the_files(tmp_path):
    config = make_config(tmp_path, UNREACHABLE, UNREACHABLE)
    settings = load_settings(config / "consolidation.toml")
    state_file = cutover_state.state_path(settings)
    assert cutover_state.current(settings) is Lifecycle.CUT_OVER
    state = cutover_state.load(state_file)
    for phase, expected in (("apps-stopped", Lifecycle.INTERRUPTED), ("env-rewritten", Lifecycle.INTERRUPTED),
                            ("rolled-back", Lifecycle.ROLLED_BACK), ("done", Lifecycle.CUT_OVER)):
        state.move_to(phase, state_file)
        assert cutover_state.current(settings) is expected, phase
    cutover_state.marker_path(settings).write_text("")        # an older `make decommission`'s touch
    assert cutover_state.current(settings) is Lifecycle.DECOMMISSIONED
    state_file.unlink()
    cutover_state.marker_path(settings).unlink()
    assert cutover_state.current(settings) is Lifecycle.BEFORE_CUTOVER


# --- refusals before any connection ---------------------------------------------------------

def decommissioned(config: Path, **marker) -> None:
    settings = load_settings(config / "consolidation.toml")
    cutover_state.save_marker(settings, {"decommissioned_at": "20261206T120000Z", "archives": "backups/decommission/x",
                                         "databases": ["n8n-db", "letta-db"], "containers_removed": True, **marker})


def test_rollback_after_decommission_is_refused_and_changes_nothing(tmp_path):
    config = make_config(tmp_path, UNREACHABLE, UNREACHABLE)
    decommissioned(config)
    before = snapshot(config)
    result = consolidate(config, "rollback")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("FAILED: `rollback` refused (decommissioned)"), result.stderr
    assert "stale" in lines[0] and "`app-restore <app>`" in lines[0] and "`restore-instance`" in lines[0]
    assert "docker compose --profile legacy up -d n8n-db letta-db" in lines[0]
    assert snapshot(config) == before               # env files, saved originals, state: byte for byte
    assert "env files restored" not in result.stdout


def test_rollback_after_decommission_with_deleted_volumes_names_the_archives(tmp_path):
    config = make_config(tmp_path, UNREACHABLE, UNREACHABLE)
    decommissioned(config, volumes_deleted=True)
    result = consolidate(config, "rollback")
    assert result.returncode == 3 and "restore the final archives (backups/decommission/x)" in result.stderr


def test_cutover_after_decommission_and_decommission_before_cutover_are_refused(tmp_path):
    config = make_config(tmp_path, UNREACHABLE, UNREACHABLE)
    decommissioned(config)
    before = snapshot(config)
    result = consolidate(config, "cutover")
    assert result.returncode == 2 and "`cutover` refused (decommissioned)" in result.stderr, result.stderr
    assert snapshot(config) == before
    for name in ("n8n", "letta"):          # back to "before cutover"
        path = config / "env" / f"{name}.env"
        path.write_bytes(next(config.glob(f"env/{name}.env.*.bak")).read_bytes())
    (config / "env/.cutover.json").unlink()
    (config / "env/.decommissioned").unlink()
    before = snapshot(config)
    result = consolidate(config, "decommission")
    assert result.returncode == 2 and "`decommission` refused (before cutover)" in result.stderr, result.stderr
    assert snapshot(config) == before


def test_a_recorded_original_that_does_not_match_is_refused_before_any_write(tmp_path):
    config = make_config(tmp_path, UNREACHABLE, UNREACHABLE)
    backup = next(config.glob("env/letta.env.*.bak"))
    backup.write_text(backup.read_text() + "# edited\n")
    before = snapshot(config)
    result = consolidate(config, "rollback")
    assert result.returncode == 1 and "does not match the recorded sha256" in result.stderr, result.stderr
    assert snapshot(config) == before               # n8n's env file was not restored either


# --- the way back, checked against real servers ---------------------------------------------

@pytest.fixture(scope="module")
def legacy(images):
    """One PostgreSQL with n8n's tables (public) in n8n_restore and Letta's (schema letta) in
    letta; its database `postgres` has neither."""
    server = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    with server.connect() as conn:
        conn.execute("CREATE TABLE public.workflow_entity (id int PRIMARY KEY)")
        conn.execute("CREATE DATABASE letta")
    with server.connect(dbname="letta") as conn:
        conn.execute("CREATE SCHEMA letta; CREATE TABLE letta.agents (id text PRIMARY KEY)")
    yield server
    server.container.stop()


def login(server, dbname: str, password: str | None = None) -> tuple:
    return (server.host, server.port, dbname, server.user, password or server.password)


@pytest.mark.integration
def test_rollback_refused_when_an_old_database_lacks_the_apps_schema_or_does_not_answer(legacy, tmp_path):
    config = make_config(tmp_path, login(legacy, "postgres"), ("127.0.0.1", free_port(), "letta", "letta", "pw-x-0123"))
    before = snapshot(config)
    result = consolidate(config, "rollback")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"n8n's old database n8n@{legacy.host}:{legacy.port}/postgres" in lines[0]
    assert "holds no tables in schema 'public'" in lines[0]
    assert "letta's old database letta@127.0.0.1:" in lines[0] and "connection refused" in lines[0]
    assert snapshot(config) == before


@pytest.mark.integration
def test_rollback_refused_with_a_wrong_password_says_so_without_it(legacy, tmp_path):
    config = make_config(tmp_path, login(legacy, "n8n_restore", "pw-wrong-4711abcd"), login(legacy, "letta"))
    before = snapshot(config)
    result = consolidate(config, "rollback")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "n8n's old database" in result.stderr and "authentication failed for user 'n8n'" in result.stderr
    assert "letta's old database" not in result.stderr
    assert "pw-wrong-4711abcd" not in result.stdout + result.stderr
    assert snapshot(config) == before


@pytest.mark.integration
def test_the_way_back_passes_when_every_old_database_holds_its_apps_tables(legacy, tmp_path):
    config = make_config(tmp_path, login(legacy, "n8n_restore"), login(legacy, "letta"))
    settings = load_settings(config / "consolidation.toml")
    plan = rollback.planned_env(cutover_state.load(cutover_state.state_path(settings)))
    assert {name: original is not None for name, (_, original, _) in plan.items()} == {"n8n": True, "letta": True}
    rollback.check_way_back(settings, plan)        # raises when a database or schema is missing
    with legacy.connect(dbname="letta") as conn:
        conn.execute("ALTER TABLE letta.agents SET SCHEMA public")
    try:
        with pytest.raises(RollbackRefused, match="holds no tables in schema 'letta'"):
            rollback.check_way_back(settings, plan)
    finally:
        with legacy.connect(dbname="letta") as conn:
            conn.execute("ALTER TABLE public.agents SET SCHEMA letta")
    assert json.loads((config / "env/.cutover.json").read_text())["phase"] == "done"
