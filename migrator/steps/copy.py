"""copy: stream every table's rows from the sources into the target with COPY.

All workers of one source read ONE exported snapshot (repeatable read, read
only), so each source is copied as of a single point in time. The units of
all sources share one pool of workers, largest first, so a big table of one
source never leaves a worker idle while another source still has work; tables
over a threshold are split into ctid ranges. Each unit
(table or range) is written in one target transaction together with its
journal row, so after a crash it is either complete or absent. The target
session runs with session_replication_role = replica, so no trigger fires on
copied rows; generated columns are left to the target; identity columns keep
their values (COPY writes them as given).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from migrator import console
from migrator.config import argtypes
from migrator.config.mapping import SourceMapping
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import catalog, journal, loader
from migrator.engine.db import DEFAULT_JOBS, ThreadSessions, connect
from migrator.errors import DatabaseError

COMMAND = "copy"
LOCK = "exclusive"  # writes the target, the journal and a loader (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
HELP = "stream all rows source -> target (parallel COPY, one snapshot per source)"
STEP = "copy"
DEFAULT_SPLIT_MB = 512
PAGES_PER_MB = 128  # 8 kB pages
PROGRESS_EVERY = 1 << 20  # bytes between progress updates (a rich update per row costs more than the row)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS,
                        help="parallel COPY workers per source (default: CPU count, at most 8)")
    parser.add_argument("--split-mb", type=argtypes.whole(1, 1 << 20), default=DEFAULT_SPLIT_MB,
                        help="split tables larger than this into ranges (default: %(default)s)")
    add_toast_argument(parser)
    parser.add_argument("--format", choices=("binary", "text"), default="binary",
                        help="COPY format (default: binary; text if a type has no binary I/O)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    with journal.loading(settings, STEP) as (target, mappings):
        run(settings, mappings, target, jobs=args.jobs, split_mb=args.split_mb, fmt=args.format,
            toast_compression=args.toast_compression)
    return 0


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole table, or a ctid range of a large one."""
    source: str                       # the mapping's name
    source_table: catalog.TableInfo
    target_schema: str
    chunk: int
    page_from: int | None = None
    page_to: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.target_schema, self.source_table.name, self.chunk)

    @property
    def table_key(self) -> tuple[str, str]:
        return (self.target_schema, self.source_table.name)

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
            units.append(Unit(mapping.name, t, schema, 0))
            continue
        starts = list(range(0, t.pages, chunk_pages))
        for i, start in enumerate(starts):
            # The last range is open-ended: pages added after ANALYZE are not missed.
            end = starts[i + 1] if i + 1 < len(starts) else None
            units.append(Unit(mapping.name, t, schema, i, start, end))
    return sorted(units, key=lambda u: u.estimated_bytes, reverse=True)


class SnapshotHolder:
    """Keeps the exporting transaction open so workers can attach to its snapshot."""

    def __init__(self, mapping: SourceMapping):
        self.conn = connect(mapping.db, autocommit=False)
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self.snapshot = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]

    def close(self) -> None:
        try:
            self.conn.rollback()
        except psycopg.Error:
            pass    # the source went away: its error is the one worth reporting, not this one
        self.conn.close()


def _source_session(mapping: SourceMapping, snapshot: str) -> psycopg.Connection:
    conn = connect(mapping.db, autocommit=False)
    _reattach(conn, snapshot)
    return conn


def _reattach(conn: psycopg.Connection, snapshot: str) -> None:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


def add_toast_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--toast-compression", choices=("lz4", "server"), default="lz4",
                        help="compress large copied values with lz4 (default; several times cheaper than pglz"
                             " for the target's CPU) or with the server's default_toast_compression")


