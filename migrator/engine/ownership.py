"""Hand a schema and everything in it over to an application role.

The migrator restores objects as supabase_admin (``pg_restore --no-owner``),
so after a restore they belong to the wrong role. ``hand_over_schema`` makes
the schema and every object in it that has an owner (tables, partitions,
sequences, views, materialized views, foreign tables, routines, types,
domains, collations, conversions, operators and their classes/families, text
search configurations/dictionaries, extended statistics) owned by the app
role, then re-applies the schema's privileges from sql/60-privileges.sql (read-only
role, API roles) when the schema is registered. Objects that belong to an
extension are left to it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from migrator.engine import queries, toolschemas
from migrator.errors import ConsolidationError

# Every owned object of the schema not owned by the role yet (ownership.sql).
OBJECTS_SQL = queries.text(__file__)


def foreign_owned(conn: psycopg.Connection, schema: str, role: str) -> list[tuple[str, str]]:
    """(kind, name) of every object in ``schema`` not owned by ``role``, the schema itself first.

    :raises ConsolidationError: the role or the schema does not exist.
    """
    if not conn.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (role,)).fetchone()[0]:
        raise ConsolidationError(f"hand-over: role '{role}' does not exist (run `consolidate roles` first)")
    found = conn.execute("SELECT nspowner IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = %s),"
                         " quote_ident(nspname) FROM pg_namespace WHERE nspname = %s", (role, schema)).fetchone()
    if found is None:
        raise ConsolidationError(f"hand-over: schema '{schema}' does not exist")
    schema_row = [("SCHEMA", found[1])] if found[0] else []
    return schema_row + [(kind, name) for _, kind, name, _ in
                         conn.execute(OBJECTS_SQL, {"schema": schema, "role": role}).fetchall()]


def hand_over_schema(conn: psycopg.Connection, schema: str, role: str) -> list[str]:
    """Make ``schema`` and every object in it owned by ``role``; return what changed.

    Runs in one transaction (a savepoint inside the caller's). Idempotent: a
    second call changes nothing and returns []. Tables go first: their
    identity/serial sequences and indexes follow them.

    :raises ConsolidationError: the schema does not exist, or an object is
        still owned by another role afterwards (a kind this module does not know).
    """
    with conn.transaction():
        changed = []
        for kind, name in foreign_owned(conn, schema, role):
            conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(kind), sql.SQL(name), sql.Identifier(role)))
            changed.append(f"{kind.lower()} {name}")
        left = foreign_owned(conn, schema, role)
        if left:
            raise ConsolidationError(f"hand-over of schema '{schema}' to '{role}' left {len(left)} objects "
                                     f"owned by other roles: {', '.join(f'{k} {n}' for k, n in left[:5])}")
        _apply_privileges(conn, schema)
    return changed


def _apply_privileges(conn: psycopg.Connection, schema: str) -> None:
    """Re-apply the schema's privilege policy (sql/60-privileges.sql) if the schema is registered.

    The registry and the function are found by name, in whatever database ``conn`` is in
    (a restore target, a scratch database): they are read and called only when
    consolidation_admin is wholly a superuser's (toolschemas), else the hand-over stops."""
    installed = conn.execute("SELECT to_regclass('consolidation_admin.app_schema') IS NOT NULL AND"
                             " to_regprocedure('consolidation_admin.apply_privileges(name)') IS NOT NULL").fetchone()[0]
    if conn.execute("SELECT to_regnamespace('consolidation_admin') IS NOT NULL").fetchone()[0]:
        toolschemas.require_trusted(conn, "consolidation_admin")
    if installed and conn.execute("SELECT EXISTS (SELECT FROM consolidation_admin.app_schema"
                                  " WHERE schema_name = %s)", (schema,)).fetchone()[0]:
        conn.execute("SELECT consolidation_admin.apply_privileges(%s)", (schema,))
