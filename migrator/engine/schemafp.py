"""A source schema's fingerprint: one hash of its definitions, read from the catalog.

Two users, one home: the online mode takes it when replication starts and refuses a
cutover after DDL (migrator/steps/online.py, through ``replication.schema_fingerprint``);
the schema step records it with the definitions it restored, so the cutover can restore
them before the writers stop and check, once they have, that they are still the
source's (migrator/steps/schema.py). Catalog only (schemafp.sql): cheap enough to run
inside the maintenance window, and it runs no app code.
"""

from __future__ import annotations

import hashlib

import psycopg

from migrator.engine import queries

FINGERPRINT_SQL = queries.text(__file__)


def schema_fingerprint(conn: psycopg.Connection, schema: str) -> str:
    """sha256 of the schema's definitions, independent of catalog order and OIDs, and of
    the caller's search_path (the deparsed names depend on it: pinned here)."""
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
        lines = sorted(r[0] for r in conn.execute(FINGERPRINT_SQL, {"nsp": schema}).fetchall())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
