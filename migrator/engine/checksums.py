"""The one way the migrator reads application rows: per-table count and content hash,
for verify, the restore drill, restore-instance, app-backup and app-restore.

Trust (docs/threat-model.md): rows are never read on a superuser session. A superuser
makes a throwaway reader (``reader()``): a plain login with BYPASSRLS (no policy runs,
every row counts), SELECT on exactly the tables and sequences of the schemas it hashes,
a random password known only to this process, dropped again when the reading ends.
And nothing an app can hook is evaluated: a value is sent by its type's send function or
printed by ``pg_catalog.record_out`` (type input/output functions, which only a superuser
can create), never through ``::text``, which calls any cast an app role defines from its
table's row type to text (casts are not found through search_path, so pinning it does
not help). Only plain tables are read (db.connect refuses views and foreign tables);
the reader may also look up pgvector's schema, to call its send function.

Hashes (FORM, docs/engine.md "How verify hashes a row"): each column in a form that is
exact for its type and cheap to produce (its binary send form where that is exact and the
same on PostgreSQL 15 and 17, its text otherwise), read from the catalog per table; the
columns of a row go into one bytea[] hashed into one 64-bit row hash, which is hashed
again with two seeds and summed over all rows, inside the server (no row shipped). The sum
is order-independent, so two servers need not agree on row order. Every function is
qualified (pg_catalog, or pgvector's schema from pg_extension for ``vector_send``, called
only on a column of exactly that type and only when the schema holds no other function of
that name); a column of any other type is printed through ``pg_catalog.record_out`` of a
one-field ROW, which calls its type's output function by OID: no name an app could shadow,
no cast an app could define (casts are found by type, not search_path).

LEGACY_FORM is the row-text form of earlier versions (each row printed by record_out):
app backups written before FORM hold those hashes, and are compared in that form.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from migrator.config.mapping import load_mappings
from migrator.config.settings import DatabaseSettings
from migrator.engine import toolschemas
from migrator.engine.db import connect, end_sessions
from migrator.errors import VerificationError
from migrator.redact import register_secret

PINNED = ("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';"
          " SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C';"
          " SET client_encoding = 'UTF8';")     # the *_send of text types converts to it

# The forms a table's hash can be computed in; app backups record theirs (manifest
# "checksum_form"), those written before FORM existed hold LEGACY_FORM hashes.
FORM = "columns-1"
LEGACY_FORM = "row-text-1"
FORMS = (FORM, LEGACY_FORM)

# --- FORM: each column in a form exact for its type (docs/engine.md) ---------------------

# Built-in types (their OIDs are fixed, the same in every version) whose send form is the
# value's exact bytes, written the same way by PostgreSQL 15 and 17.
SEND = {16: "boolsend", 17: "byteasend", 18: "charsend", 19: "namesend", 20: "int8send", 21: "int2send",
        23: "int4send", 25: "textsend", 26: "oidsend", 114: "json_send", 1042: "bpcharsend",
        1043: "varcharsend", 1082: "date_send", 1083: "time_send", 1114: "timestamp_send",
        1184: "timestamptz_send", 1186: "interval_send", 1266: "timetz_send", 2950: "uuid_send",
        3802: "jsonb_send"}   # jsonb_send: a version byte (1) and the jsonb's text
# Floats as their IEEE bits (-0.0 is not 0.0, as their text differs), every NaN as one:
# NaN payloads are not values (PostgreSQL compares all NaNs equal and prints them alike).
FLOATS = {700: ("float4send", "float4"), 701: ("float8send", "float8")}
NUMERIC = 1700              # as its text: 1.0 and 1.00 differ, as they print differently
BUILTIN_LIMIT = 10000       # FirstGenbkiObjectId: OIDs below it are the same in every version
TEXT_FORM = "pg_catalog.textsend(pg_catalog.textin({}))"

# Per column: the type under any domains (a domain's value is its base type's value), and
# its element type when it is that element's array type (int2vector, point are not).
COLUMNS_SQL = """
WITH RECURSIVE chain(attnum, name, typ, base) AS (
  SELECT a.attnum, a.attname::pg_catalog.text, a.atttypid, a.atttypid FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relname OPERATOR(pg_catalog.=) %s
    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  UNION ALL
  SELECT ch.attnum, ch.name, ch.typ, t.typbasetype FROM chain ch
  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) ch.base WHERE t.typtype OPERATOR(pg_catalog.=) 'd')