def _target_session(hands: DatabaseSettings, toast_compression: str = "server") -> psycopg.Connection:
    """A session of the source's loader role: the rows' CHECKs, domains and generated
    columns run with its rights, never the superuser's (migrator/engine/loader.py)."""
    conn = connect(hands, autocommit=False, restrict_views=False)
    conn.execute("SET session_replication_role = replica")   # no triggers, no FK checks on copied rows
    conn.execute("SET synchronous_commit = off")              # durability is settled by the final verify
    if toast_compression == "lz4":
        # Only how values are stored changes, not the values (verify compares them). A
        # server built without lz4 refuses the setting: then its own default stays.
        try:
            with conn.transaction():
                conn.execute("SET default_toast_compression = lz4")
        except psycopg.errors.InvalidParameterValue:
            pass
    conn.commit()
    return conn


def copy_unit(unit: Unit, src: psycopg.Connection, tgt: psycopg.Connection, mapping: SourceMapping,
              fmt: str, on_bytes) -> tuple[int, int, float]:
    t = unit.source_table
    columns = catalog.copy_columns(src, t.schema, t.name)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    where = sql.SQL("")
    if unit.page_from is not None:
        where = sql.SQL(" WHERE ctid OPERATOR(pg_catalog.>=) {}::pg_catalog.tid").format(
            sql.Literal(f"({unit.page_from},0)"))
        if unit.page_to is not None:
            where += sql.SQL(" AND ctid OPERATOR(pg_catalog.<) {}::pg_catalog.tid").format(
                sql.Literal(f"({unit.page_to},0)"))
    opts = sql.SQL("(FORMAT binary)") if fmt == "binary" else sql.SQL("")
    copy_out = sql.SQL("COPY (SELECT {} FROM ONLY {}{}) TO STDOUT {}").format(cols, t.ident(), where, opts)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        sql.Identifier(unit.target_schema, t.name), cols, opts)
    started = time.monotonic()
    nbytes = unreported = 0
    with tgt.transaction():
        with src.cursor() as scur, tgt.cursor() as tcur, ExitStack() as copies:
            reader = _on_source(lambda: copies.enter_context(scur.copy(copy_out)))
            writer = copies.enter_context(tcur.copy(copy_in))
            for block in _read(reader):       # one row per block: keep this loop lean
                writer.write(block)
                unreported += len(block)
                if unreported >= PROGRESS_EVERY:
                    on_bytes(unreported)
                    nbytes += unreported
                    unreported = 0
            copies.close()                    # both COPYs end here, before the row count is read
            rows = tcur.rowcount
        on_bytes(unreported)
        nbytes += unreported
        elapsed = time.monotonic() - started
        journal.record_unit(tgt, mapping.name, unit.target_schema, t.name, unit.chunk, rows, nbytes, elapsed)
    return rows, nbytes, elapsed


def _on_source(action):
    """Run ``action`` (a read from the source); a failure is marked as the source's."""
    try:
        return action()
    except psycopg.Error as exc:
        exc.failed_on_source = True
        raise


def _read(reader):
    """The source's COPY blocks; a failure while reading is marked as the source's (the
    source's planner can fail, e.g. expanding an expression statistic's function with
    the migrator's search_path = pg_catalog)."""
    blocks = iter(reader)
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return
        except psycopg.Error as exc:
            exc.failed_on_source = True
            raise
        yield block


@dataclass
class SourceCopy:
    """One source's share of the copy: its snapshot, its remaining units, its hook."""
    mapping: SourceMapping
    hands: DatabaseSettings           # the loader's login: every target write goes through it
    holder: SnapshotHolder
    units: list[Unit]
    done_before: int
    on_unit_done: object = None
    stats: dict = field(default_factory=lambda: {"units": 0, "rows_this_run": 0})


