"""`[roles]` of consolidation.toml and env/app-roles.env: which login role each
application gets, its limits, the RAG model's vector size, the API opt-in, and
the roles' passwords. Read by the roles step and checked up front by
migrator/config/validation.py, so a typo is found before any window opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from migrator.apps import layout
from migrator.config.mapping import IDENT
from migrator.config.settings import Settings, read_env_file
from migrator.errors import ConfigError
from migrator.redact import register_secret

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPABASE_ROLES = {"postgres", "anon", "authenticated", "service_role", "authenticator", "dashboard_user",
                  "pgbouncer"}
_ROLE_NAME = IDENT            # a plain lower-case identifier, as for schemas
RESERVED_PREFIXES = ("pg_", "supabase")
_TIMEOUT = re.compile(r"^\d+\s*(us|ms|s|min|h|d)?$")
_SCHEMA_NAME = IDENT


@dataclass(frozen=True)
class RoleSpec:
    """One registered login role. ``app`` is the key in consolidation.toml and in the SQL variables."""

    app: str
    name: str
    connection_limit: int
    statement_timeout: str

    @property
    def password_key(self) -> str:
        return f"{self.app.upper()}_ROLE_PASSWORD"


def check_role_name(name: str, where: str) -> str:
    """The one rule for a role the tool creates (app roles, the pooler's auth role): a plain
    lower-case identifier that is neither PostgreSQL's (pg_) nor Supabase's.

    :raises ConfigError: naming ``where``."""
    if not _ROLE_NAME.match(name) or name.startswith(RESERVED_PREFIXES) or name in SUPABASE_ROLES:
        raise ConfigError(f"{where}: '{name}' is not allowed (lowercase identifier, not a Supabase "
                          "or pg_ role)")
    return name


# Defaults (docs/roles.md): the apps' from migrator/apps/layout.py, then the tool's own.
DEFAULT_ROLES = (
    *(RoleSpec(app, *login) for app, login in layout.LOGINS.items()),
    RoleSpec("readonly", "consolidation_readonly", 5, "1min"),
    # postgres_exporter's login: pg_monitor only (sql/55-monitoring.sql, docs/monitoring.md).
    RoleSpec("monitoring", "consolidation_monitor", 3, "30s"),
)
# Roles whose password may be absent from env/app-roles.env (files made before the role
# existed): the role is created, but keeps no password and cannot log in until one is added.
OPTIONAL_PASSWORDS = {"monitoring"}
NEW_APP_DEFAULTS = {"connection_limit": 10, "statement_timeout": "5min"}
TOP_KEYS = {"env_file", "sql_dir", "vector_dimension", "api_schemas"}
ROLE_KEYS = {"name", "connection_limit", "statement_timeout"}


@dataclass(frozen=True)
class RolesConfig:
    roles: tuple[RoleSpec, ...] = DEFAULT_ROLES
    vector_dimension: int = 1536
    api_schemas: tuple[str, ...] = ()
    env_file: Path = REPO_ROOT / "env/app-roles.env"
    sql_dir: Path = REPO_ROOT / "sql"
    # PgBouncer's auth_query role (sql/80-pooler.sql) and the env file with its
    # password: [pooler] auth_role / env_file (migrator/ops/pooler.py).
    pooler_role: str = "consolidation_pooler"
    pooler_env_file: Path | None = None

    @classmethod
    def defaults(cls) -> RolesConfig:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings) -> RolesConfig:
        """The configuration's ``[roles]``, parsed once (``settings.roles``)."""
        return settings.roles

    @classmethod
    def parse(cls, settings: Settings) -> RolesConfig:
        cfg = parse_config(settings.section("roles"), settings.config_file)
        raw = settings.section("pooler")
        if not isinstance(raw, dict):
            raise ConfigError(f"{settings.config_file}: [pooler] must be a table")
        return replace(cfg, pooler_role=raw.get("auth_role", cfg.pooler_role),
                       pooler_env_file=settings.config_file.parent / raw.get("env_file", "env/pooler.env"))

    def role(self, app: str) -> RoleSpec:
        return next(r for r in self.roles if r.app == app)


def parse_config(raw: object, config_file: Path) -> RolesConfig:
    """``[roles]`` of consolidation.toml; absent keys take the documented defaults.

    :raises ConfigError: naming the key and the problem.
    """
    where = f"{config_file}: [roles]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    base = config_file.parent
    unknown = set(raw) - TOP_KEYS - {k for k, v in raw.items() if isinstance(v, dict)}
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(sorted(unknown))} "
                          f"(expected {', '.join(sorted(TOP_KEYS))} or [roles.<app>] tables)")
    roles = {spec.app: spec for spec in DEFAULT_ROLES}
    for app, table in raw.items():
        if isinstance(table, dict):
            roles[app] = _role_spec(app, table, roles.get(app), f"{config_file}: [roles.{app}]")
    _check_unique(roles.values(), where)
    return RolesConfig(
        roles=tuple(roles.values()),
        vector_dimension=_int(raw.get("vector_dimension", 1536), f"{where} vector_dimension", 1, 2000),
        api_schemas=_schema_list(raw.get("api_schemas", []), f"{where} api_schemas"),
        env_file=base / _str(raw.get("env_file", "env/app-roles.env"), f"{where} env_file"),
        sql_dir=_sql_dir(raw, base, where),
    )


