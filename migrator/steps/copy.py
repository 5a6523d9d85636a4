"""copy: stream every table's rows from the sources into the target with COPY.

All workers of one source read ONE exported snapshot (repeatable read, read
only), so the copy is a single point in time. Tables are copied in parallel,
largest first; tables over a threshold are split into ctid ranges. Each unit
(table or range) is written in one target transaction together with its
journal row, so after a crash it is either complete or absent. The target
session runs with session_replication_role = replica, so no trigger fires on
copied rows; generated columns are left to the target; identity columns keep
their values (COPY writes them as given).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from migrator import catalog, console, journal
from migrator.db import connect
from migrator.errors import DatabaseError
from migrator.mapping import SourceMapping, load_mappings
from migrator.settings import Settings

COMMAND = "copy"
HELP = "stream all rows source -> target (parallel COPY, one snapshot per source)"
STEP = "copy"
DEFAULT_SPLIT_MB = 512
PAGES_PER_MB = 128  # 8 kB pages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                        help="parallel COPY workers per source (default: CPU count)")
    parser.add_argument("--split-mb", type=int, default=DEFAULT_SPLIT_MB,
                        help="split tables larger than this into ranges (default: %(default)s)")
    parser.add_argument("--format", choices=("binary", "text"), default="binary",
                        help="COPY format (default: binary; text if a type has no binary I/O)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    with journal.locked_target(settings) as target:
        for mapping in load_mappings(settings):
            run(settings, mapping, target, jobs=args.jobs, split_mb=args.split_mb, fmt=args.format)
    return 0


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole table, or a ctid range of a large one."""
    source_table: catalog.TableInfo
    target_schema: str
    chunk: int
    page_from: int | None = None
    page_to: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.target_schema, self.source_table.name, self.chunk)

    @property
    def estimated_bytes(self) -> int:
        t = self.source_table
        if self.page_from is None:
            return t.size_bytes
        upper = self.page_to if self.page_to is not None else max(t.pages, self.page_from + 1)
        return max(t.size_bytes * (upper - self.page_from) // max(t.pages, 1), 1)


def plan_units(mapping: SourceMapping, tables: list[catalog.TableInfo], split_mb: int) -> list[Unit]:
    units: list[Unit] = []
    chunk_pages = max(split_mb * PAGES_PER_MB, 1)
    for t in tables:
        if not t.copies_data:
            continue
        schema = mapping.route(t.name, t.has_vector)
        if t.pages <= chunk_pages:
            units.append(Unit(t, schema, 0))
            continue
        starts = list(range(0, t.pages, chunk_pages))
        for i, start in enumerate(starts):
            # The last range is open-ended: pages added after ANALYZE are not missed.
            end = starts[i + 1] if i + 1 < len(starts) else None
            units.append(Unit(t, schema, i, start, end))
    return sorted(units, key=lambda u: u.estimated_bytes, reverse=True)


class SnapshotHolder:
    """Keeps the exporting transaction open so workers can attach to its snapshot."""

    def __init__(self, mapping: SourceMapping):
        self.conn = connect(mapping.db, autocommit=False)
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self.snapshot = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _source_session(mapping: SourceMapping, snapshot: str) -> psycopg.Connection:
    conn = connect(mapping.db, autocommit=False)
    _reattach(conn, snapshot)
    return conn


def _reattach(conn: psycopg.Connection, snapshot: str) -> None:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


def _target_session(settings: Settings) -> psycopg.Connection:
    conn = connect(settings.target, autocommit=False)
    conn.execute("SET session_replication_role = replica")   # no triggers, no FK checks on copied rows
    conn.execute("SET synchronous_commit = off")              # durability is settled by the final verify
    conn.commit()
    return conn


def copy_unit(unit: Unit, src: psycopg.Connection, tgt: psycopg.Connection, mapping: SourceMapping,
              fmt: str, on_bytes) -> tuple[int, int, float]:
    t = unit.source_table
    columns = catalog.copy_columns(src, t.schema, t.name)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    where = sql.SQL("")
    if unit.page_from is not None:
        where = sql.SQL(" WHERE ctid >= {}::tid").format(sql.Literal(f"({unit.page_from},0)"))
        if unit.page_to is not None:
            where += sql.SQL(" AND ctid < {}::tid").format(sql.Literal(f"({unit.page_to},0)"))
    opts = sql.SQL("(FORMAT binary)") if fmt == "binary" else sql.SQL("")
    copy_out = sql.SQL("COPY (SELECT {} FROM ONLY {}{}) TO STDOUT {}").format(cols, t.ident(), where, opts)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        sql.Identifier(unit.target_schema, t.name), cols, opts)
    started = time.monotonic()
    nbytes = 0
    with tgt.transaction():
        with src.cursor() as scur, tgt.cursor() as tcur:
            with scur.copy(copy_out) as reader, tcur.copy(copy_in) as writer:
                for block in reader:
                    writer.write(block)
                    nbytes += len(block)
                    on_bytes(len(block))
            rows = tcur.rowcount
        elapsed = time.monotonic() - started
        journal.record_unit(tgt, mapping.name, unit.target_schema, t.name, unit.chunk, rows, nbytes, elapsed)
    return rows, nbytes, elapsed


