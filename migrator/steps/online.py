"""online: copy while the apps run, cut over in seconds (docs/online.md).

  consolidate online start     preflight, staging, publications, subscriptions (initial copy)
  consolidate online status    per-table sync state, replication lag, apply errors
  consolidate online cutover   catch up, checksums at one point, sequences, drop the
                               replication, move the staged objects into the target schemas
  consolidate online abort     drop subscriptions, slots, publications and staging

PostgreSQL's logical replication does the copying and the keeping up: a publication on
each source, a subscription on the target into a staging schema named like the source's
(replication matches tables by qualified name), owned by the source's loader role so the
apply runs as a non-superuser. The state of each source lives in ``_consolidation.online``.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql
from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

from migrator import console
from migrator.config import argtypes
from migrator.config.mapping import SourceMapping, load_mappings
from migrator.config.settings import Settings
from migrator.engine import baseline, catalog, changelog, checksums, journal, loader, pgtools, replication, staging
from migrator.engine.db import connect, require_superuser
from migrator.engine.replication import STATE, render_status, source_status, state  # noqa: F401 (status reads them there)
from migrator.errors import ConfigError, ConsolidationError, DatabaseError, VerificationError
from migrator.steps import copy as copy_step
from migrator.steps import cutover as window
from migrator.steps import migrate as migrate_step
from migrator.steps import post_data as post_data_step
from migrator.steps import schema as schema_step
from migrator.steps import verify as verify_step

COMMAND = "online"
LOCK = "exclusive"  # stages, subscribes and moves with the loaders (migrator/engine/runlock.py)
HELP = "online consolidation: logical replication while the apps run, then a short cutover"

STATE_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE} (
  source text PRIMARY KEY,
  phase text NOT NULL,                 -- starting, copying, moved, done
  created_staging boolean NOT NULL DEFAULT false,
  fingerprint text NOT NULL,           -- the source schema's, at start (DDL detection)
  suboid bigint,                       -- names the table sync slots on the source
  started_at timestamptz NOT NULL DEFAULT now(),
  detail jsonb)
"""
ENGINE_STEPS = (schema_step.STEP, copy_step.STEP, post_data_step.STEP)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="online_action", metavar="ACTION", required=True)
    start = sub.add_parser("start", help="preflight, staging, publications and subscriptions")
    start.add_argument("--work-dir", type=Path, default=None, help="where dumps go (default: backups/work)")
    status = sub.add_parser("status", help="sync state and replication lag per source")
    status.add_argument("--until-ready", metavar="S", type=argtypes.seconds, default=None,
                        help="wait up to S seconds until every table finished its initial copy")
    cut = sub.add_parser("cutover", help="catch up, verify, move into the target schemas (writers stopped)")
    cut.add_argument("--catch-up", metavar="S", type=argtypes.seconds, default=60.0,
                     help="seconds to wait for the target to apply the sources' current WAL (default: %(default)s)")
    cut.add_argument("--stop-writers", metavar="CMD", default=None,
                     help="without [apps]: hash both sides first while the writers run, then run CMD (a shell "
                          "command that stops them and returns), then re-hash only what changed")
    cut.add_argument("--app-timeout", type=argtypes.seconds, default=300.0,
                     help="with [apps]: seconds each app gets to become healthy on the new instance "
                          "(default: %(default)s)")
    sub.add_parser("abort", help="remove subscriptions, slots, publications and staging (sources untouched)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    mappings = load_mappings(settings)
    action = args.online_action
    if action == "status":
        return show_status(settings, mappings, reports_dir, args.until_ready)
    if action == "cutover" and settings.apps:
        if args.stop_writers:
            raise ConfigError("--stop-writers is for runs without [apps]; with [apps] the window stops the apps "
                              "itself (after the checksums)")
        return cutover_window(settings, mappings, args, reports_dir)
    with connect(settings.target) as admin:
        require_superuser(admin, settings.target)
        journal.acquire_lock(admin)
        if action == "start":
            start(settings, mappings, admin, args.work_dir or settings.work_dir)
        elif action == "cutover":
            cutover_stopping(settings, mappings, admin, args, reports_dir)
        else:
            abort(settings, mappings, admin)
    return 0


# --- state --------------------------------------------------------------------------------

def set_state(admin: psycopg.Connection, mapping: SourceMapping, **values) -> None:
    admin.execute(sql.SQL("UPDATE {} SET {} WHERE source = %(source)s").format(
        sql.SQL(STATE), sql.SQL(", ").join(sql.SQL("{} = %({})s").format(sql.Identifier(k), sql.SQL(k))
                                           for k in values)), {**values, "source": mapping.name})


# --- start --------------------------------------------------------------------------------

def preflight(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection) -> dict[str, str]:
    """Every refusal that can be known before writing anything; returns each source's
    schema fingerprint."""
    pgtools.require_client_for(admin, settings.target)
    replication.check_target_capacity(admin, len(mappings))
    fingerprints = {}
    for mapping in mappings:
        forget_undone_run(admin, mapping)
        if state(admin, mapping) is not None:
            raise ConfigError(f"source '{mapping.name}': an online run exists already (`consolidate online "
                              "status`); cut it over or abort it first")
        if journal.exists(admin) and journal.step_done(admin, mapping.name, copy_step.STEP):
            raise ConfigError(f"source '{mapping.name}' was migrated already; `consolidate migrate --from-scratch`"
                              " or `consolidate rollback` first")
        if replication.subscription(admin, mapping) is not None:
            raise DatabaseError("unified", "target", f"subscription {replication.name_of(mapping)} exists "
                                "already; run `consolidate online abort`")
        with connect(mapping.db) as source:
            pgtools.require_client_for(source, mapping.db)
            replication.check_source_settings(source, mapping)
            replication.check_source_tables(source, mapping)
            left = replication.leftovers_on_source(source, mapping)
            if left:
                raise DatabaseError(mapping.name, "source", f"{' and '.join(left)} exist(s) already; run "
                                    "`consolidate online abort`")
            staging.check(admin, source, mapping)
            fingerprints[mapping.name] = replication.schema_fingerprint(source, mapping.schema)
        checked = schema_step.check(mapping, admin)      # target schemas free, extensions, routine bodies
        for schema in mapping.target_schemas:
            # Ours but not empty (kept, stale, by a rollback): the move cannot go into it.
            count = catalog.schema_object_count(admin, schema)
            if count:
                raise ConfigError(f"target schema '{schema}' holds {count} objects (kept by a rollback?); the "
                                  "online move needs it empty: `consolidate rollback --drop-schemas` first")
        if checked.body_plans:
            # The move is ALTER ... SET SCHEMA: it cannot rewrite a body that names the schema
            # (the offline schema step can, in its scratch database).
            raise ConfigError(f"[sources.{mapping.name}] routine {checked.body_plans[0].routine} names schema "
                              f"'{mapping.schema}' in its body: online mode cannot rewrite bodies yet; use the "
                              "offline `consolidate cutover`")
    return fingerprints


def forget_undone_run(admin: psycopg.Connection, mapping: SourceMapping) -> None:
    """A finished online run whose result was dropped since (`migrate --from-scratch`,
    `rollback --drop-schemas`) no longer stands in the way of a new one."""
    found = state(admin, mapping)
    if found and found["phase"] == "done" and not journal.step_done(admin, mapping.name, copy_step.STEP):
        admin.execute(f"DELETE FROM {STATE} WHERE source = %s", (mapping.name,))


def start(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection, work_dir: Path) -> None:
    console.step("O1", "online start: preflight")
    fingerprints = preflight(settings, mappings, admin)
    journal.ensure(admin)
    admin.execute(STATE_DDL)
    try:
        with loader.logins(admin, settings, mappings, keep_workers=True):
            for mapping in mappings:
                start_source(settings, mapping, admin, work_dir, fingerprints[mapping.name])
        for mapping in mappings:      # the loaders' client logins are closed now
            enable(admin, mapping)
    except ConsolidationError as exc:
        undo_start(settings, mappings, admin)
        exc.message = f"{exc.message}; online start undone, nothing left behind"
        raise exc from None
    except psycopg.Error as exc:
        undo_start(settings, mappings, admin)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError("unified", "target", f"online start failed ({first}); undone, nothing left "
                            "behind") from None
    console.say("  initial copy running; `consolidate online status` shows progress and lag")


def undo_start(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection) -> None:
    console.say("  start failed: removing what it made")
    abort(settings, mappings, admin, quiet=True)


def start_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, work_dir: Path,
                 fingerprint: str) -> None:
    admin.execute(f"INSERT INTO {STATE} (source, phase, fingerprint) VALUES (%s, 'starting', %s)",
                  (mapping.name, fingerprint))
    console.step("O2", f"online start: staging {mapping.name} in '{mapping.schema}' on the target")
    created = not staging.schema_exists(admin, mapping.schema)
    set_state(admin, mapping, created_staging=created)    # before creating it: an abort knows
    staging.build(settings, mapping, admin, work_dir, created)
    leaks = staging.api_privileges(admin, mapping)
    if leaks:
        raise DatabaseError("unified", "target", f"API roles could read staged tables ({', '.join(leaks[:3])})")
    console.step("O3", f"online start: publication on {mapping.name}, subscription on the target")
    with connect(mapping.db, read_only=False) as source:
        tables = replication.published_tables(source, mapping)
        replication.create_publication(source, mapping, tables)
    subscribe(admin, settings, mapping)
    set_state(admin, mapping, phase="copying", suboid=replication.subscription(admin, mapping)[0])
    console.say(f"  {mapping.name}: {len(tables)} tables published; subscription "
                f"{replication.name_of(mapping)} copying")


