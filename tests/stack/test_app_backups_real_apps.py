"""Per-app backups and the decommission, with the real n8n and Letta, after a real cutover.

A real-app stack of the session's (tests/support/appstack.py: own name, ports, env/ and
reports/), seeded through the apps' APIs, its unified instance and cutover state no other
module's. n8n's backup restores into an empty PostgreSQL 17 and the real n8n lists its workflows from it; a live restore brings a
deleted workflow back and leaves Letta's and RAG's checksums alone; the decommission
refuses while an app or a client still uses a legacy database, then archives, checks
and removes them, and the apps still answer as before; a rollback after it is refused
and leaves everything as it was."""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import psycopg
import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from migrator.apps import n8n as n8n_app
from migrator.ops import appdump
from migrator.systems import services
from tests.stack.test_cutover import CutoverStack, plant_attackers, unified_evidence
from tests.support import ROOT, env_values, project_images

pytestmark = pytest.mark.integration

OTHER_SCHEMAS = ["letta_agents", "letta_embeddings", "rag_documents", "rag_embeddings"]


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return " ".join(result.stdout.split())


@pytest.fixture(scope="module")
def stack(app_stacks):
    """A real-app stack from the session's (tests/support/appstack.py), never cut over; the
    decommission retires its legacy databases, so this module consumes it."""
    s = app_stacks.consume("test_app_backups_real_apps", fresh_unified=True)
    extra: list[str] = []
    s.extra = extra
    try:
        ok(s.migrator("fingerprint", "--save", "seeded"))
        yield s
    finally:
        for name in extra:
            subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
        app_stacks.release(s)                 # also after decommission, when `down` fails on the removed databases


def legacy_running(stack: CutoverStack) -> list[str]:
    c = services.client()
    return [x.name for db in ("n8n-db", "letta-db") for x in c.containers.list(filters={"label": [
        f"com.docker.compose.project={stack.name}", f"com.docker.compose.service={db}"]})]


def plain(stack: CutoverStack, *args: str) -> subprocess.CompletedProcess:
    """docker compose for this project without the legacy profile."""
    return subprocess.run(["docker", "compose", "-p", stack.name, *args], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=900)


@retry(stop=stop_after_delay(240), wait=wait_fixed(3), reraise=True)
def fingerprint_when_ready(stack: CutoverStack) -> dict:
    """n8n answers readiness before its REST routes are up: ask until it lists."""
    return n8n_app.fingerprint(n8n_url(stack), stack.env_dir / "n8n-admin.env")


@retry(stop=stop_after_delay(240), wait=wait_fixed(3), reraise=True)
def client_when_ready(stack: CutoverStack) -> n8n_app.N8nClient:
    return n8n_app.connect(n8n_url(stack), stack.env_dir / "n8n-admin.env")


def n8n_url(stack: CutoverStack) -> str:
    return f"http://127.0.0.1:{stack.ports['N8N_APP_PORT']}"


def test_decommission_refuses_while_an_app_is_on_a_legacy_database(stack):
    result = stack.migrator("decommission")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "`decommission` refused (before cutover): nothing was cut over" in result.stderr
    assert len(legacy_running(stack)) == 2


def test_cutover_then_app_backup(stack):
    ok(stack.migrator("cutover"))
    started = time.monotonic()
    out = ok(stack.migrator("app-backup"))
    stack.backup_seconds = time.monotonic() - started
    for app in ("n8n", "letta", "rag"):
        assert f"{app} (" in out


def test_n8n_dump_restores_into_an_empty_postgres17_and_n8n_runs_on_it(stack):
    pg_name = f"{stack.name}-empty-pg"
    password = "pw-" + secrets.token_hex(12)
    stack.extra.append(pg_name)
    subprocess.run(["docker", "run", "-d", "--name", pg_name, "--network", f"{stack.name}_default",
                    "--network-alias", "restored-db", "-e", f"POSTGRES_PASSWORD={password}",
                    project_images()["LETTA_DB_IMAGE"]], check=True, capture_output=True)
    (stack.env_dir / "restored-db.env").write_text(
        f"POSTGRES_HOST=restored-db\nPOSTGRES_PORT=5432\nPOSTGRES_DB=postgres\nPOSTGRES_USER=postgres\n"
        f"POSTGRES_PASSWORD={password}\n")
    started = time.monotonic()
    ok(stack.migrator("--wait", "120", "app-restore", "n8n", "--into-empty", "env/restored-db.env"))
    stack.restore_seconds = time.monotonic() - started
    live = n8n_app.fingerprint(n8n_url(stack), stack.env_dir / "n8n-admin.env")
    assert live["workflows"]
    # The real n8n on the restored database: the same image, volume (encryption key) and
    # login; only its database settings differ. The live one steps aside for the port.
    role_pw = env_values(stack.env_dir / "app-roles.env")["N8N_ROLE_PASSWORD"]
    ok(stack.compose("stop", "n8n"))
    name = f"{stack.name}-n8n-restored"
    stack.extra.append(name)
    try:
        ok(stack.compose("--profile", "apps", "run", "-d", "--no-deps", "--service-ports", "--name", name,
                         "-e", "DB_POSTGRESDB_HOST=restored-db", "-e", "DB_POSTGRESDB_PORT=5432",
                         "-e", "DB_POSTGRESDB_DATABASE=postgres", "-e", "DB_POSTGRESDB_USER=n8n",
                         "-e", f"DB_POSTGRESDB_PASSWORD={role_pw}", "-e", "DB_POSTGRESDB_SCHEMA=n8n", "n8n"))
        try:
            restored = fingerprint_when_ready(stack)
        except Exception as exc:
            logs = subprocess.run(["docker", "logs", "--tail", "40", name], capture_output=True, text=True)
            raise AssertionError(f"{exc}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}") from None
        assert restored["workflows"] == live["workflows"]
        assert restored["credentials"] == live["credentials"]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        ok(stack.compose("--profile", "apps", "start", "n8n"))


