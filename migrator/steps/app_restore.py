"""app-restore: put one application's backup (`consolidate app-backup`) back.

Live (default): the app's schemas on the unified instance are replaced, every
other app's are untouched. It refuses while the app's role has sessions (stop
the app first, or --force to end them); restores into a scratch database and
verifies counts and checksums against the manifest; renames the live schemas
aside (<schema>_replaced_<stamp>, one transaction) and restores the backup in
their place as the app's loader role (no superuser rights, one transaction);
verifies again; only then hands the schemas to the app role and re-applies its
privileges as `consolidate roles` does. Any failure renames the old schemas
back. They stay until you drop them (the command prints how).

--as-of TARGET: the app as it was at a time (or lsn:X/Y, name:POINT), from the
pgBackRest backups: the instance is restored to TARGET into a scratch copy
(restore-instance --scratch), the app is dumped there (app-backup's dump, in
backups/apps/<app>/), the copy is removed, and that dump is restored live as
above. Needs the docker socket: `docker compose run --rm migrator app-restore ...`.

--into-empty ENV_FILE: restore into another, empty PostgreSQL 17 (pgvector
available) named by an env file (POSTGRES_HOST/PORT/DB/USER/PASSWORD, a
superuser): the role is created from roles.json with its password from
env/app-roles.env, pgvector in schema `extensions`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from migrator import console
from migrator.config.rolesconfig import RolesConfig
from migrator.config.settings import Settings, database_from_env, read_env_file
from migrator.engine.db import connect
from migrator.errors import ConfigError
from migrator.ops import appdump
from migrator.redact import register_secret
from migrator.systems import pgbackrest

COMMAND = "app-restore"
LOCK = "exclusive"  # replaces an app's schemas (migrator/engine/runlock.py)
HELP = "restore one application's backup: live (other apps untouched) or into an empty instance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", metavar="APP", help="n8n, letta or rag")
    parser.add_argument("--from", dest="from_dir", type=Path, default=None,
                        help="a backup directory (default: the newest under backups/apps/APP/)")
    parser.add_argument("--into-empty", type=Path, default=None, metavar="ENV_FILE",
                        help="restore into the empty instance this env file names, not the live one")
    parser.add_argument("--as-of", metavar="TARGET", default=None,
                        help="the app as of a time / lsn:X/Y / name:POINT, from the pgBackRest backups")
    parser.add_argument("--force", action="store_true", help="end the app role's open sessions instead of refusing")


def _password(settings: Settings, app: str) -> str | None:
    """The app role's password from env/app-roles.env, when that file has it."""
    cfg = RolesConfig.from_settings(settings)
    spec = next((s for s in cfg.roles if s.app == app), None)
    if spec is None or not cfg.env_file.is_file():
        return None
    value = read_env_file(cfg.env_file).get(spec.password_key)
    register_secret(value)
    return value or None


def dump_as_of(settings: Settings, app: str, when: str) -> Path:
    """Restore the instance to ``when`` into a scratch copy, dump ``app`` there, remove the copy."""
    inst = pgbackrest.locate(settings)
    pgbackrest.require_backups(inst)
    with connect(settings.target) as conn:
        target = dataclasses.replace(pgbackrest.Target.parse(when), timeline=pgbackrest.current_timeline(conn))
    console.step("R", f"app-restore: the instance as of {target.describe()} into a scratch copy")
    with pgbackrest.restored_copy(inst, target, settings.target, prefix="asof") as (scratch, _):
        dump_dir, manifest = appdump.dump_app(scratch.database(), app, appdump.backups_root(settings))
    console.say(f"  {app} as of {target.describe()}: {len(manifest['tables'])} tables dumped to {dump_dir}")
    return dump_dir


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    if args.as_of and (args.from_dir or args.into_empty):
        raise ConfigError("app-restore: --as-of makes its own dump; it cannot be combined with --from or --into-empty")
    dump_dir = (dump_as_of(settings, args.app, args.as_of) if args.as_of
                else args.from_dir or appdump.latest_dir(appdump.backups_root(settings), args.app))
    manifest = appdump.read_manifest(dump_dir)
    if manifest["app"] != args.app:
        raise ConfigError(f"{dump_dir} holds a backup of '{manifest['app']}', not '{args.app}'")
    if args.into_empty:
        console.step("R", f"app-restore: {args.app} from {dump_dir} into an empty instance")
        target = database_from_env("restore-target", "target", args.into_empty)
        result = appdump.restore_into_empty(target, dump_dir, password=_password(settings, args.app))
        console.say(f"  {result['tables']} tables, {result['rows']} rows restored and verified in "
                    f"{result['seconds']} s")
        return 0
    console.step("R", f"app-restore: {args.app} from {dump_dir} into {settings.target.name} (live)")
    result = appdump.restore_live(settings.target, dump_dir, force=args.force)
    console.say(f"  {result['tables']} tables, {result['rows']} rows restored and verified in {result['seconds']} s;"
                " other applications untouched")
    console.say(f"  the previous schemas are kept as {', '.join(result['kept'])}")
    console.say("  once the app works, drop them: "
                + "; ".join(f"DROP SCHEMA {k} CASCADE" for k in result["kept"]))
    return 0
