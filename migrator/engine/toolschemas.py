"""The tool's own schemas on the unified instance, and whether they can be trusted.

A superuser session calls the functions in these schemas, reads their tables to decide
what to do (the app registry) and writes rows into them (the journal, backup runs).
Whoever owns such a schema, or may create objects in it, could have planted what the
tool then runs or believes: on a real Supabase instance several non-superuser roles
hold CREATE on the database (postgres, dashboard_user, supabase_storage_admin), so any
of them could create one of these schemas before the tool does. So a tool schema is
either created by the tool or refused: ``require_trusted`` is called before a tool
schema is created (``CREATE SCHEMA IF NOT EXISTS`` would adopt a planted one), read or
called, and refuses with one line (exit 4) naming the first object that is not a
superuser's.
"""

from __future__ import annotations

import psycopg

from migrator.engine import queries
from migrator.errors import DatabaseError

# Every schema the tool creates on the target (the pgBackRest scheduler's own is
# _consolidation_ops, compose/pgbackrest/backup_runs.sql, which checks itself in SQL too).
TOOL_SCHEMAS = ("_consolidation", "consolidation_admin", "consolidation_monitoring",
                "consolidation_pooler", "_consolidation_ops")

UNTRUSTED_SQL = queries.text(__file__)     # toolschemas.sql


def why_untrusted(conn: psycopg.Connection, schema: str) -> str | None:
    """The first reason ``schema`` cannot be trusted, or None (trusted, or absent)."""
    found = conn.execute(UNTRUSTED_SQL, {"schema": schema}).fetchone()
    return found[0] if found else None


def require_trusted(conn: psycopg.Connection, *schemas: str, name: str | None = None) -> None:
    """Refuse (exit 4) when a tool schema (all of them by default) exists and is not wholly
    a superuser's. ``name``: the database's name in messages (default: its dbname).

    :raises DatabaseError: naming the object and what to do."""
    for schema in schemas or TOOL_SCHEMAS:
        reason = why_untrusted(conn, schema)
        if reason:
            raise DatabaseError(name or conn.info.dbname, "target",
                                f"{reason}; a schema of the tool's must be the tool's alone (a superuser runs and "
                                "trusts what is in it): refusing to use it. Inspect and drop it, then run again")
