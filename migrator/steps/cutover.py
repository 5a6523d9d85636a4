"""cutover: the whole maintenance window, start to finish (`make consolidate`).

preflight -> fingerprint (before) -> assess -> backup -> stop the writers ->
migrate -> verify -> roles -> rewrite env -> start apps on the unified
instance -> wait healthy -> smoke (fingerprint equal to before) -> summary.

If verify, the apps' health or the smoke test fails, it rolls back by itself
(env files restored byte for byte, apps recreated on the old databases, which
were never written) and says why. Each irreversible move is recorded first in
env/.cutover.json, so a rerun after a crash continues, and `rollback` can undo
from any point.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from urllib.parse import quote

from rich.table import Table

from migrator import argtypes, console, cutover_state, envfile, services
from migrator.db import DEFAULT_JOBS, connect
from migrator.errors import ConsolidationError, VerificationError
from migrator.mapping import load_mappings
from migrator.settings import Settings
from migrator.steps import assess, backup, fingerprint, migrate, preflight, roles, verify
from migrator.steps import rollback as rollback_step

COMMAND = "cutover"
HELP = "the full maintenance window: migrate, verify, switch the apps over (rolls back by itself on failure)"
BEFORE = "before-cutover"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS, help="parallel workers")
    parser.add_argument("--app-timeout", type=argtypes.seconds, default=300.0,
                        help="seconds each app gets to become healthy on the new instance (default: %(default)s)")
    parser.add_argument("--skip-backup", action="store_true", help="do not dump the sources first (not advised)")


class Timer:
    """Wall time per step, for the summary table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def run(self, name: str, action, detail=lambda result: ""):
        started = time.monotonic()
        result = action()
        self.rows.append((name, time.monotonic() - started, detail(result) or ""))
        return result


def compose_project(settings: Settings) -> str:
    return settings.raw.get("compose", {}).get("project") or os.environ.get("COMPOSE_PROJECT_NAME") or "consolidation"


def app_services(settings: Settings) -> dict[str, services.Service]:
    project = compose_project(settings)
    return {name: services.Service(project, app.options.get("service", name)) for name, app in settings.apps.items()}


def env_updates(settings: Settings, app: str, current: dict[str, str], passwords: dict[str, str],
                cfg: roles.RolesConfig) -> tuple[dict[str, str], tuple[str, ...]]:
    """The keys an app's env file gets to reach its schemas on the unified instance as its own role."""
    t = settings.target
    spec = cfg.role(app)
    password = passwords[app]          # load_passwords: app -> password
    schema = next(m.target_schema for m in load_mappings(settings) if m.name == app)
    host = settings.raw.get("cutover", {}).get("app_db_host", t.host)
    port = str(settings.raw.get("cutover", {}).get("app_db_port", t.port))
    if app == "n8n":
        return ({"DB_TYPE": "postgresdb", "DB_POSTGRESDB_HOST": host, "DB_POSTGRESDB_PORT": port,
                 "DB_POSTGRESDB_DATABASE": t.dbname, "DB_POSTGRESDB_USER": spec.name,
                 "DB_POSTGRESDB_PASSWORD": password, "DB_POSTGRESDB_SCHEMA": schema}, ())
    if app == "letta":
        if "LETTA_PG_URI" in current or not any(k.startswith("LETTA_PG_") for k in current):
            uri = f"postgresql://{quote(spec.name, safe='')}:{quote(password, safe='')}@{host}:{port}/{t.dbname}"
            return {"LETTA_PG_URI": uri}, ()
        return ({"LETTA_PG_HOST": host, "LETTA_PG_PORT": port, "LETTA_PG_DB": t.dbname,
                 "LETTA_PG_USER": spec.name, "LETTA_PG_PASSWORD": password}, ())
    raise ConsolidationError(f"no env rewrite rule for app '{app}'")


def rewrite_env(settings: Settings, state: cutover_state.CutoverState, state_file: Path) -> None:
    cfg = roles.RolesConfig.from_settings(settings)
    passwords = roles.load_passwords(cfg)
    for name, app in settings.apps.items():
        current = app.env()
        updates, removed = env_updates(settings, name, current, passwords, cfg)
        record = state.env_files.get(name)
        if record is None:   # first attempt: remember the original bytes before touching them
            record = cutover_state.EnvRecord(str(app.env_file), cutover_state.sha256_file(app.env_file))
            state.env_files[name] = record
            cutover_state.save(state, state_file)
        if record.backup is None or not Path(record.backup).is_file():
            # Where the original will be kept is recorded before the file is touched:
            # a kill between the two writes still leaves rollback its way back.
            stamp = envfile.new_stamp()
            record.backup = str(envfile.backup_path(app.env_file, stamp))
            cutover_state.save(state, state_file)
        else:
            stamp = envfile.stamp_of(Path(record.backup))
        result = envfile.rewrite(app.env_file, updates, removed, stamp=stamp)
        diff = envfile.masked_diff(app.env_file, result.before, result.after)
        if diff:
            console.say(diff)


# The database settings each app's env file may carry; a key of these that the
# file no longer has is removed from the container too.
DB_KEY_PREFIXES = {"n8n": ("DB_POSTGRESDB_", "DB_TYPE"), "letta": ("LETTA_PG_",)}


def restart_apps(settings: Settings, timeout: float) -> dict[str, float]:
    """Recreate every app's container from its env file as it is now, start it, wait until healthy."""
    c = services.client()
    healthy = {}
    for name, svc in app_services(settings).items():
        values = settings.apps[name].env()
        stale = services.stale_keys(c, svc, values, DB_KEY_PREFIXES.get(name, ()))
        services.recreate(c, svc, values, removed=stale)
        services.start(c, svc)
    for name, svc in app_services(settings).items():
        healthy[name] = services.wait_healthy(c, svc, timeout)
    return healthy


