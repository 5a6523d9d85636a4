"""Online mode's staging on the target (docs/online.md): the source's objects, under the
source's own schema name (logical replication matches tables by qualified name), owned
by the source's loader role, invisible to Supabase's API roles; moved into the target
schemas by the cutover, or dropped by an abort.

The staging schema is either created here (Letta's `letta`: it exists nowhere else on
the target) or is the target's `public` (n8n's tables live in `public`): then no staged
name may collide with anything already there, and the loader gets CREATE on `public`
only while the definitions are restored. Objects the loader creates get no grant from
Supabase's default privileges (those are FOR ROLE postgres / supabase_admin), and
routines lose EXECUTE for PUBLIC until the cutover moved them out of `public`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from migrator.config.mapping import SourceMapping
from migrator.config.settings import Settings
from migrator.engine import catalog, loader, pgtools, routines
from migrator.engine import predata
from migrator.engine.db import connect
from migrator.engine.replication import API_ROLES
from migrator.errors import DatabaseError

SHARED_STAGING = "public"


def staging_mapping(mapping: SourceMapping) -> SourceMapping:
    """The same source, landing under its own schema name (the schema step's remap, with
    nothing renamed: extensions still move to `extensions`)."""
    return replace(mapping, target_schema=mapping.schema, owner=None, rules=())


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0]


NAMES_SQL = """
SELECT relname::pg_catalog.text FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION SELECT typname::pg_catalog.text FROM pg_catalog.pg_type WHERE typnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION SELECT proname::pg_catalog.text FROM pg_catalog.pg_proc WHERE pronamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
UNION SELECT stxname::pg_catalog.text FROM pg_catalog.pg_statistic_ext WHERE stxnamespace OPERATOR(pg_catalog.=) %(nsp)s::pg_catalog.regnamespace
"""


def check(admin: psycopg.Connection, source: psycopg.Connection, mapping: SourceMapping) -> None:
    """Refusals before anything is written: a staging schema someone else made, or a name
    that is already taken in the shared one."""
    schema = mapping.schema
    if not schema_exists(admin, schema):
        return
    if schema != SHARED_STAGING:
        raise DatabaseError("unified", "target", f"schema '{schema}' already exists on the target; the online "
                            f"mode stages '{mapping.name}' under that name and never shares a schema it did not "
                            "make (move it away, or use the offline cutover)")
    taken = {r[0] for r in admin.execute(NAMES_SQL, {"nsp": schema}).fetchall()}
    clash = sorted(taken & {r[0] for r in source.execute(NAMES_SQL, {"nsp": schema}).fetchall()})
    if clash:
        more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
        raise DatabaseError("unified", "target", f"{', '.join(clash[:3])}{more} already exist in the target's "
                            f"'{schema}', where '{mapping.name}' would be staged; rename them or use the offline "
                            "cutover")
    defaults = admin.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_default_acl"
                             " WHERE defaclrole OPERATOR(pg_catalog.=) %s::pg_catalog.regrole",
                             (loader.name_of(mapping),)).fetchone()[0] if _role_exists(admin, mapping) else 0
    if defaults:
        raise DatabaseError("unified", "target", f"role '{loader.name_of(mapping)}' has default privileges: "
                            "staged tables would be granted on creation; remove them (ALTER DEFAULT PRIVILEGES)")


def _role_exists(admin: psycopg.Connection, mapping: SourceMapping) -> bool:
    return admin.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s)",
                         (loader.name_of(mapping),)).fetchone()[0]


def build(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, work_dir: Path,
          created: bool) -> None:
    """Every definition of the source (tables with their keys, indexes, constraints and
    triggers) in the staging schema, empty, owned by the loader; ``created``: the schema
    does not exist and is made here (else it is `public`)."""
    staged = staging_mapping(mapping)
    checked = predata.check(staged, admin)
    exts = checked.exts
    pgtools.private_dir(work_dir)
    hands = loader.ensure(admin, settings, mapping)
    dump, _ = predata.remapped_dump(settings, staged, admin, hands, work_dir, checked, label="staging")
    predata.install_extensions(admin, exts)
    loader.grant_extensions(admin, mapping)
    ident, role = sql.Identifier(mapping.schema), sql.Identifier(hands.user)
    if created:
        admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(ident, role))
    else:   # public: CREATE for the length of the restore only
        admin.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(ident, role))
    try:
        pgtools.restore_listed(dump, pgtools.toc_lines(dump, settings.target, {mapping.schema}), hands,
                               dbname=settings.target.dbname, listing=dump.with_suffix(".staging.list"),
                               what="staging definitions into the target")
        with connect(hands) as conn, conn.transaction():
            set_routine_execute(conn, mapping.schema, grant=False)
    finally:
        if not created:
            admin.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(ident, role))


# What the loader owns in one schema, by how it is moved or dropped. Owned sequences,
# indexes, row types and array types follow their table or type.
OBJECTS_SQL = """
SELECT 'TABLE', pg_catalog.format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')
    AND c.relowner OPERATOR(pg_catalog.=) %(role)s::pg_catalog.regrole
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'SEQUENCE' END,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m,S}')
    AND c.relowner OPERATOR(pg_catalog.=) %(role)s::pg_catalog.regrole
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'))
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, pg_catalog.format('%%I.%%I', n.nspname, t.typname) FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND t.typowner OPERATOR(pg_catalog.=) %(role)s::pg_catalog.regrole
    AND (t.typtype OPERATOR(pg_catalog.=) ANY ('{e,d,r}') OR (t.typtype OPERATOR(pg_catalog.=) 'c' AND
         (SELECT relkind FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) t.typrelid) OPERATOR(pg_catalog.=) 'c'))
