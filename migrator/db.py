"""Opening connections: bounded waits for databases that are still starting,
and one clear, secret-free sentence for every way a connection can fail."""

from __future__ import annotations

import os
import threading

import psycopg
from psycopg import sql
from tenacity import RetryError, retry, retry_if_exception, stop_after_delay, wait_exponential

from migrator import toolschemas
from migrator.errors import DatabaseError
from migrator.redact import redact
from migrator.settings import DatabaseSettings

# Failures that mean "not up yet": worth waiting for. Everything else fails at once.
_TRANSIENT_MARKERS = (
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "timeout expired",
    "no route to host",
)


# How long connect() waits for a server that is still starting; the CLI's
# --wait sets it for the whole run.
DEFAULT_WAIT_SECONDS = 60.0
# Parallel sessions per pool (COPY workers, index builds, pg_dump -j): the CPU count,
# capped because each is a connection and the target's max_connections (100 on
# Supabase) is shared with Supabase's own services; migrate uses up to 2x this.
DEFAULT_JOBS = min(os.cpu_count() or 2, 8)


# Every session the migrator opens resolves functions, operators and types in
# pg_catalog only (pg_temp is never searched for functions): a `format` or a
# `hashtextextended` that an app role, Supabase's `postgres` or a legacy
# database's owner planted in their own schema or in `public` is never picked
# over the built-in one, whatever the role's or database's default search_path.
PINNED_SEARCH_PATH = "pg_catalog,pg_temp"
# Views are code (and so are foreign tables): a session that must only read
# plain tables refuses them instead of running them (PostgreSQL 12.20/13.16/
# 14.13/15.8/16.4/17.0 and later; on older servers the relkind checks remain).
RESTRICTED_KINDS = "view,foreign-table"


KEEPALIVE_OPTIONS = "-c tcp_keepalives_idle=15 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
# The same from the client's side: a server that vanished is noticed as quickly.
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5, "keepalives_count": 3}


class _Transient(Exception):
    """Internal: a connection failure worth retrying (message already explained)."""


def explain(exc: BaseException, db: DatabaseSettings) -> str:
    """Turn a libpq error into one sentence naming the problem (never the password)."""
    text = str(exc).lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return f"authentication failed for user '{db.user}' (check POSTGRES_PASSWORD in {db.env_file})"
    if "does not exist" in text and "database" in text:
        return f"database '{db.dbname}' does not exist on {db.host}:{db.port}"
    if "role" in text and "does not exist" in text:
        return f"role '{db.user}' does not exist on {db.host}:{db.port}"
    if "could not translate host name" in text or "name or service not known" in text \
            or "temporary failure in name resolution" in text:
        return f"unknown host '{db.host}'"
    if "connection refused" in text:
        return f"nothing listens on {db.host}:{db.port} (connection refused)"
    if "timeout expired" in text:
        return f"no answer from {db.host}:{db.port} (timed out)"
    if "starting up" in text or "shutting down" in text or "recovery mode" in text:
        return f"server at {db.host}:{db.port} is not ready ({text.split(chr(10))[0].strip()})"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(first_line)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


def connect(db: DatabaseSettings, wait_seconds: float | None = None, *, autocommit: bool = True,
            read_only: bool | None = None, restrict_views: bool = True,
            **overrides: object) -> psycopg.Connection:
    """Connect, waiting up to ``wait_seconds`` for a server that is still starting.

    Sources are opened read-only by default: the migration never writes them.
    Every session has its search_path pinned to pg_catalog; with ``restrict_views``
    (the default) it also refuses to expand views and foreign tables, so reading
    what should be a table never runs someone else's query with this session's rights.
    """
    if wait_seconds is None:
        wait_seconds = DEFAULT_WAIT_SECONDS
    if read_only is None:
        read_only = db.role == "source"
    # Server-side keepalives: a session whose migrator was killed (-9, a lost host)
    # ends within about 30 s instead of holding its locks for the kernel's 2 hours.
    options = f"-c search_path={PINNED_SEARCH_PATH} {KEEPALIVE_OPTIONS}"
    if read_only:
        options += " -c default_transaction_read_only=on"
    params = db.conninfo(connect_timeout=5, autocommit=autocommit, **{**CLIENT_KEEPALIVES, **overrides})
    params["options"] = options

    @retry(retry=retry_if_exception(_is_transient), stop=stop_after_delay(wait_seconds),
           wait=wait_exponential(multiplier=0.25, max=2), reraise=False)
    def attempt() -> psycopg.Connection:
        try:
            return psycopg.connect(**params)
        except psycopg.OperationalError as exc:
            reason = explain(exc, db)
            if any(marker in str(exc).lower() for marker in _TRANSIENT_MARKERS):
                raise _Transient(reason) from None
            raise DatabaseError(db.name, db.role, reason) from None

    try:
        conn = attempt()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise DatabaseError(db.name, db.role, f"{last} - gave up after {wait_seconds:g} s") from None
    if restrict_views:
        restrict_relation_kinds(conn)
    return conn


def restrict_relation_kinds(conn: psycopg.Connection) -> None:
    """Refuse views and foreign tables in this session, where the server knows the setting."""
    known = conn.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_settings"
                         " WHERE name OPERATOR(pg_catalog.=) 'restrict_nonsystem_relation_kind'").fetchone()[0]
    if known:
        conn.execute("SELECT pg_catalog.set_config('restrict_nonsystem_relation_kind', %s, false)",
                     (RESTRICTED_KINDS,))
    if not conn.autocommit:
        conn.commit()   # a snapshot session must start its transaction fresh


def require_superuser(conn: psycopg.Connection, db: DatabaseSettings) -> None:
    """The target login must be a superuser (it creates roles, databases, extensions and reads
    the disk's free space), and the tool's own schemas there must be wholly a superuser's
    (migrator/toolschemas.py): refused with exit 4 before anything is written."""
    if not conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles"
                        " WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER").fetchone()[0]:
        raise DatabaseError(db.name, db.role, f"user '{db.user}' is not a superuser; the migrator needs one "
                            "(supabase_admin on Supabase) to create the loader roles, schemas and extensions")
    toolschemas.require_trusted(conn, name=db.name)


def create_private_database(admin: psycopg.Connection, name: str, owner: str | None = None) -> None:
    """A scratch database (dropped first if a killed run left it) that nobody but the tool
    (and ``owner``, the tool's own loader) can connect to from its first moment: it is
    created refusing all connections, PUBLIC loses CONNECT and TEMPORARY, and only then
    does it accept connections. No app role can race in and plant what the tool later calls."""
    ident = sql.Identifier(name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    admin.execute(sql.SQL("CREATE DATABASE {} {} TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS false").format(
        ident, sql.SQL("OWNER {}").format(sql.Identifier(owner)) if owner else sql.SQL("")))
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
    admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))


class ThreadSessions:
    """One connection per worker thread and key, opened on first use, all closed together:
    psycopg connections are not shared between threads, and reopening per unit costs."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[psycopg.Connection] = []

    def get(self, key: object, open_session) -> psycopg.Connection:
        mine = self._local.__dict__.setdefault("by_key", {})
        if key not in mine:
            mine[key] = open_session()
            with self._lock:
                self._all.append(mine[key])
        return mine[key]

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
