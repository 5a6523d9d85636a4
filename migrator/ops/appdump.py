"""Per-application logical backups of the unified instance, and their restores.

An application's backup is one unit: all of its schemas together (Letta's two
schemas reference each other, so they are dumped and restored as one), from the
registry that `consolidate roles` installs (``consolidation_admin.app_schema``,
filled from sql/10-apps.sql), checked against consolidation.toml's sources
(``target_schema`` + rules). Files, under ``backups/apps/<app>/<UTC stamp>/``:

- ``<app>.dump``: ``pg_dump -Fc`` of exactly those schemas, taken in the same
  snapshot as the checksums below (``pg_dump --snapshot``);
- ``roles.json``: the app role's attributes and settings, no password (a restore
  into an empty instance re-creates it; the password comes from
  env/app-roles.env, as `consolidate roles` sets it);
- ``manifest.json``: schemas, role, sha256 of both files, per-table row counts
  and verify's content checksums (migrator/engine/checksums.py), with the form they were
  computed in (``checksum_form``; a manifest without one holds the older row-text
  form, and its restore is checked in that form).

Trust: every restore of app objects runs ``pg_restore`` as a per-app loader role
(migrator/engine/loader.py: no superuser, owns only the schemas being restored); the
restored rows are read by that loader too, the live rows of a backup by a throwaway
reader (migrator/engine/checksums.py), never on a superuser session. Superuser sessions keep
the pinned search_path (migrator/engine/db.py). The loader is retired (its sessions ended)
before the app role gets its schemas (migrator/engine/ownership.py, the same hand-over
`consolidate roles` does). The scratch database of a live restore accepts no
connection but the tool's, and no app role gets CREATE in it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console
from migrator.config.settings import DatabaseSettings
from migrator.engine import checksums, loader, pgtools
from migrator.engine.db import connect, create_private_database, end_sessions, require_superuser
from migrator.engine.files import describe_files, sha256_of, utc_stamp
from migrator.engine.ownership import hand_over_schema
from migrator.errors import ConfigError, ConsolidationError, DatabaseError, VerificationError
from migrator.redact import register_secret

DUMP_NAME = "{app}.dump"
MANIFEST = "manifest.json"
ROLES = "roles.json"
SCRATCH_DB = "consolidation_apprestore_{app}"
REPLACED = "{schema}_replaced_{stamp}"   # stamp lower-cased: no quoting needed


@dataclass(frozen=True)
class AppUnit:
    """One application's backup unit. Duck-types SourceMapping for migrator.engine.loader
    (``name``, ``target_schemas``): its loader is ``consolidation_loader_<app>``."""
    name: str
    role: str
    target_schemas: tuple[str, ...]


def backups_root(settings, chosen: Path | None = None) -> Path:
    """Where app backups go: ``--backup-dir`` when given, else backups/apps/ beside the config."""
    return chosen or settings.backups_dir / "apps"


# --- which schemas belong to which app -----------------------------------------------

_REGISTRY_SQL = """
SELECT r.app, r.role_name::text, array_agg(s.schema_name::text ORDER BY s.search_order, s.schema_name)
FROM consolidation_admin.app_role r JOIN consolidation_admin.app_schema s USING (app)
WHERE r.kind OPERATOR(pg_catalog.=) 'app' GROUP BY r.app, r.role_name ORDER BY r.app
"""


def registered_units(conn: psycopg.Connection) -> dict[str, AppUnit]:
    """app -> its unit, from the registry on the instance (sql/00, sql/10)."""
    if not conn.execute("SELECT pg_catalog.to_regclass('consolidation_admin.app_schema') IS NOT NULL").fetchone()[0]:
        return {}
    return {app: AppUnit(app, role, tuple(schemas)) for app, role, schemas in conn.execute(_REGISTRY_SQL)}


def check_against_config(units: dict[str, AppUnit], mappings) -> None:
    """Every source's target schemas (target_schema + rules) must lie in one app's unit,
    owned by the role the source names: a dump that split them would not restore alone.

    :raises ConfigError: naming the source and the schemas."""
    for m in mappings:
        holders = {u.name for u in units.values() for s in m.target_schemas if s in u.target_schemas}
        unit = units.get(next(iter(holders))) if len(holders) == 1 else None
        if unit is None or not set(m.target_schemas) <= set(unit.target_schemas) \
                or (m.owner and m.owner != unit.role):
            raise ConfigError(f"[sources.{m.name}] target schemas {', '.join(m.target_schemas)} are not all "
                              "registered to one application and its role on the target (run `consolidate roles`)")


def units_for(conn: psycopg.Connection, apps: list[str] | None, mappings=()) -> list[AppUnit]:
    """The chosen apps' units (all registered apps when none is chosen).

    :raises ConfigError: the registry is missing, or an app is not in it."""
    units = registered_units(conn)
    if not units:
        raise ConfigError("the target has no application registry (consolidation_admin); run `consolidate roles`")
    check_against_config(units, mappings)
    unknown = [a for a in apps or [] if a not in units]
    if unknown:
        raise ConfigError(f"unknown application '{unknown[0]}' (registered: {', '.join(sorted(units))})")
    return [units[a] for a in (apps or sorted(units))]


# --- checksums (verify's, read as the loader) ----------------------------------------

def table_sums(conn: psycopg.Connection, schemas: list[str], form: str = checksums.FORM) -> list[dict]:
    """Row count and verify's two content hashes of every plain table in ``schemas``."""
    return [{"schema": schema, "table": table, "rows": rows, "checksum": digest}
            for schema, table, rows, digest in checksums.table_hashes(conn, schemas, form)]


