"""post-data: indexes, constraints, triggers, policies, then sequence values,
materialized view contents and ANALYZE, once the rows are in.

Post-data comes from the same remapped pg_dump as the pre-data (schema step).
Under `migrate` most of it runs early: an EarlyIndexBuilder builds one table's
indexes and keys and ANALYZEs it the moment the copy step has that table's
last rows in, while other tables are still copying (one transaction per
table, recorded in the journal with it). The final pass (`run`) then restores
the rest with pg_restore -j: foreign keys (they need both tables), triggers,
policies, partitions' indexes, whatever a table did not get early.
If an earlier final pass died half-way, the objects it left in our schemas are
dropped first, so a rerun starts it clean. Sequence positions are those the
copy step read in its snapshot, so they match the copied rows.

A failure names the object and the step in one line and exits 3 when the
source's code failed on the target (an index expression, an expression
statistic calling a function that resolves nothing there: fix it on the
source), 4 when the target did (disk, connection, locks). The rerun resumes
at the final pass and first replaces the target's routines by the source's
current definitions (schema.refresh_routines), so a fix made on the source
reaches the target without moving the rows again.

All of it runs as the source's loader role, the tables' owner while they are
built (migrator/engine/loader.py): index expressions, constraint checks, matview
queries and ANALYZE run the source's code, never with the superuser's rights.
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console
from migrator.config import argtypes
from migrator.config.mapping import SourceMapping
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import catalog, journal, loader, pgtools, predata, queries
from migrator.engine.db import DEFAULT_JOBS, ThreadSessions, connect
from migrator.errors import DatabaseError
from migrator.redact import redact

COMMAND = "post-data"
LOCK = "exclusive"  # writes the target, the journal and a loader (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
HELP = "build indexes/constraints/triggers, set sequences, refresh matviews, ANALYZE"
STEP = "post-data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", type=Path, default=None, help="where the schema step left its dumps")
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS,
                        help="parallel index/constraint builds (default: CPU count, at most 8)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    work_dir = args.work_dir or settings.work_dir
    with journal.loading(settings, STEP) as (target, mappings):
        for mapping in mappings:
            run(settings, mapping, target, work_dir, jobs=args.jobs)
    return 0


def run(settings: Settings, mapping: SourceMapping, target: psycopg.Connection, work_dir: Path,
        jobs: int = 2) -> None:
    if journal.step_done(target, mapping.name, STEP):
        console.say(f"  {mapping.name}: post-data already done on a previous run, skipping")
        return
    dump = target_dump(work_dir, mapping)
    finished = journal.finished_tables(target, mapping.name)
    built = {toc_id for ids in finished.values() for toc_id in ids}
    toc = pgtools.toc_lines(dump, settings.target, set(mapping.target_schemas))
    if journal.step_started(target, mapping.name, STEP):
        cleared = clear_post_data(target, mapping, built_early(toc, built))
        console.say(f"  {mapping.name}: removed {cleared} objects left by an interrupted post-data")
        replaced = predata.refresh_routines(settings, mapping, target, work_dir)
        console.say(f"  {mapping.name}: {replaced} routines replaced by the source's current definitions")
    journal.start_step(target, mapping.name, STEP)
    hands = loader.ensure(target, settings, mapping)
    pgtools.restore_listed(dump, [line for line in toc if toc_id_of(line) not in built], hands,
                           dbname=settings.target.dbname, options=(f"--jobs={max(jobs, 1)}", "--section=post-data"),
                           listing=dump.with_suffix(".post-data.list"), what="post-data into the target")
    values = _sequence_values(target, mapping)
    with connect(hands, restrict_views=False) as conn:
        set_sequences(conn, mapping, values)
        refresh_matviews(conn, mapping)
        analyze(conn, mapping, skip=set(finished))
    journal.finish_step(target, mapping.name, STEP)
    console.say(f"  {mapping.name}: indexes, constraints, triggers, sequences, ANALYZE done"
                f" ({len(finished)} tables had theirs built while copying)")


# SQLSTATE classes that are the target's own trouble, not the source's code: connection,
# resources, limits, object in use, operator intervention, system, deadlocks, internal.
TARGET_CLASSES = {"08", "40", "53", "54", "55", "57", "58", "F0", "XX"}


def failed(mapping: SourceMapping, what: str, exc: psycopg.Error) -> DatabaseError:
    """One line naming the object and the step: the source's code failing on the target is
    the source's to fix (exit 3), the target's own trouble the target's (exit 4)."""
    text = str(exc).strip()
    first = redact(text.splitlines()[0]) if text else type(exc).__name__
    if (exc.sqlstate or "XX")[:2] in TARGET_CLASSES:
        return DatabaseError("unified", "target", f"post-data: {what} failed: {first}; run migrate again once "
                             "the target is fixed (it resumes at post-data)")
    return DatabaseError(mapping.name, "source", f"post-data: {what} failed on the target: {first}; fix it on "
                         "the source, then run migrate again (it resumes at post-data)")


