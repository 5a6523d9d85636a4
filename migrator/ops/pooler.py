"""PgBouncer in front of the unified instance: pool sizes derived from the roles'
limits in consolidation.toml, and the pgbouncer.ini that says so (docs/pooling.md).

`consolidate pooler` prints the pools and renders compose/pgbouncer/pgbouncer.ini
(`--write PATH`); a unit test keeps the committed file equal to what the
repository's consolidation.toml renders, so the two cannot drift.

Sizing, in short:
- Every app role ([roles.<app>] except the read-only one) gets its own pool
  (PgBouncer pools per (database, user)), capped twice: pool_size and
  max_user_connections.
- The server must keep room for what does not go through the pooler:
  Supabase's own services and superuser slots (``reserved_connections``), the
  read-only role (admins connect directly), the migrator/backups (superusers,
  which use the reserved slots) and the pooler's auth role (2).
- If the roles' connection limits fit in what is left of ``max_connections``,
  each pool is its role's limit; otherwise every pool shrinks in proportion. So
  the sum of the pools (``max_db_connections``) never exceeds the budget, and a
  pool never exceeds its role's CONNECTION LIMIT (the server would refuse it).

Pool modes (evidence in docs/pooling.md and tests/stack/test_pooling.py):
- n8n: transaction. node-postgres sends no named prepared statements and holds
  no session state n8n relies on; its startup `options=-c statement_timeout=...`
  is ignored by PgBouncer (ignore_startup_parameters) and the role's own
  statement_timeout/search_path (ALTER ROLE, sql/20) apply on every server
  connection instead.
- letta: session. Its job scheduler takes a session-level advisory lock
  (pg_try_advisory_lock) and releases it later on "the same" session, which
  transaction mode cannot promise.
- rag (and any new app): transaction, with protocol-level prepared statements
  tracked by PgBouncer (max_prepared_statements) for asyncpg-style drivers.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from migrator import console
from migrator.apps import layout
from migrator.config.rolesconfig import REPO_ROOT, RolesConfig, check_role_name, pooler_password_from
from migrator.config.settings import Settings, check_table
from migrator.errors import ConfigError

AUTH_ROLE_LIMIT = 2            # sql/80-pooler.sql: CONNECTION LIMIT of the auth role
MODES = ("session", "transaction")
DEFAULT_MODES = dict(layout.POOL_MODES)   # per app: migrator/apps/layout.py
KEYS = {"auth_role": str, "env_file": str, "host": str, "port": int, "server_host": str, "server_port": int,
        "max_connections": int, "reserved_connections": int, "max_prepared_statements": int,
        "max_client_conn": int, "pool_modes": dict}
INI_PATH = REPO_ROOT / "compose/pgbouncer/pgbouncer.ini"
STATS_USER = "pgbouncer_stats"  # console user for SHOW only (compose/pgbouncer/entrypoint.sh)


@dataclass(frozen=True)
class Pool:
    app: str
    role: str
    mode: str
    connection_limit: int   # the role's CONNECTION LIMIT on the server
    pool_size: int          # server connections PgBouncer may open for it


@dataclass(frozen=True)
class PoolerConfig:
    auth_role: str = "consolidation_pooler"
    env_file: Path = REPO_ROOT / "env/pooler.env"
    host: str = "pgbouncer"          # where apps reach the pooler (compose network)
    port: int = 6432
    server_host: str = "unified"     # where the pooler reaches the instance
    server_port: int = 5432
    dbname: str = "postgres"
    max_connections: int = 100       # the instance's max_connections (Supabase's default)
    reserved_connections: int = 20   # Supabase's own services + superuser_reserved_connections
    max_prepared_statements: int = 200
    max_client_conn: int = 1000
    pool_modes: tuple[tuple[str, str], ...] = tuple(DEFAULT_MODES.items())

    def mode(self, app: str) -> str:
        return dict(self.pool_modes).get(app, "transaction")


def parse(raw: object, config_file: Path, target_dbname: str = "postgres") -> PoolerConfig:
    """``[pooler]`` of consolidation.toml; absent keys take the defaults above.

    :raises ConfigError: naming the key and the problem."""
    where = f"{config_file}: [pooler]"
    check_table(raw, where, KEYS)
    for key in ("port", "server_port"):
        if key in raw and not 0 < raw[key] < 65536:
            raise ConfigError(f"{where} {key}: expected a TCP port number, got {raw[key]}")
    for key in ("max_connections", "reserved_connections", "max_prepared_statements", "max_client_conn"):
        if key in raw and raw[key] < 0:
            raise ConfigError(f"{where} {key}: expected a non-negative integer, got {raw[key]}")
    check_role_name(raw.get("auth_role", PoolerConfig.auth_role), f"{where} auth_role")
    modes = dict(DEFAULT_MODES)
    for app, mode in raw.get("pool_modes", {}).items():
        if mode not in MODES:
            raise ConfigError(f"{where} pool_modes.{app}: expected one of {', '.join(MODES)}, got {mode!r}")
        modes[app] = mode
    values = {k: v for k, v in raw.items() if k not in ("env_file", "pool_modes")}
    return PoolerConfig(**values, env_file=config_file.parent / raw.get("env_file", "env/pooler.env"),
                        dbname=target_dbname, pool_modes=tuple(sorted(modes.items())))


def auth_password(cfg: PoolerConfig) -> str | None:
    """:raises ConfigError: env/pooler.env exists without POOLER_AUTH_PASSWORD."""
    return pooler_password_from(cfg.env_file)


def from_settings(settings: Settings) -> PoolerConfig:
    """The configuration's ``[pooler]``, parsed once (``settings.pooler``)."""
    return settings.pooler


