"""The whole configuration, checked before the first connection.

A typo in `[roles]`, an invalid `name:` regex or a missing app-role password
used to surface only when its step ran: in a cutover, after the writers had
stopped and the migration had run. `validate` asks the configuration
(migrator/config/settings.py) for every section, each parsed once into its frozen type
and kept for the command, plus what the command declares it needs beside its
COMMAND (``NEEDS``, below), and raises ConfigError (exit 2, one line naming the
file and key) on the first problem; nothing has connected yet, so nothing has
changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrator.apps import registry
from migrator.config.rolesconfig import load_passwords
from migrator.config.settings import Settings
from migrator.ops import pooler

# What a command module may list in NEEDS (next to its COMMAND and LOCK):
#   mappings     each source's mapping (schema, target_schema, rules)
#   passwords    the app roles' passwords (env/app-roles.env) and the pooler's
#   app_env      the apps' env files
#   pools        the PgBouncer pools fit the server's connection budget
#   pooled_apps  pools, when [cutover] via_pooler sends the apps through PgBouncer
KNOWN_NEEDS = {"mappings", "passwords", "app_env", "pools", "pooled_apps"}


def validate(settings: Settings, command: str, needs: Iterable[str] = ()) -> None:
    """:raises ConfigError: naming the file, the section or key, and the problem."""
    needs = set(needs)
    assert needs <= KNOWN_NEEDS, f"{command}: unknown NEEDS {needs - KNOWN_NEEDS}"
    if "mappings" in needs:
        settings.mappings
    roles, pooler_cfg = settings.roles, settings.pooler
    settings.cutover, settings.compose                     # [cutover] and [compose] keys and values
    if "pools" in needs or ("pooled_apps" in needs and settings.cutover.via_pooler):
        pooler.pools(pooler_cfg, roles)                     # the pools fit the server's budget
    for name in settings.apps:
        registry.get(name)              # an [apps.<name>] needs its module in migrator/apps/
    if "passwords" in needs:
        load_passwords(roles)
        pooler.auth_password(pooler_cfg)
    if "app_env" in needs:
        for app in settings.apps.values():
            app.env()
