"""PgBouncer in front of the unified instance, at the protocol level (docs/pooling.md).

One compose project of its own (own name, ports, env/ and reports/): the
databases, `consolidate roles` (which creates the pooler's auth role and lookup
function), then PgBouncer and its exporter from the ops image with the
committed compose/pgbouncer/pgbouncer.ini. Clients are real drivers (psycopg,
asyncpg) against 127.0.0.1; the server's own pg_stat_activity says where they
landed."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import threading
import time

import asyncpg
import psycopg
import pytest
import requests

from migrator.config.rolesconfig import RolesConfig
from migrator.ops import pooler
from tests.stack.test_cutover import CutoverStack, assert_on_old_databases, one_container_per_app
from tests.support import ROOT, env_values, free_port, wait_until
from tests.support.leaks import assert_no_leak, stack_secrets

pytestmark = pytest.mark.integration

POOLS = {p.role: p for p in pooler.pools(pooler.PoolerConfig(), RolesConfig())}
EXPECTED = {  # what each app role must see on every server connection (sql/20-roles.sql, defaults)
    "n8n": ("n8n, extensions", "5min"),
    "letta": ("letta_agents, letta_embeddings, extensions", "5min"),
    "rag": ("rag_documents, rag_embeddings, extensions", "2min"),
}


class PoolStack(CutoverStack):
    """The session's shared real-app stack (tests/support/appstack.py, with the pooler's ports),
    seen with the pooler's helpers: the same object's state, not a copy."""

    def __init__(self, shared: CutoverStack):
        self.__dict__ = shared.__dict__
        self.passwords = env_values(self.env_dir / "app-roles.env")

    def password(self, role: str) -> str:
        return self.passwords[{"n8n": "N8N_ROLE_PASSWORD", "letta": "LETTA_ROLE_PASSWORD", "rag": "RAG_ROLE_PASSWORD",
                               "consolidation_readonly": "READONLY_ROLE_PASSWORD"}[role]]

    def pooled(self, role: str, password: str | None = None, port: int | None = None, **kw) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=port or self.ports["POOLER_PORT"], user=role,
                               password=self.password(role) if password is None else password,
                               dbname=kw.pop("dbname", "postgres"), autocommit=True, connect_timeout=20, **kw)

    def server_connections(self) -> dict[str, int]:
        with self.db("unified") as conn:
            return dict(conn.execute("SELECT usename, count(*) FROM pg_stat_activity"
                                     " WHERE backend_type = 'client backend' AND usename = ANY(%s)"
                                     " GROUP BY 1", (list(POOLS),)).fetchall())

    def variant(self, name: str, **settings: str) -> int:
        """A second PgBouncer on the same network with some settings of the committed ini
        changed (e.g. max_prepared_statements = 0); returns its host port."""
        text = (ROOT / "compose/pgbouncer/pgbouncer.ini").read_text()
        for key, value in settings.items():
            text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
            assert n == 1, key
        folder = self.tmp / f"variant-{name}"
        folder.mkdir()
        (folder / "pgbouncer.ini").write_text(text)
        folder.chmod(0o755)
        port = free_port()
        run = self.compose("--profile", "pooler", "run", "-d", "--rm", "--no-deps", "--name", f"{self.name}-{name}",
                           "--publish", f"127.0.0.1:{port}:6432", "-e", "PGBOUNCER_INI=/etc/pgbouncer-variant/pgbouncer.ini",
                           "-v", f"{folder}:/etc/pgbouncer-variant:ro", "pgbouncer")
        assert run.returncode == 0, run.stderr[-2000:]
        wait_until(lambda: self.pooled("rag", port=port).close() or True, 60, f"variant pgbouncer {name} answers",
                   interval=0.5, retry_on=(psycopg.OperationalError,))
        return port


@pytest.fixture(scope="module")
def stack(app_stacks):
    """The databases, the real n8n and Letta on their legacy databases (seeded: the session's
    shared stack, with a unified instance no other module used), `roles` on the unified
    instance, PgBouncer and its exporter. The protocol tests run first; the last test cuts
    the apps over through the pooler and rolls them back."""
    s = PoolStack(app_stacks.acquire("test_pooling", fresh_unified=True))
    try:
        roles = s.migrator("roles")
        assert roles.returncode == 0, roles.stdout[-3000:] + roles.stderr[-3000:]
        up = s.compose("--profile", "pooler", "up", "-d", "--wait", "pgbouncer", "pgbouncer-exporter")
        assert up.returncode == 0, up.stderr[-3000:]
        yield s
    finally:     # the stack stays for the next module; the pooler is this module's
        s.compose("--profile", "pooler", "rm", "-s", "-f", "-v", "pgbouncer", "pgbouncer-exporter")


# --- authentication and isolation ------------------------------------------------------

def refused(stack: PoolStack, role: str, password: str, dbname: str = "postgres") -> str:
    with pytest.raises(psycopg.OperationalError) as err:
        stack.pooled(role, password, dbname=dbname).close()
    return str(err.value)


def test_each_app_role_logs_in_with_its_own_password_and_nothing_else(stack):
    for role in EXPECTED:
        with stack.pooled(role) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == role
    assert "authentication failed" in refused(stack, "n8n", "wrong-" + secrets.token_hex(4))
    # Another app's role with this app's password: refused.
    assert "authentication failed" in refused(stack, "letta", stack.password("n8n"))
    # Roles the lookup never answers for: the read-only role, the superuser, the auth role itself.
    assert "no such user" in refused(stack, "consolidation_readonly", stack.password("consolidation_readonly"))
    unified = env_values(stack.env_dir / "unified.env")
    assert "no such user" in refused(stack, "supabase_admin", unified["POSTGRES_PASSWORD"])
    assert "no such user" in refused(stack, "postgres", unified["POSTGRES_PASSWORD"])
    # Only the unified instance's database is served (PgBouncer does not say which part was wrong).
    assert re.search("no such database|authentication failed", refused(stack, "n8n", stack.password("n8n"),
                                                                       dbname="template1"))


def test_app_roles_cannot_use_the_console_or_see_other_pools(stack):
    for role in EXPECTED:
        assert "not allowed" in refused(stack, role, stack.password(role), dbname="pgbouncer")
    # Through the pooler an app still reaches only its own schemas.
    with stack.pooled("n8n") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM rag_documents.documents")
    # The stats user (the exporter's) sees the pools, but may not change anything.
    stats = env_values(stack.env_dir / "pooler.env")["POOLER_STATS_PASSWORD"]
    with psycopg.connect(host="127.0.0.1", port=stack.ports["POOLER_PORT"], user="pgbouncer_stats",
                         password=stats, dbname="pgbouncer", autocommit=True) as console:
        console.prepare_threshold = None
        pools = {row[1] for row in console.execute("SHOW POOLS").fetchall()}
        assert pools >= {"n8n"}
        with pytest.raises(psycopg.Error, match="admin access needed"):
            console.execute("PAUSE")


def test_lookup_function_answers_only_for_app_roles_and_only_the_auth_role_may_call_it(stack):
    with stack.db("unified") as admin:
        definer, config, owner_super, public_exec = admin.execute(
            "SELECT p.prosecdef, p.proconfig, r.rolsuper,"
            "       has_function_privilege('public', p.oid, 'EXECUTE')"
            " FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
            " WHERE p.oid = 'consolidation_pooler.user_lookup(text)'::regprocedure").fetchone()
        assert definer and owner_super and not public_exec
        assert config == ["search_path=pg_catalog, pg_temp"]
        for role in ("n8n", "letta", "rag", "consolidation_readonly", "postgres", "anon", "service_role"):
            assert not admin.execute("SELECT has_function_privilege(%s, 'consolidation_pooler.user_lookup(text)',"
                                     " 'EXECUTE')", (role,)).fetchone()[0], role
    auth = env_values(stack.env_dir / "pooler.env")["POOLER_AUTH_PASSWORD"]
    with psycopg.connect(host="127.0.0.1", port=stack.ports["UNIFIED_PORT"], user="consolidation_pooler",
                         password=auth, dbname="postgres", autocommit=True) as conn:
        def lookup(name):
            return conn.execute("SELECT usename, passwd FROM consolidation_pooler.user_lookup(%s)", (name,)).fetchall()
        for role in EXPECTED:
            (usename, passwd), = lookup(role)
            assert usename == role and passwd.startswith("SCRAM-SHA-256$")
        for other in ("supabase_admin", "postgres", "consolidation_pooler", "consolidation_readonly", "authenticator"):
            assert lookup(other) == [], other
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM pg_authid")
    with psycopg.connect(host="127.0.0.1", port=stack.ports["UNIFIED_PORT"], user="n8n",
                         password=stack.password("n8n"), dbname="postgres", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM consolidation_pooler.user_lookup('letta')")


# --- role settings on every server connection ----------------------------------------------

def test_role_settings_on_every_server_connection(stack):
    """Several clients hold transactions at once, so each sits on its own server connection;
    every one of them shows the role's search_path and statement_timeout."""
    for role, (path, timeout) in EXPECTED.items():
        clients = [stack.pooled(role) for _ in range(4)]
        try:
            seen = set()
            for c in clients:
                c.execute("BEGIN")
                pid, shown_path, shown_timeout = c.execute(
                    "SELECT pg_backend_pid(), current_setting('search_path'), current_setting('statement_timeout')"
                ).fetchone()
                assert (shown_path, shown_timeout) == (path, timeout), role
                seen.add(pid)
            assert len(seen) == 4, role
            for c in clients:
                c.execute("COMMIT")
                assert c.execute("SHOW search_path").fetchone()[0] == path
                assert c.execute("SHOW statement_timeout").fetchone()[0] == timeout
        finally:
            for c in clients:
                c.close()


