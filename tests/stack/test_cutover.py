"""The cutover and its way back, with the real n8n and Letta on real databases.

The session's real-app stack (tests/support/appstack.py: a compose project of the tests'
own, own ports, own copy of env/ and reports/), seeded through the apps' APIs, with a
unified instance no other module used; the migrator runs where an operator
runs it: `docker compose run migrator ...` on the compose network, with the
docker socket. Failure paths first (each ends rolled back), then the full
cutover and a rollback after it, and last Letta's stop (it is not started again).

The legacy databases also carry the corpus (tests/support/corpus.py: n8n's part in
n8n's `public`, without its pgvector block on this PostgreSQL 15; Letta's in `letta`,
next to Letta's own tables), and the migrator reads the stack's mapping plus the
corpus's acceptance: every cutover moves it, and after the cutover and the rollback
every corpus function must answer as it did on the legacy database."""

from __future__ import annotations

import json
import subprocess
import time

import docker
import pytest
import requests

from migrator.systems import services
from tests.support import ROOT
from tests.support import attacker, corpus, env_values
from tests.support.appstack import AppStack as CutoverStack, sha  # noqa: F401  (also imported by other modules)
from tests.support.leaks import assert_no_leak, report_texts, stack_secrets

pytestmark = pytest.mark.integration

CORRUPTION = """
CREATE FUNCTION public.corrupt_row() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.name := NEW.name || ' (corrupted)'; RETURN NEW; END $$;
CREATE FUNCTION public.plant_corruption() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
           WHERE command_tag = 'CREATE TABLE' AND object_identity = 'n8n.workflow_entity' LOOP
    EXECUTE 'CREATE TRIGGER corrupt BEFORE INSERT ON n8n.workflow_entity FOR EACH ROW EXECUTE FUNCTION public.corrupt_row()';
    EXECUTE 'ALTER TABLE n8n.workflow_entity ENABLE ALWAYS TRIGGER corrupt';
  END LOOP;
END $$;
CREATE EVENT TRIGGER plant_corruption ON ddl_command_end EXECUTE FUNCTION public.plant_corruption();
"""
UNDO_CORRUPTION = ("DROP EVENT TRIGGER plant_corruption; DROP FUNCTION public.plant_corruption();"
                   " DROP FUNCTION public.corrupt_row() CASCADE;")


@pytest.fixture(scope="module")
def stack(app_stacks):
    """The session's shared real-app stack (tests/support/appstack.py), seeded, on the legacy
    databases, with a unified instance no other module used; the attackers and the corpus
    planted here stay in the legacy databases, so this module consumes it."""
    s = app_stacks.consume("test_cutover", fresh_unified=True)
    started = time.monotonic()
    s.extra_mounts = corpus.stack_config(s.tmp)
    s.corpus = corpus.InStack(s.db)
    s.timings["corpus load and calls"] = time.monotonic() - started
    yield s
    app_stacks.release(s)


def assert_on_old_databases(stack: CutoverStack) -> None:
    assert stack.env_unchanged()
    assert stack.process_env("n8n")["DB_POSTGRESDB_HOST"] == "n8n-db"
    assert "@letta-db:5432/letta" in stack.process_env("letta")["LETTA_PG_URI"]
    assert stack.healthy("n8n") and stack.healthy("letta")


def test_verification_mismatch_rolls_back_by_itself(stack):
    with stack.db("unified") as conn:
        conn.execute(CORRUPTION)
    try:
        result = stack.migrator("cutover")
    finally:
        with stack.db("unified") as conn:
            conn.execute(UNDO_CORRUPTION)
    assert result.returncode == 5, result.stdout[-3000:] + result.stderr[-3000:]
    assert "table n8n.workflow_entity" in " ".join(result.stdout.split())
    assert "rolled back: the apps run on their old databases again" in result.stderr
    assert_on_old_databases(stack)


def test_app_not_healthy_on_new_instance_rolls_back(stack):
    result = stack.migrator("cutover", "--app-timeout", "1")
    assert result.returncode == 6, result.stdout[-3000:] + result.stderr[-3000:]
    assert "did not become healthy within 1 s" in result.stderr
    assert_on_old_databases(stack)


def one_container_per_app(stack: CutoverStack) -> bool:
    c = services.client()
    return all(len(c.containers.list(all=True, filters={"label": [f"com.docker.compose.project={stack.name}",
                                                                  f"com.docker.compose.service={app}"]})) == 1
               for app in ("n8n", "letta"))


