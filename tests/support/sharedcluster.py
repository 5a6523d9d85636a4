"""One server for the session, a database of its own for each test: the unified (Supabase)
target, and the PostgreSQL 15 source (conftest: target_db, source_db).

Starting a container per test cost each engine test a server start (2 s on a quiet host,
several under load) although most of them use only one database. Here each test gets a
fresh database cloned from the server's first database as the image's init left it (on
the unified image `postgres`: schemas auth, storage, extensions with vector, the sample
rows), so it sees the layout a fresh container shows. What a database cannot keep to itself is
cluster-wide: roles, role settings, other databases (the tool's scratch databases),
ALTER SYSTEM, replication slots, tablespaces. After each test those are put back to the
server's first state (the test's database and any database or role it made are dropped)
and compared with a snapshot of that state; if anything still differs, or the server is
gone, the server is thrown away (a warning says why) and the next test gets a new one. So
no test sees what an earlier one left, exactly as with a container each.

Tests that need the server itself (restart or kill it, fill its disk, a tmpfs) keep a
container of their own (`target_server`, or their own start_postgres)."""

from __future__ import annotations

import secrets
import warnings

import psycopg
from psycopg import sql

from tests.support import PgServer, start_postgres

PRISTINE = "consolidation_test_pristine"   # the clone source; connections refused

# Everything cluster-wide a test could change, as one comparable value.
SNAPSHOT_SQL = {
    "roles": "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,"
             " rolbypassrls, rolconnlimit, rolpassword, rolvaliduntil::text FROM pg_catalog.pg_authid ORDER BY 1",
    # Whole rows: pg_auth_members gained columns in PostgreSQL 16 (the source servers are 15).
    "members": "SELECT (pg_catalog.to_jsonb(m) OPERATOR(pg_catalog.-) 'oid')::text"
               " FROM pg_catalog.pg_auth_members m ORDER BY 1",
    "role_settings": "SELECT coalesce(d.datname, ''), coalesce(r.rolname, ''), s.setconfig::text"
                     " FROM pg_catalog.pg_db_role_setting s LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"
                     " LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2",
    "databases": "SELECT datname, datdba::regrole::text, datacl::text, datallowconn, datconnlimit, datistemplate"
                 " FROM pg_catalog.pg_database ORDER BY 1",
    "file_settings": "SELECT sourcefile, name, setting FROM pg_catalog.pg_file_settings ORDER BY 1, 2, 3",
    "slots": "SELECT slot_name FROM pg_catalog.pg_replication_slots ORDER BY 1",
    "parameter_acl": "SELECT parname, paracl::text FROM pg_catalog.pg_parameter_acl ORDER BY 1",
    "tablespaces": "SELECT spcname FROM pg_catalog.pg_tablespace ORDER BY 1",
}


def snapshot(admin: psycopg.Connection) -> dict[str, list[tuple]]:
    return {key: admin.execute(query).fetchall() for key, query in SNAPSHOT_SQL.items()}


class SharedCluster:
    def __init__(self, image: str, user: str = "supabase_admin", dbname: str = "postgres") -> None:
        self.image, self.user, self.dbname = image, user, dbname
        self.server: PgServer | None = None
        self.baseline: dict[str, list[tuple]] = {}
        self.started = 0          # servers started (the docs' figures; 1 when no test dirtied one)

    def _admin(self) -> psycopg.Connection:
        return self.server.connect(dbname="template1")

    def _start(self) -> None:
        self.server = start_postgres(self.image, user=self.user, dbname=self.dbname)
        self.started += 1
        try:
            self._prepare()
        except Exception:
            self.close()
            raise

    def _prepare(self) -> None:
        with self._admin() as admin:
            # The first database as the image's init left it is the template; nobody connects
            # to it or to the copy afterwards, so a test cannot change what the next one clones.
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(PRISTINE),
                                                                           sql.Identifier(self.dbname)))
            for name in (PRISTINE, self.dbname):
                admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
            self.baseline = snapshot(admin)

    def database(self) -> PgServer:
        """A fresh database on the shared server, as a PgServer whose dbname is that database."""
        if self.server is None:
            self._start()
        name = "test_" + secrets.token_hex(6)
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                           sql.Identifier(PRISTINE)))
        s = self.server
        return PgServer(s.container, s.host, s.port, s.user, s.password, name)

    def release(self, db: PgServer) -> None:
        """Drop what the test made; a server that still differs from its first state is replaced."""
        try:
            with self._admin() as admin:
                self._reset(admin)
                now = snapshot(admin)
            if now == self.baseline:
                return
            why = "changed " + ", ".join(k for k in now if now[k] != self.baseline[k])
        except psycopg.Error as e:
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        # Correct either way, but a server start per test again: shown in the warnings summary.
        warnings.warn(f"shared {self.image} server replaced after a test ({why})", stacklevel=2)
        self.close()

    def _reset(self, admin: psycopg.Connection) -> None:
        known_dbs = {row[0] for row in self.baseline["databases"]}
        for (name,) in admin.execute("SELECT datname FROM pg_catalog.pg_database").fetchall():
            if name not in known_dbs:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        known_roles = {row[0] for row in self.baseline["roles"]}
        for (name,) in admin.execute("SELECT rolname FROM pg_catalog.pg_authid").fetchall():
            if name not in known_roles:
                # DROP OWNED here also revokes its privileges on shared objects (parameters:
                # the tool's loader may SET session_replication_role).
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))

    def close(self) -> None:
        if self.server is not None:
            self.server.container.stop()
            self.server = None
