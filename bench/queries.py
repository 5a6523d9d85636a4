"""The applications' typical queries, timed on the legacy databases and on the
unified instance after migration (whose migrate already ran ANALYZE), then
again after a VACUUM (ANALYZE) of the migrated schemas.

Each query runs as a prepared statement over the same parameter list on both
sides (parameters are read from the legacy database). Runs alternate between
legacy and unified so drift in machine load hits both; latency is the client
round trip (execute + fetch) on the bridge network; the median and p95 of the
runs are reported, and the ratio unified / legacy of the medians.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import psycopg

from bench.dockerkit import Server


@dataclass(frozen=True)
class Query:
    app: str
    name: str
    sql: str
    params: str          # key into the parameter pool


QUERIES = [
    Query("n8n", "workflow list (newest 50, with owner project)", """
        SELECT w.id, w.name, w.active, w."isArchived", w."createdAt", w."updatedAt", w."versionId",
               p.id AS "projectId", p.name AS "projectName"
        FROM workflow_entity w
        JOIN shared_workflow sw ON sw."workflowId" = w.id AND sw.role = 'workflow:owner'
        JOIN project p ON p.id = sw."projectId"
        WHERE NOT w."isArchived"
        ORDER BY w."updatedAt" DESC LIMIT 50""", "none"),
    Query("n8n", "executions of a workflow, newest first (20)", """
        SELECT id, finished, mode, status, "startedAt", "stoppedAt", "retryOf", "waitTill"
        FROM execution_entity WHERE "workflowId" = %s AND "deletedAt" IS NULL
        ORDER BY id DESC LIMIT 20""", "workflow"),
    Query("n8n", "execution data by id", """
        SELECT e.id, e."workflowId", e.status, e."startedAt", e."stoppedAt", d.data, d."workflowData"
        FROM execution_entity e JOIN execution_data d ON d."executionId" = e.id
        WHERE e.id = %s""", "execution"),
    Query("letta", "messages of an agent (newest 50)", """
        SELECT id, role, content, tool_calls, tool_call_id, created_at, sequence_id
        FROM messages WHERE agent_id = %s AND NOT is_deleted
        ORDER BY sequence_id DESC LIMIT 50""", "agent"),
    Query("letta", "archival passages of an agent (newest 50, no embedding)", """
        SELECT id, text, metadata_, tags, created_at
        FROM archival_passages WHERE agent_id = %s AND NOT is_deleted
        ORDER BY created_at DESC LIMIT 50""", "passage_agent"),
    Query("letta", "KNN on an agent's passages (<=>, top 10)", """
        SELECT id, text, embedding <=> %s::vector AS distance
        FROM archival_passages WHERE agent_id = %s AND NOT is_deleted
        ORDER BY embedding <=> %s::vector LIMIT 10""", "knn"),
]

SEARCH_PATH = {"n8n": "n8n, extensions", "letta": "letta_agents, letta_embeddings, extensions"}


def parameter_pools(legacy: dict[str, Server], size: int = 20) -> dict[str, list[tuple]]:
    with legacy["n8n"].connect() as conn:
        busy = [r[0] for r in conn.execute('SELECT "workflowId" FROM execution_entity GROUP BY 1'
                                           ' ORDER BY count(*) DESC, 1 LIMIT %s', (size // 2,))]
        other = [r[0] for r in conn.execute('SELECT id FROM workflow_entity ORDER BY md5(id) LIMIT %s', (size // 2,))]
        executions = [r[0] for r in conn.execute('SELECT "executionId" FROM execution_data'
                                                 ' ORDER BY md5("executionId"::text) LIMIT %s', (size,))]
    with legacy["letta"].connect() as conn:
        agents = [r[0] for r in conn.execute("SELECT id FROM agents ORDER BY md5(id) LIMIT %s", (size,))]
        passage_agents = [r[0] for r in conn.execute(
            "SELECT agent_id FROM archival_passages GROUP BY 1 ORDER BY md5(agent_id) LIMIT %s", (size,))]
        vectors = [r[0] for r in conn.execute(
            "SELECT embedding::text FROM archival_passages ORDER BY md5(id) LIMIT %s", (size,))]
    knn = [(vectors[i % len(vectors)], passage_agents[(i * 7) % len(passage_agents)],
            vectors[i % len(vectors)]) for i in range(size)]
    return {"none": [()], "workflow": [(w,) for w in busy + other], "execution": [(e,) for e in executions],
            "agent": [(a,) for a in agents], "passage_agent": [(a,) for a in passage_agents], "knn": knn}


def _connect_legacy(server: Server) -> psycopg.Connection:
    return server.connect()


def _connect_unified(server: Server, app: str) -> psycopg.Connection:
    return server.connect(options=f"-c search_path={SEARCH_PATH[app].replace(' ', '')}")


def _timed(conn: psycopg.Connection, query: Query, params: tuple) -> float:
    started = time.perf_counter()
    conn.execute(query.sql, params or None, prepare=True).fetchall()
    return (time.perf_counter() - started) * 1000


def _plan(conn: psycopg.Connection, query: Query, params: tuple) -> str:
    rows = conn.execute("EXPLAIN " + query.sql, params or None).fetchall()
    return " / ".join(r[0].strip().lstrip("-> ").split("  (")[0] for r in rows
                      if "Scan" in r[0] or "Sort" in r[0] or "Join" in r[0] or "Limit" in r[0])[:300]


def _stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
            "runs": len(ordered)}


def compare(legacy: dict[str, Server], unified: Server, pools: dict, runs: int, warmup: int) -> list[dict]:
    results = []
    conns = {}
    try:
        for app in ("n8n", "letta"):
            conns[("legacy", app)] = _connect_legacy(legacy[app])
            conns[("unified", app)] = _connect_unified(unified, app)
        for query in QUERIES:
            params = pools[query.params]
            old, new = conns[("legacy", query.app)], conns[("unified", query.app)]
            for i in range(warmup):
                _timed(old, query, params[i % len(params)])
                _timed(new, query, params[i % len(params)])
            times = {"legacy": [], "unified": []}
            for i in range(runs):
                p = params[i % len(params)]
                order = (("legacy", old), ("unified", new)) if i % 2 == 0 else (("unified", new), ("legacy", old))
                for side, conn in order:
                    times[side].append(_timed(conn, query, p))
            leg, uni = _stats(times["legacy"]), _stats(times["unified"])
            results.append({"app": query.app, "query": query.name, "legacy": leg, "unified": uni,
                            "ratio": round(uni["median_ms"] / leg["median_ms"], 3) if leg["median_ms"] else None,
                            "plan_legacy": _plan(old, query, params[0]), "plan_unified": _plan(new, query, params[0])})
    finally:
        for conn in conns.values():
            conn.close()
    return results


def vacuum_unified(unified: Server, schemas: tuple[str, ...]) -> float:
    started = time.monotonic()
    with unified.connect() as conn:
        tables = conn.execute("SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c"
                              " JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE n.nspname = ANY(%s) AND c.relkind = 'r'", (list(schemas),)).fetchall()
        for (name,) in tables:
            conn.execute(f"VACUUM (ANALYZE) {name}")
    return time.monotonic() - started


def warm(legacy: dict[str, Server], unified: Server, pools: dict, rounds: int = 5) -> None:
    """One pass of every query on every server (after a restart, before reading memory)."""
    compare(legacy, unified, pools, runs=rounds, warmup=0)
