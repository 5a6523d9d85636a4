"""migrate: schema -> copy -> post-data (sequences, matviews, ANALYZE) for every source.

Each sub-step records itself in the journal and is skipped when a previous run
finished it, so running `migrate` again after a crash resumes where it stopped.
One advisory lock on the target keeps a second migrator out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from migrator import console
from migrator.config import argtypes
from migrator.config.mapping import load_mappings
from migrator.config.settings import Settings
from migrator.engine import journal, loader, ownership, pgtools, schemafp, space
from migrator.engine.db import DEFAULT_JOBS, connect, require_superuser
from migrator.errors import ConsolidationError
from migrator.ops import cutover_state
from migrator.steps import copy as copy_step
from migrator.steps import post_data as post_data_step
from migrator.steps import schema as schema_step

COMMAND = "migrate"
LOCK = "exclusive"  # writes the target, the journal and the loaders (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
APPS_ON_TARGET = ("env-rewritten", "apps-started", "done")
HELP = "move every object and row into the target schemas (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS,
                        help="parallel COPY workers per source (default: CPU count, at most 8)")
    parser.add_argument("--split-mb", type=argtypes.whole(1, 1 << 20), default=copy_step.DEFAULT_SPLIT_MB,
                        help="split tables larger than this into ranges (default: %(default)s)")
    parser.add_argument("--index-jobs", type=argtypes.JOBS, default=None,
                        help="parallel per-table index builds during the copy (default: same as --jobs)")
    copy_step.add_toast_argument(parser)
    parser.add_argument("--format", choices=("binary", "text"), default="binary", help="COPY format")
    parser.add_argument("--work-dir", type=Path, default=None, help="where dumps go (default: backups/work)")
    parser.add_argument("--min-free-mb", type=argtypes.whole(0, 1 << 24), default=space.DEFAULT_RESERVE_MB,
                        help="free space the copy never takes the target's disk below (default: %(default)s)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="drop the schemas this tool created and forget its journal, then migrate again"
                             " (e.g. after verify found a difference); refused while apps use those schemas")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    timings = run(settings, jobs=args.jobs, split_mb=args.split_mb, fmt=args.format,
                  work_dir=args.work_dir or settings.work_dir, toast_compression=args.toast_compression,
                  index_jobs=args.index_jobs, from_scratch=args.from_scratch, reserve_mb=args.min_free_mb)
    console.write_json(reports_dir / "migration.json", {"phase_seconds": timings, "jobs": args.jobs,
                                                         "toast_compression": args.toast_compression,
                                                         "split_mb": args.split_mb, "format": args.format})
    return 0


def hand_over(target, mapping) -> None:
    """Give the migrated schemas to the app role (when `consolidate roles` has created it)."""
    if not mapping.owner:
        return
    if not target.execute("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)", (mapping.owner,)).fetchone()[0]:
        console.say(f"  {mapping.name}: role '{mapping.owner}' does not exist yet; objects stay with the "
                    f"loader role '{loader.name_of(mapping)}' until `consolidate roles` hands them over")
        return
    changed = sum(len(ownership.hand_over_schema(target, schema, mapping.owner)) for schema in mapping.target_schemas)
    console.say(f"  {mapping.name}: {changed} objects handed over to role '{mapping.owner}'")


def run(settings: Settings, *, jobs: int, split_mb: int = copy_step.DEFAULT_SPLIT_MB, fmt: str = "binary",
        work_dir: Path, toast_compression: str = "lz4", index_jobs: int | None = None,
        from_scratch: bool = False, reserve_mb: int = space.DEFAULT_RESERVE_MB,
        schema_only: bool = False, redone: list[str] | None = None) -> dict[str, float]:
    """``schema_only``: the definitions and nothing else (the cutover runs this before the
    writers stop, and the whole run once they have). ``redone`` gets the sources whose
    schema step was done but had to be redone: their source's schema changed since."""
    mappings = load_mappings(settings)
    timings: dict[str, float] = {}
    fingerprints: dict[str, str] = {}
    if from_scratch:
        refuse_while_apps_use_the_target(settings)
    with connect(settings.target) as target:
        require_superuser(target, settings.target)
        pgtools.require_client_for(target, settings.target)
        for mapping in mappings:
            with connect(mapping.db) as source:
                pgtools.require_client_for(source, mapping.db)
                schema_step.require_schema(source, mapping)   # migrated already or not: it must be there
                fingerprints[mapping.name] = schemafp.schema_fingerprint(source, mapping.schema)
        journal.acquire_lock(target)
        if from_scratch and journal.exists(target):
            start_over(target, mappings)
        journal.refuse_changed_plans(target, settings, mappings)
        pending = [m for m in mappings        # refuse before the first write
                   if not (journal.exists(target) and journal.step_done(target, m.name, copy_step.STEP))]
        resumed = set()                       # schema done on an earlier run, rows being copied
        stale = []                            # schema done, copy not begun, source's schema changed since
        for mapping in pending:
            if not (journal.exists(target) and journal.step_done(target, mapping.name, schema_step.STEP)):
                schema_step.check(mapping, target)
            elif journal.step_started(target, mapping.name, copy_step.STEP):
                resumed.add(mapping.name)
            elif schema_step.restored_fingerprint(target, mapping) != fingerprints[mapping.name]:
                schema_step.check(mapping, target)
                stale.append(mapping.name)
        space.check(mappings, target, reserve_mb)   # every run: a resumed one still has to fit
        journal.ensure(target)
        journal.record_plans(target, mappings, {"split_mb": split_mb, "toast_compression": toast_compression,
                                                "format": fmt})
        for name in stale:                    # the schema step starts again (it drops what it made first)
            console.say(f"  {name}: the source's schema changed since its definitions were restored;"
                        " redoing the schema step")
            journal.note(target, name, schema_step.STEP, "source schema changed since restored: redone")
            journal.start_step(target, name, schema_step.STEP)
        if redone is not None:
            redone.extend(stale)
        for mapping in pending:               # work left: the loader owns the schemas again
            loader.take_over(target, settings, mapping)
        # Per-table indexes/keys/ANALYZE run while the copy goes on (both sources);
        # the post-data phase first waits for what is still building.
        schema_phase = ("schema", lambda: [schema_or_refresh(settings, m, target, work_dir,
                                                             m.name in resumed and not schema_only)
                                           for m in mappings])
        if schema_only:
            # What the window's early index builds need from the dump, rendered now.
            render_phase = ("render index scripts", lambda: [post_data_step.prerender(settings, m, work_dir)
                                                             for m in pending])
            with loader.logins(target, settings, mappings):
                timings.update(timed([schema_phase, render_phase]))
            return timings
        early_builds = post_data_step.EarlyIndexBuilder(settings, work_dir, index_jobs or jobs)
        watchdog = space.DiskWatchdog(settings, reserve_mb)
        phases = [
            schema_phase,
            ("copy", lambda: copy_step.run(settings, mappings, target, jobs=jobs, split_mb=split_mb, fmt=fmt,
                                           early_builds=early_builds, toast_compression=toast_compression,
                                           checkpoint=watchdog.raise_if_low)),
            ("post-data", lambda: (wait_for_tables(early_builds),
                                   [post_data_step.run(settings, m, target, work_dir, jobs=jobs) for m in mappings])),
            ("ownership", lambda: [hand_over(target, m) for m in mappings]),
        ]
        try:
            with loader.logins(target, settings, mappings):
                timings.update(timed(phases))
        finally:
            early_builds.close()
            watchdog.close()
    return timings