def checksum_form(manifest: dict) -> str:
    """The form a manifest's checksums are in (older manifests: the row-text form).

    :raises ConfigError: a form this version does not know (a newer migrator wrote it)."""
    form = manifest.get("checksum_form", checksums.LEGACY_FORM)
    if form not in checksums.FORMS:
        raise ConfigError(f"{MANIFEST}: checksum form '{form}' is unknown to this migrator"
                          f" (it knows {', '.join(checksums.FORMS)}); restore it with the version that wrote it")
    return form


def compare_sums(expected: list[dict], found: list[dict]) -> list[str]:
    """Differences between two table_sums lists, as one line each (checksums.differences)."""
    def keyed(sums: list[dict]) -> dict[str, list]:
        return {f"{t['schema']}.{t['table']}": [t["rows"], t["checksum"]] for t in sums}
    return checksums.differences(keyed(expected), keyed(found), where="the restored copy",
                                 before="backup", after="restored")


# --- the roles file --------------------------------------------------------------------

_ROLE_SQL = """
SELECT r.rolcanlogin, r.rolconnlimit,
       coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setrole OPERATOR(pg_catalog.=) r.oid
                 AND s.setdatabase OPERATOR(pg_catalog.=) 0), '{}'::text[]),
       pg_catalog.has_database_privilege(r.oid, pg_catalog.current_database(), 'CREATE')
FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) %s
"""


def role_facts(conn: psycopg.Connection, role: str) -> dict:
    found = conn.execute(_ROLE_SQL, (role,)).fetchone()
    if found is None:
        raise ConfigError(f"role '{role}' does not exist on the target (run `consolidate roles`)")
    login, limit, settings, create = found
    return {"name": role, "login": login, "connection_limit": limit, "settings": list(settings),
            "database_create": create}


def _setting_value(name: str, value: str) -> sql.Composable:
    if name == "search_path":     # a list: each element an identifier, not one quoted string
        return sql.SQL(", ").join(sql.Identifier(p.strip().strip('"')) for p in value.split(","))
    return sql.Literal(value)


def apply_role(admin: psycopg.Connection, facts: dict, password: str | None) -> None:
    """Create the app role of a roles file where it does not exist (an empty instance).
    Never a superuser; the password only as a SCRAM verifier, never logged."""
    role = sql.Identifier(facts["name"])
    exists = admin.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s)",
                           (facts["name"],)).fetchone()[0]
    if not exists:      # roles are cluster-wide: an existing role (the live app's) is never changed
        _create_role(admin, role, facts, password)


