"""Disk space on the target: enough before the copy starts, and still enough while it runs.

A PostgreSQL server whose disk fills up while writing WAL stops with PANIC; on
a shared Supabase instance that takes every app down with it. So `migrate`
refuses to start, on every run (a resumed one too), when the target's free
space is below what is left to write: the sources' total relation sizes
(heap, TOAST and indexes) not yet copied, times a margin, plus the target's
``max_wal_size`` (WAL written during the load is recycled only at
checkpoints) and the reserve. During the copy a watchdog reads the free space
every 0.25 s and after every 32 MB copied, and stops the copy cleanly (exit 4,
resumable: finished units are kept) when it falls below the reserve, whatever
else is filling the disk; once below it, the copy sends at most 64 MB (plus
1 MB per worker) before it stops. Free space is read by the server itself (``COPY FROM PROGRAM 'df'``, a
superuser's right); where that is not possible, both checks are skipped with
a warning.
"""

from __future__ import annotations

import threading

import psycopg

from migrator import console
from migrator.config.mapping import SourceMapping
from migrator.config.settings import Settings
from migrator.engine import journal
from migrator.engine.db import connect
from migrator.errors import DatabaseError

MARGIN = 1.2                    # rewritten rows, fill factor, index builds' sort files
DEFAULT_RESERVE_MB = 512        # never let the copy take the target below this
WATCH_SECONDS = 0.25            # read at least this often, whatever is filling the disk
WATCH_BYTES = 32 * 1024 * 1024  # and after this much copied (see DiskWatchdog for the bound)

TOTAL_SIZE_SQL = """
SELECT coalesce(pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relkind IN ('r', 'm')
"""
MAX_WAL_SQL = "SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('max_wal_size'))"


def free_bytes(target: psycopg.Connection) -> int | None:
    """Free space under the target's data directory, via `df` run by the server
    (COPY FROM PROGRAM needs a superuser; None when that is not possible)."""
    try:
        with target.transaction():
            target.execute("CREATE TEMP TABLE IF NOT EXISTS _consolidation_df (line text) ON COMMIT DROP")
            target.execute("COPY _consolidation_df FROM PROGRAM 'df -Pk .'")
            lines = [r[0] for r in target.execute("SELECT line FROM _consolidation_df").fetchall()]
        return int(lines[-1].split()[3]) * 1024
    except (psycopg.Error, IndexError, ValueError):
        return None


def still_to_write(mapping: SourceMapping, target: psycopg.Connection) -> int:
    """Bytes this source will still add to the target (0 once its copy and post-data are done)."""
    if journal.exists(target) and journal.step_done(target, mapping.name, "post-data"):
        return 0
    with connect(mapping.db) as source:
        total = source.execute(TOTAL_SIZE_SQL, (mapping.schema,)).fetchone()[0]
    copied = sum(nbytes for _, nbytes in journal.done_units(target, mapping.name).values()) \
        if journal.exists(target) else 0
    return max(int(total - copied), 0)


def check(mappings: list[SourceMapping], target: psycopg.Connection, reserve_mb: int) -> None:
    """Refuse, before anything is written, a target without room for what is left to write.

    :raises DatabaseError: (exit 4) naming what is needed and what is free.
    """
    free = free_bytes(target)
    if free is None:
        console.say("  warning: cannot read the target's free disk space; not checked")
        return
    data = sum(still_to_write(m, target) for m in mappings)
    if not data:
        return
    wal = target.execute(MAX_WAL_SQL).fetchone()[0]
    needed = int(data * MARGIN) + wal + reserve_mb * 1024 * 1024
    if free < needed:
        raise DatabaseError("unified", "target", f"not enough disk space: the sources need about "
                            f"{needed / 1e6:.0f} MB ({data / 1e6:.0f} MB of tables and indexes to write, "
                            f"{wal / 1e6:.0f} MB of WAL, a {reserve_mb} MB reserve), the target has "
                            f"{free / 1e6:.0f} MB free")


class DiskWatchdog:
    """Reads the target's free space on its own session every WATCH_SECONDS, and as soon as
    WATCH_BYTES have been copied since the last reading; ``raise_if_low(nbytes)`` (called by
    the copy before each unit and after each MB, with the bytes sent) stops the copy once
    the free space is below the reserve.

    The bound: a worker that finds 2 x WATCH_BYTES copied since the last reading began
    waits for the next one, so once the free space is below the reserve the copy sends at
    most 2 x WATCH_BYTES (64 MB) plus 1 MB per worker before it stops, however fast it
    runs (on disk: those rows and their WAL)."""

    def __init__(self, settings: Settings, reserve_mb: int):
        self.reserve = reserve_mb * 1024 * 1024
        self.low: int | None = None
        self._stop = threading.Event()
        self._due = threading.Event()           # enough bytes copied: read now
        self._read = threading.Condition()      # a reading finished (wakes paused workers)
        self._copied = 0                        # bytes copied since the last reading began
        self._conn = connect(settings.target)
        self._thread = threading.Thread(target=self._watch, name="disk-watchdog", daemon=True)
        if free_bytes(self._conn) is None:
            self._stop.set()        # nothing to watch with; check() already warned
        else:
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._due.wait(WATCH_SECONDS)
            self._due.clear()
            with self._read:
                counted = self._copied
            free = free_bytes(self._conn)
            with self._read:
                self._copied -= counted
                if free is not None and free < self.reserve:
                    self.low = free
                self._read.notify_all()

    def raise_if_low(self, nbytes: int = 0) -> None:
        with self._read:
            self._copied += nbytes
            if self._copied >= WATCH_BYTES:
                self._due.set()
            while self.low is None and self._copied >= 2 * WATCH_BYTES and self._thread.is_alive():
                self._read.wait(WATCH_SECONDS)     # the copy is ahead of the watch: let it read
        if self.low is not None:
            raise DatabaseError("unified", "target", f"disk nearly full: {self.low / 1e6:.0f} MB free, below the "
                                f"{self.reserve // 1024 // 1024} MB reserve; the copy stopped (finished units are "
                                "kept): free space, then run `migrate` again")

    def close(self) -> None:
        self._stop.set()
        self._due.set()
        if self._thread.is_alive():
            self._thread.join(timeout=WATCH_SECONDS * 8)
        self._conn.close()
