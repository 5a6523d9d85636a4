"""What the target server is busy with while a method runs, sampled from
pg_stat_activity every 100 ms: the same profile for every tool, so our engine
and pgcopydb can be compared phase by phase (COPY, index builds, foreign key
validation, ANALYZE/VACUUM, ...), including how many sessions overlap."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg

QUERY = """
SELECT backend_type, coalesce(left(query, 200), '') FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (state = 'active' OR backend_type = 'autovacuum worker')
  AND backend_type IN ('client backend', 'parallel worker', 'autovacuum worker')
"""

CLASSES = ("copy", "index", "foreign key", "analyze/vacuum", "checksum", "ddl", "autovacuum", "other")


def classify(backend_type: str, query: str) -> str:
    if backend_type == "autovacuum worker":
        return "autovacuum"
    q = " ".join(query.split()).upper()
    if q.startswith("COPY") and "TO STDOUT" not in q:   # on the target every COPY loads (text may be cut short)
        return "copy"
    if q.startswith("CREATE INDEX") or q.startswith("CREATE UNIQUE INDEX") or \
            (q.startswith("ALTER TABLE") and ("PRIMARY KEY" in q or " UNIQUE" in q or "EXCLUDE" in q)):
        return "index"
    if q.startswith("ALTER TABLE") and "FOREIGN KEY" in q:
        return "foreign key"
    if q.startswith("ANALYZE") or q.startswith("VACUUM"):
        return "analyze/vacuum"
    if "HASHTEXTEXTENDED" in q:
        return "checksum"
    if q.startswith(("CREATE", "ALTER", "DROP", "COMMENT", "SET", "SELECT PG_CATALOG.SET_CONFIG", "GRANT", "REVOKE")):
        return "ddl"
    return "other"


class ActivitySampler(threading.Thread):
    def __init__(self, conninfo: dict, interval: float = 0.1):
        super().__init__(daemon=True)
        self.conninfo, self.interval = conninfo, interval
        self.halt = threading.Event()
        self.ticks = 0
        self.busy = Counter()        # class -> sampled sessions (x interval = session-seconds)
        self.wall = Counter()        # class -> ticks with at least one session of that class
        self.peak = Counter()        # class -> most sessions of that class at once
        self.active_sessions = 0     # sum over ticks of non-autovacuum active sessions
        self.others = Counter()      # first words of statements classed "other" (for diagnosis)
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(**self.conninfo, autocommit=True) as conn:
                conn.execute("SET application_name = 'bench-sampler'")
                while not self.halt.is_set():
                    rows = conn.execute(QUERY).fetchall()
                    classes = [(classify(b, q), q) for b, q in rows]
                    found = Counter(cls for cls, _ in classes)
                    self.others.update(" ".join(q.split())[:48] for cls, q in classes if cls == "other")
                    self.ticks += 1
                    for cls, n in found.items():
                        self.busy[cls] += n
                        self.wall[cls] += 1
                        self.peak[cls] = max(self.peak[cls], n)
                    self.active_sessions += sum(n for cls, n in found.items() if cls != "autovacuum")
                    self.halt.wait(self.interval)
        except psycopg.Error as exc:
            self.error = str(exc).strip().splitlines()[0]

    def stop(self) -> dict:
        self.halt.set()
        self.join(timeout=10)
        return self.summary()

    def summary(self) -> dict:
        per = {}
        for cls in CLASSES:
            if self.wall[cls]:
                per[cls] = {"wall_s": round(self.wall[cls] * self.interval, 1),
                            "session_s": round(self.busy[cls] * self.interval, 1),
                            "max_parallel": self.peak[cls]}
        return {"interval_s": self.interval, "samples": self.ticks,
                "avg_active_sessions": round(self.active_sessions / self.ticks, 2) if self.ticks else None,
                "classes": per, "other_statements": dict(self.others.most_common(6)),
                **({"error": self.error} if self.error else {})}


def start(conninfo: dict, interval: float = 0.1) -> ActivitySampler:
    sampler = ActivitySampler(conninfo, interval)
    sampler.start()
    time.sleep(0.05)
    return sampler