def stop_apps(settings: Settings) -> None:
    c = services.client()
    for svc in app_services(settings).values():
        services.stop(c, svc)


def summary(timer: Timer, downtime: float | None) -> Table:
    table = Table(title="Cutover summary")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("detail")
    for name, seconds, detail in timer.rows:
        table.add_row(name, f"{seconds:.1f}", detail)
    if downtime is not None:
        table.add_row("[bold]application downtime[/bold]", f"[bold]{downtime:.1f}[/bold]",
                      "writers stopped -> healthy on the unified instance")
    return table


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    state_file = cutover_state.state_path(settings)
    state = cutover_state.load(state_file)
    if state and state.phase == "done":
        console.say("already cut over (env/.cutover.json says done); `rollback` undoes it")
        return 0
    if state is None or state.phase == "rolled-back":
        state = cutover_state.CutoverState()
        state.move_to("started", state_file)
    timer, stopped_at = Timer(), None
    try:
        timer.run("preflight", lambda: preflight.run(settings, reports_dir=reports_dir))
        if state.fingerprint_label is None:
            timer.run("fingerprint (before)", lambda: save_fingerprint(settings, reports_dir))
            state.fingerprint_label = BEFORE
            cutover_state.save(state, state_file)
        timer.run("assess", lambda: assess.run(settings, reports_dir))
        if not args.skip_backup:
            timer.run("backup", lambda: backup.run(settings, settings.backups_dir, jobs=args.jobs),
                      lambda path: str(path.name))
        stopped_at = time.monotonic()
        state.move_to("apps-stopped", state_file)     # before: a partial stop is undone like a full one
        timer.run("stop writers", lambda: stop_apps(settings))
        timer.run("migrate", lambda: migrate.run(settings, jobs=args.jobs, work_dir=settings.work_dir),
                  lambda t: ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))
        results = timer.run("verify", lambda: verify.run(settings, reports_dir),
                            lambda rs: f"{sum(t.source_rows for r in rs for t in r.tables):,} rows identical")
        timer.run("roles", lambda: apply_roles(settings, reports_dir))
        state.move_to("migrated", state_file)
        timer.run("rewrite env", lambda: rewrite_env(settings, state, state_file))
        state.move_to("env-rewritten", state_file)
        healthy = timer.run("start apps", lambda: restart_apps(settings, args.app_timeout),
                            lambda h: ", ".join(f"{k} healthy in {v:.1f}s" for k, v in h.items()))
        downtime = time.monotonic() - stopped_at
        state.move_to("apps-started", state_file)
        timer.run("smoke (fingerprint)", lambda: compare_fingerprint(settings, reports_dir))
        state.move_to("done", state_file)
    except Exception as raw:  # noqa: BLE001 - anything after the writers stopped is undone
        exc = raw if isinstance(raw, ConsolidationError) else ConsolidationError(
            f"internal error: {type(raw).__name__}: {raw}")
        console.fail(f"cutover stopped: {exc.message}")
        if state.phase == "started":     # the apps were never stopped: nothing to undo
            state.move_to("rolled-back", state_file)
            raise _CutoverFailed(exc, "stopped before any change; the apps were not touched") from None
        console.say("rolling back ...")
        rollback_step.run(settings, reports_dir, drop_schemas=False, smoke=state.fingerprint_label is not None,
                          reason=exc.message)
        raise _CutoverFailed(exc, "rolled back: the apps run on their old databases again") from None
    console.print_table(summary(timer, downtime))
    console.write_json(reports_dir / "cutover.json", {
        "steps": [{"step": n, "seconds": round(s, 3), "detail": d} for n, s, d in timer.rows],
        "downtime_seconds": round(downtime, 3), "rows_verified": sum(t.source_rows for r in results for t in r.tables),
        "healthy_seconds": healthy})
    return 0


class _CutoverFailed(ConsolidationError):
    def __init__(self, cause: ConsolidationError, outcome: str):
        super().__init__(f"cutover failed ({cause.message}); {outcome}")
        self.exit_code = cause.exit_code


def save_fingerprint(settings: Settings, reports_dir: Path) -> None:
    data = fingerprint.take(settings, list(settings.apps), label=BEFORE)
    console.write_json(fingerprint.fp.path_for(reports_dir, BEFORE), data)
    console.print_table(fingerprint.summary_table(data))


def compare_fingerprint(settings: Settings, reports_dir: Path, label: str = BEFORE) -> None:
    saved = fingerprint.fp.load(reports_dir, label)
    now = fingerprint.take(settings, list(settings.apps), label=None)
    differences = fingerprint.fp.compare({"apps": saved["apps"]}, now)
    console.write_json(reports_dir / f"fingerprint-diff-{label}.json",
                       {"equal": not differences, "differences": [d.as_dict() for d in differences]})
    if differences:
        for line in fingerprint.fp.render_diff(differences):
            console.say("  " + line)
        raise VerificationError(f"the apps' fingerprint differs from '{label}' in {len(differences)} field(s)")
    console.say(f"  fingerprint equal to '{label}'")


def apply_roles(settings: Settings, reports_dir: Path) -> None:
    cfg = roles.RolesConfig.from_settings(settings)
    with connect(settings.target) as conn:
        result = roles.apply(conn, cfg, roles.load_passwords(cfg), target=settings.target.name)
    roles.report(result, reports_dir)