# Every phase boundary the cutover records (env/.cutover.json), killed right after it.
@pytest.mark.parametrize("phase", ["apps-stopped", "env-rewritten", "apps-started"])
def test_killed_at_each_phase_then_rollback(stack, phase):
    name = f"{stack.name}-killme-{phase}"
    proc = subprocess.Popen(["docker", "compose", "-p", stack.name, *stack.migrator_args("cutover", name=name)],
                            cwd=ROOT, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = stack.env_dir / ".cutover.json"
    earlier = json.loads(state_file.read_text())["started_at"] if state_file.exists() else None
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            # This run's state (not an earlier one's), and the phase in its history: a phase
            # can pass in milliseconds.
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
            if state.get("started_at") != earlier and any(entry.endswith(f" {phase}")
                                                          for entry in state.get("history", [])):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"cutover never reached {phase}")
        subprocess.run(["docker", "kill", "--signal", "KILL", name], capture_output=True)
    finally:
        proc.wait(timeout=120)
    if phase in ("env-rewritten", "apps-started"):
        assert not stack.env_unchanged()      # the crash left rewritten env files behind
    result = stack.migrator("rollback")       # includes the smoke test: the fingerprint as before
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_on_old_databases(stack)            # byte-identical env files, apps on the old databases
    assert one_container_per_app(stack)
    again = stack.migrator("rollback")
    assert again.returncode == 0 and "already rolled back" in again.stdout


def plant_attackers(stack: CutoverStack) -> None:
    """The superuser matrix's cutover case (tests/support/attacker.py): both legacy databases
    carry tests/data/attacker.sql, Supabase's `postgres` plants shadows in `public`."""
    for service, schema, role, victim in (("n8n-db", "public", "n8n", "letta_agents.secrets"),
                                          ("letta-db", "letta", "letta", "n8n.secrets")):
        with stack.db(service) as conn:
            conn.execute(attacker.legacy_plants(schema, conn.info.dbname, role, victim))
    with stack.db("unified") as conn:
        conn.execute("SET ROLE postgres")
        conn.execute(attacker.POSTGRES_VECTORS.format(schema="public", role="postgres"))


def unified_evidence(stack: CutoverStack) -> list[str]:
    live = docker.from_env().containers.list(filters={"label": [f"com.docker.compose.project={stack.name}",
                                                               "com.docker.compose.service=unified"]})[0]
    with stack.db("unified") as conn:
        return attacker.evidence(conn, live, attacker.UNIFIED_SUPERUSERS)


def assert_downtime_figures_add_up(report: dict, out: str, md: str) -> None:
    """Downtime = the apps' own start + what the tool adds beyond it, and the parts of that
    add up to it (each figure rounded to the millisecond); printed and in both reports."""
    total, apps, beyond = (report[k] for k in ("downtime_seconds", "apps_start_seconds", "beyond_apps_start_seconds"))
    assert 0 < apps < total and abs(total - (apps + beyond)) <= 0.002
    parts = {s["step"]: s["seconds"] for s in report["beyond_apps_start_steps"]}
    assert {"stop writers", "migrate", "verify", "roles", "recreate app containers"} <= set(parts)
    assert abs(sum(parts.values()) - beyond) <= 0.001 * (len(parts) + 1)
    assert "the apps' own start" in out and "beyond the apps' start" in out
    assert f"{total:.1f} s" in md and f"{apps:.1f} s" in md and f"{beyond:.1f} s beyond it" in md