def enable(admin: psycopg.Connection, mapping: SourceMapping, seconds: float = 60) -> None:
    """Start the subscription's workers, the loader already at CONNECTION LIMIT 0 (no client
    session can open as it, whatever pg_hba.conf says). PostgreSQL 17 does not count workers
    against a role's limit; a server that did would never start the apply worker: then the
    limit is lifted again (the loader keeps LOGIN without a password) and the start says so."""
    replication.set_enabled(admin, mapping, True)
    if started(admin, mapping, seconds):
        return
    admin.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(sql.Identifier(loader.name_of(mapping))))
    if not started(admin, mapping, seconds):
        raise DatabaseError("unified", "target", f"the apply worker of '{mapping.name}' did not start within "
                            f"{seconds:g} s (the target's log says why)")
    console.warn("warning:", f"{mapping.name}: this server counts replication workers against a role's "
                 "connection limit; the loader keeps LOGIN (no password) without one (docs/online.md)")


def started(admin: psycopg.Connection, mapping: SourceMapping, seconds: float) -> bool:
    @retry(retry=retry_if_result(lambda running: not running), stop=stop_after_delay(seconds), wait=wait_fixed(0.2))
    def poll() -> bool:
        return replication.apply_running(admin, mapping)

    try:
        return poll()
    except RetryError:
        return False


