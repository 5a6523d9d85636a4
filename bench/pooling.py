"""`make bench-pooling`: the apps' connections direct vs through PgBouncer (docs/pooling.md).

Brings up a compose project of its own (unified + pgbouncer from this checkout,
own ports and env dir, 127.0.0.1 only), applies `consolidate roles`, then for
10, 50 and 200 concurrent clients runs two app-like workloads for a few seconds
each, once against unified:5432 directly and once through PgBouncer:

- n8n-like: every client keeps one connection (an app-side pool) and runs short
  transactions (read a row, update it, commit) as role n8n (transaction pool);
- Letta-like: every client opens a connection per "request" as role letta,
  runs three statements and closes it (session pool), in a burst.

Reported per point: completed operations, errors (e.g. "too many connections
for role"), p50/p99 latency of an operation (a transaction; a whole
connect-work-close session), and the peak number of server connections of the
app roles (sampled from pg_stat_activity every 50 ms). Bounded: SECONDS per
point (default 4), at most 200 clients. A benchmark, not a test.

    python -m bench.pooling [--seconds 4] [--clients 10,50,200] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import psycopg

from bench.dockerkit import ROOT
from tests.support import env_values, free_port, fresh_env_dir

ROLES = ("n8n", "letta")


class Project:
    def __init__(self, tmp: Path):
        self.name = "pool-bench-" + secrets.token_hex(3)
        self.env_dir = fresh_env_dir(tmp / "env")
        (tmp / "reports").mkdir()
        self.ports = {k: free_port() for k in ("UNIFIED_PORT", "N8N_DB_PORT", "LETTA_DB_PORT", "POOLER_PORT",
                                               "POOLER_EXPORTER_PORT")}
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.name, "CONSOLIDATION_ENV_DIR": str(self.env_dir),
                    "CONSOLIDATION_REPORTS_DIR": str(tmp / "reports"), **{k: str(v) for k, v in self.ports.items()}}
        self.passwords = env_values(self.env_dir / "app-roles.env")
        self.admin = env_values(self.env_dir / "unified.env")

    def compose(self, *args: str, timeout: float = 900) -> None:
        result = subprocess.run(["docker", "compose", "-p", self.name, *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise SystemExit(f"docker compose {args[0]} failed: {result.stderr[-1500:]}")

    def up(self) -> None:
        self.compose("up", "-d", "--wait", "unified")
        self.compose("run", "--rm", "-T", "--no-deps", "-v", f"{ROOT / 'migrator'}:/src/migrator:ro",
                     "migrator", "roles")
        self.compose("--profile", "pooler", "up", "-d", "--wait", "pgbouncer")

    def down(self) -> None:
        self.compose("--profile", "pooler", "--profile", "tools", "down", "-v", "--remove-orphans")

    def dsn(self, role: str, pooled: bool) -> dict:
        key = {"n8n": "N8N_ROLE_PASSWORD", "letta": "LETTA_ROLE_PASSWORD"}[role]
        return dict(host="127.0.0.1", port=self.ports["POOLER_PORT" if pooled else "UNIFIED_PORT"], user=role,
                    password=self.passwords[key], database="postgres")

    def superuser(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.ports["UNIFIED_PORT"], user=self.admin["POSTGRES_USER"],
                               password=self.admin["POSTGRES_PASSWORD"], dbname="postgres", autocommit=True)


def prepare(project: Project) -> None:
    """One small table per app, in its own schema, owned by its role."""
    for role, table in (("n8n", "n8n.bench_kv"), ("letta", "letta_agents.bench_kv")):
        d = project.dsn(role, pooled=False)
        with psycopg.connect(host=d["host"], port=d["port"], user=role, password=d["password"], dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0)")
            conn.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 1000) g")


async def n8n_like(dsn: dict, stop: float, lat: list[float], errors: list[str]) -> None:
    try:
        conn = await asyncpg.connect(**dsn, timeout=30)
    except Exception as exc:  # noqa: BLE001 - a refused client is a result
        errors.append(type(exc).__name__)
        return
    try:
        while time.monotonic() < stop:
            started = time.perf_counter()
            key = secrets.randbelow(1000) + 1
            try:
                async with conn.transaction():
                    await conn.fetchval("SELECT v FROM n8n.bench_kv WHERE id = $1", key)
                    await conn.execute("UPDATE n8n.bench_kv SET v = v + 1 WHERE id = $1", key)
                lat.append(time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001
                errors.append(type(exc).__name__)
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def letta_like(dsn: dict, stop: float, lat: list[float], errors: list[str]) -> None:
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            conn = await asyncpg.connect(**dsn, timeout=30)
            try:
                key = secrets.randbelow(1000) + 1
                await conn.fetchval("SELECT v FROM letta_agents.bench_kv WHERE id = $1", key)
                await conn.execute("UPDATE letta_agents.bench_kv SET v = v + 1 WHERE id = $1", key)
                await conn.fetchval("SELECT count(*) FROM letta_agents.bench_kv WHERE v > $1", 0)
            finally:
                await conn.close()
            lat.append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001
            errors.append(type(exc).__name__)
            await asyncio.sleep(0.05)


def reset(project: Project, role: str) -> None:
    """Every point starts with no server connection of the role: PgBouncer's idle ones from
    the point before would otherwise hold the role's CONNECTION LIMIT slots (18 of n8n's 20)
    and refuse the direct clients of the next point."""
    with project.superuser() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()[0]:
            time.sleep(0.1)


def point(project: Project, workload: str, clients: int, pooled: bool, seconds: float) -> dict:
    role = "n8n" if workload == "n8n-like" else "letta"
    reset(project, role)
    fn = n8n_like if role == "n8n" else letta_like
    lat: list[float] = []
    errors: list[str] = []
    peak = {"n": 0}
    done = threading.Event()

    def sample() -> None:
        with project.superuser() as conn:
            while not done.is_set():
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()[0]
                peak["n"] = max(peak["n"], n)
                time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def main() -> None:
        stop = time.monotonic() + seconds
        dsn = project.dsn(role, pooled)
        await asyncio.wait_for(asyncio.gather(*(fn(dsn, stop, lat, errors) for _ in range(clients))),
                               timeout=seconds + 120)

    try:
        asyncio.run(main())
    finally:
        done.set()
        sampler.join(timeout=10)
    ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else [float("nan")] * 99
    return {"workload": workload, "clients": clients, "via": "pgbouncer" if pooled else "direct",
            "ops": len(ms), "errors": len(errors), "error_kinds": sorted(set(errors)),
            "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "server_connections_peak": peak["n"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pooling", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per point (default %(default)s)")
    parser.add_argument("--clients", default="10,50,200", help="client counts, at most 200 (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave the compose project up")
    parser.add_argument("--out", type=Path, default=ROOT / "reports/bench-pooling.json")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    if not all(1 <= c <= 200 for c in counts) or not 0 < args.seconds <= 30:
        parser.error("clients must be 1..200 and seconds 0..30")
    with tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp:
        project = Project(Path(tmp))
        try:
            project.up()
            prepare(project)
            rows = []
            for workload in ("n8n-like", "letta-like"):
                for clients in counts:
                    for pooled in (False, True):
                        rows.append(point(project, workload, clients, pooled, args.seconds))
                        r = rows[-1]
                        print(f"{r['workload']:<11} {r['clients']:>4} {r['via']:<9} ops {r['ops']:>6}"
                              f" errors {r['errors']:>5} p50 {r['p50_ms']:>8} ms p99 {r['p99_ms']:>8} ms"
                              f" server conns {r['server_connections_peak']:>3} {','.join(r['error_kinds'])}",
                              flush=True)
        finally:
            if not args.keep:
                project.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seconds_per_point": args.seconds, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