def grant_database_create(admin: psycopg.Connection, facts: dict) -> None:
    """CREATE on the database where the roles file says the app had it (n8n runs CREATE
    SCHEMA IF NOT EXISTS); only once the restore is handed over, never in a scratch
    database: with it the app could create a schema the tool then reads or calls."""
    if facts["database_create"]:
        admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(admin.info.dbname), sql.Identifier(facts["name"])))


def _create_role(admin: psycopg.Connection, role: sql.Identifier, facts: dict, password: str | None) -> None:
    admin.execute(sql.SQL("CREATE ROLE {}").format(role))
    admin.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS {} "
                          "CONNECTION LIMIT {}").format(role, sql.SQL("LOGIN" if facts["login"] else "NOLOGIN"),
                                                       sql.Literal(int(facts["connection_limit"]))))
    for setting in facts["settings"]:
        name, _, value = setting.partition("=")
        admin.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(name),
                                                                  _setting_value(name, value)))
    if password:
        verifier = admin.pgconn.encrypt_password(password.encode(), facts["name"].encode(), b"scram-sha-256").decode()
        register_secret(verifier)
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(verifier)))


# --- files -------------------------------------------------------------------------------

def _write_private(path: Path, data: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_manifest(dump_dir: Path) -> dict:
    """The manifest, with both files' sha256 checked.

    :raises ConfigError: missing or changed files (exit 2, nothing touched)."""
    path = dump_dir / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{dump_dir}: no {MANIFEST} (not an app backup directory)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        file = dump_dir / entry["path"]
        if not file.is_file() or sha256_of(file) != entry["sha256"]:
            raise ConfigError(f"{file}: missing or its sha256 differs from {MANIFEST}; refusing to restore it")
    checksum_form(manifest)
    return manifest


def latest_dir(root: Path, app: str) -> Path:
    """The newest backup of ``app`` under ``root`` (backups/apps)."""
    found = sorted(p for p in (root / app).glob("*") if (p / MANIFEST).is_file()) if (root / app).is_dir() else []
    if not found:
        raise ConfigError(f"no backup of '{app}' under {root / app} (run `consolidate app-backup {app}`)")
    return found[-1]


# --- dump --------------------------------------------------------------------------------

def dump_app(db: DatabaseSettings, app: str, out_root: Path, *, mappings=()) -> tuple[Path, dict]:
    """Dump one application's schemas of ``db`` (a superuser login) into
    ``out_root/<app>/<stamp>/``; return that directory and its manifest.

    Counts and checksums are read by a throwaway reader in a REPEATABLE READ
    transaction whose snapshot pg_dump then uses: the manifest describes exactly
    the rows in the dump."""
    started = time.monotonic()
    with connect(db) as admin:
        require_superuser(admin, db)
        pgtools.require_client_for(admin, db)
        unit = units_for(admin, [app], mappings)[0]
        facts = role_facts(admin, unit.role)
        needs_vector = admin.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e"
            " ON e.oid OPERATOR(pg_catalog.=) d.refobjid JOIN pg_catalog.pg_attribute a"
            " ON a.atttypid OPERATOR(pg_catalog.=) d.objid JOIN pg_catalog.pg_class c"
            " ON c.oid OPERATOR(pg_catalog.=) a.attrelid JOIN pg_catalog.pg_namespace n"
            " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE e.extname OPERATOR(pg_catalog.=) 'vector'"
            " AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass"
            " AND n.nspname OPERATOR(pg_catalog.=) ANY (%s))", (list(unit.target_schemas),)).fetchone()[0]
        vector_schema = admin.execute("SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                                      " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                                      " WHERE e.extname OPERATOR(pg_catalog.=) 'vector'").fetchone()
        extensions = [{"name": name, "schema": schema} for name, schema in admin.execute(
            EXTENSIONS_USED_SQL, {"schemas": list(unit.target_schemas)}).fetchall()]
        stamp = utc_stamp()
        run_dir = pgtools.private_dir(out_root / app) / stamp
        run_dir.mkdir(mode=0o700)
        run_dir.chmod(0o700)
        with checksums.reader(admin, db, list(unit.target_schemas)) as hands:
            tables = _dump_in_snapshot(db, hands, unit, run_dir / DUMP_NAME.format(app=app))
        server = admin.execute("SELECT pg_catalog.current_setting('server_version')").fetchone()[0]
    _write_private(run_dir / ROLES, facts)
    listed = [f for name in (DUMP_NAME.format(app=app), ROLES) for f in describe_files(run_dir / name)]
    manifest = {"app": app, "role": unit.role, "schemas": list(unit.target_schemas), "created_at": stamp,
                "source": db.describe(), "server_version": server, "pg_dump": pgtools.client_version(),
                "needs_vector": needs_vector, "vector_schema": vector_schema[0] if vector_schema else None,
                "extensions": extensions, "checksum_form": checksums.FORM,
                "files": listed, "tables": tables, "seconds": round(time.monotonic() - started, 2)}
    _write_private(run_dir / MANIFEST, manifest)
    return run_dir, manifest


