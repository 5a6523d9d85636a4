"""verify: prove the target holds exactly what the sources hold.

Data: per table, row count and two 64-bit content hashes summed over all rows,
computed inside each server (no rows shipped to the migrator), the one way the
migrator reads app rows (migrator/engine/checksums.py: each column in a form exact for its
type, binary where that is the same on PostgreSQL 15 and 17, its text otherwise, with
both sessions pinned to the same output settings).

Objects: columns (type, nullability, default, generated/identity), constraints,
indexes (and validity), triggers (and enabled state), views, policies and RLS
flags, comments, routines and their settings, and sequence positions. Both
sessions keep the migrator's pinned search_path (pg_catalog only); the schema
qualifiers that differ by design (`letta.vector` vs `extensions.vector`) are
stripped before comparing, from names (a routine's identity names its argument
types) as from definitions, and a routine's search_path is compared as the
schema step rewrote it (migrator/engine/routines.py). A routine body written as text is
compared exactly, nothing stripped: the source's as the schema step rewrote it
(migrator/engine/bodies.py) against the target's.

Trust: the target side reads as a throwaway reader (checksums.reader: no superuser,
BYPASSRLS, SELECT on exactly that source's target tables, its own random password,
dropped afterwards), never as the superuser; it is not the loader, so a verify
never resets the credentials of a running migrate. Only plain tables are read,
on both sides: a relation that is no longer a table (say, a view calling the
app's own function) is refused and reported, not read. Every function and
operator in the hashing queries is schema-qualified.
"""

from __future__ import annotations

import argparse
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from rich.markup import escape
from rich.table import Table

from migrator import console
from migrator.config.mapping import SourceMapping, load_mappings
from migrator.config.settings import Settings
from migrator.engine import bodies, catalog, checksums, queries, routines
from migrator.engine.db import connect, require_superuser
from migrator.errors import VerificationError

COMMAND = "verify"
LOCK = "shared"  # reads through a reader of its own; a writer would move the target under it (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
HELP = "compare every table (count + checksum) and object between sources and target"

# The hashing itself is the one way the migrator reads app rows (migrator/engine/checksums.py).
PINNED, CHECKSUM_SQL, RANGE_SQL = checksums.PINNED, checksums.CHECKSUM_SQL, checksums.RANGE_SQL
RELKIND_SQL = queries.sections(__file__)["relkind"]          # verify.sql

# Object inventories (verify.sql, "inventory.<kind>"): each yields (key, value).
INVENTORY_SQL = {name.removeprefix("inventory."): query
                 for name, query in queries.sections(__file__).items() if name.startswith("inventory.")}


@dataclass
class TableResult:
    table: str
    target: str
    source_rows: int
    target_rows: int
    source_hash: str
    target_hash: str
    ranges: list[str] = field(default_factory=list)   # key ranges that differ (on mismatch)

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_hash == self.target_hash


@dataclass
class SourceResult:
    source: str
    tables: list[TableResult] = field(default_factory=list)
    object_differences: list[str] = field(default_factory=list)
    sequence_differences: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        refused = [f"table {t.target}: target relation is {t.target_hash}" for t in self.tables
                   if t.target_hash.startswith("not a table")]
        data = refused + [
                checksums.row_difference(t.target, t.source_rows, t.target_rows, "source", "target")
                + (f"; differing key ranges: {'; '.join(t.ranges)}" if t.ranges else "")
                for t in self.tables if not t.ok and not t.target_hash.startswith("not a table")]
        return data + self.sequence_differences + self.object_differences


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, reports_dir)
    return 0


def _session(conn: psycopg.Connection) -> None:
    conn.execute(PINNED)


def _checksum(conn: psycopg.Connection, schema: str, table: str) -> tuple[int, str]:
    return checksums.table_hash(conn, schema, table)


def _strip_schemas(text: str, schemas: list[str]) -> str:
    """Drop schema qualifiers that differ by design between source and target."""
    for schema in schemas:
        text = re.sub(rf'(?<![\w"$])(?:{re.escape(schema)}|"{re.escape(schema)}")\.', "", text)
    return " ".join(text.split())