def target_dump(work_dir: Path, mapping: SourceMapping) -> Path:
    """The remapped schema dump the schema step wrote."""
    return work_dir / f"{mapping.name}.target-schema.dump"


def toc_id_of(toc_line: str) -> int | None:
    head = toc_line.split(";", 1)[0]
    return int(head) if head.isdigit() else None


# --- per table, while the copy runs -------------------------------------------------

# A pg_restore --list line: "<id>; <catalog oid> <oid> <type> <schema> <tag> <owner>".
# Tags are compared as text: a constraint's tag "<table> <name>" can exceed the
# 63 bytes of type name (the UNION would otherwise cut it and lose the match).
# For an INDEX the tag is the index name, for a CONSTRAINT "<table> <name>".
# "INDEX ATTACH" (partitions) and "FK CONSTRAINT" stay for the final pass.
EARLY_ENTRY = re.compile(r"^(\d+); \d+ \d+ (INDEX|CONSTRAINT) (?!ATTACH )(\S+) (.+) \S*$")
TABLE_OF_ENTRY = queries.sections(__file__)["table_of_entry"]          # post_data.sql
INHERITANCE_PARENTS = queries.sections(__file__)["inheritance_parents"]

TableKey = tuple[str, str]   # (target schema, table)


def early_entries(toc_lines: list[str], source: psycopg.Connection, mapping: SourceMapping,
                  tables: set[TableKey]) -> dict[TableKey, list[tuple[int, str]]]:
    """The TOC entries (indexes, primary/unique/exclusion keys) that belong to one table
    and need nothing but that table, per table. An entry we cannot place is left
    to the final pass, which is always correct, only later."""
    owners: dict[tuple[str, str], set[str]] = {}
    for kind, tag, table in source.execute(TABLE_OF_ENTRY, {"schema": mapping.schema}).fetchall():
        owners.setdefault((kind, tag), set()).add(table)
    # A tag two tables could own ("a b" + "c" vs "a" + "b c") is left to the final pass.
    table_of = {entry: next(iter(tables)) for entry, tables in owners.items() if len(tables) == 1}
    plan: dict[TableKey, list[tuple[int, str]]] = {key: [] for key in tables}
    for line in toc_lines:
        match = EARLY_ENTRY.match(line)
        if not match:
            continue
        key = (match[3], table_of.get((match[2], match[4])))
        if key in plan:
            plan[key].append((int(match[1]), line))
    return plan


def build_table(conn: psycopg.Connection, settings: Settings, mapping: SourceMapping, dump: Path,
                 key: TableKey, entries: list[tuple[int, str]]) -> None:
    """Build one table's indexes and keys and ANALYZE it, in one transaction with its journal row."""
    schema, table = key
    started = time.monotonic()
    script = pgtools.restore_script(dump, [line for _, line in entries], settings.target,
                                    what=f"indexes of {schema}.{table}") if entries else ""
    try:
        with conn.transaction():
            if script:
                conn.execute(script)
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
            journal.record_finished_table(conn, mapping.name, schema, table, [i for i, _ in entries],
                                          round(time.monotonic() - started, 3))
    except psycopg.Error as exc:
        raise DatabaseError("unified", "target", f"indexes of {schema}.{table} failed: "
                            f"{str(exc).strip().splitlines()[0]}") from None


