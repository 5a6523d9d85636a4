"""decommission: retire the legacy databases (n8n-db, letta-db) after a cutover.

Refuses, changing nothing, while the lifecycle is not "cut over"
(migrator/ops/cutover_state.py), an app's env file still points at a legacy
database, or any client other than this command is connected to one. Then, per
legacy database: a final archive (pg_dump custom format, under
backups/decommission/<stamp>/, 0700/0600) with exact per-table row counts; the
archive is restored into a throwaway database on the unified instance as that
source's loader role (legacy code never runs as a superuser) and its counts
compared; only when every archive checks out is env/.decommissioned written
(from then on `rollback` is refused: the legacy data is stale) and the
containers stopped and removed; a rerun finishes a removal that was cut short.
Their volumes are deleted only with --delete-volumes. Runs in the `migrator`
service (it has the docker socket). Bringing the legacy databases back loses
every write since the cutover: `docker compose --profile legacy up -d n8n-db
letta-db` (the volumes still hold their data) or restore an archive, then remove
env/.decommissioned.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console
from migrator.apps import registry
from migrator.config.mapping import load_mappings
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import loader, pgtools
from migrator.engine.db import connect, create_private_database
from migrator.engine.files import describe_files, utc_stamp
from migrator.errors import ConfigError, DatabaseError, ServiceError, VerificationError
from migrator.ops import appdump, cutover_state
from migrator.systems import services

COMMAND = "decommission"
LOCK = "exclusive"  # uses the loaders and drops the legacy databases (migrator/engine/runlock.py)
NEEDS = {"mappings", "app_env"}  # checked before any connection (migrator/config/validation.py)
HELP = "final verified archive of each legacy database, then remove its container (volumes: --delete-volumes)"
THROWAWAY = "consolidation_archive_check_{name}"

_COUNT_TABLES = """
SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND n.nspname !~ '^pg_' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
ORDER BY 1, 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--delete-volumes", action="store_true", help="also delete the legacy databases' volumes")
    parser.add_argument("--archive-dir", type=Path, default=None, help="default: backups/decommission/")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, args.archive_dir or settings.backups_dir / "decommission", delete_volumes=args.delete_volumes)
    return 0


# --- refusals --------------------------------------------------------------------------

def _hosts_in(text: str) -> set[str]:
    return set(re.findall(r"@([^:/\s]+)", text))


def refuse_if_in_use(settings: Settings) -> None:
    """:raises ConsolidationError: an app still points at a legacy database, or a client is
    connected to one (nothing has been changed)."""
    legacy = {db.host: db for db in settings.sources}
    for name, app in settings.apps.items():
        where = registry.get(name).database_of(app.env())
        used = _hosts_in(where) & set(legacy)
        if used:
            raise ConfigError(f"{app.env_file} still points {name} at legacy database '{sorted(used)[0]}'")
    for db in settings.sources:
        with connect(db) as conn:
            others = conn.execute("SELECT pg_catalog.count(*), pg_catalog.string_agg(DISTINCT"
                                  " coalesce(usename::text, '?') || '/' || coalesce(nullif(application_name, ''), '?'), ', ')"
                                  " FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.<>)"
                                  " pg_catalog.pg_backend_pid() AND backend_type OPERATOR(pg_catalog.=) 'client backend'"
                                  ).fetchone()
        if others[0]:
            raise DatabaseError(db.name, "source", f"{others[0]} client(s) still connected ({others[1]}); "
                                "stop them first")


# --- archive + restore test ---------------------------------------------------------------

def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {f"{s}.{t}": conn.execute(sql.SQL("SELECT pg_catalog.count(*) FROM ONLY {}").format(
        sql.Identifier(s, t))).fetchone()[0] for s, t in conn.execute(_COUNT_TABLES).fetchall()}


