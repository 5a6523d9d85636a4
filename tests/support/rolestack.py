"""Helpers for the roles tests: a fresh Supabase stand-in with sql/ applied,
logins as the app roles, and privilege probes that ask the server itself."""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from migrator.config.rolesconfig import RolesConfig
from migrator.steps import roles
from tests.support import PgServer, start_postgres

OWN = {"n8n": {"n8n"}, "letta": {"letta_agents", "letta_embeddings"}, "rag": {"rag_documents", "rag_embeddings"}}
APP_SCHEMAS = set().union(*OWN.values())
READONLY = "consolidation_readonly"
MONITOR = "consolidation_monitor"
MONITORING_SCHEMA = "consolidation_monitoring"     # sql/55-monitoring.sql: superuser-owned, one view


def passwords_for(cfg: RolesConfig) -> dict[str, str]:
    return {spec.app: f"pw-{spec.app}-{secrets.token_urlsafe(18)}" for spec in cfg.roles}


@dataclass
class Stack:
    server: PgServer
    cfg: RolesConfig
    passwords: dict[str, str]
    first: roles.ApplyResult | None = None

    def admin(self) -> psycopg.Connection:
        return self.server.connect()

    def login(self, app: str, **kw) -> psycopg.Connection:
        """Connect as an app role with its password, as the app would (role defaults apply)."""
        spec = self.cfg.role(app)
        return psycopg.connect(host=self.server.host, port=self.server.port, dbname="postgres",
                               user=spec.name, password=self.passwords[app], autocommit=True, **kw)

    def apply(self, cfg: RolesConfig | None = None, **kw) -> roles.ApplyResult:
        with self.admin() as conn:
            return roles.apply(conn, cfg or self.cfg, self.passwords, **kw)


def fresh_stack(images: dict[str, str], apply: bool = True, **overrides) -> Stack:
    server = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    cfg = replace(RolesConfig.defaults(), **overrides)
    stack = Stack(server, cfg, passwords_for(cfg))
    if apply:
        stack.first = stack.apply()
    return stack


@contextmanager
def as_role(conn: psycopg.Connection, role: str):
    """Run as ``role`` inside a transaction that is always rolled back."""
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        yield conn


def allowed(conn: psycopg.Connection, role: str, statement: sql.Composable | str) -> bool:
    """True if the server runs ``statement`` as ``role``; False on permission denied.
    Any other error is a broken test, so it propagates."""
    try:
        with as_role(conn, role):
            conn.execute(statement)
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def schemas(conn: psycopg.Connection) -> list[str]:
    """Every schema of the database, from the catalog (system schemas aside)."""
    return [r[0] for r in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'"
        " ORDER BY 1")]


def plain_roles(conn: psycopg.Connection) -> list[str]:
    """Every role that privilege checks apply to (superusers bypass them)."""
    return [r[0] for r in conn.execute(
        "SELECT rolname FROM pg_roles WHERE NOT rolsuper AND rolname !~ '^pg_' ORDER BY 1")]


def sql_dir_with(tmp_path: Path, extra: dict[str, str]) -> Path:
    """A copy of sql/ plus extra files (name -> text)."""
    target = tmp_path / "sql"
    target.mkdir()
    for path in roles.sql_files(RolesConfig.defaults().sql_dir):
        (target / path.name).write_text(path.read_text())
    for name, text in extra.items():
        (target / name).write_text(text)
    return target
