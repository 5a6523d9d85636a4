"""PostgreSQL logical replication for the online mode (docs/online.md): what the
sources must allow, the publication and slot on each source, the subscription on the
target, and how far behind it is.

Names are fixed per source (``consolidation_<source>`` for the publication, the
subscription and its slot), so an abort finds everything again even after a crash.

Every session here has search_path pinned to pg_catalog (migrator.engine.db.connect) and
qualifies its calls; superuser sessions on the target read catalogs only.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rich.table import Table

from migrator.config.mapping import SourceMapping
from migrator.config.settings import read_env_file
from migrator.engine import journal, schemafp
from migrator.engine.db import connect
from migrator.errors import DatabaseError
from migrator.redact import register_secret

PREFIX = "consolidation_"
# Table sync workers per subscription (PostgreSQL's default of
# max_sync_workers_per_subscription): each holds a slot and a wal sender on the source
# while it copies.
SYNC_WORKERS = 2
API_ROLES = ("anon", "authenticated", "service_role")


def name_of(mapping: SourceMapping) -> str:
    """Publication, subscription and slot name of one source."""
    return PREFIX + mapping.name


# --- the sources -------------------------------------------------------------------------

def setting(conn: psycopg.Connection, name: str) -> str:
    return conn.execute("SELECT pg_catalog.current_setting(%s)", (name,)).fetchone()[0]


def check_source_settings(conn: psycopg.Connection, mapping: SourceMapping) -> None:
    """wal_level, the slot WAL cap, free slots and wal senders (refused before any write)."""
    if setting(conn, "wal_level") != "logical":
        raise DatabaseError(mapping.name, "source", "wal_level is not 'logical'; set it and restart the source "
                            "(postgres -c wal_level=logical, or ALTER SYSTEM SET wal_level = logical), planned "
                            "ahead of the online phase (docs/online.md)")
    if setting(conn, "max_slot_wal_keep_size") in ("-1", "-1MB"):
        raise DatabaseError(mapping.name, "source", "max_slot_wal_keep_size is unlimited (-1): a stalled "
                            "subscription could fill the source's disk with WAL; set it (e.g. "
                            "ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'; SELECT pg_reload_conf())")
    needed = 1 + SYNC_WORKERS
    free_slots = conn.execute(
        "SELECT pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4"
        " OPERATOR(pg_catalog.-) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots)::pg_catalog.int4"
    ).fetchone()[0]
    free_senders = conn.execute(
        "SELECT pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4"
        " OPERATOR(pg_catalog.-) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication)::pg_catalog.int4"
    ).fetchone()[0]
    for what, free, setting_name in (("replication slots", free_slots, "max_replication_slots"),
                                     ("wal senders", free_senders, "max_wal_senders")):
        if free < needed:
            raise DatabaseError(mapping.name, "source", f"only {free} free {what}, the online copy needs "
                                f"{needed}; raise {setting_name} (a restart)")


# Tables whose UPDATE/DELETE would fail once published: no key and no REPLICA IDENTITY
# FULL (or identity NOTHING). Partitioned parents carry no rows: their partitions count.
UNKEYED_SQL = """
SELECT pg_catalog.quote_ident(c.relname::pg_catalog.text) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relkind OPERATOR(pg_catalog.=) 'r'
  AND (c.relreplident OPERATOR(pg_catalog.=) 'n'
       OR (c.relreplident OPERATOR(pg_catalog.=) 'd' AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary)))
ORDER BY 1
"""
UNLOGGED_SQL = """
SELECT pg_catalog.quote_ident(c.relname::pg_catalog.text) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relkind OPERATOR(pg_catalog.=) 'r'
  AND c.relpersistence OPERATOR(pg_catalog.<>) 'p' ORDER BY 1
"""
# Object kinds the cutover's move does not handle (it moves relations, types, routines
# and statistics): refused up front rather than left behind in the staging schema.
UNMOVABLE_SQL = """
SELECT o.kind FROM (
  SELECT 'operator' AS kind, oprnamespace AS nsp, 'pg_catalog.pg_operator'::pg_catalog.regclass AS cls, oid
    FROM pg_catalog.pg_operator
  UNION ALL SELECT 'collation', collnamespace, 'pg_catalog.pg_collation'::pg_catalog.regclass, oid FROM pg_catalog.pg_collation
  UNION ALL SELECT 'text search configuration', cfgnamespace, 'pg_catalog.pg_ts_config'::pg_catalog.regclass, oid
    FROM pg_catalog.pg_ts_config
  UNION ALL SELECT 'text search dictionary', dictnamespace, 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, oid
    FROM pg_catalog.pg_ts_dict
  UNION ALL SELECT 'operator class', opcnamespace, 'pg_catalog.pg_opclass'::pg_catalog.regclass, oid FROM pg_catalog.pg_opclass
  UNION ALL SELECT 'conversion', connamespace, 'pg_catalog.pg_conversion'::pg_catalog.regclass, oid FROM pg_catalog.pg_conversion
) o WHERE o.nsp OPERATOR(pg_catalog.=) %s::pg_catalog.regnamespace
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) o.cls
                  AND d.objid OPERATOR(pg_catalog.=) o.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
