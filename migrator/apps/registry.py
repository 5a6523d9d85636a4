"""Every application the tool knows, behind one small interface.

Everything app-specific lives in the app's own module in this package (n8n.py,
letta.py): which env keys hold its database settings and how to point them at
the unified instance, how to seed it, fingerprint it and summarise a
fingerprint. The steps (seed, fingerprint, cutover, rollback) only ever go
through ``get(name)``. A new application is one new module here that defines
``APP = App(...)``; it is found by ``known()`` without any other edit (plus its
configuration: [apps.<name>], [sources.<name>], [roles.<name>]).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrator.errors import ConfigError


@dataclass(frozen=True)
class DbLogin:
    """Where an app's own role reaches its schemas on the unified instance."""
    host: str
    port: str
    dbname: str
    user: str
    password: str = field(repr=False)
    schema: str = ""


@dataclass(frozen=True)
class App:
    name: str
    # Env keys (prefixes) that carry its database settings: a key with one of these
    # prefixes that the env file no longer has is removed from the container too.
    db_key_prefixes: tuple[str, ...]
    # (current env file values, login) -> (keys to set, keys to remove)
    env_updates: Callable[[dict[str, str], DbLogin], tuple[dict[str, str], tuple[str, ...]]]
    # env file values -> "user@host:port/db ..." (no password), for reports
    database_of: Callable[[dict[str, str]], str]
    # (app settings, scale, log) -> counts of what was created
    seed: Callable[[Any, int, Callable], dict] | None = None
    # app settings -> what the app lists through its API
    fingerprint: Callable[[Any], dict] | None = None
    # fingerprint -> a few lines for people
    summary: Callable[[dict], dict[str, Any]] = lambda fp: {}
    # env file values -> the login the app would use (rollback checks it before pointing back)
    login_of: Callable[[dict[str, str]], DbLogin] | None = None


_REGISTRY: dict[str, App] = {}


def register(app: App) -> App:
    _REGISTRY[app.name] = app
    return app


def known() -> dict[str, App]:
    """Every app module of this package that defines APP, by name."""
    if not _REGISTRY.get("__scanned__"):
        package = importlib.import_module("migrator.apps")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"migrator.apps.{info.name}")
            if isinstance(getattr(module, "APP", None), App):
                register(module.APP)
        _REGISTRY["__scanned__"] = True     # type: ignore[assignment]
    return {name: app for name, app in _REGISTRY.items() if name != "__scanned__"}


def get(name: str) -> App:
    """:raises ConfigError: no module in migrator/apps/ describes this app."""
    apps = known()
    if name not in apps:
        raise ConfigError(f"no application module for '{name}' in migrator/apps/ (known: {', '.join(sorted(apps))})")
    return apps[name]


def selected(settings, chosen: list[str] | None) -> list[str]:
    """The apps a command works on: those chosen (--app), else every known app configured.

    :raises ConfigError: none configured, or a chosen one has no [apps.<name>] table."""
    names = chosen or [name for name in settings.apps if name in known()]
    if not names:
        raise ConfigError(f"{settings.config_file}: no [apps.<name>] table for any of {', '.join(sorted(known()))}")
    for name in names:
        settings.app(name)
    return names
