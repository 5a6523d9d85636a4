"""schema: recreate each source's object definitions in its target schemas.

Definitions come from pg_dump, never hand-written DDL. The remap happens in a
scratch database on the target: restore the source's schema-only dump there,
move its extensions to ``extensions`` (where Supabase keeps them), rename the
schema, route tables by the mapping rules (types and sequences follow the
tables that use them), rewrite the routines' search_path settings and the
references in their bodies that name the moved schema (migrator/engine/routines.py,
migrator/engine/bodies.py; planned on the source by check(), listed by assess), then
dump the result and restore its pre-data section into the target database
(the engine lives in migrator/engine/predata.py).
Post-data (indexes, constraints, triggers) waits until the data is in (see
post_data.py). Sources are only read.

Restoring a definition can run its code (PostgreSQL folds immutable calls in
CHECK and index expressions while it prepares them), so everything that
restores or moves the source's objects runs as the source's loader role
(migrator/engine/loader.py), which owns the scratch database and the target schemas;
the superuser only creates databases, schemas and extensions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from migrator.engine import journal
from migrator.engine.predata import (  # noqa: F401 (migrate, online)
    STEP, check, refresh_routines, require_schema, restored_fingerprint, run)
from migrator.config.settings import Settings

COMMAND = "schema"
LOCK = "exclusive"  # writes the target, the journal and a loader (migrator/engine/runlock.py)
NEEDS = {"mappings"}  # checked before any connection (migrator/config/validation.py)
HELP = "recreate object definitions (pre-data) in the target schemas"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", type=Path, default=None, help="where dumps go (default: backups/work)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    work_dir = args.work_dir or settings.work_dir
    with journal.loading(settings, STEP) as (target, mappings):
        for mapping in mappings:
            run(settings, mapping, target, work_dir)
    return 0