def test_n8n_startup_options_are_ignored_and_the_role_timeout_applies(stack):
    """n8n 2.x connects with options=-c statement_timeout=300000; PgBouncer would refuse
    the parameter, so it is ignored and the role's own setting applies."""
    with stack.pooled("n8n", options="-c statement_timeout=1234") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "5min"


# --- prepared statements (asyncpg) -------------------------------------------------------

async def _statement_on_two_server_connections(port: int, password: str) -> set[int]:
    """asyncpg with its default statement cache prepares a named statement on one server
    connection; a second client then holds that server connection in a transaction, so
    the next execution must run on another one. Returns the server pids it ran on."""
    a = await asyncpg.connect(host="127.0.0.1", port=port, user="rag", password=password, database="postgres")
    b = await asyncpg.connect(host="127.0.0.1", port=port, user="rag", password=password, database="postgres",
                              statement_cache_size=0)
    query = "SELECT pg_backend_pid() + $1::int"
    try:
        first = await a.fetchval(query, 0)
        async with b.transaction():
            held = await b.fetchval("SELECT pg_backend_pid()")
            second = await a.fetchval(query, 0)        # same prepared statement, other server connection
            assert second != held
        return {first, second}
    finally:
        await a.close()
        await b.close()


def test_asyncpg_statement_cache_across_server_connections(stack):
    pids = asyncio.run(_statement_on_two_server_connections(stack.ports["POOLER_PORT"], stack.password("rag")))
    assert len(pids) == 2                 # it really ran on two server connections
    # The same with PgBouncer not tracking prepared statements: the second server
    # connection has never seen the statement.
    port = stack.variant("noprep", max_prepared_statements="0")
    try:
        with pytest.raises(asyncpg.PostgresError, match=r"prepared statement .* does not exist"):
            asyncio.run(_statement_on_two_server_connections(port, stack.password("rag")))
    finally:     # its server connections would count against the pools in the tests below
        subprocess.run(["docker", "rm", "-f", f"{stack.name}-noprep"], capture_output=True)


