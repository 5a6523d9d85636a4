"""The migrator's journal in schema ``_consolidation`` on the target.

Every step of every source, and every unit of copied data (a table or a range of
it), is recorded here. A unit's row is written in the same transaction as its
data, so after a crash a unit is either fully there and recorded, or absent; a
rerun skips what is recorded and redoes the rest. Schemas this tool created are
recorded too: only those may be dropped on a redo or a rollback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from migrator import console
from migrator.config.mapping import SourceMapping, load_mappings
from migrator.engine import loader, queries, runlock
from migrator.engine.db import connect, require_superuser
from migrator.engine.loader import PREFIX as LOADER_PREFIX
from migrator.errors import ConfigError

LOADER_PATTERN = LOADER_PREFIX.replace("_", "\\_") + "%"

SCHEMA = "_consolidation"
LOCK_KEY = runlock.KEY  # one writer at a time per target instance

DDL = queries.sections(__file__)["ddl"]          # journal.sql
assert SCHEMA in DDL and LOADER_PREFIX in DDL and LOADER_PATTERN in DDL   # the names the code uses


def ensure(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(DDL)


def acquire_lock(conn: psycopg.Connection, command: str = "migrate") -> None:
    """Hold the target's lock exclusively for the whole run (migrator/engine/runlock.py; the CLI
    has usually taken it already): any other migrator command is refused (MigratorBusy,
    exit 7, naming it). Holding it, every loader session still open belongs to a dead
    run (kill -9 leaves COPY sessions holding their tables' locks until the server
    notices): they are ended, so this run never waits behind them."""
    runlock.require(conn, command)
    ended = end_leftover_sessions(conn)
    if ended:
        console.say(f"  ended {ended} session(s) left open by an earlier, interrupted run")


LEFTOVERS_SQL = queries.sections(__file__)["leftover_sessions"]   # journal.sql


def end_leftover_sessions(conn: psycopg.Connection) -> int:
    return conn.execute(LEFTOVERS_SQL, (LOADER_PATTERN,)).fetchone()[0]


@contextmanager
def locked_target(settings, command: str) -> Iterator[psycopg.Connection]:
    """The target, with the journal in place and this run's advisory lock held."""
    with connect(settings.target) as conn:
        require_superuser(conn, settings.target)
        acquire_lock(conn, command)
        ensure(conn)
        yield conn


@contextmanager
def loading(settings, step: str) -> Iterator[tuple[psycopg.Connection, list]]:
    """For one engine step run on its own (`schema`, `copy`, `post-data`): the locked target,
    the mappings, and each source whose ``step`` is not done handed to its loader role,
    whose logins end with the command."""
    with locked_target(settings, step) as target:
        mappings = load_mappings(settings)
        refuse_changed_plans(target, settings, mappings)
        record_plans(target, mappings)
        with loader.logins(target, settings, mappings):
            for mapping in mappings:
                if not step_done(target, mapping.name, step):
                    loader.take_over(target, settings, mapping)
            yield target, mappings


def step_done(conn: psycopg.Connection, source: str, step: str) -> bool:
    row = conn.execute(f"SELECT status FROM {SCHEMA}.steps WHERE source = %s AND step = %s",
                       (source, step)).fetchone()
    return bool(row and row[0] == "done")


def step_started(conn: psycopg.Connection, source: str, step: str) -> bool:
    """True when an earlier attempt began this step and did not finish it."""
    row = conn.execute(f"SELECT status FROM {SCHEMA}.steps WHERE source = %s AND step = %s",
                       (source, step)).fetchone()
    return bool(row and row[0] == "running")


def step_detail(conn: psycopg.Connection, source: str, step: str) -> dict | None:
    """What a finished step recorded about itself (None: not finished)."""
    row = conn.execute(f"SELECT detail FROM {SCHEMA}.steps WHERE source = %s AND step = %s AND status = 'done'",
                       (source, step)).fetchone()
    return None if row is None else (json.loads(row[0]) if isinstance(row[0], str) else row[0])


def start_step(conn: psycopg.Connection, source: str, step: str) -> None:
    conn.execute(
        f"INSERT INTO {SCHEMA}.steps (source, step, status) VALUES (%s, %s, 'running')"
        " ON CONFLICT (source, step) DO UPDATE SET status = 'running', started_at = now(),"
        " finished_at = NULL, detail = NULL", (source, step))


def finish_step(conn: psycopg.Connection, source: str, step: str, detail: dict | None = None) -> None:
    conn.execute(f"UPDATE {SCHEMA}.steps SET status = 'done', finished_at = now(), detail = %s"
                 " WHERE source = %s AND step = %s", (json.dumps(detail or {}), source, step))


def done_units(conn: psycopg.Connection, source: str) -> dict[tuple[str, str, int], tuple[int, int]]:
    rows = conn.execute(f"SELECT schema_name, table_name, chunk, rows, bytes FROM {SCHEMA}.units"
                        " WHERE source = %s", (source,)).fetchall()
    return {(s, t, c): (r, b) for s, t, c, r, b in rows}


def record_unit(conn: psycopg.Connection, source: str, schema: str, table: str, chunk: int,
                rows: int, nbytes: int, seconds: float) -> None:
    conn.execute(f"INSERT INTO {SCHEMA}.units (source, schema_name, table_name, chunk, rows, bytes, seconds)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s)", (source, schema, table, chunk, rows, nbytes, seconds))


def finished_tables(conn: psycopg.Connection, source: str) -> dict[tuple[str, str], list[int]]:
    """Tables whose indexes/keys were built (and ANALYZEd) as soon as their rows were in."""
    rows = conn.execute(f"SELECT schema_name, table_name, toc_ids FROM {SCHEMA}.finished_tables"
                        " WHERE source = %s", (source,)).fetchall()
    return {(s, t): list(ids) for s, t, ids in rows}


