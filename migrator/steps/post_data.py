"""post-data: indexes, constraints, triggers, policies, then sequence values,
materialized view contents and ANALYZE, once the rows are in.

Post-data comes from the same remapped pg_dump as the pre-data (schema step).
It is restored in one transaction, so a crash leaves none of it behind and a
rerun simply repeats it. Sequence positions are those the copy step read in its
snapshot, so they match the copied rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console, journal, pgtools
from migrator.db import connect
from migrator.mapping import SourceMapping, load_mappings
from migrator.settings import Settings
from migrator.steps import copy as copy_step
from migrator.steps import schema as schema_step

COMMAND = "post-data"
HELP = "build indexes/constraints/triggers, set sequences, refresh matviews, ANALYZE"
STEP = "post-data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", type=Path, default=None, help="where the schema step left its dumps")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    work_dir = args.work_dir or settings.config_file.parent / "backups" / "work"
    with connect(settings.target) as target:
        journal.ensure(target)
        journal.acquire_lock(target)
        for mapping in load_mappings(settings):
            run(settings, mapping, target, work_dir)
    return 0


def run(settings: Settings, mapping: SourceMapping, target: psycopg.Connection, work_dir: Path) -> None:
    if journal.step_done(target, mapping.name, STEP):
        console.console.print(f"  {mapping.name}: post-data already done on a previous run, skipping")
        return
    journal.start_step(target, mapping.name, STEP)
    dump = work_dir / f"{mapping.name}.target-schema.dump"
    listing = dump.with_suffix(".post-data.list")
    listing.write_text("\n".join(schema_step.filtered_list(dump, settings.target, set(mapping.target_schemas)))
                       + "\n")
    pgtools.run("pg_restore", ["--exit-on-error", "--single-transaction", "--no-owner", "--no-acl",
                               "--section=post-data", "-L", str(listing), "-d", settings.target.dbname, str(dump)],
                settings.target, what="post-data into the target")
    set_sequences(target, mapping)
    refresh_matviews(target, mapping)
    analyze(target, mapping)
    journal.finish_step(target, mapping.name, STEP)
    console.console.print(f"  {mapping.name}: indexes, constraints, triggers, sequences, ANALYZE done")


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
