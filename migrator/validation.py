"""The whole configuration, checked before the first connection.

A typo in `[roles]`, an invalid `name:` regex or a missing app-role password
used to surface only when its step ran: in a cutover, after the writers had
stopped and the migration had run. `validate` reads every section
consolidation.toml has (and the env files the command will need) and raises
ConfigError (exit 2, one line naming the file and key) on the first problem;
nothing has connected yet, so nothing has changed.
"""

from __future__ import annotations

from migrator import pooler
from migrator.apps import registry
from migrator.errors import ConfigError
from migrator.mapping import load_mappings
from migrator.settings import Settings, check_table
from migrator.rolesconfig import RolesConfig, load_passwords

SECTIONS = {"target", "sources", "apps", "roles", "cutover", "compose", "pooler"}
CUTOVER_KEYS = {"app_db_host": str, "app_db_port": int, "via_pooler": bool}
COMPOSE_KEYS = {"project": str}
# Commands that read the app roles' passwords, and those that read the apps' env files.
NEEDS_PASSWORDS = {"roles", "cutover"}
NEEDS_APP_ENV = {"cutover", "rollback", "seed", "fingerprint", "decommission"}
# Commands that move or compare data need each source's mapping (schema, target_schema, rules).
NEEDS_MAPPINGS = {"assess", "schema", "copy", "post-data", "migrate", "verify", "cutover", "rollback",
                  "decommission"}


def validate(settings: Settings, command: str) -> None:
    """:raises ConfigError: naming the file, the section or key, and the problem."""
    where = settings.config_file
    unknown = set(settings.raw) - SECTIONS
    if unknown:
        raise ConfigError(f"{where}: unknown section [{sorted(unknown)[0]}] (expected one of "
                          f"{', '.join(sorted(SECTIONS))})")
    if command in NEEDS_MAPPINGS:
        load_mappings(settings)
    roles = RolesConfig.from_settings(settings)
    _table(settings, "cutover", CUTOVER_KEYS)
    _table(settings, "compose", COMPOSE_KEYS)
    pooler_cfg = pooler.from_settings(settings)             # [pooler] keys
    if command == "pooler" or (command == "cutover" and settings.raw.get("cutover", {}).get("via_pooler")):
        pooler.pools(pooler_cfg, roles)                     # the pools fit the server's budget
    port = settings.raw.get("cutover", {}).get("app_db_port")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}: [cutover] app_db_port must be a TCP port number, got {port}")
    for name in settings.apps:
        registry.get(name)              # an [apps.<name>] needs its module in migrator/apps/
    if command in NEEDS_PASSWORDS:
        load_passwords(roles)
        pooler.auth_password(pooler_cfg)
    if command in NEEDS_APP_ENV:
        for app in settings.apps.values():
            app.env()


def _table(settings: Settings, name: str, keys: dict[str, type]) -> None:
    check_table(settings.raw.get(name, {}), f"{settings.config_file}: [{name}]", keys)
