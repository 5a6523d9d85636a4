"""predata: recreate a source's object definitions (pre-data) in its target schemas.

The engine behind the ``schema`` step, whose docstring (migrator/steps/schema.py, also
its --help) describes the design: pg_dump, the remap in a scratch database, routines
rewritten, everything restored as the source's loader role. Also used by post_data
(routines refreshed after the data), assess (the bodies plan) and the online mode's
staging (migrator/engine/staging.py); a library, so none of them imports a step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console
from migrator.config.mapping import SourceMapping
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine import bodies, catalog, journal, loader, pgtools, routines, schemafp
from migrator.engine.db import connect, create_private_database
from migrator.errors import ConsolidationError, DatabaseError

STEP = "schema"  # the journal's name for this step


def scratch_name(mapping: SourceMapping) -> str:
    return f"_consolidation_scratch_{mapping.name}"


def refuse_occupied_schemas(target: psycopg.Connection, mapping: SourceMapping) -> None:
    """A target schema that holds objects we did not create is never touched."""
    ours = set(journal.created_schemas(target))
    for schema in mapping.target_schemas:
        count = catalog.schema_object_count(target, schema)
        if count and schema not in ours:
            raise DatabaseError("unified", "target",
                                f"schema '{schema}' already exists and holds {count} objects not created by "
                                f"this tool; move them away or choose another target_schema for '{mapping.name}'")


def check_extensions(source: psycopg.Connection, target: psycopg.Connection, mapping: SourceMapping) -> list:
    """Every source extension must be installable in the target's `extensions` schema."""
    needed = catalog.extensions(source)
    available = {r[0] for r in target.execute("SELECT name FROM pg_available_extensions")}
    installed = {e.name: e for e in catalog.extensions(target)}
    for ext in needed:
        if ext.name not in available:
            raise DatabaseError("unified", "target", f"extension '{ext.name}' (used by source '{mapping.name}') "
                                                     "is not available on the target server")
        if ext.name in installed and installed[ext.name].schema != "extensions":
            raise DatabaseError("unified", "target", f"extension '{ext.name}' is installed in schema "
                                f"'{installed[ext.name].schema}' on the target, expected 'extensions'")
        if not ext.relocatable and ext.schema == mapping.schema:
            raise ConsolidationError(f"source '{mapping.name}': extension '{ext.name}' lives in the migrated schema "
                                     f"'{ext.schema}' and cannot be relocated; move it on the source first")
    return needed


def require_schema(source: psycopg.Connection, mapping: SourceMapping) -> None:
    """The mapped source schema exists (also for a source migrated on an earlier run: a
    rerun must not report success for a schema that is gone)."""
    if source.execute("SELECT pg_catalog.to_regnamespace(%s) IS NULL", (mapping.schema,)).fetchone()[0]:
        raise DatabaseError(mapping.name, "source", f"schema '{mapping.schema}' does not exist")


@dataclass(frozen=True)
class Checked:
    """What check() learnt on the source: extensions, each table's target schema, where
    the schema's objects land and what the move does to routine bodies naming it."""
    exts: list
    routes: dict[str, str]
    placement: bodies.Placement
    body_plans: list[bodies.BodyPlan]
    fingerprint: str    # the source schema's (migrator/engine/schemafp.py), read before it is dumped


def check(mapping: SourceMapping, target: psycopg.Connection) -> Checked:
    """Every refusal that can be known before writing anything."""
    refuse_occupied_schemas(target, mapping)
    with connect(mapping.db) as source:
        require_schema(source, mapping)
        # Taken before pg_dump reads the definitions: a change in between makes the two
        # differ, so the cutover's check after the writers stop redoes the step.
        fingerprint = schemafp.schema_fingerprint(source, mapping.schema)
        exts = check_extensions(source, target, mapping)
        unsupported = source.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'f'", (mapping.schema,)).fetchall()
        if unsupported:
            raise ConsolidationError(f"source '{mapping.name}': foreign table '{unsupported[0][0]}' cannot be "
                                     "moved (its data lives on another server); drop or localize it first")
        if source.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]:
            raise ConsolidationError(f"source '{mapping.name}': large objects (pg_largeobject) are not moved by "
                                     "this tool; export them with pg_dump --large-objects separately")
        routes = {t.name: mapping.route(t.name, t.has_vector) for t in catalog.tables(source, mapping.schema)}
        placed, planned = plan_bodies(source, mapping, routes, exts)
        refuse_unchecked_bodies(mapping, planned)
        refuse_unchecked_settings(source, mapping)
    return Checked(exts, routes, placed, planned, fingerprint)