BUCKETS = 64
INT_PK_SQL = queries.sections(__file__)["int_primary_key"]

def locate_ranges(source: psycopg.Connection, target: psycopg.Connection, src_table: str, tgt_table: str,
                  schema: str, tgt_schema: str) -> list[str]:
    """For a table with an integer primary key, name the key ranges whose rows differ."""
    pk = source.execute(INT_PK_SQL, (sql.Identifier(schema, src_table).as_string(source),)).fetchone()
    if not pk:
        return []
    col = sql.Identifier(pk[0])
    lo, hi = source.execute(sql.SQL("SELECT pg_catalog.min({0}), pg_catalog.max({0}) FROM ONLY {1}").format(
        col, sql.Identifier(schema, src_table))).fetchone()
    lo, hi = lo or 0, hi or 0
    width = max((hi - lo) // BUCKETS + 1, 1)

    def buckets(conn: psycopg.Connection, sch: str, tbl: str) -> dict[int, tuple]:
        query = sql.SQL(RANGE_SQL).format(col=col, lo=sql.Literal(lo), width=sql.Literal(width),
                                          tbl=sql.Identifier(sch, tbl))
        return {int(b) if b is not None else None: (n, h) for b, n, h in conn.execute(query).fetchall()}

    src, tgt = buckets(source, schema, src_table), buckets(target, tgt_schema, tgt_table)
    bad = sorted((b for b in set(src) | set(tgt) if src.get(b) != tgt.get(b)), key=lambda b: (b is None, b or 0))
    return [f"{pk[0]} NULL" if b is None else
            f"{pk[0]} in [{lo + b * width}, {lo + (b + 1) * width}): {src.get(b, (0,))[0]} vs {tgt.get(b, (0,))[0]} rows"
            for b in bad[:5]]


def _target_checksum(conn: psycopg.Connection, schema: str, table: str) -> tuple[int, str]:
    """Count and hash a target table; a missing relation, or one that is not a plain
    table any more, is reported and never read (reading a view runs its code)."""
    found = conn.execute(RELKIND_SQL, (schema, table)).fetchone()
    if found is None:
        return -1, "missing"
    if found[0] != "r":
        return -1, f"not a table (relkind '{found[0]}'): refused to read it"
    return _checksum(conn, schema, table)


def _inventory(conn: psycopg.Connection, schemas: list[str], strip: list[str],
               search_path=routines.normalized, body=lambda text: text) -> dict[tuple[str, str], str]:
    """(kind, name) -> definition, both with the schema qualifiers in ``strip`` removed:
    an identity names its argument types (`vector` is `letta.vector` on the source,
    `extensions.vector` on the target). ``search_path`` maps a routine's search_path
    setting to what it is compared as, ``body`` a routine's source text (which keeps
    every qualifier: comments and strings are compared as they are)."""
    found = {}
    for kind, query in INVENTORY_SQL.items():
        for key, value in conn.execute(query, {"schemas": schemas}).fetchall():
            if kind == "routine_setting" and key.endswith(" search_path"):
                value = search_path(value or "")
            if kind == "routine_source":
                found[(kind, _strip_schemas(key, strip))] = body(value or "")
                continue
            found[(kind, _strip_schemas(key, strip))] = _strip_schemas(value or "", strip)
    return found


# Object kinds whose deparsed text a newer major version writes differently for
# the same definition: PG 16+ drops redundant table qualifiers in views, and a
# restore re-parses expressions, folding casts (`(ARRAY['a'::varchar])::text[]`
# becomes `ARRAY[('a'::varchar)::text]`). Across major versions these are
# compared without casts, parentheses and (for views) qualifiers; the data
# checksums are unaffected.
CROSS_VERSION_KINDS = ("view", "constraint", "index", "column", "policy", "trigger")
_CAST = re.compile(r'::(?:"[^"]+"|[a-z_][a-z0-9_]*)(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))?'
                   r'(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*')
_QUALIFIER = re.compile(r'(?<![\w"$])(?:[a-z_][a-z0-9_$]*|"[^"]+")\.(?=[a-z_"])')


def cross_version_form(text: str, qualifiers: bool = False) -> str:
    text = _CAST.sub("", text)
    if qualifiers:
        text = _QUALIFIER.sub("", text)
    text = " ".join(text.replace("(", " ").replace(")", " ").split())
    return re.sub(r"\s*([\[\],])\s*", r"\1", text)


def differing_part(source: str, target: str, context: int = 40) -> str:
    """Where two long definitions part ways: the text around the first difference on each side."""
    at = next((i for i, (a, b) in enumerate(zip(source, target)) if a != b), min(len(source), len(target)))
    start = max(at - context, 0)

    def excerpt(text: str) -> str:
        return ("..." if start else "") + text[start:at + context] + ("..." if len(text) > at + context else "")
    return f"source '{excerpt(source)}' != target '{excerpt(target)}' (from character {at + 1})"


def compare_objects(source: psycopg.Connection, target: psycopg.Connection, mapping: SourceMapping) -> list[str]:
    exts = catalog.extensions(source)
    kept_inside = routines.extension_in_schema(exts, mapping)
    # The source's search_path settings and routine bodies are compared as the schema step rewrote them.
    routes = {t.name: mapping.route(t.name, t.has_vector) for t in catalog.tables(source, mapping.schema)}
    placed = bodies.placement(source, mapping, routes, kept_inside)
    rewritten = {p.body: p.rewritten for p in bodies.plans(source, [mapping.schema], placed) if p.rewritten}
    src = _inventory(source, [mapping.schema], [mapping.schema, *(e.schema for e in exts)],
                     lambda value: routines.normalized(value, mapping, kept_inside),
                     lambda text: rewritten.get(text, text))
    tgt = _inventory(target, list(mapping.target_schemas), [*mapping.target_schemas, "extensions"])
    if source.info.server_version // 10000 != target.info.server_version // 10000:
        for inv in (src, tgt):
            for key in [k for k in inv if k[0] in CROSS_VERSION_KINDS]:
                inv[key] = cross_version_form(inv[key], qualifiers=key[0] == "view")
    diffs = []
    for key in sorted(set(src) | set(tgt)):
        kind, name = key
        if key not in tgt:
            diffs.append(f"{kind} {name}: missing on the target")
        elif key not in src:
            diffs.append(f"{kind} {name}: only on the target")
        elif src[key] != tgt[key]:
            diffs.append(f"{kind} {name}: {differing_part(src[key], tgt[key])}")
    return diffs


def compare_sequences(source: psycopg.Connection, target: psycopg.Connection, mapping: SourceMapping) -> list[str]:
    diffs = []
    located = dict(target.execute(
        "SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S' AND n.nspname = ANY(%s)", (list(mapping.target_schemas),)).fetchall())
    for name in catalog.sequences(source, mapping.schema):
        query = sql.SQL("SELECT last_value, is_called FROM {}")
        src = source.execute(query.format(sql.Identifier(mapping.schema, name))).fetchone()
        if name not in located:
            diffs.append(f"sequence {name}: missing on the target")
            continue
        tgt = target.execute(query.format(sql.Identifier(located[name], name))).fetchone()
        if tuple(src) != tuple(tgt):
            diffs.append(f"sequence {located[name]}.{name}: source {tuple(src)} != target {tuple(tgt)}")
    return diffs


def verify_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection) -> SourceResult:
    """One source against its target schemas; the target is read by a reader that can
    read that source's target tables only, for this call only."""
    with checksums.reader(admin, settings.target, list(mapping.target_schemas)) as hands:
        return _compare(settings, mapping, hands)