GROUP BY o.kind ORDER BY o.kind
"""


def check_source_tables(conn: psycopg.Connection, mapping: SourceMapping) -> None:
    """Every published table can replicate its UPDATEs and DELETEs, and the move handles
    every object of the schema."""
    unkeyed = [r[0] for r in conn.execute(UNKEYED_SQL, (mapping.schema,)).fetchall()]
    if unkeyed:
        raise DatabaseError(mapping.name, "source", f"table(s) {', '.join(unkeyed)} have no primary key and no "
                            "REPLICA IDENTITY FULL: once published, their UPDATE/DELETE would fail on the source; "
                            "add a key or ALTER TABLE ... REPLICA IDENTITY FULL, then start again")
    unlogged = [r[0] for r in conn.execute(UNLOGGED_SQL, (mapping.schema,)).fetchall()]
    if unlogged:
        raise DatabaseError(mapping.name, "source", f"unlogged table(s) {', '.join(unlogged)} cannot be replicated "
                            "(their rows are not in the WAL); ALTER TABLE ... SET LOGGED, or use the offline cutover")
    kinds = [r[0] for r in conn.execute(UNMOVABLE_SQL, (mapping.schema,)).fetchall()]
    if kinds:
        raise DatabaseError(mapping.name, "source", f"schema '{mapping.schema}' holds {', '.join(kinds)} objects, "
                            "which the online mode does not move; use the offline cutover")


def published_tables(conn: psycopg.Connection, mapping: SourceMapping) -> list[str]:
    """Every table holding rows (partitions and inheritance children each on their own)."""
    return [r[0] for r in conn.execute(
        "SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
        " WHERE n.nspname OPERATOR(pg_catalog.=) %s AND c.relkind OPERATOR(pg_catalog.=) 'r' ORDER BY 1",
        (mapping.schema,)).fetchall()]


def leftovers_on_source(conn: psycopg.Connection, mapping: SourceMapping) -> list[str]:
    """Our publication or slot, if they exist on this source (a start refuses them: an
    earlier online run was neither cut over nor aborted)."""
    name = name_of(mapping)
    found = []
    if conn.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_publication"
                    " WHERE pubname OPERATOR(pg_catalog.=) %s)", (name,)).fetchone()[0]:
        found.append(f"publication {name}")
    if conn.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_replication_slots"
                    " WHERE slot_name OPERATOR(pg_catalog.=) %s)", (name,)).fetchone()[0]:
        found.append(f"replication slot {name}")
    return found


def sync_slot_pattern(suboid: int) -> str:
    """Table sync slots are named pg_<subscription oid>_sync_<relid>_<system id>."""
    return rf"^pg_{suboid}_sync_[0-9]+_[0-9]+$"


# The schema fingerprint online mode compares at its cutover lives in migrator/engine/schemafp.py
# (the offline cutover uses it too); the name here keeps online.py's call sites.
schema_fingerprint = schemafp.schema_fingerprint


def create_publication(conn: psycopg.Connection, mapping: SourceMapping, tables: list[str]) -> None:
    """As the source's own user (its server's owner): the one change online mode makes to a
    source, removed again by the cutover or an abort."""
    conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
        sql.Identifier(name_of(mapping)),
        sql.SQL(", ").join(sql.SQL("ONLY {}").format(sql.Identifier(mapping.schema, t)) for t in tables)))


def drop_on_source(conn: psycopg.Connection, mapping: SourceMapping, suboid: int | None) -> list[str]:
    """Our publication and slots (the subscription's and its table sync slots), if still
    there; returns what was dropped. A slot still in use is refused (a subscription
    elsewhere is streaming from it)."""
    name = name_of(mapping)
    dropped = []
    if conn.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) %s)",
                    (name,)).fetchone()[0]:
        conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))
        dropped.append(f"publication {name}")
    pattern = sync_slot_pattern(suboid) if suboid else "^$"
    for slot, active in conn.execute(
            "SELECT slot_name::pg_catalog.text, active FROM pg_catalog.pg_replication_slots"
            " WHERE slot_name OPERATOR(pg_catalog.=) %s OR slot_name::pg_catalog.text OPERATOR(pg_catalog.~) %s",
            (name, pattern)).fetchall():
        if active:
            raise DatabaseError(mapping.name, "source", f"replication slot {slot} is still in use; "
                                "run `consolidate online abort` again once its subscriber has stopped")
        conn.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot,))
        dropped.append(f"replication slot {slot}")
    return dropped


def current_lsn(conn: psycopg.Connection) -> str:
    return str(conn.execute("SELECT pg_catalog.pg_current_wal_lsn()").fetchone()[0])


def slot_lag(conn: psycopg.Connection, mapping: SourceMapping) -> tuple[int | None, float | None]:
    """(bytes the subscriber has not confirmed, seconds of replay lag) of our slot."""
    row = conn.execute(
        "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::pg_catalog.int8,"
        " (SELECT pg_catalog.date_part('epoch', r.replay_lag) FROM pg_catalog.pg_stat_replication r"
        "  WHERE r.pid OPERATOR(pg_catalog.=) s.active_pid)"
        " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name OPERATOR(pg_catalog.=) %s",
        (name_of(mapping),)).fetchone()
    if row is None:
        return None, None
    return (None if row[0] is None else int(row[0])), (None if row[1] is None else float(row[1]))


def confirmed(conn: psycopg.Connection, mapping: SourceMapping, lsn: str) -> bool:
    """Has the subscriber confirmed (applied and flushed) everything up to ``lsn``?"""
    return bool(conn.execute(
        "SELECT coalesce(s.confirmed_flush_lsn OPERATOR(pg_catalog.>=) %s::pg_catalog.pg_lsn, false)"
        " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name OPERATOR(pg_catalog.=) %s",
        (lsn, name_of(mapping))).fetchone()[0])


# --- the target --------------------------------------------------------------------------

def source_conninfo(mapping: SourceMapping) -> str:
    """How the target reaches the source: the source's own address, or REPLICATION_HOST /
    REPLICATION_PORT from its env file when the target sees it elsewhere (tests: the docker
    host's gateway). Holds the password: never printed (registered as a secret)."""
    extra = read_env_file(mapping.db.env_file) if mapping.db.env_file else {}
    register_secret(mapping.db.password)
    return make_conninfo(host=extra.get("REPLICATION_HOST") or mapping.db.host,
                         port=str(extra.get("REPLICATION_PORT") or mapping.db.port), dbname=mapping.db.dbname,
                         user=mapping.db.user, password=mapping.db.password,
                         application_name=name_of(mapping))


def check_target_capacity(conn: psycopg.Connection, count: int) -> None:
    """Free logical replication workers (an apply worker per subscription, and at least one
    table sync worker: more copy tables in parallel, they come from the same pool) and
    replication origins (max_replication_slots on a subscriber)."""
    used = conn.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_subscription"
                        " WHERE pid IS NOT NULL").fetchone()[0]
    workers = int(setting(conn, "max_logical_replication_workers"))
    if workers - used < count + 1:
        raise DatabaseError("unified", "target", f"only {workers - used} free logical replication workers, the "
                            f"online copy needs {count + 1}; raise max_logical_replication_workers"
                            " (and max_worker_processes; a restart)")
    origins = conn.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_origin").fetchone()[0]
    slots = int(setting(conn, "max_replication_slots"))
    if slots - origins < count:
        raise DatabaseError("unified", "target", f"max_replication_slots ({slots}) leaves no replication origin "
                            "for the subscriptions; raise it (a restart)")


def subscription(conn: psycopg.Connection, mapping: SourceMapping) -> tuple[int, bool] | None:
    """(oid, enabled) of our subscription in the target database, or None."""
    row = conn.execute("SELECT oid::pg_catalog.int8, subenabled FROM pg_catalog.pg_subscription"
                       " WHERE subname OPERATOR(pg_catalog.=) %s AND subdbid OPERATOR(pg_catalog.=)"
                       " (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=)"
                       " pg_catalog.current_database())", (name_of(mapping),)).fetchone()
    return (int(row[0]), bool(row[1])) if row else None


def create_subscription(loader_conn: psycopg.Connection, mapping: SourceMapping) -> None:
    """As the loader (the subscription's owner): the apply and table sync workers run as
    each table's owner (run_as_owner = false), that is as the loader, never a superuser.
    disable_on_error: a failing apply stops and shows in `online status` instead of looping.
    Created disabled (the slot is made all the same): it is enabled once the loader's client
    logins are closed, so its workers are seen starting under that (migrator/steps/online.py)."""
    name = sql.Identifier(name_of(mapping))
    loader_conn.execute(sql.SQL(
        "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (enabled = false, copy_data = true, create_slot = true,"
        " slot_name = {}, run_as_owner = false, password_required = true, disable_on_error = true,"
        " origin = none)").format(name, sql.Literal(source_conninfo(mapping)), name,
                                  sql.Literal(name_of(mapping))))


SYNC_STATES = {"i": "initializing", "d": "copying", "f": "copied", "s": "synchronized", "r": "ready"}


def table_states(conn: psycopg.Connection, mapping: SourceMapping) -> dict[str, str]:
    """Per staged table, its sync state (SYNC_STATES)."""
    return {r[0]: SYNC_STATES.get(r[1], r[1]) for r in conn.execute(
        "SELECT c.relname::pg_catalog.text, sr.srsubstate::pg_catalog.text FROM pg_catalog.pg_subscription_rel sr"
        " JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) sr.srsubid"
        " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) sr.srrelid"
        " WHERE s.subname OPERATOR(pg_catalog.=) %s ORDER BY 1", (name_of(mapping),)).fetchall()}


def apply_errors(conn: psycopg.Connection, mapping: SourceMapping) -> tuple[int, int]:
    """(apply errors, table sync errors) counted since the subscription was created."""
    row = conn.execute("SELECT apply_error_count, sync_error_count FROM pg_catalog.pg_stat_subscription_stats"
                       " WHERE subname OPERATOR(pg_catalog.=) %s", (name_of(mapping),)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def set_enabled(conn: psycopg.Connection, mapping: SourceMapping, enabled: bool) -> None:
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} {}").format(
        sql.Identifier(name_of(mapping)), sql.SQL("ENABLE" if enabled else "DISABLE")))