def subscribe(admin: psycopg.Connection, settings: Settings, mapping: SourceMapping) -> None:
    """The loader creates the subscription, so it owns it and the apply runs as it: it holds
    pg_create_subscription and CREATE on the database for that one statement only."""
    role = sql.Identifier(loader.name_of(mapping))
    database = sql.Identifier(settings.target.dbname)
    admin.execute(sql.SQL("GRANT pg_create_subscription TO {} WITH INHERIT TRUE").format(role))
    admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(database, role))
    try:
        with connect(loader.ensure(admin, settings, mapping)) as conn:
            replication.create_subscription(conn, mapping)
    finally:
        admin.execute(sql.SQL("REVOKE pg_create_subscription FROM {}").format(role))
        admin.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(database, role))


# --- status -------------------------------------------------------------------------------

def show_status(settings: Settings, mappings: list[SourceMapping], reports_dir: Path,
                until_ready: float | None) -> int:
    with connect(settings.target) as admin:
        require_superuser(admin, settings.target)
        rows = [source_status(admin, m) for m in mappings]
        if until_ready is not None:
            rows = wait_ready(admin, mappings, until_ready)
    console.print_table(render_status(rows))
    console.write_json(reports_dir / "online-status.json", rows)
    return 0


def wait_ready(admin: psycopg.Connection, mappings: list[SourceMapping], seconds: float) -> list[dict]:
    def not_ready(rows: list[dict]) -> bool:
        return not all(r.get("ready") for r in rows)

    @retry(retry=retry_if_result(not_ready), stop=stop_after_delay(seconds), wait=wait_fixed(1))
    def poll() -> list[dict]:
        rows = [source_status(admin, m) for m in mappings]
        stopped = [r["source"] for r in rows if r["enabled"] is False]
        if stopped:
            raise DatabaseError("unified", "target", f"subscription of {', '.join(stopped)} disabled itself "
                                "after an error (the target's log says which); `consolidate online abort`")
        return rows

    try:
        return poll()
    except RetryError:
        raise DatabaseError("unified", "target", f"initial copy not finished after {seconds:g} s "
                            "(`consolidate online status` shows which tables)") from None


