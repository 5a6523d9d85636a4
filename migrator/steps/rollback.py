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

Before it touches anything it checks the way back exists: the lifecycle is not
"decommissioned" (migrator/ops/cutover_state.py), and every database an app would
be pointed back to answers to the login of the env file it would get back and
holds that app's schema. Otherwise one line naming what is missing, exit 3,
env files and containers untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from migrator import console
from migrator.apps import fingerprints, registry
from migrator.config import argtypes, envfile
from migrator.config.mapping import load_mappings
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import journal
from migrator.engine.db import connect
from migrator.errors import ConsolidationError, DatabaseError, RollbackRefused
from migrator.ops import cutover_state
from migrator.redact import register_secret
from migrator.systems import services

COMMAND = "rollback"
LOCK = "exclusive-if-up"  # the way back works with the target down too (migrator/engine/runlock.py)
NEEDS = {"mappings", "app_env"}  # checked before any connection (migrator/config/validation.py)
HELP = "undo a cutover: env files back byte for byte, apps back on the old databases"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drop-schemas", action="store_true",
                        help="also drop the schemas the migration created on the unified instance")
    parser.add_argument("--no-smoke", action="store_true", help="do not compare the apps' fingerprint")
    parser.add_argument("--app-timeout", type=argtypes.seconds, default=300.0, help="seconds each app gets to be healthy")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, reports_dir, drop_schemas=args.drop_schemas, smoke=not args.no_smoke, timeout=args.app_timeout)
    return 0


Plan = dict[str, tuple[Path, bytes | None, str]]      # app -> (env file, original bytes or None, read from)


def planned_env(state: cutover_state.CutoverState) -> Plan:
    """Per recorded app: its env file, the original bytes to write back (None: it is the
    original already) and where they come from. Every original is read and checked
    before any file is written."""
    plan: Plan = {}
    for app, record in state.env_files.items():
        path = Path(record.path)
        if path.is_file() and cutover_state.sha256_file(path) == record.original_sha256:
            plan[app] = (path, None, str(path))
            continue
        if not record.backup or not Path(record.backup).is_file():
            raise ConsolidationError(f"{path}: the original was not saved; restore it from your own copy")
        if cutover_state.sha256_file(Path(record.backup)) != record.original_sha256:
            raise ConsolidationError(f"{record.backup}: the saved original does not match the recorded sha256")
        plan[app] = (path, Path(record.backup).read_bytes(), record.backup)
    return plan


def restore_env_files(plan: Plan) -> list[str]:
    restored = []
    for path, original, _ in plan.values():
        if original is not None:
            envfile.write_atomic(path, original)
            restored.append(str(path))
    return restored


# --- the way back must exist before it is taken ------------------------------------------

_TABLES_IN = ("SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
              " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) %s"
              " AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::\"char\"[])")


def env_after(settings: Settings, name: str, plan: Plan) -> tuple[dict[str, str], str]:
    """The values app ``name`` will run with once rolled back, and the file they come from."""
    path, original, where = plan.get(name, (settings.apps[name].env_file, None, str(settings.apps[name].env_file)))
    if original is None:
        return settings.apps[name].env(), where
    return envfile.values(original.decode("utf-8"), where), where


def app_schema(settings: Settings, name: str, login: registry.DbLogin) -> str:
    """The schema the app keeps its tables in on its old database: its source's [sources.<name>]
    schema, else the one its login names."""
    mapping = next((m for m in load_mappings(settings) if m.name == name), None)
    return mapping.schema if mapping else (login.schema or "public")


def way_back_problem(settings: Settings, name: str, login: registry.DbLogin, where: str) -> str | None:
    """Why app ``name`` could not run on the database of ``login`` (None: it could)."""
    register_secret(login.password)
    if not login.port.isdigit():
        return f"port '{login.port}' is not a number"
    db = DatabaseSettings(name=name, role="source", host=login.host, port=int(login.port), dbname=login.dbname,
                          user=login.user, password=login.password, env_file=Path(where))
    schema = app_schema(settings, name, login)
    try:
        with connect(db, 5) as conn:       # seconds, not the --wait for a starting server
            tables = conn.execute(_TABLES_IN, (schema,)).fetchone()[0]
    except DatabaseError as exc:      # (connect's hint names the database env files' key, not the app's)
        return f"is unusable: {exc.problem.split(' (check POSTGRES_PASSWORD')[0]}"
    return None if tables else f"holds no tables in schema '{schema}'"


def check_way_back(settings: Settings, plan: Plan) -> None:
    """:raises RollbackRefused: an app would be pointed at a database it cannot run on."""
    problems = []
    for name in settings.apps:
        app = registry.get(name)
        if app.login_of is None:
            continue
        values, where = env_after(settings, name, plan)
        login = app.login_of(values)
        problem = way_back_problem(settings, name, login, where)
        if problem:
            problems.append(f"{name}'s old database {login.user}@{login.host}:{login.port}/{login.dbname} "
                            f"(from {where}) {problem}")
    if problems:
        raise RollbackRefused(f"`rollback` refused: {'; '.join(problems)}; nothing was changed (start the "
                              "legacy database, or fix the saved env file, then run it again)")


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
    cutover_state.require(settings, COMMAND)
    state_file = cutover_state.state_path(settings)
    state = cutover_state.load(state_file)
    if state is None:
        console.say("nothing was cut over (no env/.cutover.json): nothing to roll back")
        return
    if state.phase == "rolled-back" and not drop_schemas:
        console.say("already rolled back: nothing to do")
        return
    if state.phase != "rolled-back":
        plan = planned_env(state)
        check_way_back(settings, plan)
        restored = restore_env_files(plan)
        console.say(f"  env files restored: {', '.join(restored) or 'none needed'}")
        for name, seconds in services.restart_apps(settings, timeout).healthy.items():
            console.say(f"  {name}: healthy on its old database in {seconds:.1f} s")
        mark_migration_stale(settings)
        if smoke and state.fingerprint_label:
            fingerprints.require_equal(settings, reports_dir, state.fingerprint_label)
        state.move_to("rolled-back", state_file)
    if drop_schemas:
        dropped = drop_migrated_schemas(settings)
        console.say(f"  dropped schemas: {', '.join(dropped) or 'none'}")