def record_finished_table(conn: psycopg.Connection, source: str, schema: str, table: str,
                          toc_ids: list[int], seconds: float) -> None:
    conn.execute(f"INSERT INTO {SCHEMA}.finished_tables (source, schema_name, table_name, toc_ids, seconds)"
                 " VALUES (%s, %s, %s, %s, %s)", (source, schema, table, toc_ids, seconds))


def forget_rows(conn: psycopg.Connection, source: str) -> None:
    """Forget which rows (and per-table indexes) are in: the schemas are rebuilt or out of date."""
    ensure(conn)    # a journal from an older version gains the tables named below
    for table in ("units", "finished_tables", "copy_plans"):
        conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE source = %s", (source,))


def copy_split_mb(conn: psycopg.Connection, source: str, wanted: int) -> int:
    """The split size this source's copy uses: the journaled one once a copy has begun
    (units are keyed by chunk number, so another size would skip or repeat rows)."""
    conn.execute(f"INSERT INTO {SCHEMA}.copy_plans (source, split_mb) VALUES (%s, %s)"
                 " ON CONFLICT (source) DO NOTHING", (source, wanted))
    return conn.execute(f"SELECT split_mb FROM {SCHEMA}.copy_plans WHERE source = %s", (source,)).fetchone()[0]


def record_created_schema(conn: psycopg.Connection, schema: str, source: str) -> None:
    conn.execute(f"INSERT INTO {SCHEMA}.created_schemas (schema_name, source) VALUES (%s, %s)"
                 " ON CONFLICT (schema_name) DO NOTHING", (schema, source))


def exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.created_schemas",)).fetchone()[0]


def created_schemas(conn: psycopg.Connection, source: str | None = None) -> list[str]:
    if not exists(conn):
        return []
    if source is None:
        rows = conn.execute(f"SELECT schema_name FROM {SCHEMA}.created_schemas ORDER BY 1").fetchall()
    else:
        rows = conn.execute(f"SELECT schema_name FROM {SCHEMA}.created_schemas WHERE source = %s ORDER BY 1",
                            (source,)).fetchall()
    return [r[0] for r in rows]


def drop_created_schemas(conn: psycopg.Connection, source: str) -> list[str]:
    """Drop the schemas this tool created for ``source`` (never any other); returns their names."""
    dropped = created_schemas(conn, source)
    for schema in dropped:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return dropped


def forget_source(conn: psycopg.Connection, source: str) -> None:
    """Clear a source's progress (used when its schemas are rebuilt from scratch)."""
    forget_rows(conn, source)
    for table in ("steps", "created_schemas", "plans"):
        conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE source = %s", (source,))


def note(conn: psycopg.Connection, source: str | None, step: str | None, message: str) -> None:
    conn.execute(f"INSERT INTO {SCHEMA}.events (source, step, message) VALUES (%s, %s, %s)",
                 (source, step, message))


# --- the plan: what a source's migration was made from ---------------------------

def plan_of(mapping: SourceMapping) -> dict:
    """What decides where a source's objects land. Not its host or port: a server that
    moved (a new container, a new published port) still holds the same database."""
    return {"database": mapping.db.dbname, "schema": mapping.schema, "target_schema": mapping.target_schema,
            "rules": [f"{r.when} -> {r.target_schema}" for r in mapping.rules]}


def recorded_plan(conn: psycopg.Connection, source: str) -> dict | None:
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.plans",)).fetchone()[0]:
        return None     # a journal from an older version: nothing recorded yet
    row = conn.execute(f"SELECT mapping FROM {SCHEMA}.plans WHERE source = %s", (source,)).fetchone()
    return row[0] if row else None


def plan_changes(old: dict, new: dict) -> list[str]:
    """``["target_schema n8n -> n8n_v2", ...]``: each key whose value differs."""
    def shown(value) -> str:
        return "[" + "; ".join(value) + "]" if isinstance(value, list) else str(value)
    return [f"{key} {shown(old.get(key))} -> {shown(new.get(key))}" for key in new if old.get(key) != new.get(key)]


def refuse_changed_plans(conn: psycopg.Connection, settings, mappings: list[SourceMapping]) -> None:
    """A source whose schema step is done was migrated under its recorded mapping: another
    mapping now would skip that work and leave the target on the old one.

    :raises ConfigError: (exit 2) naming the source and what changed, before any write."""
    if not exists(conn):
        return
    for mapping in mappings:
        old = recorded_plan(conn, mapping.name)
        if old is None or not step_done(conn, mapping.name, "schema"):
            continue        # nothing built yet under a recorded mapping: the new one is used
        changes = plan_changes(old, plan_of(mapping))
        if changes:
            raise ConfigError(f"{settings.config_file}: [sources.{mapping.name}] changed since it was migrated "
                              f"({', '.join(changes)}); the target holds what the old mapping made: run "
                              "`consolidate migrate --from-scratch` to rebuild it, or put the old mapping back")


def record_plans(conn: psycopg.Connection, mappings: list[SourceMapping], options: dict | None = None) -> None:
    """Record each source's mapping (after refuse_changed_plans passed, so it is the same or
    nothing was built under the old one) and this run's options."""
    for mapping in mappings:
        conn.execute(f"INSERT INTO {SCHEMA}.plans (source, mapping, options) VALUES (%s, %s, %s)"
                     " ON CONFLICT (source) DO UPDATE SET mapping = EXCLUDED.mapping, options = EXCLUDED.options,"
                     " recorded_at = now()",
                     (mapping.name, json.dumps(plan_of(mapping)), json.dumps(options or {})))