# --- cutover ------------------------------------------------------------------------------

def require_copying(admin: psycopg.Connection, mapping: SourceMapping) -> dict:
    found = state(admin, mapping)
    if not found or found["phase"] != "copying":
        raise ConfigError(f"source '{mapping.name}': no online copy to cut over (phase "
                          f"{found['phase'] if found else 'none'}; `consolidate online start` first)")
    row = source_status(admin, mapping)
    if not row.get("ready"):
        raise ConfigError(f"source '{mapping.name}': initial copy not finished ({row['tables']}); "
                          "`consolidate online status --until-ready S` waits for it")
    if row["enabled"] is False:
        raise DatabaseError("unified", "target", f"subscription of '{mapping.name}' disabled itself after an "
                            "error; `consolidate online abort`")
    return found


def refuse_ddl(mapping: SourceMapping, source: psycopg.Connection, fingerprint: str) -> None:
    if replication.schema_fingerprint(source, mapping.schema) != fingerprint:
        raise DatabaseError(mapping.name, "source", f"schema '{mapping.schema}' changed (DDL) during the online "
                            "phase; nothing moved: `consolidate online abort`, then start again")


def catch_up(mapping: SourceMapping, source: psycopg.Connection, seconds: float) -> None:
    """Wait until the subscriber confirmed the source's current WAL position (writers are
    stopped: nothing after it belongs to the apps)."""
    lsn = replication.current_lsn(source)

    @retry(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(seconds), wait=wait_fixed(0.2))
    def poll() -> bool:
        return replication.confirmed(source, mapping, lsn)

    try:
        poll()
    except RetryError:
        raise DatabaseError("unified", "target", f"subscription of '{mapping.name}' did not apply up to "
                            f"{lsn} within {seconds:g} s; nothing moved") from None


def pause(admin: psycopg.Connection, mapping: SourceMapping) -> None:
    replication.set_enabled(admin, mapping, False)

    @retry(retry=retry_if_result(lambda running: running), stop=stop_after_delay(30), wait=wait_fixed(0.2))
    def poll() -> bool:
        return replication.apply_running(admin, mapping)

    try:
        poll()
    except RetryError:
        raise DatabaseError("unified", "target", f"the apply worker of '{mapping.name}' did not stop within 30 s "
                            "after its subscription was disabled; nothing moved (`consolidate online abort`, "
                            "or run the cutover again)") from None


def compare_rows(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection,
                 source: psycopg.Connection) -> tuple[int, list[str]]:
    """Count and checksum of every published table on the source and its staged copy, the
    apply paused and the writers stopped: both at the same point (checksums.py's hashes)."""
    tables = replication.published_tables(source, mapping)
    source.execute(checksums.PINNED)
    expected = {t: list(checksums.table_hash(source, mapping.schema, t)) for t in tables}
    with checksums.reading(admin, settings.target, [mapping.schema]) as reader:
        found = {t: list(checksums.table_hash(reader, mapping.schema, t)) for t in tables}
    rows = sum(count for count, _ in expected.values())
    return rows, checksums.differences(expected, found, where="the staged copy", before="on the source")


def cutover_stopping(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection,
                     args: argparse.Namespace, reports_dir: Path) -> dict:
    """Without [apps]: the writers were stopped by the operator, or ``--stop-writers`` stops
    them once both sides were hashed (then only what changed since is hashed again)."""
    if not args.stop_writers:
        return cutover(settings, mappings, admin, args.catch_up, reports_dir)
    check_ready(mappings, admin)
    base = take_baseline(settings, mappings)
    try:
        console.step("C0", "online cutover: stopping the writers (--stop-writers)")
        done = subprocess.run(["sh", "-c", args.stop_writers], check=False)
        if done.returncode:
            raise ConfigError(f"--stop-writers exited with {done.returncode}; nothing moved, replication goes on")
        return cutover(settings, mappings, admin, args.catch_up, reports_dir, base)
    except BaseException:
        base.close()
        try:
            drop_logs(admin, mappings)
        except psycopg.Error:
            pass            # the failure to report is the one above; an abort removes the logs
        raise


