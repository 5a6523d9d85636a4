"""Configuration: which databases take part, and how to reach them.

``consolidation.toml`` names the target and the sources; each database's
connection settings come from its env file (the same file that configures its
container), read as docker compose reads it. Everything is validated before the first
connection, and every problem names the file and the key.

The file is read once into a frozen ``Config`` (``Settings`` is the same class):
databases and apps when it is loaded; each other section (``mappings``, ``roles``,
``pooler``, ``cutover``, ``compose``) parsed into its own frozen type the first time
it is asked for (migrator/config/validation.py asks for every one a command needs, before
any connection) and kept, so no command parses a section again and none reads the
TOML's raw tables (only this module does).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from migrator.config import envfile
from migrator.errors import ConfigError
from migrator.redact import register_secret

REQUIRED_KEYS = ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")


@dataclass(frozen=True)
class DatabaseSettings:
    name: str            # short name used in messages and reports ("unified", "n8n", ...)
    role: str            # "target" or "source"
    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    env_file: Path | None = None

    def conninfo(self, **overrides: object) -> dict[str, object]:
        """Keyword arguments for psycopg.connect (never logged)."""
        params: dict[str, object] = dict(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user,
            password=self.password, application_name="consolidation-migrator",
        )
        params.update(overrides)
        return params

    def describe(self) -> str:
        """Where this database is, without the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class AppSettings:
    """An application of the stack (``[apps.<name>]``): where its API answers and
    which env file configures its container. Env files are read on demand
    (``env()``), so commands that do not talk to the apps never need them."""

    name: str            # "n8n", "letta"
    url: str             # base URL of its HTTP API, as seen from where `consolidate` runs
    env_file: Path       # the app container's env file (the one the cutover rewrites)
    options: dict = field(default_factory=dict, repr=False)  # the rest of the TOML table, paths resolved

    def env(self) -> dict[str, str]:
        values = read_env_file(self.env_file)
        for key, value in values.items():
            if envfile.SECRET_KEY.search(key):        # the same list that masks the rewrite's diff
                register_secret(value)
                if "://" in value:  # a connection URI: its password alone is a secret too
                    try:
                        register_secret(urlsplit(value).password)
                    except ValueError:
                        pass
        return values

    def path(self, key: str, default: str | None = None) -> Path | None:
        value = self.options.get(key, default)
        return None if value is None else Path(value)


SECTIONS = {"target", "sources", "apps", "roles", "cutover", "compose", "pooler"}
CUTOVER_KEYS = {"app_db_host": str, "app_db_port": int, "via_pooler": bool}
COMPOSE_KEYS = {"project": str}


@dataclass(frozen=True)
class CutoverConfig:
    """``[cutover]``: where the apps reach the unified instance after the switch."""
    app_db_host: str | None = None     # default: the target's host
    app_db_port: int | None = None     # default: the target's port
    via_pooler: bool = False           # point the apps at PgBouncer (docs/pooling.md)

    @classmethod
    def parse(cls, raw: object, config_file: Path) -> CutoverConfig:
        where = f"{config_file}: [cutover]"
        check_table(raw, where, CUTOVER_KEYS)
        port = raw.get("app_db_port")
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"{config_file}: [cutover] app_db_port must be a TCP port number, got {port}")
        return cls(**raw)


@dataclass(frozen=True)
class ComposeConfig:
    """``[compose]``: the compose project whose containers the commands manage."""
    project: str | None = None         # default: $COMPOSE_PROJECT_NAME, else "consolidation"

    @classmethod
    def parse(cls, raw: object, config_file: Path) -> ComposeConfig:
        check_table(raw, f"{config_file}: [compose]", COMPOSE_KEYS)
        return cls(**raw)


@dataclass(frozen=True)
class Settings:
    config_file: Path
    target: DatabaseSettings
    sources: tuple[DatabaseSettings, ...]
    raw: dict = field(repr=False, compare=False)   # the TOML as read: only the sections below read it
    apps: dict[str, AppSettings] = field(default_factory=dict)

    # --- the typed sections, each parsed once (cached on this frozen instance) ---------
    def section(self, name: str) -> object:
        return self.raw.get(name, {})

    @cached_property
    def mappings(self) -> tuple:
        """Every source's mapping (migrator/config/mapping.py): schema, target schemas, rules."""
        from migrator.config.mapping import parse_mappings     # mapping.py builds on this module
        return tuple(parse_mappings(self))

    @cached_property
    def roles(self):
        """``[roles]`` and the pooler's auth role (migrator/config/rolesconfig.py)."""
        from migrator.config.rolesconfig import RolesConfig
        return RolesConfig.parse(self)

    @cached_property
    def pooler(self):
        """``[pooler]`` (migrator/ops/pooler.py)."""
        from migrator.ops.pooler import parse
        return parse(self.section("pooler"), self.config_file, self.target.dbname)

    @cached_property
    def cutover(self) -> CutoverConfig:
        return CutoverConfig.parse(self.section("cutover"), self.config_file)

    @cached_property
    def compose(self) -> ComposeConfig:
        return ComposeConfig.parse(self.section("compose"), self.config_file)

    @property
    def databases(self) -> tuple[DatabaseSettings, ...]:
        return (self.target, *self.sources)

    @property
    def backups_dir(self) -> Path:
        """Dumps and the engine's work files live here (a volume in the compose stack)."""
        return self.config_file.parent / "backups"

    @property
    def work_dir(self) -> Path:
        return self.backups_dir / "work"

    def app(self, name: str) -> AppSettings:
        if name not in self.apps:
            raise ConfigError(f"{self.config_file}: no [apps.{name}] table (url, env_file)")
        return self.apps[name]