SELECT ch.name, ch.typ OPERATOR(pg_catalog.<>) ch.base, ch.base::pg_catalog.int8, t.typtype::pg_catalog.text,
       e.oid::pg_catalog.int8
FROM chain ch JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) ch.base
LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) t.typelem AND e.typarray OPERATOR(pg_catalog.=) t.oid
WHERE t.typtype OPERATOR(pg_catalog.<>) 'd' ORDER BY ch.attnum"""
# pgvector's vector type and its send function, with how many functions of that name its
# schema holds (an app that can create functions there could add an overload: then the
# column is printed instead).
VECTOR_SQL = """
SELECT t.oid::pg_catalog.int8, n.nspname::pg_catalog.text, p.proname::pg_catalog.text,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc q WHERE q.pronamespace OPERATOR(pg_catalog.=) p.pronamespace
        AND q.proname OPERATOR(pg_catalog.=) p.proname)
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) e.oid
 AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
 AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
 AND d.deptype OPERATOR(pg_catalog.=) 'e'
JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.objid AND t.typname OPERATOR(pg_catalog.=) 'vector'
JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.typsend
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
WHERE e.extname OPERATOR(pg_catalog.=) 'vector'"""
# A row: its columns' forms in one bytea[], hashed element by element into one 64-bit row
# hash (hash_array_extended: bytea's hashvarlenaextended of each element, combined by
# position, a NULL as 0); each row hash hashed again with two seeds (hashint8extended: not
# linear, so a sum cannot hide values swapped between rows) and summed. The lateral unnest
# builds each row's hash once for both sums and keeps the scan parallel (an OFFSET 0
# subquery would not).
FORM_SQL = ("SELECT pg_catalog.count(*),"
            " coalesce(pg_catalog.sum(pg_catalog.hashint8extended(_row_hash.h, 0::pg_catalog.int8)), 0)"
            "::pg_catalog.text,"
            " coalesce(pg_catalog.sum(pg_catalog.hashint8extended(_row_hash.h, 1::pg_catalog.int8)), 0)"
            "::pg_catalog.text"
            " FROM ONLY {table} AS _row"
            " CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[pg_catalog.hash_array_extended({columns},"
            " 0::pg_catalog.int8)]) AS _row_hash(h){where}")
# The rows of some keys only (the online cutover's re-check, migrator/engine/changelog.py):
# each key column compared with the keys' text read back as its built-in type, so the
# primary key's index finds them.
# (ROWS FROM: unnest(a, b) is syntax only when unqualified.)
KEYS_SQL = " WHERE ({columns}) IN (SELECT * FROM ROWS FROM ({arrays}))"


def column_form(name: str, is_domain: bool, base: int, typtype: str, elem: int | None, vector) -> sql.Composable:
    """One column as bytea, in the cheapest form that is exact for its type. pg_catalog
    functions accept a domain's value as its base type (a relabel, no cast); pgvector's
    function only a column of exactly its type."""
    col = sql.SQL("_row.{}").format(sql.Identifier(name))
    if base in SEND:
        return sql.SQL("pg_catalog.{}({})").format(sql.SQL(SEND[base]), col)
    if base in FLOATS:
        send, typ = FLOATS[base]
        return sql.SQL("pg_catalog.{send}(CASE WHEN {c} OPERATOR(pg_catalog.=) 'NaN'::pg_catalog.{t}"
                       " THEN 'NaN'::pg_catalog.{t} ELSE {c} END)").format(
            send=sql.SQL(send), c=col, t=sql.SQL(typ))
    if base == NUMERIC:
        return sql.SQL(TEXT_FORM).format(sql.SQL("pg_catalog.numeric_out({})").format(col))
    if not is_domain and vector and base == vector[0] and vector[3] == 1:
        return sql.SQL("{}({})").format(sql.Identifier(vector[1], vector[2]), col)
    if not is_domain and elem in SEND and base < BUILTIN_LIMIT:
        return sql.SQL("pg_catalog.array_send({})").format(col)   # its header names the element type's OID
    if not is_domain and typtype == "e":
        return sql.SQL("pg_catalog.enum_send({})").format(col)     # the label
    # Anything else as its text, from its type's output function (found by OID).
    return sql.SQL(TEXT_FORM).format(sql.SQL("pg_catalog.record_out(ROW({}))").format(col))


def form_query(conn: psycopg.Connection, schema: str, table: str, key=None) -> sql.Composed:
    """FORM's checksum query of one table, its column list read from the catalog; with
    ``key`` (changelog.Key) only the rows whose key is in the query's parameters."""
    vector = conn.execute(VECTOR_SQL).fetchone()
    forms = [column_form(*column, vector) for column in conn.execute(COLUMNS_SQL, (schema, table)).fetchall()]
    columns = (sql.SQL("ARRAY[{}]::pg_catalog.bytea[]").format(sql.SQL(", ").join(forms)) if forms
               else sql.SQL("'{}'::pg_catalog.bytea[]"))
    where = sql.SQL("")
    if key is not None:
        where = sql.SQL(KEYS_SQL).format(
            columns=sql.SQL(", ").join(sql.SQL("_row.{}").format(sql.Identifier(c)) for c in key.columns),
            arrays=sql.SQL(", ").join(sql.SQL("pg_catalog.unnest(%s::pg_catalog.text[]::{}[])").format(
                sql.Identifier("pg_catalog", t))
                                      for t in key.types))
    return sql.SQL(FORM_SQL).format(table=sql.Identifier(schema, table), columns=columns, where=where)


