"""rollback: undo a cutover, from wherever it stopped.

Env files go back byte for byte (checked against the sha256 recorded before
they were first touched), the apps are recreated on the old databases (which
the migration never wrote) and waited for until healthy, and their fingerprint
is compared with the one taken before the cutover. The migrated schemas are
kept by default (for inspection; a later cutover rebuilds them);
--drop-schemas drops the schemas this tool created. Running it when nothing
was cut over says so and exits 0; running it twice is harmless.

Writes the apps made on the unified instance after a successful cutover are
NOT copied back: they stay in the (kept) schemas.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from migrator import argtypes, console, cutover_state, envfile, journal, services
from migrator.db import connect
from migrator.errors import ConsolidationError
from migrator.mapping import load_mappings
from migrator.settings import Settings
from migrator.steps import fingerprint

COMMAND = "rollback"
LOCK = "exclusive-if-up"  # the way back works with the target down too (migrator/runlock.py)
HELP = "undo a cutover: env files back byte for byte, apps back on the old databases"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drop-schemas", action="store_true",
                        help="also drop the schemas the migration created on the unified instance")
    parser.add_argument("--no-smoke", action="store_true", help="do not compare the apps' fingerprint")
    parser.add_argument("--app-timeout", type=argtypes.seconds, default=300.0, help="seconds each app gets to be healthy")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, reports_dir, drop_schemas=args.drop_schemas, smoke=not args.no_smoke, timeout=args.app_timeout)
    return 0


def restore_env_files(state: cutover_state.CutoverState) -> list[str]:
    restored = []
    for app, record in state.env_files.items():
        path = Path(record.path)
        if path.is_file() and cutover_state.sha256_file(path) == record.original_sha256:
            continue
        if not record.backup or not Path(record.backup).is_file():
            raise ConsolidationError(f"{path}: the original was not saved; restore it from your own copy")
        original = Path(record.backup).read_bytes()
        envfile.write_atomic(path, original)
        if cutover_state.sha256_file(path) != record.original_sha256:
            raise ConsolidationError(f"{path}: restored file does not match the recorded sha256")
        restored.append(str(path))
    return restored


def drop_migrated_schemas(settings: Settings) -> list[str]:
    dropped = []
    with connect(settings.target) as target:
        if not journal.exists(target):
            return []
        for mapping in load_mappings(settings):
            dropped += journal.drop_created_schemas(target, mapping.name)
            journal.forget_source(target, mapping.name)
    return dropped


def mark_migration_stale(settings: Settings) -> None:
    """Kept schemas are out of date once the apps run on the old databases again:
    the next migrate must rebuild them (their steps are forgotten, their
    schemas stay recorded as ours so the rebuild may drop them)."""
    try:
        with connect(settings.target, 10) as target:
            if journal.exists(target):
                for mapping in load_mappings(settings):
                    target.execute(f"DELETE FROM {journal.SCHEMA}.steps WHERE source = %s", (mapping.name,))
                    journal.forget_rows(target, mapping.name)
    except ConsolidationError as exc:
        console.say(f"  warning: could not mark the migrated schemas stale ({exc.message})")


def run(settings: Settings, reports_dir: Path, *, drop_schemas: bool = False, smoke: bool = True,
        timeout: float = 300.0, reason: str | None = None) -> None:
    console.step("R", "rollback" + (f" ({reason})" if reason else ""))
    state_file = cutover_state.state_path(settings)
    state = cutover_state.load(state_file)
    if state is None:
        console.say("nothing was cut over (no env/.cutover.json): nothing to roll back")
        return
    if state.phase == "rolled-back" and not drop_schemas:
        console.say("already rolled back: nothing to do")
        return
    if state.phase != "rolled-back":
        restored = restore_env_files(state)
        console.say(f"  env files restored: {', '.join(restored) or 'none needed'}")
        for name, seconds in services.restart_apps(settings, timeout).items():
            console.say(f"  {name}: healthy on its old database in {seconds:.1f} s")
        mark_migration_stale(settings)
        if smoke and state.fingerprint_label:
            fingerprint.require_equal(settings, reports_dir, state.fingerprint_label)
        state.move_to("rolled-back", state_file)
    if drop_schemas:
        dropped = drop_migrated_schemas(settings)
        console.say(f"  dropped schemas: {', '.join(dropped) or 'none'}")
