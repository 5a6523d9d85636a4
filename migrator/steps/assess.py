"""assess: what each source holds, before anything moves (read-only).

Per source: schemas, tables with exact row counts and sizes, extensions and
their schemas, sequences, views, functions, triggers, foreign keys, partitioned
tables, large objects, and connected clients; and what the move will do to the
routines: each routine setting it rewrites (search_path,
default_text_search_config: migrator/engine/routines.py), each reference in a body that
it rewrites, before and after (migrator/engine/bodies.py), and each body
that names the schema where the parser cannot check it (refused by `migrate`
unless accepted by name in accept_unchecked_routines). Written as
reports/assessment.json and reports/assessment.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import psycopg
from psycopg import sql
from rich.markup import escape
from rich.table import Table

from migrator import console
from migrator.config.mapping import SourceMapping, load_mappings
from migrator.config.settings import Settings
from migrator.engine import bodies, catalog, routines
from migrator.engine.db import connect
from migrator.engine.predata import plan_bodies

COMMAND = "assess"
LOCK = None  # reads the sources only (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
HELP = "inventory every source (exact row counts, sizes, objects, clients); read-only"

QUERIES = {
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'"
               " ORDER BY 1",
    "sequences": "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %(s)s ORDER BY 1",
    "views": "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE n.nspname = %(s)s AND c.relkind IN ('v', 'm') ORDER BY 1",
    "functions": "SELECT p.proname"
                 " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s"
                 " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
                 " AND d.objid = p.oid AND d.deptype = 'e') ORDER BY 1",
    "triggers": "SELECT c.relname || '.' || t.tgname, t.tgenabled::text FROM pg_trigger t JOIN pg_class c"
                " ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %(s)s AND NOT t.tgisinternal ORDER BY 1",
    "foreign_keys": "SELECT conrelid::regclass::text, conname, confrelid::regclass::text FROM pg_constraint k"
                    " JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = %(s)s AND contype = 'f'"
                    " ORDER BY 1, 2",
    "clients": "SELECT coalesce(nullif(application_name, ''), '?'), coalesce(usename, '?'),"
               " coalesce(host(client_addr), 'local'), count(*) FROM pg_stat_activity"
               " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
               " GROUP BY 1, 2, 3 ORDER BY 4 DESC",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, reports_dir)
    return 0


def exact_rows(conn: psycopg.Connection, t: catalog.TableInfo) -> int:
    return conn.execute(sql.SQL("SELECT pg_catalog.count(*) FROM ONLY {}").format(t.ident())).fetchone()[0]


def assess_source(mapping: SourceMapping) -> dict:
    with connect(mapping.db) as conn:
        params = {"s": mapping.schema}
        facts: dict = {"source": mapping.name, "database": mapping.db.dbname, "schema": mapping.schema,
                       "server_version": conn.execute("SHOW server_version").fetchone()[0],
                       "size_bytes": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]}
        facts["tables"] = [
            {"name": t.name, "target_schema": mapping.route(t.name, t.has_vector), "kind": t.kind,
             "partition": t.is_partition, "unlogged": t.persistence == "u", "has_vector": t.has_vector,
             "rows": exact_rows(conn, t) if t.copies_data else None, "size_bytes": t.size_bytes}
            for t in catalog.tables(conn, mapping.schema)]
        facts["extensions"] = [{"name": e.name, "schema": e.schema, "version": e.version}
                               for e in catalog.extensions(conn)]
        for key, query in QUERIES.items():
            facts[key] = [list(r) for r in conn.execute(query, params).fetchall()]
        facts["partitioned_tables"] = [t["name"] for t in facts["tables"] if t["kind"] == "p"]
        facts["large_objects"] = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
        kept_inside = routines.extension_in_schema(catalog.extensions(conn), mapping)
        facts["rewritten_settings"] = [r.describe() for r in routines.plan(conn, [mapping.schema], mapping,
                                                                          kept_inside)]
        routes = {t["name"]: t["target_schema"] for t in facts["tables"]}
        _, planned = plan_bodies(conn, mapping, routes, catalog.extensions(conn))
        facts["rewritten_bodies"] = [line for plan in planned for line in plan.describe()]
        facts["unchecked_routines"] = bodies.unchecked_lines(planned, mapping)
        facts["warnings"] = [
            f"{u['routine']} names schema '{mapping.schema}' in its body where the rewrite cannot check it"
            + (" (accepted: it moves with those parts unchanged)" if u["accepted"] else
               f"; migrate refuses it unless accept_unchecked_routines lists \"{u['accept_as']}\"")
            for u in facts["unchecked_routines"]]
        # Custom settings naming the schema: refused by migrate (migrator/engine/routines.py).
        facts["warnings"] += [f"{u.describe(mapping.schema)}: a custom setting the move cannot rewrite; "
                              "migrate refuses it" for u in routines.unchecked(conn, mapping)]
    return facts


def markdown(all_facts: list[dict]) -> str:
    lines = ["# Assessment", ""]
    for f in all_facts:
        lines += [f"## {f['source']} ({f['database']}.{f['schema']}, PostgreSQL {f['server_version']})", "",
                  "| table | target schema | rows | size (bytes) | notes |", "|---|---|---|---|---|"]
        for t in f["tables"]:
            notes = ", ".join(n for n, on in (("vector", t["has_vector"]), ("unlogged", t["unlogged"]),
                                               ("partition", t["partition"]), ("partitioned", t["kind"] == "p")) if on)
            lines.append(f"| {t['name']} | {t['target_schema']} | {t['rows'] if t['rows'] is not None else '-'} "
                         f"| {t['size_bytes']} | {notes} |")
        lines += ["", f"Extensions: {', '.join(e['name'] + ' in ' + e['schema'] for e in f['extensions']) or 'none'}",
                  f"Sequences: {len(f['sequences'])}, views: {len(f['views'])}, functions: {len(f['functions'])}, "
                  f"triggers: {len(f['triggers'])}, foreign keys: {len(f['foreign_keys'])}, "
                  f"large objects: {f['large_objects']}",
                  f"Clients: {', '.join(f'{a} ({u}@{h}) x{n}' for a, u, h, n in f['clients']) or 'none'}", ""]
        lines += [f"- warning: {w}" for w in f["warnings"]] + [""]
        if f["rewritten_settings"]:
            lines += ["Routine settings the move rewrites to the target schemas:", ""]
            lines += [f"- {r}" for r in f["rewritten_settings"]] + [""]
        if f["rewritten_bodies"]:
            lines += ["References in routine bodies the move rewrites (before -> after):", ""]
            lines += [f"- {r}" for r in f["rewritten_bodies"]] + [""]
        if f["unchecked_routines"]:
            lines += ["Routine bodies that name the schema where it cannot be checked:", ""]
            for u in f["unchecked_routines"]:
                state = "accepted" if u["accepted"] else f'refused unless accepted as "{u["accept_as"]}"'
                lines.append(f"- {u['routine']} ({state}):")
                lines += [f"  - {reason}" for reason in u["reasons"]]
            lines.append("")
    return "\n".join(lines)


def render(all_facts: list[dict]) -> Table:
    table = Table(title="Assessment")
    for col in ("source", "schema -> targets", "tables", "rows", "size", "ext", "seq", "views", "funcs",
                "triggers", "FKs", "clients"):
        table.add_column(col)
    for f in all_facts:
        targets = sorted({t["target_schema"] for t in f["tables"]})
        table.add_row(escape(f["source"]), escape(f"{f['schema']} -> {', '.join(targets)}"), str(len(f["tables"])),
                      str(sum(t["rows"] or 0 for t in f["tables"])),
                      f"{sum(t['size_bytes'] for t in f['tables']) / 1e6:.1f} MB",
                      str(len(f["extensions"])), str(len(f["sequences"])), str(len(f["views"])),
                      str(len(f["functions"])), str(len(f["triggers"])), str(len(f["foreign_keys"])),
                      str(sum(c[3] for c in f["clients"])))
    return table


def run(settings: Settings, reports_dir: Path | None) -> list[dict]:
    console.step("A", "assess: inventory every source")
    all_facts = [assess_source(m) for m in load_mappings(settings)]
    console.print_table(render(all_facts))
    for f in all_facts:
        for warning in f["warnings"]:
            console.say(f"  warning ({f['source']}): {warning}")
        for rewrite in f["rewritten_settings"] + f["rewritten_bodies"]:
            console.say(f"  will rewrite ({f['source']}): {rewrite}")
    if reports_dir is not None:
        console.write_json(reports_dir / "assessment.json", all_facts)
        (reports_dir / "assessment.md").write_text(markdown(all_facts), encoding="utf-8")
    return all_facts
