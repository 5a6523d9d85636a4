"""Loader roles: the migrator's non-superuser hands for one source's data.

Whoever controls a legacy database controls the code in it: CHECK and domain
constraints, defaults, generated columns, index expressions, triggers,
materialized view queries, policies. COPY, index builds, ANALYZE and REFRESH
run that code as the session user or the table owner, so if either were the
superuser, a legacy database could take over the unified instance. So every
step that touches a source's objects on the target (the scratch restore,
pre-data, COPY, index/key builds, ANALYZE, matview refresh, sequence values,
the final post-data pass, app restores) logs in as that source's loader role,
``consolidation_loader_<source>``:

- a plain login role: no SUPERUSER, CREATEROLE, CREATEDB or REPLICATION, member
  of no role and with no members; it owns only its source's target schemas
  (and only while the migration needs it: the app role gets them afterwards);
- BYPASSRLS, so its reads count every row without running a policy (it can read
  nothing but its own source's tables, so this reaches no other data); verify
  reads through a reader of its own (migrator/engine/checksums.py), not the loader;
- USAGE on ``extensions`` (pgvector), SET on ``session_replication_role`` (the
  copy fires no trigger), INSERT into its own rows of the journal;
- a fresh random password every run, known only to this process, and NOLOGIN
  again, its sessions ended, when the run ends (retire). Nothing is stored.
  Retiring also takes back what it holds on schema ``public``: `consolidate
  roles` turns PUBLIC's implicit USAGE (and CREATE) there into explicit grants
  for every role that exists at that moment (sql/30-schemas.sql), loaders
  included, and a retired loader must keep nothing a later login could use.

App code that runs as a loader can do what the source's own app role can do to
its own schemas, nothing more. Never ``SET ROLE`` instead: code running after
SET ROLE can ``RESET ROLE`` back to the superuser.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
from psycopg import sql

from migrator.config.mapping import SourceMapping
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine.db import end_sessions
from migrator.errors import DatabaseError
from migrator.redact import register_secret

PREFIX = "consolidation_loader_"
JOURNAL_SCHEMA = "_consolidation"
# Journal tables a loader writes in the same transaction as the data they record.
JOURNAL_TABLES = ("units", "finished_tables")

# One password per loader per process: every session of this run shares it.
_passwords: dict[tuple[str, int, str], str] = {}


def _role_exists(admin: psycopg.Connection, role: str) -> bool:
    return admin.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s)",
                         (role,)).fetchone()[0]


def _schema_exists(admin: psycopg.Connection, schema: str) -> bool:
    return admin.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0]


def name_of(mapping: SourceMapping) -> str:
    return PREFIX + mapping.name


def target_of(settings: Settings | DatabaseSettings) -> DatabaseSettings:
    """The target's login: a command passes its Settings, app backups the instance's login."""
    return settings if isinstance(settings, DatabaseSettings) else settings.target


def settings_for(settings: Settings, mapping: SourceMapping, password: str) -> DatabaseSettings:
    """Connection settings of the loader (the target's address, the loader's login)."""
    return replace(target_of(settings), user=name_of(mapping), password=password)


def ensure(admin: psycopg.Connection, settings: Settings, mapping: SourceMapping) -> DatabaseSettings:
    """Create or reset the loader of ``mapping`` (as the superuser) and return its login.

    :raises DatabaseError: a role of that name exists and is a superuser or has memberships
        that this function cannot take away (it never adopts someone else's role).
    """
    role = name_of(mapping)
    key = (target_of(settings).host, target_of(settings).port, role)
    if key in _passwords:     # set up earlier in this run
        return settings_for(settings, mapping, _passwords[key])
    with admin.transaction():
        _create_or_check(admin, role, target_of(settings).name)
        password = secrets.token_urlsafe(32)
        register_secret(password)
        verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        register_secret(verifier)
        admin.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))
        _grant_basics(admin, role)
    _passwords[key] = password
    return settings_for(settings, mapping, password)


def _create_or_check(admin: psycopg.Connection, role: str, target: str) -> None:
    found = admin.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s",
                          (role,)).fetchone()
    if found and found[0]:
        raise DatabaseError(target, "target", f"role '{role}' exists and is a superuser; the migrator will not "
                                              "load data through it (rename or drop that role)")
    if not found:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
            sql.Identifier(role), sql.Literal("consolidation: loads one source's data (no superuser rights)")))
    admin.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS NOINHERIT"
                          " CONNECTION LIMIT -1").format(sql.Identifier(role)))
    admin.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(sql.Identifier(role)))
    for granted, member, grantor in admin.execute(
            "SELECT m.roleid::pg_catalog.regrole::pg_catalog.text, m.member::pg_catalog.regrole::pg_catalog.text,"
            " m.grantor::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_auth_members m"
            " WHERE m.member OPERATOR(pg_catalog.=) %s::pg_catalog.regrole"
            " OR m.roleid OPERATOR(pg_catalog.=) %s::pg_catalog.regrole", (role, role)).fetchall():
        admin.execute(sql.SQL("REVOKE {} FROM {} GRANTED BY {}").format(
            sql.SQL(granted), sql.SQL(member), sql.SQL(grantor)))


def _grant_basics(admin: psycopg.Connection, role: str) -> None:
    ident = sql.Identifier(role)
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(admin.info.dbname), ident))
    admin.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(ident))
    if _schema_exists(admin, "extensions"):
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(ident))
    if admin.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (f"{JOURNAL_SCHEMA}.units",)).fetchone()[0]:
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(JOURNAL_SCHEMA), ident))
        for table in JOURNAL_TABLES:
            admin.execute(sql.SQL("GRANT INSERT ON {} TO {}").format(
                sql.Identifier(JOURNAL_SCHEMA, table), ident))


def grant_extensions(admin: psycopg.Connection, mapping: SourceMapping) -> None:
    """USAGE on `extensions` once it exists (the schema step may have just created it)."""
    admin.execute(sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(sql.Identifier(name_of(mapping))))


def retire(admin: psycopg.Connection, settings: Settings, mapping: SourceMapping,
           keep_workers: bool = False) -> None:
    """The run is over: the loader can no longer log in and its sessions are ended (NOLOGIN
    ends none, and code that ran as the loader could have set a password of its own and
    kept a session); its grants stay for the next run. ``keep_workers``: the online mode's
    logical replication workers run as the loader and keep running; they start as a login
    of the role (PostgreSQL refuses a NOLOGIN role's table sync workers), so the role keeps
    LOGIN until its subscription is dropped, with no password (no password method lets
    anyone in) and CONNECTION LIMIT 0 (no client session, even through a `trust` rule of
    pg_hba.conf; the limit counts client backends only, not the workers: migrator/steps/
    online.py checks that on the server at start). ``ensure`` lifts both for the tool's own
    sessions. Without workers, its grants on ``public`` go too (the module docstring)."""
    role = name_of(mapping)
    _passwords.pop((target_of(settings).host, target_of(settings).port, role), None)
    if _role_exists(admin, role):
        admin.execute(sql.SQL("ALTER ROLE {} {} PASSWORD NULL").format(
            sql.Identifier(role), sql.SQL("LOGIN CONNECTION LIMIT 0" if keep_workers else "NOLOGIN")))
        end_sessions(admin, role, clients_only=keep_workers)
        if not keep_workers and _schema_exists(admin, "public"):
            admin.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(sql.Identifier(role)))


def own_schemas(admin: psycopg.Connection, mapping: SourceMapping, schemas: list[str]) -> None:
    """Give the loader these target schemas and everything in them (the migration is not
    finished: they may be empty, ours from an earlier attempt, or handed to the app already)."""
    from migrator.engine.ownership import hand_over_schema   # ownership is the general mechanism
    for schema in schemas:
        if _schema_exists(admin, schema):
            hand_over_schema(admin, schema, name_of(mapping))


def take_over(admin: psycopg.Connection, settings: Settings, mapping: SourceMapping) -> DatabaseSettings:
    """The loader, owning whatever exists of the source's target schemas (work is pending)."""
    hands = ensure(admin, settings, mapping)
    own_schemas(admin, mapping, list(mapping.target_schemas))
    return hands


@contextmanager
def logins(admin: psycopg.Connection, settings: Settings, mappings: list[SourceMapping],
           keep_workers: bool = False) -> Iterator[None]:
    """For the length of a command: loaders log in when needed, and never after it."""
    try:
        yield
    finally:
        for mapping in mappings:
            try:
                retire(admin, settings, mapping, keep_workers)
            except psycopg.Error:
                pass   # the server went away; the next run resets the password anyway