def test_live_restore_brings_a_deleted_workflow_back_and_leaves_others_alone(stack):
    client = client_when_ready(stack)
    victim = sorted(client.api_list("/workflows"), key=lambda w: w["id"])[0]
    client.api("DELETE", f"/workflows/{victim['id']}")
    assert victim["id"] not in {w["id"] for w in client.api_list("/workflows")}
    with stack.db("unified") as conn:
        before = appdump.table_sums(conn, OTHER_SCHEMAS)
    refused = stack.migrator("app-restore", "n8n")          # n8n is still connected
    assert refused.returncode == 4 and "open session" in refused.stderr, refused.stderr
    ok(stack.compose("stop", "n8n"))
    out = ok(stack.migrator("app-restore", "n8n"))
    assert "other applications untouched" in out and "DROP SCHEMA n8n_replaced_" in out
    ok(stack.compose("--profile", "apps", "start", "n8n"))
    client = client_when_ready(stack)
    assert victim["id"] in {w["id"] for w in client.api_list("/workflows")}
    with stack.db("unified") as conn:
        assert appdump.table_sums(conn, OTHER_SCHEMAS) == before


def test_decommission_archives_checks_and_removes_the_legacy_databases(stack):
    env = env_values(stack.env_dir / "n8n-db.env")
    with psycopg.connect(host="127.0.0.1", port=stack.ports["N8N_DB_PORT"], user=env["POSTGRES_USER"],
                         password=env["POSTGRES_PASSWORD"], dbname=env["POSTGRES_DB"]):
        refused = stack.migrator("decommission")
    assert refused.returncode == 3 and "still connected" in refused.stderr, refused.stderr
    assert len(legacy_running(stack)) == 2
    plant_attackers(stack)        # the superuser matrix: the restore test runs legacy code (as the loader)
    out = ok(stack.migrator("decommission"))
    assert unified_evidence(stack) == []
    assert "n8n: " in out and "letta: " in out and "restore-tested" in out
    assert legacy_running(stack) == []
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.name}"],
                             capture_output=True, text=True).stdout.split()
    assert f"{stack.name}_n8n-db-data" in volumes          # kept without --delete-volumes
    # From now on without the legacy profile, as the Makefile runs after `make decommission`:
    # the apps still answer as seeded, and a plain `up` no longer starts the legacy databases.
    ok(plain(stack, *stack.migrator_args("fingerprint", "--compare", "seeded")))
    ok(plain(stack, "up", "-d", "--wait"))
    assert legacy_running(stack) == []
    print(f"\napp-backup (3 apps) {getattr(stack, 'backup_seconds', 0):.1f} s, "
          f"n8n restore into empty {getattr(stack, 'restore_seconds', 0):.1f} s")


def env_dir_bytes(stack: CutoverStack) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(stack.env_dir.iterdir()) if p.is_file()}


def test_rollback_after_decommission_is_refused_and_the_apps_keep_serving(stack):
    marker = json.loads((stack.env_dir / ".decommissioned").read_text())
    assert marker["containers_removed"] is True and marker["databases"] == ["n8n-db", "letta-db"]
    before = env_dir_bytes(stack)
    started = time.monotonic()
    result = plain(stack, *stack.migrator_args("rollback"))
    seconds = time.monotonic() - started
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "`rollback` refused (decommissioned)" in failed[0], result.stderr
    assert "`app-restore <app>`" in failed[0] and "legacy data is stale" in failed[0]
    assert "env files restored" not in result.stdout
    assert env_dir_bytes(stack) == before                 # env files, originals, state: byte for byte
    assert legacy_running(stack) == []
    assert stack.process_env("n8n")["DB_POSTGRESDB_HOST"] == "unified"
    assert "@unified:5432/postgres" in stack.process_env("letta")["LETTA_PG_URI"]
    assert stack.healthy("n8n") and stack.healthy("letta")
    ok(plain(stack, *stack.migrator_args("fingerprint", "--compare", "seeded")))
    again = ok(plain(stack, *stack.migrator_args("decommission")))
    assert "already decommissioned" in again and env_dir_bytes(stack) == before
    print(f"\nrollback after decommission refused in {seconds:.1f} s (docker compose run included)")