# Every extension whose objects something in the app's schemas depends on: a column's type
# (pgvector), an index's or exclusion constraint's operator class (btree_gist), a default's
# or a routine's function (uuid-ossp). A restore elsewhere needs them first, in their schema.
EXTENSIONS_USED_SQL = """
SELECT DISTINCT e.extname::text, n.nspname::text
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_depend m ON m.classid OPERATOR(pg_catalog.=) d.refclassid
  AND m.objid OPERATOR(pg_catalog.=) d.refobjid AND m.deptype OPERATOR(pg_catalog.=) 'e'
JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) m.refobjid
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
LEFT JOIN pg_catalog.pg_attrdef ad ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
  AND ad.oid OPERATOR(pg_catalog.=) d.objid
WHERE d.deptype OPERATOR(pg_catalog.<>) 'e'
  AND coalesce((pg_catalog.pg_identify_object(d.classid, d.objid, 0)).schema,
               (SELECT c.relnamespace::pg_catalog.regnamespace::pg_catalog.text FROM pg_catalog.pg_class c
                WHERE c.oid OPERATOR(pg_catalog.=) ad.adrelid)) OPERATOR(pg_catalog.=) ANY (%(schemas)s)
ORDER BY 1
"""


def _dump_in_snapshot(db: DatabaseSettings, hands: DatabaseSettings, unit: AppUnit, out: Path) -> list[dict]:
    with connect(hands, autocommit=False, read_only=True, application_name="consolidation-app-backup") as reader:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = reader.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()[0]
        tables = table_sums(reader, list(unit.target_schemas))
        args = ["-Fc", "--snapshot", snapshot, "-f", str(out)]
        for schema in unit.target_schemas:
            args += ["-n", schema]
        pgtools.run("pg_dump", args, db, what=f"of application '{unit.name}'")
        reader.rollback()
    if not [line for line in pgtools.restore_list(out, db) if line and not line.startswith(";")]:
        raise ConsolidationError(f"the dump of '{unit.name}' lists no entries")
    return tables


# --- restore -------------------------------------------------------------------------------

def _prepare(admin: psycopg.Connection, manifest: dict, loader_role: str) -> None:
    """The extensions the dump needs (pgvector in `extensions`, and whatever else its objects
    use, each in the schema it was in); empty schemas owned by the loader."""
    for ext in manifest.get("extensions", []):
        if ext["name"] == "vector":
            continue                  # below, as manifests without this list record it
        where = admin.execute("SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                              " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                              " WHERE e.extname OPERATOR(pg_catalog.=) %s", (ext["name"],)).fetchone()
        if where is None:
            admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ext["schema"])))
            admin.execute(sql.SQL("CREATE EXTENSION {} SCHEMA {}").format(sql.Identifier(ext["name"]),
                                                                         sql.Identifier(ext["schema"])))
        elif where[0] != ext["schema"]:
            raise DatabaseError("restore target", "target", f"extension {ext['name']} is installed in schema "
                                f"'{where[0]}', the backup needs it in '{ext['schema']}'")
    if manifest.get("needs_vector"):
        where = admin.execute("SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                              " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                              " WHERE e.extname OPERATOR(pg_catalog.=) 'vector'").fetchone()
        wanted = manifest.get("vector_schema") or "extensions"
        if where is None:
            admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(wanted)))
            admin.execute(sql.SQL("CREATE EXTENSION vector SCHEMA {}").format(sql.Identifier(wanted)))
        elif where[0] != wanted:
            raise DatabaseError("restore target", "target", f"pgvector is installed in schema '{where[0]}', the "
                                f"backup needs it in '{wanted}'")
    ident = sql.Identifier(loader_role)
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(admin.info.dbname), ident))
    if admin.execute("SELECT pg_catalog.to_regnamespace('extensions') IS NOT NULL").fetchone()[0]:
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(ident))
    for schema in manifest["schemas"]:
        admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), ident))