def test_cutover_then_rollback(stack):
    plant_attackers(stack)
    result = stack.migrator("cutover")
    assert unified_evidence(stack) == []
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = " ".join(result.stdout.split())
    assert "fingerprint equal to 'before-cutover'" in out and "application downtime" in out
    report = json.loads((stack.reports / "cutover.json").read_text())
    assert report["downtime_seconds"] > 0 and report["rows_verified"] > 0
    assert_downtime_figures_add_up(report, out, (stack.reports / "cutover.md").read_text())
    corpus_after_cutover(stack)

    # The running processes really use the unified instance, as their own roles.
    n8n_env, letta_env = stack.process_env("n8n"), stack.process_env("letta")
    assert (n8n_env["DB_POSTGRESDB_HOST"], n8n_env["DB_POSTGRESDB_USER"], n8n_env["DB_POSTGRESDB_SCHEMA"]) == \
        ("unified", "n8n", "n8n")
    assert letta_env["LETTA_PG_URI"].startswith("postgresql://letta:") and "@unified:5432/postgres" in \
        letta_env["LETTA_PG_URI"]
    # The apps write new data into their own schemas; nothing lands in public.
    n8n_url = f"http://127.0.0.1:{stack.ports['N8N_APP_PORT']}"
    letta_url = f"http://127.0.0.1:{stack.ports['LETTA_APP_PORT']}"
    api_key = env_values(stack.env_dir / "n8n-admin.env")["N8N_API_KEY"]
    created = requests.post(f"{n8n_url}/api/v1/workflows", headers={"X-N8N-API-KEY": api_key}, timeout=60,
                            json={"name": "after-cutover", "nodes": [], "connections": {}, "settings": {}})
    assert created.status_code == 200, created.text
    agent = requests.post(f"{letta_url}/v1/agents/", timeout=120, json={
        "name": "after-cutover-agent", "memory_blocks": [{"label": "human", "value": "new"}],
        "llm_config": {"model": "stub", "model_endpoint_type": "openai", "model_endpoint": "http://embeddings:8000/v1",
                       "context_window": 8000},
        "embedding_config": {"embedding_model": "stub", "embedding_endpoint_type": "openai",
                             "embedding_endpoint": "http://embeddings:8000/v1", "embedding_dim": 1536}})
    assert agent.status_code == 200, agent.text
    with stack.db("unified") as conn:
        assert conn.execute("SELECT count(*) FROM n8n.workflow_entity WHERE name = 'after-cutover'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM letta_agents.agents WHERE name = 'after-cutover-agent'"
                            ).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE n.nspname = 'public'").fetchone()[0] == 0

    # Their pooled connections are on the unified instance, as their own roles, and none on the old.
    with stack.db("unified") as conn:
        users = {r[0] for r in conn.execute("SELECT DISTINCT usename FROM pg_stat_activity"
                                            " WHERE backend_type = 'client backend'")}
    assert "n8n" in users      # n8n keeps a pool open; Letta opens connections per request (its
    # writes above, landed in letta_agents on this instance, show where it is connected)
    for old in ("n8n-db", "letta-db"):
        with stack.db(old) as conn:
            apps = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                                " AND pid <> pg_backend_pid()").fetchone()[0]
        assert apps == 0, old

    assert unified_evidence(stack) == []
    studio_after_cutover(stack)
    # Studio's backend logs in as supabase_admin and calls format() unqualified: with its
    # search_path pinned (compose: PGOPTIONS) postgres' shadow in public never runs.
    assert unified_evidence(stack) == []
    rollback_refused_while_a_legacy_database_is_down(stack)

    # And back: env files byte for byte, apps on the old databases, same fingerprint as before.
    back = stack.migrator("rollback")
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert "fingerprint equal to 'before-cutover'" in " ".join(back.stdout.split())
    assert_on_old_databases(stack)
    started = time.monotonic()
    stack.corpus.after["rollback"] = stack.corpus.call_sources()    # where the apps run again
    stack.timings["corpus after rollback"] = time.monotonic() - started
    studio_after_rollback(stack)
    assert unified_evidence(stack) == []        # neither the rollback nor Studio ran anything planted


def corpus_after_cutover(stack: CutoverStack) -> None:
    """Every corpus function on the unified instance, as the app logs in; and `status`
    (it reads sizes, connections and statistics, no routine): its one screen with the corpus
    in the app schemas."""
    started = time.monotonic()
    passwords = env_values(stack.env_dir / "app-roles.env")
    dbname = env_values(stack.env_dir / "unified.env")["POSTGRES_DB"]
    stack.corpus.after["cutover"] = stack.corpus.call_target(stack.ports["UNIFIED_PORT"], passwords, dbname)
    stack.timings["corpus after cutover"] = time.monotonic() - started
    started = time.monotonic()
    status = stack.migrator("status", "--json")
    stack.timings["status"] = time.monotonic() - started
    stack.corpus.after["status"] = status