def take_baseline(settings: Settings, mappings: list[SourceMapping]) -> baseline.Baseline:
    console.step("C0", "online cutover: checksums of both sides while the writers run")
    started = time.monotonic()
    found = baseline.take(settings, mappings)
    found.seconds = round(time.monotonic() - started, 3)
    console.say(f"  {found.rows:,} rows hashed on both sides in {found.seconds:.1f} s (apps running)")
    try:
        analyze_staged(settings, mappings)
    except BaseException:
        found.close()
        raise
    return found


def analyze_staged(settings: Settings, mappings: list[SourceMapping]) -> None:
    """Statistics for the planner before the window, not inside it (their cost grows with the
    tables up to ANALYZE's sample): a move keeps them, autovacuum refreshes them later."""
    started = time.monotonic()
    with connect(settings.target) as admin:
        for mapping in mappings:
            with loader.logins(admin, settings, [mapping], keep_workers=True), \
                    connect(loader.ensure(admin, settings, mapping)) as conn:
                post_data_step.analyze(conn, staging.staging_mapping(mapping))
    console.say(f"  staged tables analyzed in {time.monotonic() - started:.1f} s (apps running)")


def drop_logs(admin: psycopg.Connection, mappings: list[SourceMapping]) -> None:
    for mapping in mappings:
        changelog.remove(admin, mapping)


def compare_since(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection,
                  source: psycopg.Connection, base: baseline.Baseline) -> tuple[dict, list[str]]:
    """The sums taken before the window, brought up to now from the changed rows
    (migrator/engine/baseline.py, whose compare_now says what it returns); the apply
    paused, the writers stopped."""
    source.execute(checksums.PINNED)
    with checksums.reading(admin, settings.target, baseline.schemas(mapping)) as reader:
        return baseline.compare_now(base.sources[mapping.name], source, reader)


def cutover(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection, seconds: float,
            reports_dir: Path, base: baseline.Baseline | None = None) -> dict:
    """``base``: checksums taken before the writers stopped (only what changed since is
    hashed here); without, every row is hashed here. The catch-up and the comparison run
    for every source at once; what grants or resets roles runs source after source
    (PostgreSQL fails one of two concurrent updates of a shared catalog row, such as the
    database's ACL: "tuple concurrently updated")."""
    started = time.monotonic()
    steps: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        steps[name] = round(steps.get(name, 0) + now - since, 3)
        return now

    console.step("C1", "online cutover: every copy ready, no DDL on the sources")
    found = check_ready(mappings, admin)
    t = lap("ready and DDL check", started)
    console.step("C2", "online cutover: catch up, pause, checksums, sequences")
    try:
        compared = in_parallel(settings, mappings, lambda m, a: compare_source(settings, m, a, seconds, base))
    except BaseException:
        for mapping in mappings:      # nothing moved: every source replicates again
            replication.set_enabled(admin, mapping, True)
        raise
    for part in ("catch up", "checksums"):   # the slowest source's, as they overlap
        steps[part] = max(c["steps"][part] for c in compared)
    t = time.monotonic()
    for mapping, done in zip(mappings, compared):
        set_sequences(settings, mapping, admin, done["sequences"])
    t = lap("sequences", t)
    if base is not None:
        base.close()        # its snapshots' locks would block dropping the logs
    console.step("C3", "online cutover: drop subscriptions, slots and publications")
    for mapping in mappings:
        finish_replication(admin, mapping, found[mapping.name]["suboid"])
        changelog.remove(admin, mapping)
    t = lap("drop replication", t)
    console.step("C4", "online cutover: move the staged objects into the target schemas")
    for mapping in mappings:
        move_source(settings, mapping, admin, found[mapping.name]["created_staging"], analyze=base is None)
    t = lap("move", t)
    console.step("C5", "online cutover: verify objects and sequences, hand over")
    for mapping in mappings:
        check_moved(settings, mapping, admin)
        migrate_step.hand_over(admin, mapping)
        set_state(admin, mapping, phase="done")
    lap("objects and hand-over", t)
    took = round(time.monotonic() - started, 3)
    rows = sum(c["rows"] for c in compared)
    hashed = {"changed": sum(c["hashed"]["changed"] for c in compared),
              "whole": sum(c["hashed"]["whole"] for c in compared),
              "whole_tables": [name for c in compared for name in c["hashed"]["whole_tables"]]}
    result = {"seconds": took, "steps": steps, "rows_compared": rows, "sources": [m.name for m in mappings],
              "hashed_in_window": hashed,
              "checksums_before_window": None if base is None else {"seconds": base.seconds, "rows": base.rows}}
    console.write_json(reports_dir / "online-cutover.json", result)
    console.say(f"  online cutover done in {took:.1f} s ({rows:,} rows identical; hashed inside the window: "
                f"{hashed['changed']:,} changed keys, {hashed['whole']:,} rows of tables hashed whole)"
                + ("" if settings.apps else "; next: `consolidate cutover` (roles, env rewrite, restart)"))
    return result