def _load(hands: DatabaseSettings, dump_dir: Path, manifest: dict) -> list[str]:
    """pg_restore as the loader, one transaction, stop at the first error; then the
    restored tables' counts and checksums against the manifest (as the loader)."""
    dump = dump_dir / DUMP_NAME.format(app=manifest["app"])
    listing = dump_dir.parent / f".{dump_dir.name}.{os.getpid()}.list"   # the dump dir may be read-only
    pgtools.restore_listed(dump, pgtools.toc_lines(dump, hands, set(manifest["schemas"])), hands,
                           listing=listing, what=f"of application '{manifest['app']}'")
    with connect(hands, application_name="consolidation-app-restore") as conn:
        return compare_sums(manifest["tables"], table_sums(conn, manifest["schemas"], checksum_form(manifest)))


def restore_into_empty(db: DatabaseSettings, dump_dir: Path, *, password: str | None = None,
                       scratch: bool = False) -> dict:
    """Restore one app backup into a database that has none of its schemas (an empty
    PostgreSQL 17 with pgvector available, or a scratch database): role from roles.json
    (``password`` from env/app-roles.env), pgvector, pg_restore as the loader, verify,
    hand-over to the app role. On any failure the app's schemas are dropped again.
    ``scratch``: a throwaway database of the tool's (the app role gets no CREATE there).

    :raises VerificationError: restored counts/checksums differ from the manifest."""
    manifest = read_manifest(dump_dir)
    unit = AppUnit(manifest["app"], manifest["role"], tuple(manifest["schemas"]))
    started = time.monotonic()
    with connect(db) as admin:
        require_superuser(admin, db)
        present = [s for s in unit.target_schemas
                   if admin.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (s,)).fetchone()[0]]
        if present:
            raise DatabaseError(db.name, "target", f"schema '{present[0]}' already exists; restore into an empty "
                                "instance, or use `consolidate app-restore` on the live one")
        facts = json.loads((dump_dir / ROLES).read_text(encoding="utf-8"))
        with admin.transaction():
            apply_role(admin, facts, password)
        hands = loader.ensure(admin, db, unit)
        try:
            with admin.transaction():
                _prepare(admin, manifest, loader.name_of(unit))
            diffs = _load(hands, dump_dir, manifest)
            if diffs:
                raise VerificationError(f"restore of '{unit.name}' differs from its backup: {diffs[0]}")
            loader.retire(admin, db, unit)      # its sessions end before the superuser's hand-over
            with admin.transaction():
                for schema in unit.target_schemas:
                    hand_over_schema(admin, schema, unit.role)
                if admin.execute("SELECT pg_catalog.to_regnamespace('extensions') IS NOT NULL").fetchone()[0]:
                    admin.execute(sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(sql.Identifier(unit.role)))
                if not scratch:
                    grant_database_create(admin, facts)
        except BaseException:
            with admin.transaction():
                for schema in unit.target_schemas:
                    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            raise
        finally:
            loader.retire(admin, db, unit)
    return {"app": unit.name, "tables": len(manifest["tables"]), "rows": sum(t["rows"] for t in manifest["tables"]),
            "seconds": round(time.monotonic() - started, 2)}


def app_sessions(admin: psycopg.Connection, role: str) -> int:
    return admin.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity"
                         " WHERE usename OPERATOR(pg_catalog.=) %s", (role,)).fetchone()[0]