# --- LEGACY_FORM: each row's text ---------------------------------------------------------

# A row's text, with nothing an app can hook: record_out calls the type output functions.
ROW_TEXT = "pg_catalog.textin(pg_catalog.record_out(_row.*))"
# Each row's text is built once and hashed twice (the lateral unnest, as in FORM_SQL).
# sum(bigint) is exact (numeric result). Aliases are qualified (`_row.*`, `_text.txt`):
# a table may have columns named t, r or even _row.
CHECKSUM_SQL = ("SELECT pg_catalog.count(*),"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 0::pg_catalog.int8)), 0)"
                "::pg_catalog.text,"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 1::pg_catalog.int8)), 0)"
                "::pg_catalog.text"
                " FROM ONLY {} AS _row"
                f" CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[{ROW_TEXT}]) AS _text(txt)")
# Per bucket of an integer key, to name the key ranges that differ (both sides hashed the
# same way; only run once a table differs).
RANGE_SQL = ("SELECT ({col} OPERATOR(pg_catalog.-) {lo}) OPERATOR(pg_catalog./) {width} AS bucket,"
             f" pg_catalog.count(*), pg_catalog.sum(pg_catalog.hashtextextended({ROW_TEXT},"
             " 0::pg_catalog.int8)::pg_catalog.numeric)::pg_catalog.text FROM ONLY {tbl} AS _row GROUP BY 1")

REGISTRY_SQL = ("SELECT schema_name::pg_catalog.text FROM consolidation_admin.app_schema"
                " WHERE pg_catalog.to_regnamespace(schema_name) IS NOT NULL ORDER BY 1")
TABLES_SQL = ("SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c"
              " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
              " WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND n.nspname OPERATOR(pg_catalog.=) ANY(%s) ORDER BY 1, 2")
# What a reader may read: tables (partitioned parents too, for ONLY) and sequences.
READABLE_SQL = ("SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
                " WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,S}'::pg_catalog.\"char\"[])"
                " AND n.nspname OPERATOR(pg_catalog.=) ANY(%s)")