# --- why Letta's pool is in session mode -------------------------------------------------------

def _advisory_lock_then_unlock_elsewhere(stack: PoolStack, role: str) -> bool:
    """Take a session-level advisory lock (as Letta's scheduler does), then unlock it from the
    same client while another client holds a transaction. True when the unlock worked."""
    key = secrets.randbelow(2**31)
    a, b = stack.pooled(role), stack.pooled(role)
    try:
        assert a.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        b.execute("BEGIN")
        b.execute("SELECT 1")
        unlocked = a.execute("SELECT pg_advisory_unlock(%s)", (key,)).fetchone()[0]
        b.execute("COMMIT")
        return bool(unlocked)
    finally:
        a.close()
        b.close()


def test_session_advisory_locks_need_session_mode(stack):
    assert POOLS["letta"].mode == "session" and POOLS["rag"].mode == "transaction"
    assert _advisory_lock_then_unlock_elsewhere(stack, "letta")          # session pool: the same connection
    assert not _advisory_lock_then_unlock_elsewhere(stack, "rag")        # transaction pool: lock left behind


# --- 200 clients, bounded ---------------------------------------------------------------------

async def _client(port: int, role: str, password: str, errors: list[str], rounds: int) -> None:
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user=role, password=password, database="postgres",
                                     timeout=120)
        try:
            for i in range(rounds):
                async with conn.transaction():
                    await conn.fetchval("SELECT $1::int + 1", i)
                    await conn.fetchval("SELECT count(*) FROM pg_class WHERE relpages >= $1", i)
                    await conn.execute("SELECT pg_sleep(0.01)")
        finally:
            await conn.close()
    except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
        errors.append(f"{role}: {type(exc).__name__}: {exc}")


