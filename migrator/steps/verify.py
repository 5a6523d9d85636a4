"""verify: prove the target holds exactly what the sources hold.

Data: per table, row count and two 64-bit content hashes summed over all rows,
computed inside each server (no rows shipped to the migrator). Rows are hashed
from their text form with both sessions pinned to the same output settings
(DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output,
lc_monetary), so the same value prints the same way on PostgreSQL 15 and 17;
hashtextextended is the same function on every version since 11. The sum is
order-independent, so the two servers need not agree on row order.

Objects: columns (type, nullability, default, generated/identity), constraints,
indexes (and validity), triggers (and enabled state), views, policies and RLS
flags, comments, and sequence positions. Both sessions keep the migrator's
pinned search_path (pg_catalog only); the schema qualifiers that differ by
design (`letta.vector` vs `extensions.vector`) are stripped before comparing.

Trust: the target side reads as the source's loader role (migrator/loader.py),
given SELECT on exactly that source's tables for the length of the run, never
as the superuser. Only plain tables are read, on both sides: a relation that
is no longer a table (say, a view calling the app's own function) is refused
and reported, not read. Every function and operator in the hashing queries is
schema-qualified.
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

from migrator import catalog, console, loader, queries
from migrator.db import connect, require_superuser
from migrator.errors import VerificationError
from migrator.mapping import SourceMapping, load_mappings
from migrator.settings import Settings

COMMAND = "verify"
LOCK = "exclusive"  # resets the loaders' passwords and grants (loader.ensure) (migrator/runlock.py)
HELP = "compare every table (count + checksum) and object between sources and target"

PINNED = ("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';"
          " SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C';")
# Each row's text is built once and hashed twice: PostgreSQL does not share the two
# `row::text` of a plain select list, and printing a row (a vector(4096), a jsonb) costs
# far more than hashing it. A lateral unnest, unlike an OFFSET 0 subquery, keeps the
# scan parallel. sum(bigint) is exact (numeric result), as the ::numeric sum was.
# Aliases are qualified (`_row.*`, `_text.txt`): a table may have columns named t or r.
CHECKSUM_SQL = ("SELECT pg_catalog.count(*),"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 0::pg_catalog.int8)), 0)"
                "::pg_catalog.text,"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 1::pg_catalog.int8)), 0)"
                "::pg_catalog.text"
                " FROM ONLY {} AS _row"
                " CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[(_row.*)::pg_catalog.text]) AS _text(txt)")
RELKIND_SQL = ("SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
               " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
               " WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relname OPERATOR(pg_catalog.=) %s")

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
                f"table {t.target}: source {t.source_rows} rows / target {t.target_rows} rows"
                + ("" if t.source_rows != t.target_rows else " (same count, different content)")
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
    count, h0, h1 = conn.execute(sql.SQL(CHECKSUM_SQL).format(sql.Identifier(schema, table))).fetchone()
    return int(count), f"{h0}/{h1}"


def _strip_schemas(text: str, schemas: list[str]) -> str:
    """Drop schema qualifiers that differ by design between source and target."""
    for schema in schemas:
        text = re.sub(rf'(?<![\w"$])(?:{re.escape(schema)}|"{re.escape(schema)}")\.', "", text)
    return " ".join(text.split())


BUCKETS = 64
INT_PK_SQL = queries.sections(__file__)["int_primary_key"]
RANGE_SQL = ("SELECT ({col} OPERATOR(pg_catalog.-) {lo}) OPERATOR(pg_catalog./) {width} AS bucket,"
             " pg_catalog.count(*), pg_catalog.sum(pg_catalog.hashtextextended((_row.*)::pg_catalog.text,"
             " 0::pg_catalog.int8)::pg_catalog.numeric)::pg_catalog.text FROM ONLY {tbl} AS _row GROUP BY 1")


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


def _inventory(conn: psycopg.Connection, schemas: list[str], strip: list[str]) -> dict[tuple[str, str], str]:
    found = {}
    for kind, query in INVENTORY_SQL.items():
        for key, value in conn.execute(query, {"schemas": schemas}).fetchall():
            found[(kind, key)] = _strip_schemas(value or "", strip)
    return found


def _extension_schemas(conn: psycopg.Connection) -> list[str]:
    return [e.schema for e in catalog.extensions(conn)]


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
    src = _inventory(source, [mapping.schema], [mapping.schema, *_extension_schemas(source)])
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
    """One source against its target schemas; the target is read as the source's loader,
    with SELECT on that source's tables granted for this call only."""
    hands = loader.ensure(admin, settings, mapping)
    loader.revoke_reads(admin, mapping)        # what a killed earlier verify left
    loader.grant_reads(admin, mapping)
    try:
        return _compare(settings, mapping, hands)
    finally:
        loader.revoke_reads(admin, mapping)


def _compare(settings: Settings, mapping: SourceMapping, hands) -> SourceResult:
    result = SourceResult(mapping.name)
    with connect(mapping.db, autocommit=False) as source, \
            connect(hands, application_name="consolidation-verify") as target:
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
    with connect(settings.target) as admin, loader.logins(admin, settings, mappings):
        require_superuser(admin, settings.target)
        results = [verify_source(settings, m, admin) for m in mappings]
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
