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

from migrator.errors import ConsolidationError

# Every owned object of the schema: (order, ALTER keyword, qualified name, owner).
# Names are quoted by the server (format %I). Sequences behind identity/serial
# columns follow their table; array, multirange and row types follow their base.
_NOT_EXTENSION_MEMBER = ("NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = '{cat}'::regclass"
                         " AND e.objid = {alias}.oid AND e.deptype = 'e')")
OBJECTS_SQL = """
WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = %(schema)s)
SELECT * FROM (
  SELECT CASE WHEN c.relkind = 'S' THEN 2 ELSE 1 END AS ord,
         CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'f' THEN 'FOREIGN TABLE'
                        WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'c' THEN 'TYPE' END AS kind,
         format('%%I.%%I', s.nspname, c.relname) AS name, c.relowner AS owner
  FROM pg_class c JOIN s ON c.relnamespace = s.oid
  WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'c') AND {class_not_ext}
    AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT 3, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         format('%%I.%%I(%%s)', s.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), p.proowner
  FROM pg_proc p JOIN s ON p.pronamespace = s.oid WHERE {proc_not_ext}
  UNION ALL
  SELECT 4, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
         format('%%I.%%I', s.nspname, t.typname), t.typowner
  FROM pg_type t JOIN s ON t.typnamespace = s.oid
  WHERE t.typrelid = 0 AND t.typtype <> 'm' AND {type_not_ext}
    AND NOT EXISTS (SELECT FROM pg_type b WHERE b.typarray = t.oid)
  UNION ALL
  SELECT 5, 'COLLATION', format('%%I.%%I', s.nspname, o.collname), o.collowner
  FROM pg_collation o JOIN s ON o.collnamespace = s.oid
  UNION ALL
  SELECT 5, 'CONVERSION', format('%%I.%%I', s.nspname, o.conname), o.conowner
  FROM pg_conversion o JOIN s ON o.connamespace = s.oid
  UNION ALL
  SELECT 5, 'OPERATOR', o.oid::regoperator::text, o.oprowner
  FROM pg_operator o JOIN s ON o.oprnamespace = s.oid WHERE {oper_not_ext}
  UNION ALL
  SELECT 5, 'OPERATOR FAMILY', format('%%I.%%I USING %%I', s.nspname, o.opfname, a.amname), o.opfowner
  FROM pg_opfamily o JOIN s ON o.opfnamespace = s.oid JOIN pg_am a ON a.oid = o.opfmethod WHERE {opf_not_ext}
  UNION ALL
  SELECT 5, 'OPERATOR CLASS', format('%%I.%%I USING %%I', s.nspname, o.opcname, a.amname), o.opcowner
  FROM pg_opclass o JOIN s ON o.opcnamespace = s.oid JOIN pg_am a ON a.oid = o.opcmethod WHERE {opc_not_ext}
  UNION ALL
  SELECT 5, 'TEXT SEARCH CONFIGURATION', format('%%I.%%I', s.nspname, o.cfgname), o.cfgowner
  FROM pg_ts_config o JOIN s ON o.cfgnamespace = s.oid
  UNION ALL
  SELECT 5, 'TEXT SEARCH DICTIONARY', format('%%I.%%I', s.nspname, o.dictname), o.dictowner
  FROM pg_ts_dict o JOIN s ON o.dictnamespace = s.oid
  UNION ALL
  SELECT 5, 'STATISTICS', format('%%I.%%I', s.nspname, o.stxname), o.stxowner
  FROM pg_statistic_ext o JOIN s ON o.stxnamespace = s.oid
) objects
WHERE owner IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY ord, name
""".format(
    class_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_class", alias="c"),
    proc_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_proc", alias="p"),
    type_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_type", alias="t"),
    oper_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_operator", alias="o"),
    opf_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_opfamily", alias="o"),
    opc_not_ext=_NOT_EXTENSION_MEMBER.format(cat="pg_opclass", alias="o"),
)


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
    """Re-apply the schema's privilege policy (sql/60-privileges.sql) if the schema is registered."""
    installed = conn.execute("SELECT to_regclass('consolidation_admin.app_schema') IS NOT NULL AND"
                             " to_regprocedure('consolidation_admin.apply_privileges(name)') IS NOT NULL").fetchone()[0]
    if installed and conn.execute("SELECT EXISTS (SELECT FROM consolidation_admin.app_schema"
                                  " WHERE schema_name = %s)", (schema,)).fetchone()[0]:
        conn.execute("SELECT consolidation_admin.apply_privileges(%s)", (schema,))
