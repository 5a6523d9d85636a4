"""post-data: indexes, constraints, triggers, policies, then sequence values,
materialized view contents and ANALYZE, once the rows are in.

Post-data comes from the same remapped pg_dump as the pre-data (schema step).
It is restored with pg_restore -j (indexes and constraints build in parallel).
If an earlier attempt died half-way, the objects it left in our schemas are
dropped first, so a rerun starts post-data clean. Sequence positions are those the copy step read in its
snapshot, so they match the copied rows.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console, journal, pgtools
from migrator.mapping import SourceMapping, load_mappings
from migrator.settings import Settings
from migrator.steps import copy as copy_step
from migrator.steps import schema as schema_step

COMMAND = "post-data"
HELP = "build indexes/constraints/triggers, set sequences, refresh matviews, ANALYZE"
STEP = "post-data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", type=Path, default=None, help="where the schema step left its dumps")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                        help="parallel index/constraint builds (default: CPU count)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    work_dir = args.work_dir or settings.work_dir
    with journal.locked_target(settings) as target:
        for mapping in load_mappings(settings):
            run(settings, mapping, target, work_dir, jobs=args.jobs)
    return 0


def run(settings: Settings, mapping: SourceMapping, target: psycopg.Connection, work_dir: Path,
        jobs: int = 2) -> None:
    if journal.step_done(target, mapping.name, STEP):
        console.console.print(f"  {mapping.name}: post-data already done on a previous run, skipping")
        return
    if journal.step_started(target, mapping.name, STEP):
        cleared = clear_post_data(target, list(mapping.target_schemas))
        console.console.print(f"  {mapping.name}: removed {cleared} objects left by an interrupted post-data")
    journal.start_step(target, mapping.name, STEP)
    dump = work_dir / f"{mapping.name}.target-schema.dump"
    listing = dump.with_suffix(".post-data.list")
    listing.write_text("\n".join(schema_step.filtered_list(dump, settings.target, set(mapping.target_schemas)))
                       + "\n")
    pgtools.run("pg_restore", ["--exit-on-error", f"--jobs={max(jobs, 1)}", "--no-owner", "--no-acl",
                               "--section=post-data", "-L", str(listing), "-d", settings.target.dbname, str(dump)],
                settings.target, what="post-data into the target")
    set_sequences(target, mapping)
    refresh_matviews(target, mapping)
    analyze(target, mapping)
    journal.finish_step(target, mapping.name, STEP)
    console.console.print(f"  {mapping.name}: indexes, constraints, triggers, sequences, ANALYZE done")


# What post-data creates, in an order that drops dependants first. Inherited
# constraints/indexes of partitions go with their parent's.
DROP_CONSTRAINTS = ("SELECT format('ALTER TABLE %%I.%%I DROP CONSTRAINT IF EXISTS %%I', n.nspname, c.relname,"
                    " k.conname) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = ANY(%s) AND k.contype = %s AND k.conparentid = 0 AND k.coninhcount = 0")
DROP_INDEXES = ("SELECT format('DROP INDEX IF EXISTS %%I.%%I CASCADE', n.nspname, i.relname) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace"
                " WHERE n.nspname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)"
                " AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.oid)")
DROP_TRIGGERS = ("SELECT format('DROP TRIGGER IF EXISTS %%I ON %%I.%%I', t.tgname, n.nspname, c.relname)"
                 " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                 " WHERE n.nspname = ANY(%s) AND NOT t.tgisinternal AND t.tgparentid = 0")
DROP_POLICIES = ("SELECT format('DROP POLICY IF EXISTS %%I ON %%I.%%I', policyname, schemaname, tablename)"
                 " FROM pg_policies WHERE schemaname = ANY(%s)")


def clear_post_data(target: psycopg.Connection, schemas: list[str]) -> int:
    """Drop what an interrupted post-data left (FKs, keys, indexes, triggers, policies)."""
    statements: list[str] = []
    with target.transaction():
        for contype in ("f", "p", "u", "x"):    # foreign keys first: they depend on the keys
            statements += [r[0] for r in target.execute(DROP_CONSTRAINTS, (schemas, contype)).fetchall()]
        for query in (DROP_INDEXES, DROP_TRIGGERS, DROP_POLICIES):
            statements += [r[0] for r in target.execute(query, (schemas,)).fetchall()]
        for stmt in statements:
            target.execute(stmt)
    return len(statements)


def _sequence_values(target: psycopg.Connection, mapping: SourceMapping) -> dict[str, list]:
    row = target.execute(f"SELECT detail FROM {journal.SCHEMA}.steps WHERE source = %s AND step = %s",
                         (mapping.name, copy_step.STEP)).fetchone()
    return (row[0] or {}).get("sequences", {}) if row else {}


def sequence_schema(target: psycopg.Connection, mapping: SourceMapping, name: str) -> str | None:
    row = target.execute("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                         " WHERE c.relkind = 'S' AND c.relname = %s AND n.nspname = ANY(%s)",
                         (name, list(mapping.target_schemas))).fetchone()
    return row[0] if row else None


def set_sequences(target: psycopg.Connection, mapping: SourceMapping) -> None:
    for name, (last_value, is_called) in _sequence_values(target, mapping).items():
        schema = sequence_schema(target, mapping, name)
        if schema is None:
            raise psycopg.errors.UndefinedTable(f"sequence {name} of {mapping.name} has no counterpart on the target")
        target.execute("SELECT setval(%s::regclass, %s, %s)",
                       (sql.Identifier(schema, name).as_string(target), last_value, is_called))


def refresh_matviews(target: psycopg.Connection, mapping: SourceMapping) -> None:
    """Matviews are recomputed from the copied rows (pg_dump --schema-only leaves them empty)."""
    rows = target.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE c.relkind = 'm' AND n.nspname = ANY(%s) ORDER BY 1, 2",
                          (list(mapping.target_schemas),)).fetchall()
    for schema, name in rows:
        target.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, name)))


def analyze(target: psycopg.Connection, mapping: SourceMapping) -> None:
    for schema in mapping.target_schemas:
        rows = target.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')", (schema,)).fetchall()
        for (name,) in rows:
            target.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, name)))