def plan_bodies(source: psycopg.Connection, mapping: SourceMapping, routes: dict[str, str],
                exts) -> tuple[bodies.Placement, list[bodies.BodyPlan]]:
    """Where the schema's objects land, and what the move does to each routine body that
    names the schema (migrator/engine/bodies.py); read on the source, by assess and by check."""
    bodies.check_accepted(source, mapping)
    placed = bodies.placement(source, mapping, routes, routines.extension_in_schema(exts, mapping))
    return placed, bodies.plans(source, [mapping.schema], placed)


def refuse_unchecked_bodies(mapping: SourceMapping, planned: list[bodies.BodyPlan]) -> None:
    """Routine bodies are text: one that says `letta.messages` still says it after the
    schema became letta_agents. What the parser proves is rewritten; a body naming the
    schema where it cannot (dynamic SQL, other languages) would fail when called, so the
    move is refused before any downtime, naming the routine, unless the operator
    accepted it by name."""
    refused = bodies.refused(planned, mapping)
    if refused:
        raise DatabaseError(mapping.name, "source", bodies.refusal(mapping, refused))


def refuse_unchecked_settings(source: psycopg.Connection, mapping: SourceMapping) -> None:
    """A custom setting (`SET app.schema = 'letta'`) naming the schema would still name it
    after the move, and what it means only its application knows: refused, naming the
    routine and the setting (migrator/engine/routines.py says why accepting it cannot help)."""
    refused = routines.unchecked(source, mapping)
    if refused:
        raise DatabaseError(mapping.name, "source", routines.refusal(mapping, refused))


def run(settings: Settings, mapping: SourceMapping, target: psycopg.Connection, work_dir: Path) -> None:
    if journal.step_done(target, mapping.name, STEP):
        console.say(f"  {mapping.name}: schema already done on a previous run, skipping")
        return
    checked = check(mapping, target)
    pgtools.private_dir(work_dir)
    journal.start_step(target, mapping.name, STEP)
    drop_our_schemas(target, mapping)          # a half-done earlier attempt is redone from scratch
    hands = loader.ensure(target, settings, mapping)
    remapped, rewritten = remapped_dump(settings, mapping, target, hands, work_dir, checked)
    install_extensions(target, checked.exts)
    loader.grant_extensions(target, mapping)
    restore_pre_data(settings, mapping, target, hands, remapped)
    journal.finish_step(target, mapping.name, STEP, {
        "tables": len(checked.routes), "rewritten_settings": [r.describe() for r in rewritten.settings],
        "rewritten_bodies": rewritten.body_lines(), "accepted_unchecked": rewritten.accepted,
        "source_fingerprint": checked.fingerprint})
    console.say(f"  {mapping.name}: {len(checked.routes)} tables defined in {', '.join(mapping.target_schemas)}")
    rewritten.say(mapping)


def restored_fingerprint(target: psycopg.Connection, mapping: SourceMapping) -> str | None:
    """The source schema's fingerprint when the step restored its definitions (None: not
    recorded, e.g. by an older version; treated as changed)."""
    return (journal.step_detail(target, mapping.name, STEP) or {}).get("source_fingerprint")


@dataclass(frozen=True)
class Rewritten:
    """What the scratch database rewrote: routine settings and bodies (named as on the
    target), and the routines moved although parts of their bodies cannot be checked."""
    settings: list[routines.SettingRewrite]
    body_plans: list[bodies.BodyPlan]
    accepted: list[str]

    def body_lines(self) -> list[str]:
        return [line for plan in self.body_plans for line in plan.describe()]

    def say(self, mapping: SourceMapping) -> None:
        for rewrite in self.settings:
            console.say(f"  {mapping.name}: rewritten {rewrite.describe()}")
        for line in self.body_lines():
            console.say(f"  {mapping.name}: rewritten {line}")
        for routine in self.accepted:
            console.warn(f"  {mapping.name}", f"{routine} moved with the parts of its body that name "
                         f"'{mapping.schema}' unchecked (accept_unchecked_routines)")


