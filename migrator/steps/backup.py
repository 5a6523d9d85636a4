"""backup-sources: a restorable dump of every source and of the target's current state,
taken before a migration (`backup` is its old name). Per-application backups of the
unified instance are `app-backup`.

Sources: pg_dump directory format, parallel (-j). Target: pg_dump custom format
of the whole database as it is before the migration. Each dump is checked with
`pg_restore --list`, and a manifest records file sizes, sha256 sums, server and
client versions and the time. Nothing else runs if a backup cannot be made.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from migrator import console
from migrator.config import argtypes
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import pgtools
from migrator.engine.db import DEFAULT_JOBS, connect
from migrator.engine.files import describe_files, utc_stamp
from migrator.errors import ConsolidationError

COMMAND = "backup-sources"
LOCK = None  # reads the sources only (migrator/engine/runlock.py)
ALIASES = ("backup",)
HELP = "dump every source (and the target's current state) with a checksummed manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backup-dir", type=Path, default=None, help="default: backups/ beside the config")
    parser.add_argument("--jobs", type=argtypes.JOBS, default=DEFAULT_JOBS, help="pg_dump parallel jobs")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, args.backup_dir or settings.backups_dir, jobs=args.jobs)
    return 0


def database_facts(db: DatabaseSettings) -> tuple[str, int]:
    with connect(db) as conn:
        pgtools.require_client_for(conn, db)     # before the first dump, not half-way
        return conn.execute("SELECT current_setting('server_version'), pg_database_size(current_database())"
                            ).fetchone()


def check_space(where: Path, needed: int) -> None:
    free = shutil.disk_usage(where).free
    if free < needed:
        raise ConsolidationError(f"backup needs about {needed / 1e9:.2f} GB in {where} but only "
                                 f"{free / 1e9:.2f} GB are free")


def dump(db: DatabaseSettings, out: Path, jobs: int) -> None:
    if db.role == "target":
        pgtools.run("pg_dump", ["-Fc", "-f", str(out)], db, what="of the target")
    else:
        pgtools.run("pg_dump", ["-Fd", "-j", str(max(jobs, 1)), "-f", str(out)], db, what="of the source")
    entries = [line for line in pgtools.restore_list(out, db) if line and not line.startswith(";")]
    if not entries:
        raise ConsolidationError(f"backup of '{db.name}' lists no entries; refusing to continue")


def run(settings: Settings, backup_dir: Path, *, jobs: int) -> Path:
    console.step("B", "backup-sources: dump every source and the target's current state")
    stamp = utc_stamp()
    run_dir = backup_dir / stamp
    pgtools.private_dir(backup_dir)
    run_dir.mkdir(mode=0o700, exist_ok=False)
    run_dir.chmod(0o700)      # whatever the umask: these dumps hold every row
    facts = {db.name: database_facts(db) for db in settings.databases}
    check_space(run_dir, int(sum(size for _, size in facts.values()) * 1.2))
    manifest = {"created_at": stamp, "pg_dump": pgtools.client_version(), "dumps": []}
    for db in settings.databases:
        out = run_dir / (f"{db.name}.target-before.dump" if db.role == "target" else db.name)
        dump(db, out, jobs)
        files = describe_files(out)
        manifest["dumps"].append({"database": db.name, "role": db.role, "dbname": db.dbname,
                                  "server_version": facts[db.name][0], "database_bytes": facts[db.name][1],
                                  "format": "custom" if db.role == "target" else "directory",
                                  "bytes": sum(f["bytes"] for f in files), "files": files,
                                  "verified": "pg_restore --list"})
        console.say(f"  {db.name}: {sum(f['bytes'] for f in files) / 1e6:.1f} MB in {out.name}")
    console.write_json(run_dir / "manifest.json", manifest)
    (backup_dir / "LATEST").write_text(stamp + "\n")
    console.say(f"  manifest: {run_dir / 'manifest.json'}")
    return run_dir