def _verify_alone(settings: Settings, mapping: SourceMapping) -> SourceResult:
    """verify_source on a superuser session of its own (one session is one thread's)."""
    with connect(settings.target) as admin:
        return verify_source(settings, mapping, admin)


def _compare(settings: Settings, mapping: SourceMapping, hands) -> SourceResult:
    result = SourceResult(mapping.name)
    with connect(mapping.db, autocommit=False) as source, \
            connect(hands, read_only=True, application_name="consolidation-verify") as target:
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        _session(source)
        _session(target)
        tables = [t for t in catalog.tables(source, mapping.schema) if t.copies_data]
        placed = [(t, mapping.route(t.name, t.has_vector)) for t in tables]
        # Both servers hash at the same time: verify takes the longer side, not the sum.
        with ThreadPoolExecutor(max_workers=2) as pool:
            src_future = pool.submit(lambda: [_checksum(source, t.schema, t.name) for t, _ in placed])
            tgt_future = pool.submit(lambda: [_target_checksum(target, schema, t.name) for t, schema in placed])
            src_sums, tgt_sums = src_future.result(), tgt_future.result()
        for (t, schema), (src_rows, src_hash), (tgt_rows, tgt_hash) in zip(placed, src_sums, tgt_sums):
            found = TableResult(t.name, f"{schema}.{t.name}", src_rows, tgt_rows, src_hash, tgt_hash)
            if not found.ok and tgt_rows >= 0:
                found.ranges = locate_ranges(source, target, t.name, t.name, t.schema, schema)
            result.tables.append(found)
        result.sequence_differences = compare_sequences(source, target, mapping)
        result.object_differences = compare_objects(source, target, mapping)
        source.rollback()
    return result