Config = Settings   # issue 27's name for it; the call sites keep `Settings`

def read_env_file(path: Path) -> dict[str, str]:
    """An env file, read exactly as docker compose reads it (migrator/config/envfile.py): the
    values the migrator uses are the ones the containers get."""
    return envfile.read(path)


def database_from_env(name: str, role: str, path: Path) -> DatabaseSettings:
    values = read_env_file(path)
    register_secret(values.get("POSTGRES_PASSWORD"))
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if missing:
        raise ConfigError(f"{path}: missing or empty key {', '.join(missing)} (database '{name}')")
    port_text = values.get("POSTGRES_PORT") or "5432"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{path}: POSTGRES_PORT must be a TCP port number, got '{port_text}'")
    return DatabaseSettings(
        name=name, role=role, host=values["POSTGRES_HOST"], port=int(port_text),
        dbname=values["POSTGRES_DB"], user=values["POSTGRES_USER"],
        password=values["POSTGRES_PASSWORD"], env_file=path,
    )


def load_settings(config_file: Path) -> Settings:
    """Read the mapping file and every env file it names; fail before any connection."""
    if not config_file.is_file():
        raise ConfigError(f"{config_file}: configuration file not found")
    try:
        raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file}: invalid TOML ({exc})") from None
    base = config_file.parent
    unknown = set(raw) - SECTIONS
    if unknown:
        raise ConfigError(f"{config_file}: unknown section [{sorted(unknown)[0]}] (expected one of "
                          f"{', '.join(sorted(SECTIONS))})")

    target_cfg = raw.get("target")
    if not isinstance(target_cfg, dict) or "env_file" not in target_cfg:
        raise ConfigError(f"{config_file}: [target] with env_file is required")
    sources_cfg = raw.get("sources")
    if not isinstance(sources_cfg, dict) or not sources_cfg:
        raise ConfigError(f"{config_file}: at least one [sources.<name>] table is required")

    target = database_from_env(target_cfg.get("name", "unified"), "target", base / target_cfg["env_file"])
    sources = []
    for name, cfg in sources_cfg.items():
        if not isinstance(cfg, dict) or "env_file" not in cfg:
            raise ConfigError(f"{config_file}: [sources.{name}] needs env_file")
        sources.append(database_from_env(name, "source", base / cfg["env_file"]))
    return Settings(config_file=config_file, target=target, sources=tuple(sources), raw=raw,
                    apps=apps_from_config(config_file, raw))


def apps_from_config(config_file: Path, raw: dict) -> dict[str, AppSettings]:
    """``[apps.<name>]`` tables: url and env_file required; keys ending in ``_file``
    are paths relative to the config file. ``CONSOLIDATION_<NAME>_URL`` in the
    environment overrides url (e.g. a published port when running on the host)."""
    apps_cfg = raw.get("apps", {})
    if not isinstance(apps_cfg, dict):
        raise ConfigError(f"{config_file}: [apps] must be a table of [apps.<name>] tables")
    base = config_file.parent
    apps: dict[str, AppSettings] = {}
    for name, cfg in apps_cfg.items():
        if not isinstance(cfg, dict) or not cfg.get("url") or not cfg.get("env_file"):
            raise ConfigError(f"{config_file}: [apps.{name}] needs url and env_file")
        options = {k: (str(base / v) if k.endswith("_file") and isinstance(v, str) else v)
                   for k, v in cfg.items() if k not in ("url", "env_file")}
        url = os.environ.get(f"CONSOLIDATION_{name.upper()}_URL") or cfg["url"]
        apps[name] = AppSettings(name=name, url=str(url).rstrip("/"), env_file=base / cfg["env_file"],
                                 options=options)
    return apps


def check_table(table: object, where: str, keys: dict[str, type]) -> None:
    """A consolidation.toml table: only ``keys``, each of its type (a bool is not an int).

    :raises ConfigError: naming ``where``, the key and the problem."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key} (expected {', '.join(sorted(keys))})")
        if not isinstance(value, keys[key]) or (isinstance(value, bool) and keys[key] is not bool):
            raise ConfigError(f"{where} {key}: expected a {keys[key].__name__}, got {value!r}")