def apply_running(conn: psycopg.Connection, mapping: SourceMapping) -> bool:
    return conn.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_subscription"
                        " WHERE subname OPERATOR(pg_catalog.=) %s AND pid IS NOT NULL)",
                        (name_of(mapping),)).fetchone()[0]


def drop_subscription(conn: psycopg.Connection, mapping: SourceMapping, keep_slot: bool = False) -> None:
    """DROP SUBSCRIPTION connects to the source and drops its slot there too; with
    ``keep_slot`` (the source is unreachable) the slot is detached first and the caller
    drops it on the source later."""
    name = sql.Identifier(name_of(mapping))
    if keep_slot:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name))
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name))
    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(name))


# --- the online run's state on the target (written by migrator/steps/online.py) -------------

STATE = f"{journal.SCHEMA}.online"


def state(admin: psycopg.Connection, mapping: SourceMapping) -> dict | None:
    if not admin.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (STATE,)).fetchone()[0]:
        return None
    row = admin.execute(f"SELECT phase, created_staging, fingerprint, suboid FROM {STATE} WHERE source = %s",
                        (mapping.name,)).fetchone()
    return dict(zip(("phase", "created_staging", "fingerprint", "suboid"), row)) if row else None


def source_status(admin: psycopg.Connection, mapping: SourceMapping) -> dict:
    found = state(admin, mapping)
    row = {"source": mapping.name, "phase": found["phase"] if found else "-", "tables": {}, "lag_bytes": None,
           "lag_seconds": None, "errors": [0, 0], "enabled": None}
    if not found or found["phase"] not in ("starting", "copying"):
        return row
    states = table_states(admin, mapping)
    row["tables"] = {s: sum(1 for v in states.values() if v == s) for s in sorted(set(states.values()))}
    row["ready"] = bool(states) and all(v == "ready" for v in states.values())
    sub = subscription(admin, mapping)
    row["enabled"] = sub[1] if sub else None
    row["errors"] = list(apply_errors(admin, mapping))
    try:
        with connect(mapping.db, wait_seconds=5) as source:
            row["lag_bytes"], row["lag_seconds"] = slot_lag(source, mapping)
    except DatabaseError:
        pass   # an unreachable source shows as unknown lag
    return row


def render_status(rows: list[dict]) -> Table:
    table = Table(title="Online consolidation")
    for col in ("source", "phase", "tables", "lag (bytes)", "lag (s)", "subscription"):
        table.add_column(col)
    for r in rows:
        tables = ", ".join(f"{n} {s}" for s, n in r["tables"].items()) or "-"
        sub = "-" if r["enabled"] is None else ("enabled" if r["enabled"] else "DISABLED")
        if r["errors"] != [0, 0]:
            sub += f" ({r['errors'][0]} apply / {r['errors'][1]} sync errors)"
        table.add_row(r["source"], r["phase"], tables, "-" if r["lag_bytes"] is None else str(r["lag_bytes"]),
                      "-" if r["lag_seconds"] is None else f"{r['lag_seconds']:.1f}", sub)
    return table