def in_parallel(settings: Settings, mappings: list[SourceMapping], work) -> list:
    """``work(mapping, admin)`` for every source at once, each on a superuser session of its
    own; once all finished, their results in the sources' order, or the first error."""
    def one(mapping: SourceMapping):
        with connect(settings.target) as admin:
            return work(mapping, admin)

    with ThreadPoolExecutor(max_workers=max(len(mappings), 1)) as pool:
        futures = [pool.submit(one, mapping) for mapping in mappings]
    for future in futures:
        if future.exception() is not None:
            raise future.exception()
    return [future.result() for future in futures]


def compare_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, seconds: float,
                   base: baseline.Baseline | None) -> dict:
    """Catch up, pause the apply, compare the rows, read the sequences: one source (its
    readers are made under checksums' grants lock, so two sources' never collide)."""
    steps, started = {}, time.monotonic()
    with connect(mapping.db, autocommit=False) as source:
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        catch_up(mapping, source, seconds)
        pause(admin, mapping)
        steps["catch up"], t = time.monotonic() - started, time.monotonic()
        if base is None:
            rows, problems = compare_rows(settings, mapping, admin, source)
            hashed = {"changed": 0, "whole": rows, "whole_tables": [f"{mapping.name}.*"]}
        else:
            hashed, problems = compare_since(settings, mapping, admin, source, base)
            rows = hashed.pop("rows")
        if problems:
            raise VerificationError(f"source '{mapping.name}': {problems[0]} (were the writers stopped?); "
                                    "nothing moved, replication resumed")
        steps["checksums"] = time.monotonic() - t
        values = copy_step.read_sequences(source, mapping)
        source.rollback()
    return {"rows": rows, "hashed": hashed, "sequences": values, "steps": {k: round(v, 3) for k, v in steps.items()}}


def set_sequences(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, values) -> None:
    with loader.logins(admin, settings, [mapping], keep_workers=True), \
            connect(loader.ensure(admin, settings, mapping)) as conn:
        post_data_step.set_sequences(conn, staging.staging_mapping(mapping), values)


def check_ready(mappings: list[SourceMapping], admin: psycopg.Connection) -> dict[str, dict]:
    """Every copy ready and enabled, no DDL on any source since the start: each source's state."""
    found = {m.name: require_copying(admin, m) for m in mappings}
    for mapping in mappings:
        with connect(mapping.db) as source:
            refuse_ddl(mapping, source, found[mapping.name]["fingerprint"])
    return found


# --- the window with the apps ----------------------------------------------------------------
# With [apps] configured, `online cutover` is the whole window, built of the offline window's
# own phases (migrator/steps/cutover.py: stop, roles, env rewrite, restart, fingerprint,
# rollback) around the online move instead of migrate + verify: the rows were compared at
# one point inside the move, the objects and sequences right after it.

REUSED = ("preflight", "pooler", "fingerprint (before)", "stop writers", "roles", "rewrite env", "start apps",
          "smoke (fingerprint)")


def offline_phase(title: str) -> window.Phase:
    return next(p for p in window.PHASES if p.title == title)


def _ready(w: window.Window) -> str:
    """Refusals that need no stopped writers come before the stop: the apps stay up."""
    mappings = load_mappings(w.settings)
    with connect(w.settings.target) as admin:
        require_superuser(admin, w.settings.target)
        check_ready(mappings, admin)
    return f"{len(mappings)} copies ready, no DDL"