def early_keys(source: psycopg.Connection, mapping: SourceMapping, tables: list[catalog.TableInfo]) -> set[TableKey]:
    """The tables whose indexes and keys are built as soon as their rows are in."""
    # Inheritance parents stay out: their ANALYZE samples children still copying.
    parents = {r[0] for r in source.execute(INHERITANCE_PARENTS, (mapping.schema,)).fetchall()}
    return {(mapping.route(t.name, t.has_vector), t.name) for t in tables
            if t.copies_data and not t.is_partition and t.name not in parents}


def prerender(settings: Settings, mapping: SourceMapping, work_dir: Path) -> int:
    """Before the cutover's window: each table's index and key script, rendered from the
    schema step's dump (one pg_restore process per table) and kept by pgtools for this
    process, so the builds inside the window only run SQL. It depends on the definitions
    alone; if they change (the schema step redone), the dump is new and is read again.
    Returns how many tables got a script."""
    dump = target_dump(work_dir, mapping)
    toc = pgtools.toc_lines(dump, settings.target, set(mapping.target_schemas))
    with connect(mapping.db) as source:
        plan = early_entries(toc, source, mapping, early_keys(source, mapping, catalog.tables(source, mapping.schema)))
    rendered = [pgtools.restore_script(dump, [line for _, line in entries], settings.target,
                                       what=f"indexes of {schema}.{table}")
                for (schema, table), entries in plan.items() if entries]
    return len(rendered)