def timed(phases) -> dict[str, float]:
    timings = {}
    for number, (title, action) in enumerate(phases, start=1):
        console.step(f"M{number}", title)
        started = time.monotonic()
        action()
        timings[title] = round(time.monotonic() - started, 3)
    return timings


def schema_or_refresh(settings: Settings, mapping, target, work_dir: Path, resumed: bool) -> None:
    """The schema step; on a run that resumes a copy, the target's routines replaced by the
    source's current definitions first: a fix made on the source after a failed copy (a
    function the source's planner could not expand) reaches the target before the copy
    goes on and its indexes and statistics are built (post-data does the same when it
    resumes itself)."""
    schema_step.run(settings, mapping, target, work_dir)
    if resumed and not journal.step_started(target, mapping.name, post_data_step.STEP):
        replaced = schema_step.refresh_routines(settings, mapping, target, work_dir)
        console.say(f"  {mapping.name}: {replaced} routines replaced by the source's current definitions")


def refuse_while_apps_use_the_target(settings: Settings) -> None:
    """--from-scratch drops the migrated schemas: never under apps that were switched to them."""
    state = cutover_state.load(cutover_state.state_path(settings))
    if state is not None and state.phase in APPS_ON_TARGET:
        raise ConsolidationError(f"--from-scratch refused: the cutover switched the apps to the unified instance "
                                 f"(phase '{state.phase}'); roll back first (`consolidate rollback`)")


def start_over(target, mappings) -> None:
    """Drop every schema this tool created for these sources and forget their progress."""
    with target.transaction():
        for mapping in mappings:
            dropped = journal.drop_created_schemas(target, mapping.name)
            journal.forget_source(target, mapping.name)
            console.say(f"  {mapping.name}: starting over (dropped {', '.join(dropped) or 'nothing'})")


def wait_for_tables(early_builds: post_data_step.EarlyIndexBuilder) -> None:
    started = time.monotonic()
    count = early_builds.wait()
    console.say(f"  {count} tables got their indexes, keys and ANALYZE while copying"
                f" ({time.monotonic() - started:.1f} s waited after the last row)")