# Roles that connect to the instance directly, never through a pool: administrators
# (read-only) and postgres_exporter (monitoring). Their limits come off the budget.
DIRECT_ROLES = ("readonly", "monitoring")


def pools(cfg: PoolerConfig, roles: RolesConfig) -> list[Pool]:
    """One pool per app role, sized as the module docstring says.

    :raises ConfigError: the budget cannot give every app role one connection."""
    apps = [r for r in roles.roles if r.app not in DIRECT_ROLES]
    direct = sum(r.connection_limit for r in roles.roles if r.app in DIRECT_ROLES) + AUTH_ROLE_LIMIT
    budget = cfg.max_connections - cfg.reserved_connections - direct
    if budget < len(apps):
        raise ConfigError(f"[pooler] max_connections {cfg.max_connections} leaves {budget} connections for "
                          f"{len(apps)} app pools after reserved_connections {cfg.reserved_connections} and "
                          f"{direct} direct ones; raise max_connections (and the server's) or lower the reserve")
    wanted = sum(r.connection_limit for r in apps)
    sizes = [r.connection_limit if wanted <= budget else max(1, r.connection_limit * budget // wanted) for r in apps]
    while sum(sizes) > budget:          # the "at least 1" of tiny roles: taken back from the largest pool
        sizes[sizes.index(max(sizes))] -= 1
    return [Pool(r.app, r.name, cfg.mode(r.app), r.connection_limit, size) for r, size in zip(apps, sizes)]


def render(cfg: PoolerConfig, roles: RolesConfig) -> str:
    """pgbouncer.ini for PgBouncer 1.24 (no secrets: the auth file is written at start-up)."""
    ps = pools(cfg, roles)
    total = sum(p.pool_size for p in ps)
    users = "\n".join(f"; {p.app}: CONNECTION LIMIT {p.connection_limit} on the server\n"
                      f"{p.role} = pool_mode={p.mode} pool_size={p.pool_size} max_user_connections={p.pool_size}"
                      for p in ps)
    return f"""\
; Rendered by `consolidate pooler --write compose/pgbouncer/pgbouncer.ini` from
; consolidation.toml ([roles.*] limits, [pooler]); edit those, not this file.
; Sizing and pool modes: migrator/ops/pooler.py, docs/pooling.md.

[databases]
; Only the unified instance's database; any other name is refused.
{cfg.dbname} = host={cfg.server_host} port={cfg.server_port} dbname={cfg.dbname}

[users]
; One pool per app role. Server connections for all of them together:
; max_db_connections = {total} (max_connections {cfg.max_connections} - reserved {cfg.reserved_connections}
; - the read-only role and the auth role, which connect directly).
{users}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {cfg.port}
unix_socket_dir =

; SCRAM end to end: clients prove their password to PgBouncer with the verifier
; it fetches from the server (auth_query, sql/80-pooler.sql), and PgBouncer
; reuses their SCRAM keys to log in to the server. The auth file holds only
; the auth role and the stats user (written at start-up from env/pooler.env).
auth_type = scram-sha-256
auth_file = /run/pgbouncer/userlist.txt
auth_user = {cfg.auth_role}
auth_dbname = {cfg.dbname}
auth_query = SELECT usename, passwd FROM consolidation_pooler.user_lookup($1)

; No admin users: the console is SHOW-only, for the metrics exporter.
admin_users =
stats_users = {STATS_USER}

pool_mode = transaction
default_pool_size = 1
max_db_connections = {total}
max_client_conn = {cfg.max_client_conn}
reserve_pool_size = 0
min_pool_size = 0

; asyncpg and other drivers that prepare named statements at protocol level:
; PgBouncer tracks them per client and prepares them on whichever server
; connection a transaction lands on (0 would break them in transaction mode).
max_prepared_statements = {cfg.max_prepared_statements}

; n8n 2.x sends `options=-c statement_timeout=...` at start-up, which PgBouncer
; would refuse; the role's own statement_timeout and search_path (ALTER ROLE)
; apply on every server connection instead.
ignore_startup_parameters = extra_float_digits,options,statement_timeout,search_path

; Session pools hand back clean connections; transaction pools do not reset.
server_reset_query = DISCARD ALL
server_reset_query_always = 0
server_check_delay = 30
server_lifetime = 3600
server_idle_timeout = 600
query_wait_timeout = 120
client_login_timeout = 30

log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 60
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", metavar="PATH", type=Path,
                        help="write pgbouncer.ini there (compose/pgbouncer/pgbouncer.ini); else print it")


COMMAND = "pooler"
LOCK = None  # writes pgbouncer.ini, not the target (migrator/engine/runlock.py)
NEEDS = {"pools"}  # checked before any connection (migrator/config/validation.py)
HELP = "PgBouncer pool sizes from the roles' limits; render compose/pgbouncer/pgbouncer.ini"


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    cfg, roles = from_settings(settings), RolesConfig.from_settings(settings)
    text = render(cfg, roles)
    if args.write:
        args.write.write_text(text)
        for p in pools(cfg, roles):
            console.say(f"{p.role}: {p.mode} pool, {p.pool_size} server connections "
                        f"(CONNECTION LIMIT {p.connection_limit})")
        console.say(f"wrote {args.write}")
    else:
        console.say(text, soft_wrap=True)
    return 0
