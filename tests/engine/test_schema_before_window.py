"""The schema step done before the window, checked once the writers stopped.

The cutover restores the definitions while the apps still run (`migrate` with only its
schema step, what `consolidate schema` does) and, after the writers stopped, compares
each source's schema fingerprint (migrator/engine/schemafp.py) with the one the schema step
recorded: unchanged, the step is skipped; changed (an app migrated its schema on the
way down), the step is redone inside the window, and the rows still verify.
"""

from __future__ import annotations

import pytest

from migrator.engine import journal, schemafp
from tests.support import assert_ok, run_migrator, write_stack_config

pytestmark = pytest.mark.integration

ONE_SOURCE = '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n'


@pytest.fixture
def target(target_db):
    """Each test's target: a database of its own on the session's unified server (conftest)."""
    return target_db


@pytest.fixture
def source(source_db):
    """A database of its own on the session's PostgreSQL 15 source server (conftest)."""
    with source_db.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
                     "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 300) i;"
                     "CREATE VIEW named AS SELECT id, name FROM items WHERE name IS NOT NULL")
    return source_db


def recorded(target) -> str:
    with target.connect() as conn:
        return journal.step_detail(conn, "n8n", "schema")["source_fingerprint"]


def test_unchanged_schema_is_not_redone(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    assert_ok(run_migrator(config, "schema"))
    with source.connect() as conn:
        assert recorded(target) == schemafp.schema_fingerprint(conn, "public")
        conn.execute("INSERT INTO items VALUES (301, 'written after the schema step')")   # rows, not DDL
    migrated = run_migrator(config, "migrate")
    assert_ok(migrated)
    assert "schema already done on a previous run, skipping" in migrated.stdout
    assert "redoing the schema step" not in migrated.stdout
    assert_ok(run_migrator(config, "verify"))
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM n8n.items").fetchone()[0] == 301


def test_changed_schema_is_redone_and_the_rows_still_verify(tmp_path, source, target):
    config = write_stack_config(tmp_path, target, {"n8n": source}, ONE_SOURCE)
    assert_ok(run_migrator(config, "schema"))
    before = recorded(target)
    with source.connect() as conn:     # what an app's own migration does on its way down
        conn.execute("ALTER TABLE items ADD COLUMN tag text NOT NULL DEFAULT 'new';"
                     "UPDATE items SET tag = 'tag ' || id WHERE id % 3 = 0")
    migrated = run_migrator(config, "migrate")
    assert_ok(migrated)
    assert "n8n: the source's schema changed since its definitions were restored; redoing the schema step" \
        in " ".join(migrated.stdout.split())
    assert recorded(target) != before
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FILTER (WHERE tag LIKE 'tag %'), count(*) FROM n8n.items"
                            ).fetchone() == (100, 300)
        assert conn.execute("SELECT count(*) FROM _consolidation.events WHERE step = 'schema'"
                            " AND message LIKE 'source schema changed%'").fetchone()[0] == 1
    assert_ok(run_migrator(config, "verify"))      # every row compared, the new column included


@pytest.mark.parametrize("ddl", [
    "CREATE OR REPLACE VIEW named AS SELECT id, name FROM items WHERE id > 10",   # same columns, other query
    "CREATE POLICY only_some ON items USING (id > 5)",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
])
def test_fingerprint_sees_definitions_the_schema_step_moves(source, ddl):
    with source.connect() as conn:
        before = schemafp.schema_fingerprint(conn, "public")
        assert schemafp.schema_fingerprint(conn, "public") == before     # stable
        conn.execute(ddl)
        assert schemafp.schema_fingerprint(conn, "public") != before