def run(settings: Settings, mappings: list[SourceMapping], target: psycopg.Connection, *, jobs: int,
        split_mb: int = DEFAULT_SPLIT_MB, fmt: str = "binary", early_builds=None,
        toast_compression: str = "server", checkpoint=None) -> dict[str, dict]:
    """Copy every source not yet copied, all through one pool of `jobs` workers.
    With ``early_builds`` (post_data.EarlyIndexBuilder), each table is handed to it as soon
    as its last unit is in, so its indexes build while the rest copies."""
    results: dict[str, dict] = {}
    with ExitStack() as holders:
        sources = []
        for mapping in mappings:
            if journal.step_done(target, mapping.name, STEP):
                console.say(f"  {mapping.name}: copy already done on a previous run, skipping")
                continue
            journal.start_step(target, mapping.name, STEP)
            hands = loader.ensure(target, settings, mapping)
            holder = SnapshotHolder(mapping)
            holders.callback(holder.close)
            tables = catalog.tables(holder.conn, mapping.schema)
            done = journal.done_units(target, mapping.name)
            split = journal.copy_split_mb(target, mapping.name, split_mb)
            if split != split_mb:
                console.say(f"  {mapping.name}: continuing the copy begun with --split-mb {split}"
                            f" (--split-mb {split_mb} applies to a copy from scratch)")
            pending = [u for u in plan_units(mapping, tables, split) if u.key not in done]
            sources.append(SourceCopy(mapping, hands, holder, pending, len(done),
                                      _when_tables_complete(mapping, holder.conn, tables, target, pending,
                                                                 early_builds)))
        seconds = _copy_all(sources, jobs, fmt, toast_compression, checkpoint or (lambda nbytes=0: None))
        for sc in sources:
            detail = {**sc.stats, "seconds": seconds, "sequences": read_sequences(sc.holder.conn, sc.mapping)}
            results[sc.mapping.name] = _finish_source(target, sc, detail)
    return results


def _finish_source(target: psycopg.Connection, sc: SourceCopy, detail: dict) -> dict:
    name = sc.mapping.name
    finished = journal.done_units(target, name).values()
    rows, nbytes = sum(r for r, _ in finished), sum(b for _, b in finished)
    journal.finish_step(target, name, STEP, {"rows": rows, "bytes": nbytes, **detail})
    console.say(f"  {name}: {rows} rows, {nbytes / 1e6:.1f} MB copied"
                f" ({len(sc.units)} units this run, {sc.done_before} from an earlier run)")
    return {"rows": rows, "bytes": nbytes}


def _when_tables_complete(mapping: SourceMapping, source: psycopg.Connection, tables, target,
                               pending: list[Unit], early_builds):
    """A callback for each copied unit that gives a table to the early index builder once
    all its units are in (tables complete from an earlier run go at once)."""
    if early_builds is None:
        return None
    early = early_builds.plan(mapping, source, tables, target)
    remaining = Counter(unit.table_key for unit in pending)
    for key in early:
        if remaining[key] == 0:
            early_builds.submit(mapping, key)
    lock = threading.Lock()

    def on_unit_done(unit: Unit) -> None:
        with lock:
            remaining[unit.table_key] -= 1
            complete = remaining[unit.table_key] == 0
        if complete and unit.table_key in early:
            early_builds.submit(mapping, unit.table_key)   # raises the builder's first failure, if any
    return on_unit_done


def read_sequences(conn: psycopg.Connection, mapping: SourceMapping) -> dict[str, list]:
    """Sequence positions as of the copy's snapshot: {name: [last_value, is_called]}."""
    values = {}
    for name in catalog.sequences(conn, mapping.schema):
        last_value, is_called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
            sql.Identifier(mapping.schema, name))).fetchone()
        values[name] = [int(last_value), bool(is_called)]
    return values


