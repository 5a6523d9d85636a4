"""restore-drill: prove the newest backup by restoring it, not by its exit code.

1. On the live instance, in one REPEATABLE READ snapshot, take the content checksum
   of every application table; right after the snapshot is taken, write a restore
   point and switch WAL, and wait until that segment is archived.
2. Restore the newest backup plus the archived WAL up to that restore point into a
   fresh volume, and start it as a scratch copy (compose network, no port).
3. Checksum the same tables in the copy and compare; run pg_amcheck on every
   database of the copy (heap and B-tree structure; without --heapallindexed, which
   would evaluate index expressions, i.e. code the apps wrote, as a superuser).
4. Report (JSON + Markdown), remove the copy (unless --keep).

A commit landing between the snapshot and the restore point (milliseconds apart)
shows up as a difference on the table it wrote: run the drill when writes are
quiet, or read the difference as that commit (the report names the table).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from migrator import console
from migrator.config.settings import Settings
from migrator.engine import checksums
from migrator.engine.db import connect, require_superuser
from migrator.engine.files import utc_stamp
from migrator.errors import BackupError, VerificationError
from migrator.systems import pgbackrest

COMMAND = "restore-drill"
LOCK = "shared"  # reads the live target; a writer would move it under the drill (migrator/engine/runlock.py)
HELP = "restore the newest backup into a scratch copy and prove it: checksums + pg_amcheck"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true",
                        help="leave the restored copy running, on a 127.0.0.1 port (printed)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    report = run(settings, reports_dir, keep=args.keep)
    return 0 if report["ok"] else 5


def wait_archived(conn, walfile: str, timeout: float = 300) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        last, failed = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_catalog.pg_stat_archiver").fetchone()
        if last and last >= walfile:
            return
        time.sleep(0.5)
    raise BackupError(f"WAL segment {walfile} was not archived within {timeout:.0f} s (archive_command failing? "
                      "`docker compose run --rm backups pgbackrest check`)")


def mark_live_state(settings: Settings) -> tuple[pgbackrest.Target, dict, list[str], str]:
    """(restore point as a target, checksums at it, schemas, when): the module docstring's step 1."""
    name = "drill-" + utc_stamp(micro=True)
    with connect(settings.target) as admin:
        require_superuser(admin, settings.target)
        schemas = checksums.app_schemas(admin, settings)
        # App rows are read by a throwaway reader, never on this superuser session.
        with checksums.reading(admin, settings.target, schemas, autocommit=False) as snap:
            snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snap.execute("SELECT pg_catalog.pg_current_snapshot()")          # the snapshot is taken here
            admin.execute("SELECT pg_catalog.pg_create_restore_point(%s)", (name,))
            walfile = admin.execute("SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())").fetchone()[0]
            when = admin.execute("SELECT pg_catalog.now()::pg_catalog.text").fetchone()[0]
            timeline = pgbackrest.current_timeline(admin)
            sums = checksums.table_checksums(snap, schemas)
            snap.rollback()
        wait_archived(admin, walfile)
    return pgbackrest.Target("name", name, timeline), sums, schemas, when


def amcheck(scratch: pgbackrest.Scratch, user: str) -> tuple[bool, str]:
    code, out = scratch.exec(["pg_amcheck", "-h", "/var/run/postgresql", "-U", user, "--all", "--install-missing"])
    lines = [line for line in out.splitlines() if line.strip()]
    return code == 0, ("clean" if code == 0 else (lines[-1] if lines else f"exit {code}"))


def run(settings: Settings, reports_dir: Path | None, keep: bool = False) -> dict:
    inst = pgbackrest.locate(settings)
    newest = pgbackrest.require_backups(inst)
    console.step(1, "live checksums at a restore point")
    point, expected, schemas, when = mark_live_state(settings)
    console.say(f"  {len(expected)} tables in {len(schemas)} app schemas, restore point {point.value}")
    console.step(2, f"restore backup {newest[-1]['label']} + WAL up to the restore point into a scratch copy")
    with pgbackrest.restored_copy(inst, point, settings.target, prefix="drill", publish=keep, keep=keep) \
            as (scratch, timings):
        console.step(3, "compare checksums, run pg_amcheck")
        with connect(scratch.database()) as copy_admin, \
                checksums.reading(copy_admin, scratch.database(), schemas) as copy:
            found = checksums.table_checksums(copy, schemas)
        diffs = checksums.differences(expected, found)
        amcheck_ok, amcheck_detail = amcheck(scratch, settings.target.user)
        report = {"ok": not diffs and amcheck_ok, "backup": newest[-1]["label"], "restore_point": point.value,
                  "live_time": when, "tables": len(expected), "rows": sum(v[0] for v in expected.values()),
                  "differences": diffs, "amcheck_ok": amcheck_ok, "amcheck": amcheck_detail, **timings,
                  "kept": {"container": scratch.name, "port": scratch.host_port()} if keep else None}
    _write_report(report, reports_dir)
    for line in diffs:
        console.warn("DIFF", line, style="red")
    verdict = "PASSED" if report["ok"] else "FAILED"
    console.say(f"restore drill {verdict}: {report['tables']} tables, {report['rows']} rows equal to the live "
                f"instance at the restore point: {'yes' if not diffs else 'NO'}; pg_amcheck: {amcheck_detail}; "
                f"restore {report['restore_seconds']} s + recovery {report['recovery_seconds']} s")
    if keep:
        console.say(f"the copy runs as container {scratch.name} on 127.0.0.1:{report['kept']['port']} "
                    f"(remove: docker rm -f {scratch.name} && docker volume rm {scratch.volume})")
    if not report["ok"]:
        raise VerificationError(f"restore drill failed: {len(diffs)} table(s) differ, pg_amcheck "
                                f"{'clean' if amcheck_ok else 'found corruption'} (report in {reports_dir})")
    return report


def _write_report(report: dict, reports_dir: Path | None) -> None:
    if reports_dir is None:
        return
    stamp = utc_stamp()
    console.write_json(reports_dir / f"restore-drill-{stamp}.json", report)
    lines = [f"# Restore drill {stamp}", "", f"- result: **{'passed' if report['ok'] else 'FAILED'}**",
             f"- backup: `{report['backup']}`, restored to restore point `{report['restore_point']}`",
             f"- {report['tables']} tables, {report['rows']} rows compared with the live instance at {report['live_time']}",
             f"- pg_amcheck: {report['amcheck']}",
             f"- restore {report['restore_seconds']} s, recovery {report['recovery_seconds']} s", ""]
    lines += [f"- DIFF {d}" for d in report["differences"]]
    (reports_dir / f"restore-drill-{stamp}.md").write_text("\n".join(lines) + "\n")