def _scratch_check(db: DatabaseSettings, admin: psycopg.Connection, dump_dir: Path, unit: AppUnit) -> None:
    """Restore into a scratch database of the same instance and verify it there first:
    a dump that does not restore, or restores different rows, never touches the live schemas."""
    scratch = SCRATCH_DB.format(app=unit.name)
    ident = sql.Identifier(scratch)
    create_private_database(admin, scratch)
    try:
        restore_into_empty(replace(db, dbname=scratch), dump_dir, scratch=True)
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def _swap_aside(admin: psycopg.Connection, unit: AppUnit, stamp: str) -> None:
    """One transaction: each live schema renamed to <schema>_replaced_<stamp>, an empty
    one of the same name in its place, owned by the loader."""
    with admin.transaction():
        admin.execute("SET LOCAL lock_timeout = '30s'")
        for schema in unit.target_schemas:
            if admin.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()[0]:
                admin.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(REPLACED.format(schema=schema, stamp=stamp))))
            admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(loader.name_of(unit))))


def swap_back(admin: psycopg.Connection, unit: AppUnit, stamp: str) -> None:
    """The way back, one transaction: drop what the restore made, rename the kept schemas back."""
    with admin.transaction():
        for schema in unit.target_schemas:
            kept = REPLACED.format(schema=schema, stamp=stamp)
            if admin.execute("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", (kept,)).fetchone()[0]:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
                admin.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(kept),
                                                                              sql.Identifier(schema)))


def restore_live(db: DatabaseSettings, dump_dir: Path, *, force: bool = False, scratch: bool = True,
                 log=console.say) -> dict:
    """Replace one app's schemas on the live instance by a backup, other apps untouched.

    Refuses while the app role has sessions (unless ``force``: they are ended). Scratch
    restore + verify first; then the live schemas are renamed aside in one transaction,
    the backup is restored as the loader (one transaction) and verified against the
    manifest, and only then handed to the app role. Any failure after the rename
    swaps back (swap_back). The old schemas stay until the operator drops them."""
    manifest = read_manifest(dump_dir)
    unit = AppUnit(manifest["app"], manifest["role"], tuple(manifest["schemas"]))
    started = time.monotonic()
    with connect(db) as admin:
        require_superuser(admin, db)
        live = units_for(admin, [unit.name])[0]
        if set(live.target_schemas) != set(unit.target_schemas) or live.role != unit.role:
            raise ConfigError(f"backup of '{unit.name}' holds {', '.join(unit.target_schemas)} for role {unit.role}; "
                              f"the target registers {', '.join(live.target_schemas)} for {live.role}")
        sessions = app_sessions(admin, unit.role)
        if sessions and not force:
            raise DatabaseError(db.name, "target", f"role '{unit.role}' has {sessions} open session(s); stop "
                                f"{unit.name} first (or --force to end them)")
        if scratch:
            log(f"  scratch restore of {unit.name} and verify")
            _scratch_check(db, admin, dump_dir, unit)
        if force:
            end_sessions(admin, unit.role)
        hands = loader.ensure(admin, db, unit)
        stamp = utc_stamp().lower()
        _swap_aside(admin, unit, stamp)
        try:
            diffs = _load(hands, dump_dir, manifest)
            if diffs:
                raise VerificationError(f"live restore of '{unit.name}' differs from its backup: {diffs[0]} "
                                        "(swapped back: nothing changed)")
            loader.retire(admin, db, unit)      # its sessions end before the superuser's hand-over
            with admin.transaction():
                for schema in unit.target_schemas:
                    hand_over_schema(admin, schema, unit.role)
        except BaseException:
            swap_back(admin, unit, stamp)
            raise
        finally:
            loader.retire(admin, db, unit)
    kept = [REPLACED.format(schema=s, stamp=stamp) for s in unit.target_schemas]
    return {"app": unit.name, "stamp": stamp, "kept": kept, "tables": len(manifest["tables"]),
            "rows": sum(t["rows"] for t in manifest["tables"]), "seconds": round(time.monotonic() - started, 2)}