def _baseline(w: window.Window) -> int:
    """Every row hashed on both sides while the apps still run; the window re-hashes
    only the rows that change until the apps are stopped."""
    w.carry["baseline"] = take_baseline(w.settings, load_mappings(w.settings))
    return w.carry["baseline"].rows


def close_baseline(w: window.Window) -> None:
    found = w.carry.pop("baseline", None)
    if found is not None:
        found.close()


def _move(w: window.Window) -> dict:
    mappings = load_mappings(w.settings)
    with connect(w.settings.target) as admin:
        require_superuser(admin, w.settings.target)
        journal.acquire_lock(admin)
        return cutover(w.settings, mappings, admin, w.args.catch_up, w.reports_dir, w.carry.get("baseline"))


def _moved(w: window.Window) -> bool:
    """A rerun after a kill: every source moved already, the window goes on from there."""
    mappings = load_mappings(w.settings)
    with connect(w.settings.target) as admin:
        return all((state(admin, m) or {}).get("phase") == "done" for m in mappings)


def window_phases() -> tuple[window.Phase, ...]:
    p = {title: offline_phase(title) for title in REUSED}
    return (p["preflight"], window.Phase("online ready", _ready, lambda d: d, skip=_moved),
            window.Phase("online checksums", _baseline, lambda n: f"{n:,} rows hashed on both sides, apps running",
                         skip=_moved),
            p["pooler"],
            p["fingerprint (before)"], p["stop writers"],
            window.Phase("online cutover", _move,
                         lambda r: f"{r['rows_compared']:,} rows identical ({r['hashed_in_window']['changed']:,}"
                                   f" changed keys hashed here), "
                                   + ", ".join(f"{k} {v:.1f}s" for k, v in r["steps"].items()), skip=_moved),
            p["roles"], p["rewrite env"], p["start apps"], p["smoke (fingerprint)"])


def cutover_window(settings: Settings, mappings: list[SourceMapping], args: argparse.Namespace,
                   reports_dir: Path) -> int:
    """The offline window's lifecycle (env/.cutover.json), so `rollback` works after it as
    after `cutover`; a failure after the stop also aborts what is left of the online run."""
    w = window.open_window(settings, args, reports_dir)
    if w is None:
        return 0
    try:
        window.run_phases(w, window_phases())
    except Exception as raw:  # noqa: BLE001 - anything after the writers stopped is undone
        close_baseline(w)
        drop_logs_quietly(settings, mappings)
        # The apps get as long to come back on the legacy databases as on the new one.
        window.roll_back(w, raw, undo=lambda: abort_unfinished(settings, mappings),
                         timeout=max(300.0, args.app_timeout))
    window.report(w, w.results.get("online cutover", {}).get("rows_compared", 0), online=True)
    return 0


def drop_logs_quietly(settings: Settings, mappings: list[SourceMapping]) -> None:
    """A failed window leaves no change log behind (best effort: an abort removes it too)."""
    try:
        with connect(settings.target) as admin:
            drop_logs(admin, mappings)
    except (ConsolidationError, psycopg.Error):
        pass


def abort_unfinished(settings: Settings, mappings: list[SourceMapping]) -> str:
    """After the apps went back to the sources: what a failed window left of the online run
    (subscription, slots, publication, staging, half-moved schemas) is removed; a source
    moved already keeps its schemas, stale, as after an offline rollback."""
    try:
        with connect(settings.target) as admin:
            journal.acquire_lock(admin)
            for mapping in mappings:
                found = state(admin, mapping)
                if found is None or found["phase"] != "done":
                    abort_source(settings, mapping, admin, found)
    except ConsolidationError as exc:
        return f"; the online run was not removed ({exc.message}): run `consolidate online abort`"
    return "; online replication and staging removed"


def finish_replication(admin: psycopg.Connection, mapping: SourceMapping, suboid: int | None) -> None:
    replication.drop_subscription(admin, mapping)
    with connect(mapping.db, read_only=False) as source:
        replication.drop_on_source(source, mapping, suboid)