def render(results: list[SourceResult]) -> Table:
    table = Table(title="Verification")
    for col in ("source", "tables", "rows (source)", "rows (target)", "data diffs", "object diffs", "result"):
        table.add_column(col)
    for r in results:
        bad = sum(1 for t in r.tables if not t.ok)
        objs = len(r.object_differences) + len(r.sequence_differences)
        table.add_row(escape(r.source), str(len(r.tables)), str(sum(t.source_rows for t in r.tables)),
                      str(sum(max(t.target_rows, 0) for t in r.tables)), str(bad), str(objs),
                      "[green]identical[/green]" if not r.differences else "[red]DIFFERENT[/red]")
    return table


def markdown(results: list[SourceResult]) -> str:
    lines = ["# Verification report", ""]
    for r in results:
        lines += [f"## {r.source}: {'identical' if not r.differences else 'DIFFERENT'}", "",
                  "| table | source rows | target rows | checksum |", "|---|---|---|---|"]
        lines += [f"| {t.target} | {t.source_rows} | {t.target_rows} | {'equal' if t.ok else 'DIFFERENT'} |"
                  for t in r.tables]
        if r.differences:
            lines += ["", "Differences:", ""] + [f"- {d}" for d in r.differences]
        lines.append("")
    return "\n".join(lines)


def run(settings: Settings, reports_dir: Path | None) -> list[SourceResult]:
    console.step("V", "verify: row counts, checksums and objects, source vs target")
    mappings = load_mappings(settings)
    with connect(settings.target) as admin:
        require_superuser(admin, settings.target)
    # Every source at once: each has its own servers, reader and target schemas, so the
    # window's verify takes the slowest source, not the sum (the readers' grants queue
    # on checksums' advisory lock, not on each other's catalog rows).
    with ThreadPoolExecutor(max_workers=max(len(mappings), 1)) as pool:
        results = list(pool.map(lambda m: _verify_alone(settings, m), mappings))
    console.print_table(render(results))
    if reports_dir is not None:
        console.write_json(reports_dir / "verification.json", [
            {"source": r.source, "identical": not r.differences, "differences": r.differences,
             "tables": [asdict(t) | {"ok": t.ok} for t in r.tables]} for r in results])
        (reports_dir / "verification.md").write_text(markdown(results), encoding="utf-8")
    problems = [f"{r.source}: {d}" for r in results for d in r.differences]
    for line in problems[:20]:
        console.warn("  difference", line, style="red")
    if problems:
        first = " ".join(problems[0].split())[:200]
        raise VerificationError(f"verification found {len(problems)} difference(s); first: {first}")
    return results
