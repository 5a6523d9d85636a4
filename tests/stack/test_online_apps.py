"""The online consolidation with the real n8n and Letta (docs/online.md): one compose
stack of its own, the legacy databases started as docker-compose.yml starts them
(wal_level=logical). The rehearsal's seed writes through the apps' APIs while `online
start` copies; `online cutover` stops the apps, catches up, compares, moves, hands over,
rewrites the env files and restarts the apps itself, and the apps' fingerprint is the same
after it; nothing of the replication or the staging is left; `rollback` works after it as
after the offline cutover."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from migrator.systems import services
from tests.support import APP_SERVICES, ROOT
from tests.support.composeproject import ComposeProject

pytestmark = pytest.mark.integration

PROFILES = ("--profile", "legacy", "--profile", "apps")
KEYLESS_LETTA_TABLES = ("agents_tags", "blocks_agents", "tools_agents")
APP_TIMEOUT = "900"     # Letta starts in minutes on the shared machine; a bound, not a timing


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = ComposeProject(tmp_path_factory.mktemp("online-apps"), "online")
    s.started = time.monotonic()
    # The target too: two `compose run migrator` at once (the seed, online start) would
    # otherwise both create it.
    up = s.compose(*PROFILES, "up", "-d", "--wait", "unified", *APP_SERVICES)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield s
    finally:
        s.down("legacy", "apps", "tools")
        # `compose run migrator` made its backups volume; down leaves it.
        subprocess.run(["docker", "volume", "rm", f"{s.name}_backups"], capture_output=True)
        print(f"\n[online apps] module wall time {time.monotonic() - s.started:.0f} s")


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-4000:] + result.stderr[-4000:]


def replication_left(stack: ComposeProject) -> list[str]:
    found = []
    for service in ("n8n-db", "letta-db"):
        with stack.db(service) as conn:
            found += [f"{service}: slot {r[0]}" for r in conn.execute("SELECT slot_name FROM pg_replication_slots")]
            found += [f"{service}: publication {r[0]}" for r in conn.execute("SELECT pubname FROM pg_publication")]
    with stack.db("unified") as conn:
        found += [f"unified: subscription {r[0]}" for r in conn.execute("SELECT subname FROM pg_subscription")]
    return found


def staged_left(stack: ComposeProject) -> list[str]:
    """The staging schemas on the target: `letta` (the tool's), n8n's tables in `public`."""
    with stack.db("unified") as conn:
        return [f"{r[0]}.{r[1]}" for r in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('public', 'letta')")] + \
            [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = 'letta'")]


def app_db_host(stack: ComposeProject, app: str) -> str:
    env = services.process_env(services.client(), services.Service(stack.name, app))
    return env["DB_POSTGRESDB_HOST"] if app == "n8n" else env["LETTA_PG_URI"].rsplit("@", 1)[1].split(":")[0]


def test_online_cutover_with_the_real_apps_then_rollback(stack):
    for service in ("n8n-db", "letta-db"):          # the compose file starts them ready for it
        with stack.db(service) as conn:
            assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
            assert conn.execute("SHOW max_slot_wal_keep_size").fetchone()[0] != "-1"

    # Letta's join tables have no primary key: the preflight names them, the operator
    # gives them a replica identity (docs/online.md), as this does.
    with stack.db("letta-db") as conn:
        for table in KEYLESS_LETTA_TABLES:
            conn.execute(f"ALTER TABLE letta.{table} REPLICA IDENTITY FULL")

    # The seed writes through the apps' APIs while the initial copy runs.
    seed = subprocess.Popen(["docker", "compose", "-p", stack.name, "run", "--rm", "-T", "-v",
                             f"{ROOT / 'migrator'}:/src/migrator:ro", "migrator", "seed"],
                            cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        start = stack.migrator("online", "start")
    finally:
        seeded, _ = seed.communicate(timeout=900)
        stack.outputs.append(seeded)
    assert start.returncode == 0, out(start)
    assert seed.returncode == 0, seeded[-4000:]
    ready = stack.migrator("online", "status", "--until-ready", "300")
    assert ready.returncode == 0, out(ready)
    overview = stack.migrator("status")               # the day-two screen shows the online phase
    assert overview.returncode == 0 and "Online consolidation" in overview.stdout, out(overview)

    cut = stack.migrator("online", "cutover", "--app-timeout", APP_TIMEOUT)
    assert cut.returncode == 0, out(cut)
    text = " ".join(cut.stdout.split())
    assert "fingerprint equal to 'before-cutover'" in text and "application downtime" in text
    report = json.loads((stack.reports / "cutover.json").read_text())
    assert report["online"] and report["rows_verified"] > 0 and report["downtime_seconds"] > 0
    assert "verify" not in {s["step"] for s in report["steps"]}           # no second full verify
    print(f"\n[online apps] downtime {report['downtime_seconds']:.1f} s: "
          + ", ".join(f"{s['step']} {s['seconds']:.1f}" for s in report["steps"]))
    assert replication_left(stack) == []
    assert staged_left(stack) == []
    assert app_db_host(stack, "n8n") == "unified" and app_db_host(stack, "letta") == "unified"
    again = stack.migrator("fingerprint", "--compare", "before-cutover")
    assert again.returncode == 0, out(again)

    back = stack.migrator("rollback", "--drop-schemas", "--app-timeout", APP_TIMEOUT)
    assert back.returncode == 0, out(back)
    assert "fingerprint equal to 'before-cutover'" in " ".join(back.stdout.split())
    assert app_db_host(stack, "n8n") == "n8n-db" and app_db_host(stack, "letta") == "letta-db"
    assert replication_left(stack) == []


def test_a_failure_after_the_stop_rolls_back_and_leaves_nothing(stack):
    """After the rollback above, again from the start, one row of the staged copy lost: the
    rows compared inside the window differ, so the cutover rolls back by itself (the apps
    on the legacy databases again) and removes the whole online run."""
    start = stack.migrator("online", "start")
    assert start.returncode == 0, out(start)
    ready = stack.migrator("online", "status", "--until-ready", "300")
    assert ready.returncode == 0, out(ready)
    with stack.db("unified") as conn:         # n8n's migrations table: written once, never again
        assert conn.execute("DELETE FROM public.migrations WHERE id = (SELECT max(id) FROM public.migrations)"
                            ).rowcount == 1
    cut = stack.migrator("online", "cutover", "--app-timeout", APP_TIMEOUT)
    assert cut.returncode == 5, out(cut)
    assert "migrations" in cut.stderr and "rolled back: the apps run on their old databases again; online " \
        "replication and staging removed" in " ".join(cut.stderr.split()), out(cut)
    assert app_db_host(stack, "n8n") == "n8n-db" and app_db_host(stack, "letta") == "letta-db"
    assert replication_left(stack) == []
    assert staged_left(stack) == []
    with stack.db("unified") as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', 'letta_agents',"
                            " 'letta_embeddings')").fetchone()[0] == 0
