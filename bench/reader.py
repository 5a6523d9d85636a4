"""What reading app rows as a non-superuser costs (`make bench-reader`, docs/benchmark.md).

Before issue 22 the drill, restore-instance and app-backup hashed every row on a
superuser session from ``(row.*)::text`` (which calls any cast an app defines from its
row type to text). Now every reader of app rows goes through migrator/engine/checksums.py: a
throwaway non-superuser reader made for the command (role, grants, login, then dropped)
and nothing an app can hook. This prints the seconds of both on the same table, in
alternating repetitions, and their ratio. Letta-like rows: a vector(1536), text, jsonb.

    python -m bench.reader --size-mb 1000 --reps 3
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

from psycopg import sql

from bench import dockerkit
from migrator.config.settings import DatabaseSettings
from migrator.engine import checksums

BEFORE_SQL = ("SELECT pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 0)), 0),"
              " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 1)), 0) FROM ONLY {} AS _row"
              " CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[(_row.*)::pg_catalog.text]) AS _text(txt)")
TABLE_SQL = """
CREATE SCHEMA app;
CREATE TABLE app.passages (id bigint PRIMARY KEY, agent text NOT NULL, body text NOT NULL,
                           meta jsonb NOT NULL, embedding extensions.vector(1536) NOT NULL);
"""
# One batch: rows of ~6.5 kB (a random 1536-float vector dominates, as in Letta).
FILL_SQL = """
INSERT INTO app.passages
SELECT g, 'agent-' || (g %% 50), pg_catalog.repeat(pg_catalog.md5(g::text), 8),
       pg_catalog.jsonb_build_object('n', g, 'tag', pg_catalog.md5((g * 7)::text)),
       (SELECT pg_catalog.array_agg(pg_catalog.random()::real) FROM pg_catalog.generate_series(1, 1536) d
         WHERE d > g * 0)::extensions.vector
FROM pg_catalog.generate_series(%s::bigint, %s::bigint) g
"""
BATCH = 5000


def fill(conn, size_mb: int) -> tuple[int, int]:
    conn.execute(TABLE_SQL)
    rows = 0
    while conn.execute("SELECT pg_catalog.pg_total_relation_size('app.passages')").fetchone()[0] < size_mb * 1e6:
        conn.execute(FILL_SQL, (rows + 1, rows + BATCH))
        rows += BATCH
    conn.execute("VACUUM ANALYZE app.passages")
    return rows, conn.execute("SELECT pg_catalog.pg_total_relation_size('app.passages')").fetchone()[0]


def before(server) -> float:
    started = time.monotonic()
    with server.connect(options="-c search_path=pg_catalog,pg_temp") as conn:
        conn.execute(checksums.PINNED)
        conn.execute(sql.SQL(BEFORE_SQL).format(sql.Identifier("app", "passages"))).fetchone()
    return time.monotonic() - started


def after(server, db: DatabaseSettings) -> float:
    started = time.monotonic()
    with server.connect(options="-c search_path=pg_catalog,pg_temp") as admin, \
            checksums.reading(admin, db, ["app"]) as conn:
        checksums.table_hash(conn, "app", "passages")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.reader", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    image = dockerkit.project_images()["UNIFIED_IMAGE"]
    server = dockerkit.start_postgres(image, f"consolidation-bench-reader-{secrets.token_hex(3)}",
                                      user="supabase_admin", dbname="postgres", password=dockerkit.new_password())
    try:
        db = DatabaseSettings("bench", "target", server.host, server.port, server.dbname, server.user, server.password)
        with server.connect() as conn:
            rows, size = fill(conn, args.size_mb)
        print(f"[reader] app.passages: {rows} rows, {size / 1e6:.0f} MB; load {dockerkit.loadavg()}")
        before(server)                       # warm the cache for both
        times = {"before": [], "after": []}
        for rep in range(args.reps):
            times["before"].append(before(server))
            times["after"].append(after(server, db))
            print(f"[reader] rep {rep + 1}: superuser, row::text {times['before'][-1]:.2f} s; "
                  f"reader (made, used, dropped), record_out {times['after'][-1]:.2f} s")
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"[reader] median: before {b:.2f} s ({size / 1e6 / b:.0f} MB/s), after {a:.2f} s "
              f"({size / 1e6 / a:.0f} MB/s), after/before {a / b:.2f}; load {dockerkit.loadavg()}")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