def test_200_clients_stay_within_the_pools(stack):
    peak: dict[str, int] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for role, n in stack.server_connections().items():
                peak[role] = max(peak.get(role, 0), n)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors: list[str] = []

    async def main():
        roles = ["n8n", "letta", "rag"]
        await asyncio.wait_for(asyncio.gather(*(
            _client(stack.ports["POOLER_PORT"], roles[i % 3], stack.password(roles[i % 3]), errors, 5)
            for i in range(200))), timeout=300)

    try:
        asyncio.run(main())
    finally:
        done.set()
        sampler.join(timeout=10)
    assert errors == []
    assert not any("prepared statement" in e for e in errors)
    for role, n in peak.items():
        assert n <= POOLS[role].pool_size, (role, n)
    assert sum(peak.values()) <= sum(p.pool_size for p in POOLS.values())
    assert peak.get("n8n", 0) >= 2 and peak.get("letta", 0) >= 2      # the sampler did see the load


def test_exporter_publishes_the_pools(stack):
    text = requests.get(f"http://127.0.0.1:{stack.ports['POOLER_EXPORTER_PORT']}/metrics", timeout=30).text
    assert "pgbouncer_up 1" in text
    assert re.search(r'pgbouncer_pools_server_idle_connections\{database="postgres",user="n8n"\}', text)
    for value in env_values(stack.env_dir / "pooler.env").values():
        assert value not in text


# --- the real apps through the pooler: cutover with via_pooler, then rollback --------------------

def pooled_config(stack: PoolStack) -> str:
    """The repository's consolidation.toml plus `[cutover] via_pooler = true`, mounted beside it."""
    text = (ROOT / "consolidation.toml").read_text()
    assert "[cutover]" not in text
    path = stack.tmp / "pooled.toml"
    path.write_text(text + "\n[cutover]\nvia_pooler = true\n")
    return str(path)


def pooled_migrator(stack: PoolStack) -> list[str]:
    config = pooled_config(stack)
    return ["run", "--rm", "-T", "-v", f"{ROOT / 'migrator'}:/src/migrator:ro", "-v", f"{config}:/app/pooled.toml:ro",
            "migrator", "--config", "/app/pooled.toml"]


def test_cutover_via_the_pooler_stops_before_any_change_when_it_is_down(stack):
    stop = stack.compose("--profile", "pooler", "stop", "pgbouncer")
    assert stop.returncode == 0, stop.stderr[-2000:]
    try:
        result = stack.compose(*pooled_migrator(stack), "cutover", timeout=900)
        stack.outputs.append(result.stdout + result.stderr)
    finally:
        start = stack.compose("--profile", "pooler", "up", "-d", "--wait", "pgbouncer")
        assert start.returncode == 0, start.stderr[-2000:]
    assert result.returncode == 6, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PgBouncer is not up" in result.stderr and "make pooler" in result.stderr
    assert "stopped before any change" in result.stderr
    assert_on_old_databases(stack)            # env files untouched, apps never stopped


