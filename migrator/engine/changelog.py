"""Which staged rows the subscription changed, so the online cutover re-hashes only them
inside the window (docs/online.md, "Checksums before the window").

Every staged table gets an ``ENABLE ALWAYS`` row trigger (the apply worker runs with
``session_replication_role = replica``, where ordinary triggers stay silent) that writes
the key of each row an applied INSERT, UPDATE or DELETE touched (the old and the new key)
into a log table of its own, and a TRUNCATE trigger that marks the table as changed as a
whole. A table whose key is not a plain built-in type (or that has no key: REPLICA
IDENTITY FULL) is marked whole on any change. Everything lives in a schema of the
source's loader, which owns the staged tables: the apply runs these functions as the
loader, never as a superuser, and no API role has a right there. The schema is dropped
(triggers with it) before the move, and by an abort.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migrator.config.mapping import SourceMapping
from migrator.engine import loader
from migrator.errors import DatabaseError

TRIGGER = "_consolidation_changes"
TRUNCATE_TRIGGER = "_consolidation_truncate"
WHOLE = "whole"
# Built-in key types whose text form (under checksums.PINNED) reads back to the same value.
KEY_TYPES = {16: "bool", 17: "bytea", 20: "int8", 21: "int2", 23: "int4", 25: "text", 1042: "bpchar",
             1043: "varchar", 1082: "date", 1114: "timestamp", 1184: "timestamptz", 1700: "numeric",
             2950: "uuid"}

# The row identity the apply uses: the replica identity index, else the primary key.
KEY_SQL = """
SELECT a.attname::pg_catalog.text, a.atttypid::pg_catalog.int8
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.oid
CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
WHERE c.oid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass
  AND CASE c.relreplident WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END
ORDER BY k.pos"""


def schema_of(mapping: SourceMapping) -> str:
    return f"_consolidation_changes_{mapping.name}"


def log_of(table: str) -> str:
    """The log's (and its function's) name: ``k_<table>``, shortened with a digest past 63 bytes."""
    name = f"k_{table}"
    if len(name.encode()) <= 63:
        return name
    return f"k_{table.encode()[:40].decode(errors='ignore')}_{hashlib.sha256(table.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Key:
    """A staged table's key columns and their built-in type names (empty: no usable key)."""
    columns: tuple[str, ...]
    types: tuple[str, ...]


def key_of(conn: psycopg.Connection, schema: str, table: str) -> Key:
    rows = conn.execute(KEY_SQL, (sql.Identifier(schema, table).as_string(conn),)).fetchall()
    if not rows or any(typ not in KEY_TYPES for _, typ in rows):
        return Key((), ())
    return Key(tuple(name for name, _ in rows), tuple(KEY_TYPES[typ] for _, typ in rows))


def create_schema(admin: psycopg.Connection, mapping: SourceMapping) -> None:
    """The loader's schema for the logs; one left by an earlier attempt is ours (owned by the
    loader) and starts over; one that someone else made is refused, never used."""
    schema = schema_of(mapping)
    owner = owner_of(admin, schema)
    if owner not in (None, loader.name_of(mapping)):
        raise DatabaseError("unified", "target", f"schema '{schema}' exists and belongs to '{owner}', not to "
                            "this tool's loader; drop or rename it, then run the cutover again")
    remove(admin, mapping)
    admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
        sql.Identifier(schema), sql.Identifier(loader.name_of(mapping))))


def owner_of(admin: psycopg.Connection, schema: str) -> str | None:
    """The role that owns ``schema`` (None: no such schema)."""
    row = admin.execute("SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r"
                        " ON r.oid OPERATOR(pg_catalog.=) n.nspowner WHERE n.nspname OPERATOR(pg_catalog.=) %s",
                        (schema,)).fetchone()
    return row[0] if row else None