def _copy_all(sources: list[SourceCopy], jobs: int, fmt: str, toast_compression: str = "server",
              checkpoint=lambda nbytes=0: None) -> float:
    """Run every unit of every source, largest first; the first failure stops the rest.
    ``checkpoint(nbytes)`` runs before each unit and after each MB (with the bytes sent since
    the last call: the disk watch may pause the copy until it has read the free space again);
    raising there stops the copy
    (the unit in flight rolls back with its transaction, finished units stay)."""
    by_name = {sc.mapping.name: sc for sc in sources}
    units = sorted((u for sc in sources for u in sc.units), key=lambda u: u.estimated_bytes, reverse=True)
    if not units:
        return 0.0
    sessions = ThreadSessions()
    lock = threading.Lock()
    started = time.monotonic()

    def sessions_for(sc: SourceCopy) -> tuple[psycopg.Connection, psycopg.Connection]:
        """Per worker thread and source: a session on its snapshot, one as its loader."""
        name = sc.mapping.name
        return (sessions.get(("source", name), lambda: _source_session(sc.mapping, sc.holder.snapshot)),
                sessions.get(("target", name), lambda: _target_session(sc.hands, toast_compression)))

    label = escape(" + ".join(by_name))
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console.console, transient=False) as progress:
        total = progress.add_task(f"{label}: {len(units)} units", total=sum(u.estimated_bytes for u in units))

        def work(unit: Unit) -> None:
            sc = by_name[unit.source]
            src, tgt = sessions_for(sc)
            name = escape(f"  {unit.target_schema}.{unit.source_table.name}"     # names are not markup
                          + (f"#{unit.chunk}" if unit.page_from is not None else ""))
            task = progress.add_task(name, total=unit.estimated_bytes)

            checkpoint()

            def on_bytes(n: int) -> None:
                checkpoint(n)
                progress.advance(task, n)
                progress.advance(total, n)
            rows = _copy_one(unit, sc, src, tgt, fmt, on_bytes)
            progress.remove_task(task)
            if sc.on_unit_done is not None:
                sc.on_unit_done(unit)
            with lock:
                sc.stats["units"] += 1
                sc.stats["rows_this_run"] += rows
                progress.update(total, description=f"{label}: {sum(s.stats['units'] for s in sources)}/{len(units)}"
                                f" units, {sum(s.stats['rows_this_run'] for s in sources):,} rows")

        try:
            with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
                futures = [pool.submit(work, u) for u in units]
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for f in finished:
                    if f.exception():
                        for other in futures:
                            other.cancel()
                        raise f.exception()
        finally:
            sessions.close()
    return round(time.monotonic() - started, 3)


def _copy_one(unit: Unit, sc: SourceCopy, src: psycopg.Connection, tgt: psycopg.Connection, fmt: str,
              on_bytes) -> int:
    try:
        try:
            return copy_unit(unit, src, tgt, sc.mapping, fmt, on_bytes)[0]
        except psycopg.Error as exc:
            if fmt != "binary" or "binary" not in str(exc).lower():
                raise
            # A type without binary I/O: this unit again, as text (the failed
            # attempt rolled back with its transaction).
            src.rollback()
            _reattach(src, sc.holder.snapshot)
            return copy_unit(unit, src, tgt, sc.mapping, "text", on_bytes)[0]
    except psycopg.Error as exc:
        what = f"copy of {sc.mapping.name}.{unit.source_table.name} failed: {str(exc).strip().splitlines()[0]}"
        if src.broken or getattr(exc, "pgconn", None) is src.pgconn:   # the source's fault, not ours
            raise DatabaseError(sc.mapping.name, "source", what + " (rerun `migrate` once the source is back:"
                                " finished units are kept)") from None
        if getattr(exc, "failed_on_source", False):
            hint = (" (the source's planner expands the functions of the table's expression statistics and"
                    " indexes with the migrator's search_path = pg_catalog: give the function SET search_path"
                    " or qualified names)" if exc.sqlstate in ("42883", "42P01", "42704") else "")
            raise DatabaseError(sc.mapping.name, "source", f"copy of {sc.mapping.name}.{unit.source_table.name} "
                                f"failed on the source: {str(exc).strip().splitlines()[0]}{hint}; fix it on the "
                                "source, then run migrate again (finished units are kept)") from None
        raise DatabaseError("unified", "target", what) from None