def remapped_dump(settings: Settings, mapping: SourceMapping, target: psycopg.Connection,
                  hands: DatabaseSettings, work_dir: Path, checked: Checked,
                  label: str = "target") -> tuple[Path, Rewritten]:
    """The source's definitions as they will be on the target: dumped, remapped in scratch, dumped again."""
    source_dump = work_dir / f"{mapping.name}.source-schema.dump"
    remapped = work_dir / f"{mapping.name}.{label}-schema.dump"
    pgtools.forget(source_dump)
    pgtools.forget(remapped)
    pgtools.run("pg_dump", ["-Fc", "--schema-only", "--no-owner", "--no-acl", "--no-publications",
                            "--no-subscriptions", "--no-security-labels", "--no-tablespaces",
                            "-n", mapping.schema, "-f", str(source_dump)], mapping.db, what="--schema-only")
    return remapped, remap_in_scratch(settings, mapping, target, hands, source_dump, remapped, checked)


# A routine's entry in a dump's TOC, and the statement that creates it in its script.
ROUTINE_ENTRY = re.compile(r"^\d+; \d+ \d+ (?:FUNCTION|PROCEDURE) ")
CREATE_ROUTINE = re.compile(r"^CREATE (FUNCTION|PROCEDURE) ", re.MULTILINE)


def refresh_routines(settings: Settings, mapping: SourceMapping, target: psycopg.Connection,
                     work_dir: Path) -> int:
    """Replace every routine on the target by the source's current definition, remapped as
    this step does. A post-data pass that failed on a routine's code (an index expression,
    an expression statistic) is rerun after the operator fixed it on the source: the fix
    has to reach the target, without moving the rows again. Returns how many were replaced."""
    checked = check(mapping, target)
    hands = loader.ensure(target, settings, mapping)
    dump, rewritten = remapped_dump(settings, mapping, target, hands, work_dir, checked, label="refresh")
    entries = [line for line in pgtools.toc_lines(dump, settings.target, set(mapping.target_schemas))
               if ROUTINE_ENTRY.match(line)]
    with connect(hands) as conn, conn.transaction():
        for line in entries:
            script = pgtools.restore_script(dump, [line], settings.target, what="of a routine")
            # pg_dump writes CREATE; the routine exists (objects depend on it): replace it in place.
            conn.execute(CREATE_ROUTINE.sub(r"CREATE OR REPLACE \1 ", script, count=1))
    rewritten.say(mapping)
    return len(entries)


def drop_our_schemas(target: psycopg.Connection, mapping: SourceMapping) -> None:
    journal.drop_created_schemas(target, mapping.name)
    journal.forget_rows(target, mapping.name)


