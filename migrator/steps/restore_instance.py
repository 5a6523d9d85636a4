"""restore-instance: point-in-time recovery of the whole unified instance (pgBackRest).

    --to latest | TIME | lsn:X/Y | name:RESTORE_POINT     where recovery stops
    --scratch      restore into a fresh volume and start it beside the live instance
                   (127.0.0.1 port printed; per-table checksums in the report). The live
                   instance is not touched: use this to look before restoring for real.
    --yes          restore the LIVE instance: stops the apps and the unified container,
                   copies its data volume aside (the way back), restores into it with
                   --delta, starts it, waits until it is healthy and out of recovery,
                   and starts the apps again. If the restore or the start fails, the
                   copy is put back and the instance started as it was.
    --undo VOLUME  put a copy made by an earlier --yes back (stop, copy, start).

After a live restore the instance continues on a new WAL timeline; the scheduler's
next backup is taken as usual. After --undo, take a full backup
(`docker compose run --rm backups backup full`): the repository's newest timeline is
then the abandoned one, and a later "latest" restore would follow it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from migrator import console
from migrator.config.settings import Settings
from migrator.engine import checksums
from migrator.engine.db import connect, require_superuser
from migrator.engine.files import utc_stamp
from migrator.errors import BackupError, ConfigError
from migrator.systems import pgbackrest, services

COMMAND = "restore-instance"
LOCK = "exclusive-if-up"  # replaces the target's data, or puts it back (migrator/engine/runlock.py)
HELP = "point-in-time restore of the unified instance (into a scratch copy, or the live one with --yes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", dest="to", metavar="TARGET", default=None,
                        help="latest | a time ('2026-12-03 10:15:00+00') | lsn:X/Y | name:RESTORE_POINT")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scratch", action="store_true", help="restore into a fresh copy; the live instance is untouched")
    where.add_argument("--yes", action="store_true", help="restore the live instance (apps stopped meanwhile)")
    where.add_argument("--undo", metavar="VOLUME", help="put back the data volume a live restore copied aside")
    parser.add_argument("--keep", action="store_true", help="with --scratch: leave the copy running")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    if args.undo:
        undo(settings, args.undo)
        return 0
    if not args.to:
        raise ConfigError("restore-instance: say where recovery stops with --to (latest, a time, lsn:X/Y, name:POINT)")
    target = pgbackrest.Target.parse(args.to)
    with connect(settings.target) as conn:           # follow the live instance's timeline
        target = dataclasses.replace(target, timeline=pgbackrest.current_timeline(conn))
    if args.scratch:
        scratch_restore(settings, target, reports_dir, keep=args.keep)
    elif args.yes:
        live_restore(settings, target, reports_dir)
    else:
        raise ConfigError("restore-instance: choose --scratch (a copy beside the live instance) or --yes "
                          "(replace the live instance's data; its current state is kept aside)")
    return 0


def _report(reports_dir: Path | None, kind: str, report: dict) -> None:
    if reports_dir is not None:
        stamp = utc_stamp()
        console.write_json(reports_dir / f"restore-{kind}-{stamp}.json", report)


def scratch_restore(settings: Settings, target: pgbackrest.Target, reports_dir: Path | None, keep: bool) -> dict:
    inst = pgbackrest.locate(settings)
    newest = pgbackrest.require_backups(inst)[-1]
    console.say(f"restoring to {target.describe()} into a scratch copy")
    with pgbackrest.restored_copy(inst, target, settings.target, prefix="pitr", publish=True, keep=keep) \
            as (scratch, timings):
        with connect(scratch.database()) as copy_admin:
            require_superuser(copy_admin, scratch.database())     # and its tool schemas the tool's
            schemas = checksums.app_schemas(copy_admin, settings)
            with checksums.reading(copy_admin, scratch.database(), schemas) as copy:   # never a superuser's read
                sums = checksums.table_checksums(copy, schemas)
        report = {"target": target.describe(), "newest_backup": newest["label"], "volume": scratch.volume,
                  "container": scratch.name if keep else None, "port": scratch.host_port() if keep else None,
                  **timings, "checksums": sums}
    _report(reports_dir, "scratch", report)
    console.say(f"restored copy at {target.describe()}: {len(sums)} app tables, "
                f"{sum(v[0] for v in sums.values())} rows; restore {report['restore_seconds']} s + "
                f"recovery {report['recovery_seconds']} s")
    if keep:
        console.say(f"it runs as container {scratch.name} on 127.0.0.1:{report['port']} (same logins as the live "
                    f"instance); remove it with: docker rm -f {scratch.name} && docker volume rm {scratch.volume}")
    return report


def _start_instance(settings: Settings, inst: pgbackrest.Instance, timeout: float = 1800) -> float:
    services.start_container(inst.container_id)
    waited = services.wait_healthy(services.client(), services.target_service(settings), timeout)
    with connect(settings.target, wait_seconds=timeout) as conn:
        while conn.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone()[0]:
            time.sleep(1)
    return waited


def live_restore(settings: Settings, target: pgbackrest.Target, reports_dir: Path | None) -> dict:
    inst = pgbackrest.locate(settings)
    newest = pgbackrest.require_backups(inst)[-1]
    console.step(1, "stop the apps and the unified instance")
    stopped = services.stop_running_apps(settings)
    services.stop_container(inst.container_id, timeout=120)
    console.step(2, "copy the current data volume aside (the way back)")
    aside = pgbackrest.new_volume(f"{inst.project}-before-restore")
    pgbackrest.copy_volume(inst, inst.data_volume, aside)
    console.step(3, f"restore to {target.describe()} (newest backup {newest['label']})")
    t0 = time.monotonic()
    try:
        pgbackrest.restore_into(inst, inst.data_volume, target, scratch=False)
        restore_s = time.monotonic() - t0
        console.step(4, "start the instance, wait until recovery has finished")
        healthy_s = _start_instance(settings, inst)
    except Exception as exc:
        console.warn("RESTORE FAILED", f"{exc}; putting the copied data back")
        services.stop_container(inst.container_id, timeout=60)
        pgbackrest.copy_volume(inst, aside, inst.data_volume)
        _start_instance(settings, inst)
        services.start_and_wait(stopped)
        raise BackupError(f"restore to {target.describe()} failed and was undone; the instance runs as before") from None
    console.step(5, "start the apps again")
    services.start_and_wait(stopped)
    report = {"target": target.describe(), "newest_backup": newest["label"], "aside_volume": aside,
              "restore_seconds": round(restore_s, 1), "start_seconds": round(healthy_s, 1),
              "apps_restarted": [s.name for s in stopped]}
    _report(reports_dir, "live", report)
    console.say(f"the live instance is at {target.describe()}; its previous data is kept in volume {aside} "
                f"(back: `consolidate restore-instance --undo {aside}`; drop it with `docker volume rm {aside}`)")
    return report


def undo(settings: Settings, volume: str) -> None:
    inst = pgbackrest.locate(settings)
    if volume not in services.labelled_volumes(pgbackrest.LABEL):
        raise ConfigError(f"restore-instance --undo: '{volume}' is not a volume a live restore copied aside")
    stopped = services.stop_running_apps(settings)
    services.stop_container(inst.container_id, timeout=120)
    pgbackrest.copy_volume(inst, volume, inst.data_volume)
    _start_instance(settings, inst)
    services.start_and_wait(stopped)
    console.say(f"the data of {volume} is live again; take a full backup now "
                "(`docker compose run --rm backups backup full`)")