def move_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, created: bool,
                analyze: bool = True) -> None:
    """Target schemas (the tool's, the loader's), then one transaction of the loader moving
    everything; the journal then says the source is migrated, as the offline engine leaves it.
    ``analyze``: false when the staged tables were analyzed before the window."""
    with connect(mapping.db) as source:
        exts = catalog.extensions(source)
    hands = loader.ensure(admin, settings, mapping)
    # Recorded before the first schema exists: an abort after a kill in here drops what the
    # journal says this run created (a kill between CREATE SCHEMA and the record left one).
    set_state(admin, mapping, phase="moved")
    for schema in mapping.target_schemas:
        journal.record_created_schema(admin, schema, mapping.name)
        admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(schema), sql.Identifier(hands.user)))
    with loader.logins(admin, settings, [mapping]), connect(hands) as conn:
        with conn.transaction():
            staging.move(conn, mapping, exts)
        post_data_step.refresh_matviews(conn, mapping)
        if analyze:
            post_data_step.analyze(conn, mapping)
    if created:
        admin.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(mapping.schema)))   # empty: no CASCADE
    for step in ENGINE_STEPS:
        journal.start_step(admin, mapping.name, step)
        journal.finish_step(admin, mapping.name, step, {"online": True})


def check_moved(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection) -> None:
    """The objects and sequences, as `verify` compares them (catalog only: the rows were
    compared before the move, which changed no row)."""
    with checksums.reading(admin, settings.target, list(mapping.target_schemas)) as target, \
            connect(mapping.db) as source:
        source.execute(checksums.PINNED)
        problems = verify_step.compare_sequences(source, target, mapping) + \
            verify_step.compare_objects(source, target, mapping)
    if problems:
        raise VerificationError(f"source '{mapping.name}': {problems[0]}; the sources are untouched, "
                                "`consolidate online abort` drops the moved schemas")


# --- abort --------------------------------------------------------------------------------

def abort(settings: Settings, mappings: list[SourceMapping], admin: psycopg.Connection,
          quiet: bool = False) -> None:
    """From any phase before the apps use the target: no subscription, slot or publication
    left, staging dropped, sources as they were (their rows were never written)."""
    if not quiet:
        console.step("A", "online abort: subscriptions, slots, publications, staging")
    for mapping in mappings:
        found = state(admin, mapping)
        if found and found["phase"] == "done":
            raise ConfigError(f"source '{mapping.name}' was cut over already; `consolidate rollback` or "
                              "`consolidate migrate --from-scratch` undo that")
        abort_source(settings, mapping, admin, found)


def abort_source(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, found: dict | None) -> None:
    sub = replication.subscription(admin, mapping)
    suboid = sub[0] if sub else (found or {}).get("suboid")
    try:
        with connect(mapping.db, read_only=False, wait_seconds=10) as source:
            if sub:
                replication.drop_subscription(admin, mapping)
            dropped = replication.drop_on_source(source, mapping, suboid)
    except DatabaseError as exc:   # the source is gone: the slot stays there, say so
        if sub:
            replication.drop_subscription(admin, mapping, keep_slot=True)
        raise DatabaseError(mapping.name, "source", f"{exc.problem}; subscription dropped, but its slot and "
                            "publication may remain on the source: run `consolidate online abort` again") from None
    changelog.remove(admin, mapping)
    drop_staging(settings, mapping, admin, found)
    if found:
        admin.execute(f"DELETE FROM {STATE} WHERE source = %s", (mapping.name,))
    console.say(f"  {mapping.name}: {', '.join(dropped) or 'nothing on the source'} dropped; staging removed")


def drop_staging(settings: Settings, mapping: SourceMapping, admin: psycopg.Connection, found: dict | None) -> None:
    """The staged objects (the loader's own in the staging schema), the staging schema when
    the tool made it, and target schemas a half-done move created."""
    if found and found["phase"] == "moved":
        journal.drop_created_schemas(admin, mapping.name)
        for step in ENGINE_STEPS:
            admin.execute(f"DELETE FROM {journal.SCHEMA}.steps WHERE source = %s AND step = %s",
                          (mapping.name, step))
    if not staging.schema_exists(admin, mapping.schema) or not found:
        return
    with loader.logins(admin, settings, [mapping]), connect(loader.ensure(admin, settings, mapping)) as conn:
        staging.drop(conn, mapping.schema)
    if found["created_staging"]:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(mapping.schema)))