def remap_in_scratch(settings: Settings, mapping: SourceMapping, target: psycopg.Connection,
                     hands: DatabaseSettings, source_dump: Path, out_dump: Path, checked: Checked) -> Rewritten:
    """Returns the routine settings and bodies rewritten to follow the schema."""
    exts = checked.exts
    scratch = scratch_name(mapping)
    create_private_database(target, scratch, owner=hands.user)
    try:
        with connect(settings.target, dbname=scratch) as conn:
            prepare_scratch(conn, mapping, exts, hands.user)
        pgtools.restore_listed(source_dump, pgtools.toc_lines(source_dump, mapping.db, {mapping.schema}), hands,
                               dbname=scratch, listing=out_dump.with_suffix(".source.list"), what="into scratch")
        with connect(settings.target, dbname=scratch) as conn, conn.transaction():
            for ext in exts:  # extensions belong to the superuser: it moves them
                if ext.schema != "extensions" and ext.relocatable:
                    conn.execute(sql.SQL("ALTER EXTENSION {} SET SCHEMA extensions").format(sql.Identifier(ext.name)))
        with connect(hands, dbname=scratch) as conn, conn.transaction():
            relocate(conn, mapping, checked.routes)
            settings_rewritten = routines.apply(conn, mapping, routines.extension_in_schema(exts, mapping))
            # Bodies as planned on the source (check), replaced by their rewrite (migrator/engine/bodies.py).
            bodies_rewritten = bodies.apply(conn, checked.body_plans, list(mapping.target_schemas))
        pgtools.run("pg_dump", ["-Fc", "--schema-only", "--no-owner", "--no-acl", "-f", str(out_dump),
                                *[f"--schema={s}" for s in mapping.target_schemas]],
                    hands, dbname=scratch, what="of the remapped scratch database")
        return Rewritten(settings_rewritten, bodies_rewritten,
                         [p.routine for p in checked.body_plans if p.unchecked])
    finally:
        target.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def prepare_scratch(conn: psycopg.Connection, mapping: SourceMapping, exts, role: str) -> None:
    """As the superuser: the source's schema (owned by the loader) and its extensions,
    where the dump expects them."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
        sql.Identifier(mapping.schema), sql.Identifier(role)))
    conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(mapping.schema), sql.Identifier(role)))
    for ext in exts:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ext.schema)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(ext.schema), sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}").format(
            sql.Identifier(ext.name), sql.Identifier(ext.schema)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(sql.Identifier(role)))


def relocate(conn: psycopg.Connection, mapping: SourceMapping, routes: dict[str, str]) -> None:
    """In the scratch database, as the loader: schema -> target schemas (extensions moved already)."""
    if mapping.schema != mapping.target_schema:   # online staging keeps the source's name
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            sql.Identifier(mapping.schema), sql.Identifier(mapping.target_schema)))
    for schema in mapping.target_schemas[1:]:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for table, schema in routes.items():
        if schema != mapping.target_schema:
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(mapping.target_schema, table), sql.Identifier(schema)))
    move_followers(conn, mapping)


FOLLOWERS_SQL = """
-- Types and free-standing sequences of the default schema, with the set of
-- schemas of the tables that use them (column types, and column defaults).
WITH objs AS (
  SELECT t.oid, 'pg_type'::regclass AS cls, 'TYPE' AS kind, t.typname AS name
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = %(schema)s AND (t.typtype IN ('e', 'd')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  UNION ALL
  SELECT c.oid, 'pg_class'::regclass, 'SEQUENCE', c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = %(schema)s AND c.relkind = 'S'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i'))
), users AS (
  SELECT o.kind, o.name, tn.nspname
  FROM objs o
  JOIN pg_depend d ON d.refclassid = o.cls AND d.refobjid = o.oid
  LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
  JOIN pg_class tc ON tc.oid = CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid ELSE ad.adrelid END
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  WHERE tc.relkind IN ('r', 'p')
)
SELECT kind, name, array_agg(DISTINCT nspname) FROM users GROUP BY kind, name
"""


def move_followers(conn: psycopg.Connection, mapping: SourceMapping) -> None:
    """A type or sequence used only by tables routed to one other schema moves there too."""
    for kind, name, schemas in conn.execute(FOLLOWERS_SQL, {"schema": mapping.target_schema}).fetchall():
        if len(schemas) == 1 and schemas[0] != mapping.target_schema:
            conn.execute(sql.SQL("ALTER {} {} SET SCHEMA {}").format(
                sql.SQL(kind), sql.Identifier(mapping.target_schema, name), sql.Identifier(schemas[0])))


def install_extensions(target: psycopg.Connection, exts) -> None:
    target.execute("CREATE SCHEMA IF NOT EXISTS extensions")
    for ext in exts:
        target.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA extensions").format(
            sql.Identifier(ext.name)))


def restore_pre_data(settings: Settings, mapping: SourceMapping, target: psycopg.Connection,
                     hands: DatabaseSettings, dump: Path) -> None:
    for schema in mapping.target_schemas:
        journal.record_created_schema(target, schema, mapping.name)
        target.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(schema), sql.Identifier(hands.user)))
    loader.own_schemas(target, mapping, list(mapping.target_schemas))   # one `consolidate roles` made already
    pgtools.restore_listed(dump, pgtools.toc_lines(dump, settings.target, set(mapping.target_schemas)), hands,
                           dbname=settings.target.dbname, options=("--single-transaction", "--section=pre-data"),
                           listing=dump.with_suffix(".pre-data.list"), what="pre-data into the target")