VECTOR_SCHEMA_SQL = ("SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                     " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace WHERE e.extname OPERATOR(pg_catalog.=) 'vector'")

READER_PREFIX = "consolidation_reader_"
# Readers of concurrent commands grant and revoke on the same tables: PostgreSQL fails one of
# two concurrent GRANTs on an object ("tuple concurrently updated"), so making and dropping
# a reader take this transaction-level lock (held for milliseconds).
READER_GRANTS_LOCK = "SELECT pg_catalog.pg_advisory_xact_lock(%s::pg_catalog.int8)"
READER_GRANTS_KEY = 0x72656164      # "read"
# A reader whose process was killed cannot log in after this (nobody knows its password anyway).
READER_LIFETIME = timedelta(hours=12)


def app_schemas(conn: psycopg.Connection, settings=None) -> list[str]:
    """The application schemas of this instance: the roles registry's, or (before
    `consolidate roles` ran) the configuration's target schemas that exist. The registry is
    read only when its schema is the tool's own (toolschemas.require_trusted)."""
    if conn.execute("SELECT pg_catalog.to_regclass('consolidation_admin.app_schema')").fetchone()[0]:
        toolschemas.require_trusted(conn, "consolidation_admin")
        found = [r[0] for r in conn.execute(REGISTRY_SQL).fetchall()]
        if found:
            return found
    wanted = [s for m in load_mappings(settings) for s in m.target_schemas] if settings else []
    return [s for s in wanted
            if conn.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (s,)).fetchone()[0]]


def table_hash(conn: psycopg.Connection, schema: str, table: str, form: str = FORM) -> tuple[int, str]:
    """Count and content hash of one plain table, in ``form`` (FORMS).

    :raises VerificationError: the table cannot be read (exit 5, naming it): a reader
        without the right, a lock, a relation that changed kind."""
    count, h0, h1 = (table_sums(conn, schema, table) if form == FORM else
                     read_sums(conn, schema, table, lambda: sql.SQL(CHECKSUM_SQL).format(sql.Identifier(schema, table))))
    return count, hash_text(h0, h1)


def table_sums(conn: psycopg.Connection, schema: str, table: str, key=None,
               values: list[tuple[str, ...]] | None = None) -> tuple[int, int, int]:
    """FORM's count and two sums of one table as numbers (they add up: the sums over a
    table are the sums over any split of its rows), of all its rows or, with ``key`` and
    ``values`` (the keys' text), of those rows only.

    :raises VerificationError: as table_hash."""
    params = [[v[i] for v in values] for i in range(len(key.columns))] if key is not None else None
    return read_sums(conn, schema, table, lambda: form_query(conn, schema, table, key), params)


def read_sums(conn: psycopg.Connection, schema: str, table: str, query, params=None) -> tuple[int, int, int]:
    """The count and two sums a checksum query (built by ``query()``, its catalog reads
    included) returns, or one line naming the table it could not read."""
    try:
        count, h0, h1 = conn.execute(query(), params).fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise VerificationError(f"could not read table {schema}.{table} for its checksum: {first}") from None
    return int(count), int(h0), int(h1)


def hash_text(h0: int, h1: int) -> str:
    """A table's hash as reports and manifests write it."""
    return f"{h0}/{h1}"


def table_hashes(conn: psycopg.Connection, schemas: list[str], form: str = FORM):
    """``(schema, table, rows, hash)`` for every plain table of ``schemas``, in name order,
    read in one snapshot when the caller's transaction is REPEATABLE READ."""
    conn.execute(PINNED)
    for schema, table in conn.execute(TABLES_SQL, (schemas,)).fetchall():
        yield schema, table, *table_hash(conn, schema, table, form)


def table_checksums(conn: psycopg.Connection, schemas: list[str]) -> dict[str, list]:
    """``{"schema.table": [rows, hash]}`` for every plain table of ``schemas``."""
    return {f"{schema}.{table}": [rows, digest] for schema, table, rows, digest in table_hashes(conn, schemas)}


SAME_COUNT = " (same count, different content)"


def row_difference(name: str, want_rows: int, got_rows: int, before: str, after: str) -> str:
    """The one message for a table whose rows or content differ (verify, app-restore,
    restore-drill, online): both counts, and whether only the content differs."""
    return (f"table {name}: {before} {want_rows} rows / {after} {got_rows} rows"
            + (SAME_COUNT if want_rows == got_rows else ""))