def install(conn: psycopg.Connection, mapping: SourceMapping, tables: list[str]) -> dict[str, Key]:
    """As the loader (the staged tables' owner): a log and triggers per table, in one
    transaction. Returns each table's key (empty: tracked whole)."""
    log_schema = sql.Identifier(schema_of(mapping))
    keys = {}
    with conn.transaction():
        conn.execute(sql.SQL("CREATE TABLE {}.{} (relname pg_catalog.text PRIMARY KEY)").format(
            log_schema, sql.Identifier(WHOLE)))
        conn.execute(sql.SQL(
            "CREATE FUNCTION {s}.mark_whole() RETURNS trigger LANGUAGE plpgsql"
            " SET search_path = pg_catalog, pg_temp AS $$ BEGIN"
            " INSERT INTO {s}.{w} VALUES (TG_TABLE_NAME) ON CONFLICT DO NOTHING; RETURN NULL; END $$").format(
            s=log_schema, w=sql.Identifier(WHOLE)))
        for table in tables:
            keys[table] = key = key_of(conn, mapping.schema, table)
            staged = sql.Identifier(mapping.schema, table)
            function = mark_rows(conn, log_schema, table, key) if key.columns else \
                sql.SQL("{}.mark_whole").format(log_schema)
            conn.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW"
                                 " EXECUTE FUNCTION {}()").format(sql.Identifier(TRIGGER), staged, function))
            conn.execute(sql.SQL("CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT"
                                 " EXECUTE FUNCTION {}.mark_whole()").format(
                sql.Identifier(TRUNCATE_TRIGGER), staged, log_schema))
            for trigger in (TRIGGER, TRUNCATE_TRIGGER):
                conn.execute(sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(
                    staged, sql.Identifier(trigger)))
    return keys


def mark_rows(conn: psycopg.Connection, log_schema: sql.Identifier, table: str, key: Key) -> sql.Composed:
    """The log table of ``table`` (its key's columns, no constraint: duplicates are fine)
    and the trigger function that writes OLD's and NEW's key into it."""
    log = sql.Identifier(log_of(table))
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.Identifier("pg_catalog", t))
                                 for c, t in zip(key.columns, key.types))
    conn.execute(sql.SQL("CREATE TABLE {}.{} ({})").format(log_schema, log, columns))

    def values(record: str) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.SQL(record), sql.Identifier(c)) for c in key.columns)

    function = sql.Identifier(log_of(table))
    conn.execute(sql.SQL(
        "CREATE FUNCTION {s}.{f}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$"
        " BEGIN"
        " IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN INSERT INTO {s}.{log} VALUES ({old}); END IF;"
        " IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN INSERT INTO {s}.{log} VALUES ({new}); END IF;"
        " RETURN NULL; END $$").format(s=log_schema, f=function, log=log, old=values("OLD"), new=values("NEW")))
    return sql.SQL("{}.{}").format(log_schema, function)


def installed(conn: psycopg.Connection, mapping: SourceMapping, tables: list[str]) -> list[str]:
    """Tables whose triggers are missing or no longer ALWAYS (then nothing says what changed)."""
    found = {r[0] for r in conn.execute(
        "SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_trigger t"
        " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid"
        " WHERE c.relnamespace OPERATOR(pg_catalog.=) %s::pg_catalog.regnamespace"
        " AND t.tgname OPERATOR(pg_catalog.=) ANY(%s) AND t.tgenabled OPERATOR(pg_catalog.=) 'A'"
        " GROUP BY 1 HAVING pg_catalog.count(*) OPERATOR(pg_catalog.=) 2",
        (mapping.schema, [TRIGGER, TRUNCATE_TRIGGER])).fetchall()}
    return [t for t in tables if t not in found]


def whole(conn: psycopg.Connection, mapping: SourceMapping) -> set[str]:
    return {r[0] for r in conn.execute(sql.SQL("SELECT relname FROM {}.{}").format(
        sql.Identifier(schema_of(mapping)), sql.Identifier(WHOLE))).fetchall()}


def changed_keys(conn: psycopg.Connection, mapping: SourceMapping, table: str, key: Key) -> list[tuple[str, ...]]:
    """The distinct keys logged for ``table``, as text (the session pinned by checksums.PINNED)."""
    columns = sql.SQL(", ").join(sql.SQL("{}::pg_catalog.text").format(sql.Identifier(c)) for c in key.columns)
    return conn.execute(sql.SQL("SELECT DISTINCT {} FROM {}.{}").format(
        columns, sql.Identifier(schema_of(mapping)), sql.Identifier(log_of(table)))).fetchall()


def remove(admin: psycopg.Connection, mapping: SourceMapping) -> None:
    """Logs, functions and (through them) the triggers on the staged tables, if the schema
    is the loader's (a schema of that name that is not stays: create_schema refuses it)."""
    schema = schema_of(mapping)
    if owner_of(admin, schema) != loader.name_of(mapping):
        return
    # The triggers first, one table per transaction: while the apply runs it holds its table
    # and then wants the log; dropping the schema at once would take the log first.
    for (table,) in admin.execute(
            "SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_trigger t"
            " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid"
            " WHERE c.relnamespace OPERATOR(pg_catalog.=) %s::pg_catalog.regnamespace"
            " AND t.tgname OPERATOR(pg_catalog.=) %s", (mapping.schema, TRIGGER)).fetchall():
        for trigger in (TRIGGER, TRUNCATE_TRIGGER):
            admin.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(trigger), sql.Identifier(mapping.schema, table)))
    admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
