"""The online cutover's row checksums, taken before the window and brought up to date
inside it from the rows that changed since (docs/online.md, "Checksums before the window").

Before the writers stop: the change logs are installed (migrator/engine/changelog.py),
then every published table is hashed on the source in a REPEATABLE READ snapshot S and
on its staged copy in a reader's snapshot T, both kept (exported by sessions that read
nothing, so they hold no lock). Inside the window (writers
stopped, the target caught up, the apply paused), for each table with K = the keys the
log holds:

    sums(now) = sums(at S or T) - sums(rows of K at S or T) + sums(rows of K now)

on each side, and the two are compared. The sums add up over any split of a table's rows
(checksums.table_sums), so this is exactly the full hash of each side now, provided no
row outside K changed since S on the source or since T on the target. That holds: every
change on the source after S is applied on the target after the logs were installed, and
logged with its old and new key; on the target only the apply writes the staged tables.
A table that was truncated, has no key of a plain built-in type, or whose changed keys
are a large share of its rows is hashed whole on both sides instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from migrator.config.mapping import SourceMapping
from migrator.config.settings import Settings
from migrator.engine import changelog, checksums, loader, replication
from migrator.engine.db import connect
from migrator.errors import VerificationError

# Past this share of a table's rows changed, hashing it whole is cheaper than by key.
WHOLE_SHARE = 0.25

Sums = tuple[int, int, int]


@dataclass
class Side:
    """A snapshot kept by an exporting session that reads nothing (so it holds no lock: an
    app's TRUNCATE or the apply's is never blocked by it), and a session that reads in it,
    one short transaction at a time."""
    snapshot: str
    conn: psycopg.Connection

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self.conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
        try:
            yield self.conn
        finally:
            self.conn.rollback()        # its locks go; the snapshot stays with the exporter


def side(stack: ExitStack, hands) -> Side:
    exporter = stack.enter_context(connect(hands, autocommit=False, application_name="consolidation-snapshot"))
    exporter.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    snapshot = exporter.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()[0]
    conn = stack.enter_context(connect(hands, autocommit=False, application_name="consolidation-checksums"))
    conn.execute(checksums.PINNED)
    conn.commit()
    return Side(snapshot, conn)


@dataclass
class SourceBaseline:
    mapping: SourceMapping
    keys: dict[str, changelog.Key]
    source: Side                        # the source at S
    target: Side                        # the staged copy at T (a reader's sessions)
    at_source: dict[str, Sums] = field(default_factory=dict)
    at_target: dict[str, Sums] = field(default_factory=dict)


@dataclass
class Baseline:
    """Open snapshots and their sums, per source; ``close`` releases them (before anything
    drops the logs or moves the tables: an open snapshot's locks would block it)."""
    stack: ExitStack = field(default_factory=ExitStack)
    sources: dict[str, SourceBaseline] = field(default_factory=dict)
    seconds: float = 0.0
    rows: int = 0               # hashed on each side

    def close(self) -> None:
        self.sources.clear()
        self.stack.close()


def take(settings: Settings, mappings: list[SourceMapping]) -> Baseline:
    """Logs installed, then both sides hashed in snapshots that stay open (the apps run)."""
    found = Baseline()
    try:
        admin = found.stack.enter_context(connect(settings.target))
        for mapping in mappings:
            found.sources[mapping.name] = take_source(settings, mapping, admin, found.stack)
        found.rows = sum(s[0] for b in found.sources.values() for s in b.at_source.values())
    except BaseException:
        found.close()
        raise
    return found


def take_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection,
                stack: ExitStack) -> SourceBaseline:
    with connect(mapping.db) as probe:
        tables = replication.published_tables(probe, mapping)
    changelog.create_schema(admin, mapping)
    with loader.logins(admin, settings, [mapping], keep_workers=True), \
            connect(loader.ensure(admin, settings, mapping)) as conn:
        keys = changelog.install(conn, mapping, tables)
    # Both snapshots after the logs exist: any later change is logged.
    source = side(stack, mapping.db)
    target = side(stack, stack.enter_context(checksums.reader(admin, settings.target, schemas(mapping))))
    found = SourceBaseline(mapping, keys, source, target)
    with ThreadPoolExecutor(max_workers=2) as pool:     # both servers at once, as verify
        src = pool.submit(all_sums, source, mapping.schema, tables)
        tgt = pool.submit(all_sums, target, mapping.schema, tables)
        found.at_source, found.at_target = src.result(), tgt.result()
    return found


def all_sums(at: Side, schema: str, tables: list[str]) -> dict[str, Sums]:
    with at.reading() as conn:
        return {t: checksums.table_sums(conn, schema, t) for t in tables}


def key_sums(at: Side, schema: str, table: str, key: changelog.Key, values: list) -> Sums:
    with at.reading() as conn:
        return checksums.table_sums(conn, schema, table, key, values)


def schemas(mapping: SourceMapping) -> list[str]:
    """What a reader reads: the staged tables and their change logs."""
    return [mapping.schema, changelog.schema_of(mapping)]


def compare_now(base: SourceBaseline, source_now: psycopg.Connection,
                target_now: psycopg.Connection) -> tuple[dict[str, int], list[str]]:
    """Each table's sums brought up to now on both sides, compared. ``source_now``: the
    source after the writers stopped; ``target_now``: a reader of the staged copy with the
    apply paused. Returns the source's rows now and what was hashed inside the window
    (``changed`` keys, ``whole`` tables' rows and their names), and
    the differences (checksums.differences' lines)."""
    mapping, schema = base.mapping, base.mapping.schema
    lost = changelog.installed(target_now, mapping, list(base.keys))
    if lost:
        raise VerificationError(f"source '{mapping.name}': the change log triggers of {', '.join(lost[:3])} are "
                                "gone or disabled: nothing says which rows changed; nothing moved")
    whole = changelog.whole(target_now, mapping)
    expected, found, hashed = {}, {}, {"rows": 0, "changed": 0, "whole": 0, "whole_tables": []}
    for table, key in base.keys.items():
        values = None if not key.columns or table in whole else changelog.changed_keys(target_now, mapping, table, key)
        if values is None or len(values) > WHOLE_SHARE * max(base.at_source[table][0], 1):
            src = checksums.table_sums(source_now, schema, table)
            tgt = checksums.table_sums(target_now, schema, table)
            hashed["whole"] += src[0]
            hashed["whole_tables"].append(f"{mapping.name}.{table}")
        else:
            src = brought_up(base.at_source[table], key_sums(base.source, schema, table, key, values),
                             checksums.table_sums(source_now, schema, table, key, values))
            tgt = brought_up(base.at_target[table], key_sums(base.target, schema, table, key, values),
                             checksums.table_sums(target_now, schema, table, key, values))
            hashed["changed"] += len(values)
        expected[table], found[table] = listed(src), listed(tgt)
        hashed["rows"] += src[0]
    return hashed, checksums.differences(expected, found, where="the staged copy", before="on the source")


def brought_up(whole_then: Sums, keys_then: Sums, keys_now: Sums) -> Sums:
    return tuple(a - b + c for a, b, c in zip(whole_then, keys_then, keys_now))


def listed(sums: Sums) -> list:
    """checksums.differences' ``[rows, hash]``."""
    return [sums[0], checksums.hash_text(sums[1], sums[2])]