UNION ALL
SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, p.oid::pg_catalog.regprocedure::pg_catalog.text
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND p.proowner OPERATOR(pg_catalog.=) %(role)s::pg_catalog.regrole
UNION ALL
SELECT 'STATISTICS', pg_catalog.format('%%I.%%I', n.nspname, s.stxname) FROM pg_catalog.pg_statistic_ext s
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) s.stxnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND s.stxowner OPERATOR(pg_catalog.=) %(role)s::pg_catalog.regrole
"""


def objects(conn: psycopg.Connection, schema: str, role: str) -> list[tuple[str, str]]:
    """(kind, qualified name) of everything ``role`` owns in ``schema``. Identifiers come
    from the catalog, quoted by format('%I') / regprocedure, never from input."""
    return [(k, n) for k, n in conn.execute(OBJECTS_SQL, {"nsp": schema, "role": role}).fetchall()]


def set_routine_execute(conn: psycopg.Connection, schema: str, grant: bool) -> None:
    """EXECUTE for PUBLIC on the loader's routines in ``schema``: taken while they are staged
    (in `public`, anon could call a SECURITY DEFINER routine that reads staged rows), given
    back once they are moved (the offline migration leaves them with the default)."""
    verb = "GRANT EXECUTE ON {} {} TO PUBLIC" if grant else "REVOKE EXECUTE ON {} {} FROM PUBLIC"
    for kind, name in objects(conn, schema, conn.info.user):
        if kind in ("ROUTINE", "AGGREGATE"):
            conn.execute(sql.SQL(verb).format(sql.SQL("ROUTINE"), sql.SQL(name)))


PRIVILEGES_SQL = """
SELECT pg_catalog.format('%%s on %%s', r.rolname, c.oid::pg_catalog.regclass) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
CROSS JOIN pg_catalog.pg_roles r
WHERE n.nspname OPERATOR(pg_catalog.=) %(nsp)s AND c.relowner OPERATOR(pg_catalog.=) %(owner)s::pg_catalog.regrole
  AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S}') AND r.rolname OPERATOR(pg_catalog.=) ANY (%(roles)s)
  AND (pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
       OR pg_catalog.has_any_column_privilege(r.oid, c.oid, 'SELECT,INSERT,UPDATE,REFERENCES'))
ORDER BY 1
"""


def api_privileges(admin: psycopg.Connection, mapping: SourceMapping) -> list[str]:
    """Any privilege an API role holds on a staged relation (expected: none)."""
    return [r[0] for r in admin.execute(PRIVILEGES_SQL, {"nsp": mapping.schema, "owner": loader.name_of(mapping),
                                                          "roles": list(API_ROLES)}).fetchall()]


def move(conn: psycopg.Connection, mapping: SourceMapping, exts) -> None:
    """As the loader, in the caller's transaction: every staged object into the default
    target schema, then the tables routed elsewhere (types and sequences follow them as
    in the schema step), routine search_path settings rewritten, EXECUTE given back."""
    for kind, name in objects(conn, mapping.schema, conn.info.user):
        conn.execute(sql.SQL("ALTER {} {} SET SCHEMA {}").format(
            sql.SQL(kind), sql.SQL(name), sql.Identifier(mapping.target_schema)))
    for table in catalog.tables(conn, mapping.target_schema):
        routed = mapping.route(table.name, table.has_vector)
        if routed != mapping.target_schema:
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(mapping.target_schema, table.name), sql.Identifier(routed)))
    predata.move_followers(conn, mapping)
    routines.apply(conn, mapping, routines.extension_in_schema(exts, mapping))
    for schema in mapping.target_schemas:
        set_routine_execute(conn, schema, grant=True)


DROP_ORDER = ("MATERIALIZED VIEW", "VIEW", "TABLE", "SEQUENCE", "STATISTICS", "AGGREGATE", "ROUTINE", "TYPE",
              "DOMAIN")


def drop(conn: psycopg.Connection, schema: str) -> int:
    """As the loader: every object it owns in ``schema`` (an abort). Dependent objects of
    the loader's go with them; returns how many were dropped."""
    found = objects(conn, schema, conn.info.user)
    found.sort(key=lambda o: DROP_ORDER.index(o[0]))
    with conn.transaction():
        for kind, name in found:
            conn.execute(sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(kind), sql.SQL(name)))
    return len(found)