def differences(expected: dict[str, list], found: dict[str, list],
                where: str = "the restored copy", before: str = "expected", after: str | None = None) -> list[str]:
    """The one per-table compare of ``{"schema.table": [rows, hash]}`` maps: a line per table
    whose rows or content differ, or that exists on one side only."""
    lines = []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        if want is None:
            lines.append(f"table {name}: only in {where}")
        elif got is None:
            lines.append(f"table {name}: missing from {where}")
        elif list(want) != list(got):
            lines.append(row_difference(name, want[0], got[0], before, after or where))
    return lines


# --- the reader: a throwaway non-superuser login ----------------------------------------

@contextmanager
def reader(admin: psycopg.Connection, db: DatabaseSettings, schemas: list[str]) -> Iterator[DatabaseSettings]:
    """A login that can read the tables and sequences of ``schemas`` in ``admin``'s database
    (and look up pgvector's send function) and nothing else, for the length of the block (``admin``: a superuser session there;
    ``db``: that database's address). Each call has its own role, so readers of concurrent
    commands never share or reset each other's credentials."""
    role = READER_PREFIX + secrets.token_hex(6)
    password = secrets.token_urlsafe(32)
    register_secret(password)
    verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    register_secret(verifier)
    until = (datetime.now(timezone.utc) + READER_LIFETIME).isoformat()
    ident = sql.Identifier(role)
    with admin.transaction():
        admin.execute(READER_GRANTS_LOCK, (READER_GRANTS_KEY,))
        drop_stale_readers(admin)
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT"
                              " BYPASSRLS CONNECTION LIMIT 8 VALID UNTIL {} PASSWORD {}").format(
            ident, sql.Literal(until), sql.Literal(verifier)))
        admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
            ident, sql.Literal("consolidation: reads app rows for checksums, for one command (dropped after)")))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(admin.info.dbname), ident))
        present = [s for s in schemas
                   if admin.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (s,)).fetchone()[0]]
        for schema in present:
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident))
        for (relation,) in admin.execute(READABLE_SQL, (present,)).fetchall():
            admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(relation), ident))
        for (schema,) in admin.execute(VECTOR_SCHEMA_SQL).fetchall():   # FORM calls its vector_send
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident))
    try:
        yield replace(db, user=role, password=password, role="target")
    finally:
        drop_reader(admin, role)


def drop_reader(admin: psycopg.Connection, role: str) -> None:
    """No more logins, its sessions ended, its grants and the role gone (best effort:
    a server that went away leaves a NOLOGIN role the next reader drops)."""
    ident = sql.Identifier(role)
    try:
        with admin.transaction():
            admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(ident))
        end_sessions(admin, role)
        with admin.transaction():
            admin.execute(READER_GRANTS_LOCK, (READER_GRANTS_KEY,))
            admin.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE {}").format(ident))
    except psycopg.Error:
        pass


def drop_stale_readers(admin: psycopg.Connection) -> None:
    """Readers that a killed command left: retired or expired, and without sessions."""
    for (role,) in admin.execute(
            "SELECT rolname::pg_catalog.text FROM pg_catalog.pg_roles"
            " WHERE pg_catalog.starts_with(rolname, %s) AND NOT rolsuper"
            " AND (NOT rolcanlogin OR rolvaliduntil OPERATOR(pg_catalog.<) pg_catalog.now())"
            " AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.usename OPERATOR(pg_catalog.=) rolname)",
            (READER_PREFIX,)).fetchall():
        try:
            with admin.transaction():       # a savepoint: a role with grants elsewhere stays
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        except psycopg.errors.DependentObjectsStillExist:
            pass


@contextmanager
def reading(admin: psycopg.Connection, db: DatabaseSettings, schemas: list[str], **connect_args):
    """A reader's open session (pinned output settings), for the length of the block."""
    with reader(admin, db, schemas) as hands, \
            connect(hands, read_only=True, application_name="consolidation-reader", **connect_args) as conn:
        conn.execute(PINNED)
        if not conn.autocommit:
            conn.commit()
        yield conn