def test_real_apps_through_the_pooler_after_cutover_and_back(stack):
    args = pooled_migrator(stack)
    # The machine is shared: the apps get 15 minutes to become healthy (default 5).
    result = stack.compose(*args, "cutover", "--app-timeout", "900", timeout=3600)
    stack.outputs.append(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "fingerprint equal to 'before-cutover'" in " ".join(result.stdout.split())

    # The running apps are configured for PgBouncer, as their own roles.
    n8n_env, letta_env = stack.process_env("n8n"), stack.process_env("letta")
    assert (n8n_env["DB_POSTGRESDB_HOST"], n8n_env["DB_POSTGRESDB_PORT"], n8n_env["DB_POSTGRESDB_USER"]) == \
        ("pgbouncer", "6432", "n8n")
    assert letta_env["LETTA_PG_URI"].startswith("postgresql://letta:") and \
        letta_env["LETTA_PG_URI"].endswith("@pgbouncer:6432/postgres")

    # n8n runs a workflow (the seeded intake webhook stores an execution).
    n8n_url = f"http://127.0.0.1:{stack.ports['N8N_APP_PORT']}"
    with stack.db("unified") as conn:
        executions = conn.execute("SELECT count(*) FROM n8n.execution_entity").fetchone()[0]
    answer = requests.get(f"{n8n_url}/webhook/rehearsal-intake", params={"order": "pooled-1"}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    def stored() -> bool:
        with stack.db("unified") as conn:
            return conn.execute("SELECT count(*) FROM n8n.execution_entity").fetchone()[0] > executions
    wait_until(stored, 60, "n8n to store an execution through the pooler", interval=0.5)

    # Letta creates an agent, stores and reads back archival memory.
    letta_url = f"http://127.0.0.1:{stack.ports['LETTA_APP_PORT']}"
    stub = "http://embeddings:8000/v1"
    agent = requests.post(f"{letta_url}/v1/agents/", timeout=180, json={
        "name": "pooled-agent", "memory_blocks": [{"label": "human", "value": "pooled"}],
        "llm_config": {"model": "stub", "model_endpoint_type": "openai", "model_endpoint": stub,
                       "context_window": 8000},
        "embedding_config": {"embedding_model": "stub", "embedding_endpoint_type": "openai",
                             "embedding_endpoint": stub, "embedding_dim": 1536}})
    assert agent.status_code == 200, agent.text[:500]
    aid = agent.json()["id"]
    text = "the pooled passage about blue herons " + secrets.token_hex(4)
    stored = requests.post(f"{letta_url}/v1/agents/{aid}/archival-memory", json={"text": text}, timeout=180)
    assert stored.status_code == 200, stored.text[:500]
    listed = requests.get(f"{letta_url}/v1/agents/{aid}/archival-memory", timeout=120)
    assert listed.status_code == 200 and text in [p["text"] for p in listed.json()], listed.text[:500]
    found = requests.get(f"{letta_url}/v1/agents/{aid}/archival-memory/search",
                         params={"query": "blue herons", "top_k": 1}, timeout=120).json()
    results = found.get("results", found) if isinstance(found, dict) else found
    assert results and results[0]["content"] == text
    with stack.db("unified") as conn:
        assert conn.execute("SELECT count(*) FROM letta_embeddings.archival_passages WHERE text = %s",
                            (text,)).fetchone()[0] == 1
        # Every app connection on the server comes from PgBouncer's address, none from the apps'.
        bouncer = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                                  stack.compose("ps", "-q", "pgbouncer").stdout.strip()],
                                 capture_output=True, text=True).stdout.strip()
        sources = conn.execute("SELECT usename, host(client_addr) FROM pg_stat_activity"
                               " WHERE usename IN ('n8n', 'letta')").fetchall()
    assert {"n8n"} <= {u for u, _ in sources}
    assert {addr for _, addr in sources} == {bouncer}

    # And back: env files byte for byte, apps on the old databases, the fingerprint as before.
    back = stack.compose(*args, "rollback", "--app-timeout", "900", timeout=2400)
    stack.outputs.append(back.stdout + back.stderr)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert "fingerprint equal to 'before-cutover'" in " ".join(back.stdout.split())
    assert_on_old_databases(stack)
    assert one_container_per_app(stack)
    assert_no_leak(stack.outputs, stack_secrets(stack.env_dir))
