"""app-backup: a logical backup of each application, restorable on its own.

One unit per application, not per schema: n8n = {n8n}, Letta = {letta_agents,
letta_embeddings} (their keys cross), RAG = {rag_documents, rag_embeddings}, as
the target's registry says (sql/10-apps.sql, installed by `consolidate roles`),
checked against consolidation.toml's sources. Each goes to
backups/apps/<app>/<UTC stamp>/ (0700 directories, 0600 files): the pg_dump
(custom format), roles.json (the app role without its password) and
manifest.json (sha256 of both, per-table row counts and verify's checksums,
taken in the dump's own snapshot). `consolidate app-restore` restores one.
(Not to be confused with `backup-sources`: the legacy databases before a migration.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from migrator import console
from migrator.config.mapping import load_mappings
from migrator.config.settings import Settings
from migrator.engine.db import connect
from migrator.ops import appdump

COMMAND = "app-backup"
LOCK = "shared"  # reads through a reader of its own into a new directory (migrator/engine/runlock.py)
HELP = "per-application logical backup of the unified instance (dump + roles + checksummed manifest)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("apps", nargs="*", metavar="APP", help="n8n, letta, rag (default: every registered app)")
    parser.add_argument("--backup-dir", type=Path, default=None, help="default: backups/apps/ beside the config")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, args.apps, appdump.backups_root(settings, args.backup_dir))
    return 0


def run(settings: Settings, apps: list[str], root: Path) -> list[Path]:
    console.step("A", "app-backup: one logical backup per application")
    mappings = load_mappings(settings)
    with connect(settings.target) as conn:
        units = appdump.units_for(conn, apps, mappings)
    done = []
    for unit in units:
        run_dir, manifest = appdump.dump_app(settings.target, unit.name, root, mappings=mappings)
        size = sum(f["bytes"] for f in manifest["files"])
        console.say(f"  {unit.name} ({', '.join(unit.target_schemas)}): {len(manifest['tables'])} tables, "
                    f"{sum(t['rows'] for t in manifest['tables'])} rows, {size / 1e6:.2f} MB, "
                    f"{manifest['seconds']} s -> {run_dir}")
        done.append(run_dir)
    where = os.environ.get("CONSOLIDATION_BACKUPS_VOLUME")
    if where and done:        # inside the compose service: the files are not in ./backups on the host
        inside = done[-1].relative_to(settings.backups_dir) if done[-1].is_relative_to(settings.backups_dir) else done[-1]
        console.say(f"  the backups are in the docker volume {where} (/app/backups in the migrator); copy one out "
                    f"with: docker compose run --rm -v \"$PWD/backups-out:/out\" --entrypoint cp db-tools "
                    f"-r /app/backups/{inside} /out/")
    return done
