"""Resources of the unified instance against the legacy instances it replaces:
start-to-healthy after a restart (its data directory holding everything), and
memory as `docker stats` reports it, idle after the start and after one pass of
the apps' queries."""

from __future__ import annotations

import time

import psycopg

from bench import dockerkit, queries
from bench.dockerkit import Server


def restart(server: Server, timeout: float = 180) -> dict:
    """Stop (clean shutdown), start; seconds until TCP SELECT 1 answers and until
    docker's healthcheck (pg_isready every 1 s, as in docker-compose.yml) passes."""
    server.container.stop(timeout=60)
    started = time.monotonic()
    server.container.start()
    server.refresh_ip()
    ready = None
    healthy = None
    while time.monotonic() - started < timeout:
        if ready is None:
            try:
                with psycopg.connect(**server.conninfo(connect_timeout=1), autocommit=True) as conn:
                    conn.execute("SELECT 1")
                ready = time.monotonic() - started
            except psycopg.Error:
                pass
        if healthy is None:
            server.container.reload()
            if server.container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                healthy = time.monotonic() - started
        if ready is not None and healthy is not None:
            break
        time.sleep(0.02)
    return {"ready_s": round(ready, 2) if ready else None, "healthy_s": round(healthy, 2) if healthy else None}


def memory(server: Server) -> dict:
    return dockerkit.docker_stats_memory(server.container)


def database_bytes(server: Server, schemas: list[str]) -> int:
    with server.connect() as conn:
        return int(conn.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'm')", (schemas,)).fetchone()[0])


def compare(legacy: dict[str, Server], unified: Server, pools: dict, log) -> dict:
    starts = {}
    for name, server in [*legacy.items(), ("unified", unified)]:   # one at a time: no contention
        starts[name] = restart(server)
        log(f"  restart {name}: ready {starts[name]['ready_s']} s, healthy {starts[name]['healthy_s']} s")
    time.sleep(3)
    idle = {name: memory(s) for name, s in [*legacy.items(), ("unified", unified)]}
    queries.warm(legacy, unified, pools)
    time.sleep(1)
    busy = {name: memory(s) for name, s in [*legacy.items(), ("unified", unified)]}
    sizes = {"n8n": database_bytes(legacy["n8n"], ["public"]), "letta": database_bytes(legacy["letta"], ["letta"]),
             "unified": database_bytes(unified, ["n8n", "letta_agents", "letta_embeddings"])}

    def total(values: dict, key: str) -> float | None:
        legs = [values[n][key] for n in legacy if values[n].get(key) is not None]
        return sum(legs) if legs else None

    rows = []
    for label, key, data in [("start to ready (s)", "ready_s", starts), ("start to healthy (s)", "healthy_s", starts),
                             ("memory idle, docker stats (MB)", "docker_stats_bytes", idle),
                             ("memory after queries, docker stats (MB)", "docker_stats_bytes", busy),
                             ("RSS (anon) after queries (MB)", "rss_bytes", busy)]:
        scale = 1e6 if key.endswith("bytes") else 1
        legacy_sum = total(data, key)
        uni = data["unified"].get(key)
        rows.append({"what": label, **{n: round(data[n][key] / scale, 2) if data[n].get(key) is not None else None
                                       for n in legacy},
                     "legacy_sum": round(legacy_sum / scale, 2) if legacy_sum is not None else None,
                     "unified": round(uni / scale, 2) if uni is not None else None,
                     "ratio": round(uni / legacy_sum, 3) if uni and legacy_sum else None})
    rows.append({"what": "data + indexes of the migrated schemas (MB)",
                 **{n: round(sizes[n] / 1e6, 1) for n in legacy},
                 "legacy_sum": round(sum(sizes[n] for n in legacy) / 1e6, 1), "unified": round(sizes["unified"] / 1e6, 1),
                 "ratio": round(sizes["unified"] / max(sum(sizes[n] for n in legacy), 1), 3)})
    return {"rows": rows, "starts": starts, "memory_idle": idle, "memory_after_queries": busy}
