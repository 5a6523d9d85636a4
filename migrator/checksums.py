"""The one way the migrator reads application rows: per-table count and content hash,
for verify, the restore drill, restore-instance, app-backup and app-restore.

Trust (docs/threat-model.md): rows are never read on a superuser session. A superuser
makes a throwaway reader (``reader()``): a plain login with BYPASSRLS (no policy runs,
every row counts), SELECT on exactly the tables and sequences of the schemas it hashes,
a random password known only to this process, dropped again when the reading ends.
And nothing an app can hook is evaluated: a row's text comes from
``pg_catalog.record_out`` (the type output functions, which only a superuser can
create), never from ``row::text``, which calls any cast an app role defines from its
table's row type to text (casts are not found through search_path, so pinning it does
not help). Only plain tables are read (db.connect refuses views and foreign tables).

Hashes: two 64-bit hashes of each row's text, summed over all rows, computed inside the
server (no row shipped). The sum is order-independent, so two servers need not agree on
row order; with both sessions pinned to the same output settings (PINNED) the same
value prints the same way on PostgreSQL 15 and 17; hashtextextended is the same
function on every version since 11. record_out prints exactly what the built-in
row-to-text conversion prints, so hashes in earlier manifests still compare.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from migrator import toolschemas
from migrator.db import connect
from migrator.mapping import load_mappings
from migrator.errors import VerificationError
from migrator.redact import register_secret
from migrator.settings import DatabaseSettings

PINNED = ("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';"
          " SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C';")
# A row's text, with nothing an app can hook (see the module docstring).
ROW_TEXT = "pg_catalog.textin(pg_catalog.record_out(_row.*))"
# Each row's text is built once and hashed twice: PostgreSQL does not share two equal
# expressions of a plain select list, and printing a row (a vector(4096), a jsonb) costs
# far more than hashing it. A lateral unnest, unlike an OFFSET 0 subquery, keeps the
# scan parallel. sum(bigint) is exact (numeric result). Aliases are qualified
# (`_row.*`, `_text.txt`): a table may have columns named t, r or even _row.
CHECKSUM_SQL = ("SELECT pg_catalog.count(*),"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 0::pg_catalog.int8)), 0)"
                "::pg_catalog.text,"
                " coalesce(pg_catalog.sum(pg_catalog.hashtextextended(_text.txt, 1::pg_catalog.int8)), 0)"
                "::pg_catalog.text"
                " FROM ONLY {} AS _row"
                f" CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[{ROW_TEXT}]) AS _text(txt)")
# The same hash per bucket of an integer key, to name the key ranges that differ.
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

READER_PREFIX = "consolidation_reader_"
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


def table_hash(conn: psycopg.Connection, schema: str, table: str) -> tuple[int, str]:
    """Count and content hash of one plain table.

    :raises VerificationError: the table cannot be read (exit 5, naming it): a reader
        without the right, a lock, a relation that changed kind."""
    try:
        count, h0, h1 = conn.execute(sql.SQL(CHECKSUM_SQL).format(sql.Identifier(schema, table))).fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise VerificationError(f"could not read table {schema}.{table} for its checksum: {first}") from None
    return int(count), f"{h0}/{h1}"


def table_hashes(conn: psycopg.Connection, schemas: list[str]):
    """``(schema, table, rows, hash)`` for every plain table of ``schemas``, in name order,
    read in one snapshot when the caller's transaction is REPEATABLE READ."""
    conn.execute(PINNED)
    for schema, table in conn.execute(TABLES_SQL, (schemas,)).fetchall():
        yield schema, table, *table_hash(conn, schema, table)


def table_checksums(conn: psycopg.Connection, schemas: list[str]) -> dict[str, list]:
    """``{"schema.table": [rows, hash]}`` for every plain table of ``schemas``."""
    return {f"{schema}.{table}": [rows, digest] for schema, table, rows, digest in table_hashes(conn, schemas)}


def differences(expected: dict[str, list], found: dict[str, list],
                where: str = "the restored copy", before: str = "expected") -> list[str]:
    """One line per table whose rows or content differ, or that exists on one side only."""
    lines = []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        if want is None:
            lines.append(f"{name}: only in {where}")
        elif got is None:
            lines.append(f"{name}: missing from {where}")
        elif want != got:
            lines.append(f"{name}: {want[0]} rows {before}, {got[0]} found"
                         + (" (same count, different content)" if want[0] == got[0] else ""))
    return lines


# --- the reader: a throwaway non-superuser login ----------------------------------------

@contextmanager
def reader(admin: psycopg.Connection, db: DatabaseSettings, schemas: list[str]) -> Iterator[DatabaseSettings]:
    """A login that can read the tables and sequences of ``schemas`` in ``admin``'s database
    and nothing else, for the length of the block (``admin``: a superuser session there;
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


def end_sessions(admin: psycopg.Connection, role: str) -> int:
    """Terminate every session of ``role`` (NOLOGIN ends none): code that ran as it cannot
    keep a session open past the moment the tool stops trusting it."""
    return admin.execute("SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid))"
                         " FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) %s"
                         " AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()", (role,)).fetchone()[0]


@contextmanager
def reading(admin: psycopg.Connection, db: DatabaseSettings, schemas: list[str], **connect_args):
    """A reader's open session (pinned output settings), for the length of the block."""
    with reader(admin, db, schemas) as hands, \
            connect(hands, read_only=True, application_name="consolidation-reader", **connect_args) as conn:
        conn.execute(PINNED)
        if not conn.autocommit:
            conn.commit()
        yield conn