def rollback_refused_while_a_legacy_database_is_down(stack: CutoverStack) -> None:
    """letta-db stopped: rollback would point Letta at nothing, so it refuses before touching
    anything (run with --no-deps: compose would otherwise start letta-db for it)."""
    before = {p.name: sha(p) for p in stack.env_dir.iterdir() if p.is_file()}
    assert stack.compose("stop", "letta-db").returncode == 0
    try:
        args = stack.migrator_args("rollback")
        result = stack.compose(*args[:3], "--no-deps", *args[3:])
        stack.outputs.append(result.stdout + result.stderr)
    finally:
        up = stack.compose("up", "-d", "--wait", "letta-db")
    assert up.returncode == 0, up.stderr[-2000:]
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "letta's old database letta@letta-db:5432/letta" in failed[0], result.stderr
    assert "n8n's old database" not in failed[0]           # n8n-db answers and holds n8n's tables
    assert "env files restored" not in result.stdout
    assert {p.name: sha(p) for p in stack.env_dir.iterdir() if p.is_file()} == before
    assert stack.process_env("n8n")["DB_POSTGRESDB_HOST"] == "unified"
    assert "@unified:5432/postgres" in stack.process_env("letta")["LETTA_PG_URI"]
    assert stack.healthy("n8n") and stack.healthy("letta")


APP_SCHEMAS = {"n8n", "letta_agents", "letta_embeddings", "rag_documents", "rag_embeddings"}


def meta(stack: CutoverStack, path: str, as_role: tuple[str, str] | None = None, **kwargs) -> object:
    """postgres-meta's REST API (Supabase Studio's backend), as supabase_admin or, with
    ``as_role``, through Studio's per-request connection header as that role."""
    headers = {}
    if as_role:
        user, password = as_role
        conn = f"postgresql://{user}:{password}@unified:5432/postgres"
        encrypted = stack.compose("exec", "-T", "meta", "node", "-e",
                                  "const C = require('/usr/src/app/node_modules/crypto-js');"
                                  " console.log(C.AES.encrypt(process.argv[1], process.env.CRYPTO_KEY || 'SAMPLE_KEY')"
                                  ".toString())", conn).stdout.strip()
        headers["x-connection-encrypted"] = encrypted
    url = f"http://127.0.0.1:{stack.ports['META_PORT']}{path}"
    method = "POST" if "json" in kwargs else "GET"
    response = requests.request(method, url, headers=headers, timeout=60, **kwargs)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def studio_after_cutover(stack: CutoverStack) -> None:
    up = stack.compose("--profile", "studio", "up", "-d", "--wait", "meta")
    assert up.returncode == 0, up.stderr[-2000:]
    assert APP_SCHEMAS <= {s["name"] for s in meta(stack, "/schemas")}
    tables = meta(stack, "/tables?included_schemas=" + ",".join(sorted(APP_SCHEMAS)))
    by_name = {(t["schema"], t["name"]): t for t in tables}
    assert {"n8n", "letta_agents", "letta_embeddings"} <= {schema for schema, _ in by_name}
    workflows = by_name[("n8n", "workflow_entity")]
    assert [k["name"] for k in workflows["primary_keys"]] == ["id"] and workflows["rls_enabled"] is False
    embedding = next(c for c in by_name[("letta_embeddings", "archival_passages")]["columns"] if c["name"] == "embedding")
    assert (embedding["data_type"], embedding["format"]) == ("USER-DEFINED", "vector")
    typed = meta(stack, "/query", json={"query": "SELECT n.nspname AS s FROM pg_attribute a"
                                                 " JOIN pg_type t ON t.oid = a.atttypid"
                                                 " JOIN pg_namespace n ON n.oid = t.typnamespace"
                                                 " WHERE a.attrelid = 'letta_embeddings.archival_passages'::regclass"
                                                 " AND a.attname = 'embedding'"})
    assert typed == [{"s": "extensions"}]                         # the type lives in extensions
    roles = {r["name"]: r for r in meta(stack, "/roles")}
    for role, limit in (("n8n", 20), ("letta", 40), ("rag", 20), ("consolidation_readonly", 5)):
        assert roles[role]["is_superuser"] is False and roles[role]["connection_limit"] == limit, role
    counted = meta(stack, "/query", json={"query": "SELECT count(*) AS n FROM n8n.workflow_entity"})
    assert counted[0]["n"] > 0
    # The same calls with an app role's own credentials: only that app's schemas (and extensions).
    passwords = env_values(stack.env_dir / "app-roles.env")
    as_n8n = ("n8n", passwords["N8N_ROLE_PASSWORD"])
    assert {s["name"] for s in meta(stack, "/schemas", as_n8n)} & (APP_SCHEMAS | {"auth", "vault"}) == {"n8n"}
    assert {t["schema"] for t in meta(stack, "/tables", as_n8n)} == {"n8n"}
    as_letta = ("letta", passwords["LETTA_ROLE_PASSWORD"])
    assert {t["schema"] for t in meta(stack, "/tables", as_letta)} == {"letta_agents", "letta_embeddings"}


