"""Content checksums of every application table, for proving a restore: the same
count-and-hash per table that `verify` computes (verify.CHECKSUM_SQL), over the
schemas the roles registry assigns to applications (consolidation_admin.app_schema,
so a restored copy names its own schemas). Only plain tables are read: reading a
view or a foreign table would run code an app wrote, and these sessions may be a
superuser's (db.connect pins search_path and refuses views)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from migrator.mapping import load_mappings
from migrator.settings import Settings
from migrator.steps.verify import CHECKSUM_SQL

REGISTRY_SQL = ("SELECT schema_name::pg_catalog.text FROM consolidation_admin.app_schema"
                " WHERE pg_catalog.to_regnamespace(schema_name) IS NOT NULL ORDER BY 1")
TABLES_SQL = ("SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c"
              " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
              " WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND n.nspname OPERATOR(pg_catalog.=) ANY(%s) ORDER BY 1, 2")


def app_schemas(conn: psycopg.Connection, settings: Settings | None = None) -> list[str]:
    """The application schemas of this instance: the roles registry's, or (before
    `consolidate roles` ran) the configuration's target schemas that exist."""
    if conn.execute("SELECT pg_catalog.to_regclass('consolidation_admin.app_schema')").fetchone()[0]:
        found = [r[0] for r in conn.execute(REGISTRY_SQL).fetchall()]
        if found:
            return found
    wanted = [s for m in load_mappings(settings) for s in m.target_schemas] if settings else []
    return [s for s in wanted
            if conn.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (s,)).fetchone()[0]]


def table_hashes(conn: psycopg.Connection, schemas: list[str]):
    """``(schema, table, rows, hash)`` for every plain table of ``schemas``, in name order,
    read in one snapshot when the caller's transaction is REPEATABLE READ."""
    for schema, table in conn.execute(TABLES_SQL, (schemas,)).fetchall():
        count, h0, h1 = conn.execute(sql.SQL(CHECKSUM_SQL).format(sql.Identifier(schema, table))).fetchone()
        yield schema, table, int(count), f"{h0}/{h1}"


def table_checksums(conn: psycopg.Connection, schemas: list[str]) -> dict[str, list]:
    """``{"schema.table": [rows, hash]}`` for every plain table of ``schemas``."""
    return {f"{schema}.{table}": [rows, digest] for schema, table, rows, digest in table_hashes(conn, schemas)}


def differences(expected: dict[str, list], found: dict[str, list]) -> list[str]:
    """One line per table whose rows or content differ, or that exists on one side only."""
    lines = []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        if want is None:
            lines.append(f"{name}: only in the restored copy")
        elif got is None:
            lines.append(f"{name}: missing from the restored copy")
        elif want != got:
            lines.append(f"{name}: {want[0]} rows expected, {got[0]} found"
                         + (" (same count, different content)" if want[0] == got[0] else ""))
    return lines