class EarlyIndexBuilder:
    """Runs build_table for each table the copy step reports complete, on its own
    pool of target sessions, so index builds overlap the rest of the copy."""

    def __init__(self, settings: Settings, work_dir: Path, jobs: int):
        self.settings, self.work_dir = settings, work_dir
        self.pool = ThreadPoolExecutor(max_workers=max(jobs, 1), thread_name_prefix="post-data")
        self.sessions = ThreadSessions()
        self.futures = []
        self.plans: dict[str, dict[TableKey, list[tuple[int, str]]]] = {}
        self.hands: dict[str, DatabaseSettings] = {}
        self.failure: BaseException | None = None

    def plan(self, mapping: SourceMapping, source: psycopg.Connection, tables: list[catalog.TableInfo],
             target: psycopg.Connection) -> set[TableKey]:
        """The tables this builder will take (partitions and done ones excluded)."""
        toc = pgtools.toc_lines(target_dump(self.work_dir, mapping), self.settings.target,
                                        set(mapping.target_schemas))
        done = journal.finished_tables(target, mapping.name)
        self.hands[mapping.name] = loader.ensure(target, self.settings, mapping)
        self.plans[mapping.name] = {k: v for k, v in early_entries(toc, source, mapping,
                                                                   early_keys(source, mapping, tables)).items()
                                    if k not in done}
        return set(self.plans[mapping.name])

    def submit(self, mapping: SourceMapping, key: TableKey) -> None:
        self.raise_if_failed()
        self.futures.append(self.pool.submit(self._finish, mapping, key))

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure

    def wait(self) -> int:
        """Block until every submitted table is finished; the first failure is raised.
        The sessions close here, before the final pass opens its own."""
        try:
            for future in self.futures:
                future.result()
            return len(self.futures)
        finally:
            self.close()

    def close(self) -> None:
        """Cancel what has not started, let what runs finish (each is one transaction)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.sessions.close()

    def _finish(self, mapping: SourceMapping, key: TableKey) -> None:
        if self.failure is not None:
            return
        try:
            build_table(self._session(mapping), self.settings, mapping, target_dump(self.work_dir, mapping), key,
                         self.plans[mapping.name][key])
        except BaseException as exc:
            self.failure = self.failure or exc
            raise

    def _session(self, mapping: SourceMapping) -> psycopg.Connection:
        """Per worker thread and source: a session of that source's loader (the tables' owner)."""
        return self.sessions.get(mapping.name, lambda: connect(self.hands[mapping.name]))


# What a final pass creates (post_data.sql, "leftovers.<kind>"), dependants first.
LEFTOVERS_SQL = tuple(query for name, query in queries.sections(__file__).items() if name.startswith("leftovers."))
DROP = {
    "CONSTRAINT": "ALTER TABLE {schema}.{table} DROP CONSTRAINT IF EXISTS {name}",
    "INDEX": "DROP INDEX IF EXISTS {schema}.{name} CASCADE",
    "TRIGGER": "DROP TRIGGER IF EXISTS {name} ON {schema}.{table}",
    "POLICY": "DROP POLICY IF EXISTS {name} ON {schema}.{table}",
    "RULE": "DROP RULE IF EXISTS {name} ON {schema}.{table}",
    "STATISTICS": "DROP STATISTICS IF EXISTS {schema}.{name}",
}


def built_early(toc_lines: list[str], toc_ids: set[int]) -> set[tuple[str, str, str]]:
    """(kind, schema, tag) of the TOC entries the journal says tables built early."""
    kept = set()
    for line in toc_lines:
        match = EARLY_ENTRY.match(line)
        if match and int(match[1]) in toc_ids:
            kept.add((match[2], match[3], match[4]))
    return kept


def clear_post_data(target: psycopg.Connection, mapping: SourceMapping,
                    kept: set[tuple[str, str, str]] = frozenset()) -> int:
    """Drop what an interrupted final pass left (FKs, keys, indexes, triggers, policies,
    rules, extended statistics); the keys and indexes in ``kept`` (built early, per the
    journal) stay, since the final pass skips them."""
    params = {"schemas": list(mapping.target_schemas)}
    statements: list[sql.Composed] = []
    with target.transaction():
        for query in LEFTOVERS_SQL:
            for kind, schema, table, name, always in target.execute(query, params).fetchall():
                tag = f"{table} {name}" if kind == "CONSTRAINT" else name
                if always or (kind, schema, tag) not in kept:
                    statements.append(sql.SQL(DROP[kind]).format(
                        schema=sql.Identifier(schema), table=sql.Identifier(table or ""), name=sql.Identifier(name)))
        for statement in statements:
            target.execute(statement)
    return len(statements)


def _sequence_values(target: psycopg.Connection, mapping: SourceMapping) -> dict[str, list]:
    row = target.execute(f"SELECT detail FROM {journal.SCHEMA}.steps WHERE source = %s AND step = %s",
                         (mapping.name, "copy")).fetchone()   # the copy step's journal row
    return (row[0] or {}).get("sequences", {}) if row else {}


def sequence_schema(target: psycopg.Connection, mapping: SourceMapping, name: str) -> str | None:
    row = target.execute(queries.sections(__file__)["sequence_schema"],
                         (name, list(mapping.target_schemas))).fetchone()
    return row[0] if row else None


def set_sequences(target: psycopg.Connection, mapping: SourceMapping, values: dict[str, list]) -> None:
    for name, (last_value, is_called) in values.items():
        schema = sequence_schema(target, mapping, name)
        if schema is None:
            raise DatabaseError("unified", "target", f"post-data: sequence {name} of {mapping.name} has no "
                                "counterpart on the target")
        try:
            target.execute("SELECT pg_catalog.setval(%s::pg_catalog.regclass, %s, %s)",
                           (sql.Identifier(schema, name).as_string(target), last_value, is_called))
        except psycopg.Error as exc:
            raise failed(mapping, f"setting sequence {schema}.{name}", exc) from None


def refresh_matviews(target: psycopg.Connection, mapping: SourceMapping) -> None:
    """Matviews are recomputed from the copied rows (pg_dump --schema-only leaves them empty)."""
    rows = target.execute(queries.sections(__file__)["matviews"], (list(mapping.target_schemas),)).fetchall()
    for schema, name in rows:
        try:
            target.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, name)))
        except psycopg.Error as exc:
            raise failed(mapping, f"REFRESH MATERIALIZED VIEW {schema}.{name}", exc) from None


def analyze(target: psycopg.Connection, mapping: SourceMapping, skip: set[TableKey] = frozenset()) -> None:
    """ANALYZE what was not analyzed per table, and again every table with extended
    statistics: those objects come with the final pass, after the per-table ANALYZE."""
    for schema in mapping.target_schemas:
        rows = target.execute(queries.sections(__file__)["analyze_tables"], (schema,)).fetchall()
        for name, has_statistics in rows:
            if (schema, name) in skip and not has_statistics:
                continue
            try:
                target.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
            except psycopg.Error as exc:
                raise failed(mapping, f"ANALYZE {schema}.{name}", exc) from None
