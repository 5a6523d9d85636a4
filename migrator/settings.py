"""Configuration: which databases take part, and how to reach them.

``consolidation.toml`` names the target and the sources; each database's
connection settings come from its env file (the same file that configures its
container), read with python-dotenv. Everything is validated before the first
connection, and every problem names the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dotenv.parser import parse_stream

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
class Settings:
    config_file: Path
    target: DatabaseSettings
    sources: tuple[DatabaseSettings, ...]
    raw: dict

    @property
    def databases(self) -> tuple[DatabaseSettings, ...]:
        return (self.target, *self.sources)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse an env file strictly: a line python-dotenv cannot parse is an error."""
    if not path.is_file():
        raise ConfigError(f"{path}: env file not found (run `make env` to create it from the .example)")
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        lineno = 1
        for binding in parse_stream(stream):
            if binding.error:
                raise ConfigError(f"{path}:{lineno}: cannot parse this line (expected KEY=VALUE)")
            if binding.key is not None:
                values[binding.key] = binding.value or ""
            lineno += binding.original.string.count("\n")
    return values


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
    return Settings(config_file=config_file, target=target, sources=tuple(sources), raw=raw)