def studio_after_rollback(stack: CutoverStack) -> None:
    """The migrated schemas are kept (stale) by default, still shown, with nothing marked done."""
    assert APP_SCHEMAS <= {s["name"] for s in meta(stack, "/schemas")}
    assert meta(stack, "/tables?included_schemas=public,n8n") is not None   # format() & co. called again
    steps = meta(stack, "/query", json={"query": "SELECT count(*) AS n FROM _consolidation.steps"})
    assert steps[0]["n"] == 0                                        # stale: the next cutover rebuilds them


def test_corpus_answers_after_cutover_as_on_the_legacy_databases(stack):
    """The corpus moved with every cutover; after the last one each function answers, as
    the app's login role on the unified instance, what it answered on the legacy database:
    Letta's split (pinned search_path, pgvector's type in signatures, bodies rewritten to
    both target schemas and extensions) and n8n's functions, triggers, policies, views,
    partitions, domains and settings naming `public`."""
    assert stack.corpus.differing("cutover") == []
    assert len(stack.corpus.source["letta"]) == 5 and len(stack.corpus.source["n8n"]) >= 10
    with stack.db("unified") as conn:
        settings = corpus.routine_settings(conn)
    assert settings["recall"] == "search_path=letta_agents, letta_embeddings, extensions"
    assert settings["note_terms"] == "default_text_search_config=n8n.corpus_simple;search_path=n8n, extensions, pg_temp"
    status = stack.corpus.after["status"]
    assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-2000:]
    apps = {a["app"]: a for a in json.loads(status.stdout[status.stdout.index("{"):])["apps"]}
    assert {s["schema"] for s in apps["letta"]["schemas"]} == {"letta_agents", "letta_embeddings"}
    assert apps["n8n"]["size_bytes"] > 0
    print("corpus timings (s):", {k: round(v, 1) for k, v in stack.timings.items()})


def test_corpus_answers_after_rollback(stack):
    """Back on the legacy databases: the corpus there as it was (the sources are never written)."""
    assert stack.corpus.differing("rollback") == []


def test_no_secret_in_any_output_or_report(stack):
    """The secrets this stack ran with (its env dir, also the files the tool wrote there:
    tests/support/leaks.py), in every output and report."""
    secrets_ = stack_secrets(stack.env_dir)
    assert len(secrets_) >= 10
    assert_no_leak(stack.outputs + list(report_texts(stack.reports).values()), secrets_)


LETTA_SHUTDOWN = ("Waiting for application shutdown.", "Application shutdown complete.", "Finished server process")


def test_letta_ends_by_its_own_signal_after_its_shutdown_lines(stack):
    """The window's stop (services.stop, SIGTERM) ends Letta as fast as docker-compose.yml's
    `init: true` allows, and no earlier: uvicorn re-raises the SIGTERM once its shutdown is
    complete, which ends the process right after "Finished server process" (as PID 1 the kernel
    ignored it and the interpreter's teardown took ~3.5 s more; docs/cutover.md). So: exit 143
    (its own SIGTERM), never 137 (docker's SIGKILL after the grace, or anything killing it
    earlier), every shutdown line logged, in order, and nothing after the last.

    Last in the module on purpose: the module consumes the stack, so Letta is not started
    again (a start costs 20 s on a quiet host, minutes on a loaded one); after the
    cutover and rollback above, its container is the one the rollback recreated, so this
    also shows the recreate keeps `init`."""
    c = services.client()
    svc = services.Service(stack.name, "letta")
    container = services.container_of(c, svc)
    assert container.attrs["HostConfig"].get("Init") is True, "docker-compose.yml's letta service lost init: true"
    logged = len(container.logs().splitlines())
    services.stop(c, svc)
    container.reload()
    lines = [line.decode(errors="replace") for line in container.logs().splitlines()[logged:]]
    assert container.attrs["State"]["ExitCode"] == 143, (container.attrs["State"], lines[-20:])
    at = [next((i for i, line in enumerate(lines) if marker in line), None) for marker in LETTA_SHUTDOWN]
    assert None not in at and at == sorted(at), (LETTA_SHUTDOWN, lines[-20:])
    assert at[-1] == len(lines) - 1, lines[at[-1]:]