def run(settings: Settings, mapping: SourceMapping, target: psycopg.Connection, *, jobs: int,
        split_mb: int = DEFAULT_SPLIT_MB, fmt: str = "binary") -> dict:
    if journal.step_done(target, mapping.name, STEP):
        console.console.print(f"  {mapping.name}: copy already done on a previous run, skipping")
        return {}
    journal.start_step(target, mapping.name, STEP)
    holder = SnapshotHolder(mapping)
    try:
        tables = catalog.tables(holder.conn, mapping.schema)
        done = journal.done_units(target, mapping.name)
        units = [u for u in plan_units(mapping, tables, split_mb) if u.key not in done]
        totals = _copy_all(settings, mapping, holder.snapshot, units, jobs, fmt)
        totals["sequences"] = read_sequences(holder.conn, mapping)
    finally:
        holder.close()
    finished = journal.done_units(target, mapping.name).values()
    rows, nbytes = sum(r for r, _ in finished), sum(b for _, b in finished)
    journal.finish_step(target, mapping.name, STEP, {"rows": rows, "bytes": nbytes, **totals})
    console.console.print(f"  {mapping.name}: {rows} rows, {nbytes / 1e6:.1f} MB copied"
                          f" ({len(units)} units this run, {len(done)} from an earlier run)")
    return {"rows": rows, "bytes": nbytes}


def read_sequences(conn: psycopg.Connection, mapping: SourceMapping) -> dict[str, list]:
    """Sequence positions as of the copy's snapshot: {name: [last_value, is_called]}."""
    values = {}
    for name in catalog.sequences(conn, mapping.schema):
        last_value, is_called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
            sql.Identifier(mapping.schema, name))).fetchone()
        values[name] = [int(last_value), bool(is_called)]
    return values


def _copy_all(settings: Settings, mapping: SourceMapping, snapshot: str, units: list[Unit], jobs: int,
              fmt: str) -> dict:
    if not units:
        return {"units": 0}
    local = threading.local()
    sessions: list[psycopg.Connection] = []
    lock = threading.Lock()
    counters = {"rows": 0, "units": 0}
    started = time.monotonic()

    def sessions_for_thread() -> tuple[psycopg.Connection, psycopg.Connection]:
        if not hasattr(local, "src"):
            local.src = _source_session(mapping, snapshot)
            local.tgt = _target_session(settings)
            with lock:
                sessions.extend([local.src, local.tgt])
        return local.src, local.tgt

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console.console, transient=False) as progress:
        total = progress.add_task(f"{mapping.name}: {len(units)} units", total=sum(u.estimated_bytes for u in units))

        def work(unit: Unit) -> tuple[int, int, float]:
            src, tgt = sessions_for_thread()
            name = f"  {unit.target_schema}.{unit.source_table.name}" + (f"#{unit.chunk}" if unit.page_from is not None else "")
            task = progress.add_task(name, total=unit.estimated_bytes)

            def on_bytes(n: int) -> None:
                progress.advance(task, n)
                progress.advance(total, n)
            try:
                try:
                    result = copy_unit(unit, src, tgt, mapping, fmt, on_bytes)
                except psycopg.Error as exc:
                    if fmt != "binary" or "binary" not in str(exc).lower():
                        raise
                    # A type without binary I/O: this unit again, as text (the failed
                    # attempt rolled back with its transaction).
                    src.rollback()
                    _reattach(src, snapshot)
                    result = copy_unit(unit, src, tgt, mapping, "text", on_bytes)
            except psycopg.Error as exc:
                raise DatabaseError("unified", "target", f"copy of {mapping.name}.{unit.source_table.name} "
                                    f"failed: {str(exc).strip().splitlines()[0]}") from None
            progress.remove_task(task)
            with lock:
                counters["rows"] += result[0]
                counters["units"] += 1
                progress.update(total, description=f"{mapping.name}: {counters['units']}/{len(units)} units, "
                                                   f"{counters['rows']:,} rows")
            return result

        with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            futures = [pool.submit(work, u) for u in units]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for f in finished:
                if f.exception():
                    for other in futures:
                        other.cancel()
                    raise f.exception()
            results = [f.result() for f in futures]
    for conn in sessions:
        conn.close()
    return {"units": len(units), "seconds": round(time.monotonic() - started, 3),
            "rows_this_run": sum(r for r, _, _ in results)}
