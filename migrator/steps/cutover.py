"""cutover: the whole maintenance window, start to finish (`make consolidate`).

preflight -> fingerprint (before) -> assess -> backup -> stop the writers ->
migrate -> verify -> roles -> rewrite env -> start apps on the unified
instance -> wait healthy -> smoke (fingerprint equal to before) -> summary.

If verify, the apps' health or the smoke test fails, it rolls back by itself
(env files restored byte for byte, apps recreated on the old databases, which
were never written) and says why. Each irreversible move is recorded first in
env/.cutover.json, so a rerun after a crash continues, and `rollback` can undo
from any point. The window is the table PHASES below; what is app-specific
(env keys, containers) comes from migrator/apps/registry.py and services.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from rich.table import Table

from migrator import console
from migrator.apps import registry
from migrator.config import argtypes, envfile
from migrator.config.mapping import load_mappings
from migrator.config.rolesconfig import RolesConfig, load_passwords
from migrator.config.settings import Settings
from migrator.engine.db import DEFAULT_JOBS, connect
from migrator.errors import ConsolidationError, RollbackRefused, ServiceError, StepFailed
from migrator.ops import cutover_state, pooler
from migrator.redact import redact
from migrator.steps import assess, backup, fingerprint, migrate, preflight, roles, verify
from migrator.steps import rollback as rollback_step
from migrator.systems import services

COMMAND = "cutover"
LOCK = "exclusive"  # runs migrate, verify and roles inside itself (migrator/engine/runlock.py)
NEEDS = {"mappings", "passwords", "app_env", "pooled_apps"}  # checked before any connection (migrator/config/validation.py)
HELP = "the full maintenance window: migrate, verify, switch the apps over (rolls back by itself on failure)"
BEFORE = "before-cutover"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS, help="parallel workers")
    parser.add_argument("--app-timeout", type=argtypes.seconds, default=300.0,
                        help="seconds each app gets to become healthy on the new instance (default: %(default)s)")
    parser.add_argument("--skip-backup", action="store_true", help="do not dump the sources first (not advised)")


@dataclass
class Window:
    """One run of the maintenance window: its inputs, its recorded state, its timings."""
    settings: Settings
    args: argparse.Namespace
    reports_dir: Path
    state: cutover_state.CutoverState
    state_file: Path
    rows: list[tuple[str, float, str]] = field(default_factory=list)
    results: dict[str, object] = field(default_factory=dict)
    stopped_at: float | None = None
    downtime: float | None = None
    apps_start: float | None = None      # the apps' own start: containers started -> all healthy
    carry: dict[str, object] = field(default_factory=dict)   # live objects one phase leaves the next (open snapshots)

    def record(self, phase: str) -> None:
        self.state.move_to(phase, self.state_file)


@dataclass(frozen=True)
class Phase:
    title: str
    action: Callable[[Window], object]
    detail: Callable[[object], str] = lambda result: ""
    skip: Callable[[Window], bool] = lambda w: False
    before: str | None = None       # state recorded before the action (its undo must cover a partial run)
    after: str | None = None        # state recorded once it succeeded


def _fingerprint_before(w: Window) -> None:
    fingerprint.save(w.settings, w.reports_dir, BEFORE)
    w.state.fingerprint_label = BEFORE
    cutover_state.save(w.state, w.state_file)


def _schema_before(w: Window) -> dict[str, float]:
    """The definitions do not depend on the rows being final: restored (through the
    scratch database) while the apps still run; the window only checks them."""
    return migrate.run(w.settings, jobs=w.args.jobs, work_dir=w.settings.work_dir, schema_only=True)


def _stop_writers(w: Window) -> dict[str, float]:
    w.stopped_at = time.monotonic()
    return services.stop_apps(w.settings)


def _migrate(w: Window) -> tuple[dict[str, float], list[str]]:
    """In the window: each source's schema fingerprint compared with the one taken when its
    definitions were restored (a change, e.g. an app that migrated its schema on the way
    down, has the schema step redone here: correct, only slower), then copy, post-data."""
    redone: list[str] = []
    return migrate.run(w.settings, jobs=w.args.jobs, work_dir=w.settings.work_dir, redone=redone), redone


def _migrate_detail(result: tuple[dict[str, float], list[str]]) -> str:
    timings, redone = result
    check = (f"schema redone in the window ({', '.join(redone)}: changed since restored)" if redone
             else "schema unchanged since restored")
    return "; ".join([check, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())])


def _start_apps(w: Window) -> dict[str, float]:
    restarted = services.restart_apps(w.settings, w.args.app_timeout)
    now = time.monotonic()
    if w.stopped_at:
        w.downtime = now - w.stopped_at
        w.apps_start = now - restarted.started_at
    return restarted.healthy


def via_pooler(settings: Settings) -> bool:
    return settings.cutover.via_pooler


def _pooler_up(w: Window) -> str:
    """With via_pooler, PgBouncer must already run (`make pooler`) before the writers stop."""
    pool = pooler.from_settings(w.settings)
    c = services.client()
    svc = services.Service(services.compose_project(w.settings), pool.host)
    try:
        seconds = services.wait_healthy(c, svc, 60)
    except ServiceError as exc:
        raise ServiceError(f"[cutover] via_pooler = true, but PgBouncer is not up ({exc.message}); "
                           "start it first: `make pooler`") from None
    return f"{pool.host}:{pool.port} healthy ({seconds:.1f}s)"


def _rows(results) -> str:
    return f"{sum(t.source_rows for r in results for t in r.tables):,} rows identical"


PHASES = (
    Phase("preflight", lambda w: preflight.run(w.settings, reports_dir=w.reports_dir)),
    Phase("pooler", _pooler_up, lambda d: d, skip=lambda w: not via_pooler(w.settings)),
    Phase("fingerprint (before)", _fingerprint_before, skip=lambda w: w.state.fingerprint_label is not None),
    Phase("assess", lambda w: assess.run(w.settings, w.reports_dir)),
    Phase("backup", lambda w: backup.run(w.settings, w.settings.backups_dir, jobs=w.args.jobs),
          lambda path: str(path.name), skip=lambda w: w.args.skip_backup),
    Phase("schema (before the window)", _schema_before, lambda t: "definitions restored while the apps run"),
    Phase("stop writers", _stop_writers, lambda t: ", ".join(f"{k} {v:.1f}s" for k, v in t.items()),
          before="apps-stopped"),
    Phase("migrate", _migrate, _migrate_detail),
    Phase("verify", lambda w: verify.run(w.settings, w.reports_dir), _rows),
    Phase("roles", lambda w: apply_roles(w.settings, w.reports_dir), after="migrated"),
    Phase("rewrite env", lambda w: rewrite_env(w.settings, w.state, w.state_file), after="env-rewritten"),
    Phase("start apps", _start_apps, lambda h: ", ".join(f"{k} healthy in {v:.1f}s" for k, v in h.items()),
          after="apps-started"),
    Phase("smoke (fingerprint)", lambda w: fingerprint.require_equal(w.settings, w.reports_dir, BEFORE),
          after="done"),
)


def run_phases(w: Window, phases: tuple[Phase, ...] = PHASES) -> None:
    """``phases``: the offline window's, or another window built of the same parts
    (`online cutover`, migrator/steps/online.py)."""
    for phase in phases:
        if phase.skip(w):
            continue
        if phase.before:
            w.record(phase.before)
        started = time.monotonic()
        result = phase.action(w)
        w.results[phase.title] = result
        w.rows.append((phase.title, time.monotonic() - started, phase.detail(result) or ""))
        if phase.after:
            w.record(phase.after)


def db_login(settings: Settings, app: str, passwords: dict[str, str], cfg: RolesConfig) -> registry.DbLogin:
    """Where the app's own role reaches its schemas, as seen from the app's container: the
    unified instance itself, or PgBouncer in front of it with [cutover] via_pooler = true
    (same database name, role and password: PgBouncer checks them against the server's)."""
    t, cut = settings.target, settings.cutover
    schema = next((m.target_schema for m in load_mappings(settings) if m.name == app), "")
    host, port = cut.app_db_host or t.host, cut.app_db_port or t.port
    if cut.via_pooler:
        pool = pooler.from_settings(settings)
        host, port = pool.host, pool.port
    return registry.DbLogin(host=host, port=str(port), dbname=t.dbname, user=cfg.role(app).name,
                            password=passwords[app], schema=schema)


def env_updates(settings: Settings, app: str, current: dict[str, str], passwords: dict[str, str],
                cfg: RolesConfig) -> tuple[dict[str, str], tuple[str, ...]]:
    """The keys an app's env file gets to reach its schemas on the unified instance as its own role."""
    return registry.get(app).env_updates(current, db_login(settings, app, passwords, cfg))


def rewrite_env(settings: Settings, state: cutover_state.CutoverState, state_file: Path) -> None:
    cfg = RolesConfig.from_settings(settings)
    passwords = load_passwords(cfg)
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



def apply_roles(settings: Settings, reports_dir: Path) -> None:
    cfg = RolesConfig.from_settings(settings)
    with connect(settings.target) as conn:
        result = roles.apply(conn, cfg, load_passwords(cfg), target=settings.target.name)
    roles.report(result, reports_dir)


WINDOW_FIRST, WINDOW_LAST = "stop writers", "start apps"


@dataclass(frozen=True)
class Downtime:
    """Writers stopped -> every app healthy on the unified instance, split into the apps'
    own start (their containers started -> healthy: what no tool can shorten) and what
    this tool adds beyond it (``steps``: each step in the window, the time spent
    recreating the app containers and what passed between steps; they add up to it)."""
    total: float
    apps_start: float
    steps: list[tuple[str, float]]

    def __post_init__(self) -> None:   # to the millisecond: the summary and both reports show the same figures
        object.__setattr__(self, "total", round(self.total, 3))
        object.__setattr__(self, "apps_start", round(self.apps_start, 3))
        object.__setattr__(self, "steps", [(n, round(s, 3)) for n, s in self.steps])

    @property
    def beyond(self) -> float:
        return round(self.total - self.apps_start, 3)

    def as_json(self) -> dict:
        return {"downtime_seconds": self.total, "apps_start_seconds": self.apps_start,
                "beyond_apps_start_seconds": self.beyond,
                "beyond_apps_start_steps": [{"step": n, "seconds": s} for n, s in self.steps]}


def downtime_of(w: Window) -> Downtime | None:
    """The window's figures, from the steps between stopping the writers and the apps healthy."""
    if w.downtime is None or w.apps_start is None:
        return None
    names = [n for n, _, _ in w.rows]
    if WINDOW_FIRST not in names:      # resumed after the writers stopped: no whole window to split
        return None
    inside = w.rows[names.index(WINDOW_FIRST):names.index(WINDOW_LAST) + 1]
    steps = [(n, s) for n, s, _ in inside if n != WINDOW_LAST]
    steps.append(("recreate app containers", inside[-1][1] - w.apps_start))
    # What no step timed (env/.cutover.json written between them): shown, so the parts add up.
    steps.append(("between steps", w.downtime - w.apps_start - sum(s for _, s in steps)))
    return Downtime(w.downtime, w.apps_start, steps)


def summary(rows: list[tuple[str, float, str]], downtime: Downtime | None) -> Table:
    table = Table(title="Cutover summary")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("detail")
    for name, seconds, detail in rows:
        table.add_row(name, f"{seconds:.1f}", detail)
    if downtime is not None:
        table.add_row("[bold]application downtime[/bold]", f"[bold]{downtime.total:.1f}[/bold]",
                      "writers stopped -> healthy on the unified instance")
        table.add_row("  the apps' own start", f"{downtime.apps_start:.1f}",
                      "their containers started -> healthy")
        table.add_row("  [bold]beyond the apps' start[/bold]", f"[bold]{downtime.beyond:.1f}[/bold]",
                      ", ".join(f"{n} {s:.1f}" for n, s in downtime.steps))
    return table


def markdown(rows: list[tuple[str, float, str]], downtime: Downtime | None) -> str:
    lines = ["# Cutover summary", "", "| step | seconds | detail |", "|---|---:|---|"]
    lines += [f"| {n} | {s:.1f} | {d} |" for n, s, d in rows]
    if downtime is not None:
        lines += ["", f"Application downtime: **{downtime.total:.1f} s** (writers stopped -> healthy on the "
                  f"unified instance) = the apps' own start {downtime.apps_start:.1f} s + "
                  f"**{downtime.beyond:.1f} s beyond it**:", "",
                  "| beyond the apps' start | seconds |", "|---|---:|"]
        lines += [f"| {n} | {s:.1f} |" for n, s in downtime.steps]
    return "\n".join(lines) + "\n"


def report(w: Window, rows_verified: int, **extra: object) -> None:
    """The summary on screen, reports/cutover.json and cutover.md (offline and online windows)."""
    downtime = downtime_of(w)
    console.print_table(summary(w.rows, downtime))
    console.write_json(w.reports_dir / "cutover.json", {
        **extra,
        "steps": [{"step": n, "seconds": round(s, 3), "detail": d} for n, s, d in w.rows],
        **(downtime.as_json() if downtime else {"downtime_seconds": round(w.downtime or 0, 3)}),
        "rows_verified": rows_verified,
        "healthy_seconds": w.results["start apps"]})
    (w.reports_dir / "cutover.md").write_text(redact(markdown(w.rows, downtime)), encoding="utf-8")


def roll_back(w: Window, raw: Exception, undo: Callable[[], str] | None = None,
              timeout: float = 300.0) -> NoReturn:
    """A window failed: before the writers stopped nothing is undone; after, the apps go back
    on their old databases (rollback), then ``undo`` (the online window's: its replication and
    staging) says what else it removed.

    :raises StepFailed: always, saying what happened."""
    settings, reports_dir, state, state_file = w.settings, w.reports_dir, w.state, w.state_file
    exc = raw if isinstance(raw, ConsolidationError) else ConsolidationError(
        f"internal error: {type(raw).__name__}: {raw}")
    console.fail(f"cutover stopped: {exc.message}")
    if w.rows:      # what ran, and how long it took, before the failure
        console.print_table(summary(w.rows, None))
    if state.phase == "started":     # the apps were never stopped: nothing to undo
        state.move_to("rolled-back", state_file)
        raise StepFailed(exc, "stopped before any change to the apps or their data; the apps were not touched") from None
    console.say("rolling back ...")
    try:
        rollback_step.run(settings, reports_dir, drop_schemas=False, smoke=state.fingerprint_label is not None,
                          reason=exc.message, timeout=timeout)
    except RollbackRefused as refused:     # the way back is gone too: say both, change nothing more
        raise StepFailed(exc, f"not rolled back: {refused.message}") from None
    extra = undo() if undo else ""
    raise StepFailed(exc, "rolled back: the apps run on their old databases again" + extra) from None


def open_window(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> Window | None:
    """The window to run: a new one, or the one a killed run left (None: cut over already)."""
    cutover_state.require(settings, COMMAND)
    state_file = cutover_state.state_path(settings)
    state = cutover_state.load(state_file)
    if state and state.phase == "done":
        console.say("already cut over (env/.cutover.json says done); `rollback` undoes it")
        return None
    if state is None or state.phase == "rolled-back":
        state = cutover_state.CutoverState()
        state.move_to("started", state_file)
    return Window(settings, args, reports_dir, state, state_file)


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    w = open_window(settings, args, reports_dir)
    if w is None:
        return 0
    try:
        run_phases(w)
    except Exception as raw:  # noqa: BLE001 - anything after the writers stopped is undone
        roll_back(w, raw)
    report(w, sum(t.source_rows for r in w.results["verify"] for t in r.tables))
    return 0