def _sql_dir(raw: dict, base: Path, where: str) -> Path:
    """sql_dir as configured; by default sql/ beside the config file, else the one shipped
    beside the package (/src/sql in the migrator image, when the image carries it)."""
    if "sql_dir" in raw:
        return base / _str(raw["sql_dir"], f"{where} sql_dir")
    beside_config = base / "sql"
    return beside_config if beside_config.is_dir() or not (REPO_ROOT / "sql").is_dir() else REPO_ROOT / "sql"


def _role_spec(app: str, table: dict, default: RoleSpec | None, where: str) -> RoleSpec:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", app):
        raise ConfigError(f"{where}: application key must be lowercase letters, digits, underscores")
    unknown = set(table) - ROLE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(sorted(unknown))} (expected {', '.join(sorted(ROLE_KEYS))})")
    base = default or RoleSpec(app, app, **NEW_APP_DEFAULTS)
    spec = replace(base, **{k: v for k, v in table.items()})
    name = check_role_name(_str(spec.name, f"{where} name"), f"{where} name")
    timeout = spec.statement_timeout
    timeout = str(timeout) if isinstance(timeout, int) and not isinstance(timeout, bool) else timeout
    if not isinstance(timeout, str) or not _TIMEOUT.match(timeout):
        raise ConfigError(f"{where} statement_timeout: expected e.g. \"5min\", \"30s\" or milliseconds, got {timeout!r}")
    limit = _int(spec.connection_limit, f"{where} connection_limit", 1, 10000)
    return RoleSpec(app, name, limit, timeout.replace(" ", ""))


def _check_unique(specs, where: str) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{where}: role name '{spec.name}' is used by both {seen[spec.name]} and {spec.app}")
        seen[spec.name] = spec.app


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _schema_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _SCHEMA_NAME.match(v) for v in value):
        raise ConfigError(f"{where}: expected a list of schema names, got {value!r}")
    return tuple(value)


def load_passwords(cfg: RolesConfig) -> dict[str, str]:
    """app -> password from env/app-roles.env; each one registered for redaction first."""
    values = read_env_file(cfg.env_file)
    for value in values.values():
        register_secret(value)
    missing = [spec.password_key for spec in cfg.roles
               if not values.get(spec.password_key) and spec.app not in OPTIONAL_PASSWORDS]
    if missing:
        raise ConfigError(f"{cfg.env_file}: missing or empty key {', '.join(missing)} "
                          "(add it to env/app-roles.env.example and run `make env`, or add it by hand)")
    return {spec.app: values[spec.password_key] for spec in cfg.roles if values.get(spec.password_key)}


POOLER_PASSWORD_KEY = "POOLER_AUTH_PASSWORD"


def load_pooler_password(cfg: RolesConfig) -> str | None:
    """The pooler auth role's password from env/pooler.env, or None when that file does not
    exist (no pooler: the role is created without a password and cannot log in).

    :raises ConfigError: the file exists without the key."""
    return pooler_password_from(cfg.pooler_env_file)


def pooler_password_from(path: Path | None) -> str | None:
    """load_pooler_password, from the env file's path (the pooler's own config holds it)."""
    if path is None or not path.is_file():
        return None
    value = read_env_file(path).get(POOLER_PASSWORD_KEY)
    if not value:
        raise ConfigError(f"{path}: missing or empty key {POOLER_PASSWORD_KEY} "
                          "(copy env/pooler.env.example and run `make env`)")
    register_secret(value)
    return value