def archive(settings: Settings, db: DatabaseSettings, mapping, run_dir: Path) -> dict:
    """pg_dump of one legacy database, its exact counts, and a restore test that compares them."""
    out = run_dir / f"{db.name}.dump"
    with connect(db) as src:
        pgtools.require_client_for(src, db)
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = src.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()[0]
        counts = row_counts(src)
        pgtools.run("pg_dump", ["-Fc", "--snapshot", snapshot, "-f", str(out)], db, what="(final archive)")
        extensions = dict(src.execute("SELECT e.extname::text, n.nspname::text FROM pg_catalog.pg_extension e JOIN"
                                      " pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                                      " WHERE e.extname OPERATOR(pg_catalog.<>) 'plpgsql'").fetchall())
        src.execute("ROLLBACK")
    restored = restore_test(settings, db, mapping, out, extensions)
    diffs = [t for t in set(counts) | set(restored) if counts.get(t) != restored.get(t)]
    if diffs:
        raise VerificationError(f"archive of '{db.name}' restores with different rows in {sorted(diffs)[0]}: "
                                f"{counts.get(sorted(diffs)[0])} vs {restored.get(sorted(diffs)[0])}")
    return {"database": db.name, "dbname": db.dbname, "files": describe_files(out), "tables": counts,
            "rows": sum(counts.values()), "restore_test": "restored into a throwaway database; counts equal"}


def restore_test(settings: Settings, db: DatabaseSettings, mapping, dump: Path, extensions: dict) -> dict[str, int]:
    """Restore ``dump`` into a throwaway database of the unified instance as the source's
    loader role (schemas and extensions made by the superuser first) and count its rows."""
    name = THROWAWAY.format(name=db.name)
    with connect(settings.target) as admin:
        hands = loader.ensure(admin, settings, mapping)
        role = sql.Identifier(loader.name_of(mapping))
        create_private_database(admin, name, owner=loader.name_of(mapping))
        try:
            toc = _prepare(settings, name, role, dump, db, extensions)
            pgtools.restore_listed(dump, toc, hands, dbname=name, what="(archive restore test)")
            with connect(replace(hands, dbname=name)) as check:
                return row_counts(check)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            loader.retire(admin, settings, mapping)


def _prepare(settings: Settings, name: str, role: sql.Identifier, dump: Path, db: DatabaseSettings,
             extensions: dict) -> list[str]:
    """Schemas (owned by the loader) and extensions, as the superuser; the rest of the TOC."""
    schemas, keep = set(), []
    for line in pgtools.restore_list(dump, db):
        parts = line.split()
        if not line.strip() or line.startswith(";"):
            continue
        if len(parts) > 5 and parts[3] == "SCHEMA":
            schemas.add(parts[5])
            continue
        # Made by the superuser above, or (event triggers, publications) a superuser's
        # business that the restore test leaves out: the rows are what it checks.
        if len(parts) > 4 and (parts[3] in ("EXTENSION", "PUBLICATION", "SUBSCRIPTION")
                               or parts[3:5] == ["EVENT", "TRIGGER"]):
            continue
        if len(parts) > 6 and parts[3] == "COMMENT" and parts[5] in ("SCHEMA", "EXTENSION"):
            continue
        keep.append(line)
    with connect(replace(settings.target, dbname=name)) as admin, admin.transaction():
        for schema in sorted(schemas - {"public"}):
            admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), role))
        for ext, schema in extensions.items():
            admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            admin.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}").format(
                sql.Identifier(ext), sql.Identifier(schema)))
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
    return keep


# --- containers -----------------------------------------------------------------------------

def remove_containers(settings: Settings, delete_volumes: bool, missing_ok: bool = False) -> list[str]:
    done = []
    for db in settings.sources:
        try:
            volumes = services.remove_service(services.source_service(settings, db), delete_volumes)
        except ServiceError:
            if not missing_ok:
                raise
            continue                  # removed by the run this one finishes
        done.append(f"{db.host}: container removed")
        if delete_volumes:
            done.append(f"{db.host}: volume(s) {', '.join(volumes)} deleted")
    return done


def retire(settings: Settings, marker: dict, delete_volumes: bool, missing_ok: bool = False) -> None:
    """The marker first (from the first container stopped on, `rollback` must know the
    legacy databases are gone), then the containers, then the marker says they are out."""
    cutover_state.save_marker(settings, marker)
    for line in remove_containers(settings, delete_volumes, missing_ok):
        console.say(f"  {line}")
    cutover_state.save_marker(settings, {**marker, "containers_removed": True})
    if not delete_volumes:
        console.say("  volumes kept (--delete-volumes deletes them); bringing them back loses every write "
                    "since the cutover: docker compose --profile legacy up -d " + " ".join(marker["databases"]))


def finish(settings: Settings, delete_volumes: bool) -> Path:
    """Already decommissioned: nothing to do, or the removal a previous run did not finish."""
    marker = cutover_state.load_marker(settings) or {}
    marker.setdefault("databases", [db.host for db in settings.sources])
    if marker.get("containers_removed", True):
        console.say(f"  already decommissioned ({cutover_state.marker_path(settings)}): nothing to do")
    else:
        retire(settings, marker, delete_volumes, missing_ok=True)
    return Path(marker.get("archives", ""))


def run(settings: Settings, archive_root: Path, *, delete_volumes: bool = False) -> Path:
    console.step("D", "decommission: archive the legacy databases, then retire them")
    if cutover_state.require(settings, COMMAND) is cutover_state.Lifecycle.DECOMMISSIONED:
        return finish(settings, delete_volumes)
    refuse_if_in_use(settings)
    for db in settings.sources:     # before anything is written: no socket, no change
        services.require_service(services.source_service(settings, db))
    mappings = {m.name: m for m in load_mappings(settings)}
    run_dir = pgtools.private_dir(archive_root) / utc_stamp()
    run_dir.mkdir(mode=0o700)
    run_dir.chmod(0o700)
    entries = []
    for db in settings.sources:
        entry = archive(settings, db, mappings[db.name], run_dir)
        console.say(f"  {db.name}: {len(entry['tables'])} tables, {entry['rows']} rows archived and restore-tested")
        entries.append(entry)
    appdump._write_private(run_dir / "manifest.json", {"created_at": run_dir.name, "archives": entries,
                                                        "pg_dump": pgtools.client_version()})
    retire(settings, {"decommissioned_at": run_dir.name, "archives": str(run_dir),
                      "databases": [db.host for db in settings.sources], "volumes_deleted": delete_volumes,
                      "containers_removed": False},
           delete_volumes)
    console.say(f"  archives: {run_dir}")
    return run_dir
