"""hand_over_schema on a real Supabase stand-in: after a restore as
supabase_admin, every object in an app schema belongs to the app role.

The check is independent of the implementation: it finds, from the system
catalogs themselves, every catalog that has both a namespace and an owner
column, so an object kind the implementation forgot cannot pass."""

import psycopg
import pytest

from migrator.engine.ownership import hand_over_schema
from migrator.errors import ConsolidationError
from tests.support.rolestack import READONLY, allowed, fresh_stack

pytestmark = pytest.mark.integration

# What a schema-only restore as supabase_admin leaves behind, one of each kind.
RESTORED_AS_ADMIN = """
CREATE TYPE n8n.mood AS ENUM ('ok', 'meh');
CREATE TYPE n8n.span AS RANGE (subtype = int4);
CREATE DOMAIN n8n.positive AS int CHECK (VALUE > 0);
CREATE TYPE n8n.pair AS (a int, b text);
CREATE SEQUENCE n8n.standalone_seq;
CREATE TABLE n8n.workflow (id serial PRIMARY KEY, ident bigint GENERATED ALWAYS AS IDENTITY,
                           mood n8n.mood, n n8n.positive, during n8n.span);
CREATE TABLE n8n.events (at date NOT NULL, payload text) PARTITION BY RANGE (at);
CREATE TABLE n8n.events_2026 PARTITION OF n8n.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW n8n.workflow_view AS SELECT id FROM n8n.workflow;
CREATE MATERIALIZED VIEW n8n.workflow_counts AS SELECT count(*) FROM n8n.workflow;
CREATE FUNCTION n8n.bump(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
CREATE PROCEDURE n8n.noop() LANGUAGE sql AS 'SELECT 1';
CREATE AGGREGATE n8n.total(int) (sfunc = int4pl, stype = int);
CREATE FUNCTION n8n.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER touch BEFORE UPDATE ON n8n.workflow FOR EACH ROW EXECUTE FUNCTION n8n.touch();
CREATE COLLATION n8n.c_copy FROM "C";
CREATE CONVERSION n8n.latin1_utf8 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
CREATE OPERATOR n8n.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
CREATE OPERATOR CLASS n8n.int_hash_ops FOR TYPE int4 USING hash AS OPERATOR 1 =, FUNCTION 1 hashint4(int4);
CREATE TEXT SEARCH CONFIGURATION n8n.simple_copy (COPY = pg_catalog.simple);
CREATE TEXT SEARCH DICTIONARY n8n.simple_dict (TEMPLATE = pg_catalog.simple);
CREATE STATISTICS n8n.workflow_stats ON id, ident FROM n8n.workflow;
CREATE EXTENSION hstore SCHEMA n8n;   -- its members belong to the extension, not to the app
INSERT INTO n8n.workflow (mood, n, during) VALUES ('ok', 1, '[1,5)'), ('meh', 2, NULL);
REFRESH MATERIALIZED VIEW n8n.workflow_counts;
"""

OWNED_CATALOGS_SQL = """
SELECT c.relname, ns.attname, ow.attname FROM pg_class c
JOIN pg_attribute ns ON ns.attrelid = c.oid AND ns.attname LIKE '%namespace' AND ns.atttypid = 'oid'::regtype
JOIN pg_attribute ow ON ow.attrelid = c.oid AND ow.attname LIKE '%owner' AND ow.atttypid = 'oid'::regtype
WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
  -- an extension keeps its installer as owner (PostgreSQL has no ALTER EXTENSION ... OWNER TO);
  -- the migrator moves extensions to `extensions` anyway
  AND c.relname <> 'pg_extension'
ORDER BY 1
"""


def foreign_owned_by_catalog(conn, schema: str, role: str) -> dict[str, int]:
    """catalog -> objects in ``schema`` not owned by ``role`` (extension members excepted), plus the schema."""
    counts = {}
    for catalog, ns_col, owner_col in conn.execute(OWNED_CATALOGS_SQL).fetchall():
        counts[catalog] = conn.execute(
            f"SELECT count(*) FROM pg_catalog.{catalog} o WHERE o.{ns_col} = %s::regnamespace"
            f" AND o.{owner_col} <> %s::regrole AND NOT EXISTS (SELECT FROM pg_depend d"
            f" WHERE d.classid = 'pg_catalog.{catalog}'::regclass AND d.objid = o.oid AND d.deptype = 'e')",
            (schema, role)).fetchone()[0]
    counts["pg_namespace"] = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s"
                                          " AND nspowner <> %s::regrole", (schema, role)).fetchone()[0]
    return counts


@pytest.fixture(scope="module")
def stack(images):
    s = fresh_stack(images)
    with s.admin() as conn:
        conn.execute(RESTORED_AS_ADMIN)
        conn.execute("ALTER SCHEMA n8n OWNER TO supabase_admin")   # as a redo of the schema step leaves it
    yield s
    s.server.container.stop()


def test_every_object_ends_up_owned_by_the_app_role(stack):
    with stack.admin() as conn:
        before = foreign_owned_by_catalog(conn, "n8n", "n8n")
        changed = hand_over_schema(conn, "n8n", "n8n")
        after = foreign_owned_by_catalog(conn, "n8n", "n8n")
        members_untouched = conn.execute(
            "SELECT count(*) FROM pg_type t JOIN pg_depend d ON d.objid = t.oid AND d.deptype = 'e'"
            " WHERE t.typname = 'hstore' AND t.typowner = 'supabase_admin'::regrole").fetchone()[0]
    # The check itself covers the catalogs, and each kind was really there to hand over.
    assert len(before) >= 12
    for catalog in ("pg_namespace", "pg_class", "pg_proc", "pg_type", "pg_collation", "pg_conversion",
                    "pg_operator", "pg_opclass", "pg_opfamily", "pg_ts_config", "pg_ts_dict", "pg_statistic_ext"):
        assert before[catalog] > 0, catalog
    assert {k: v for k, v in after.items() if v} == {}
    assert members_untouched == 1
    for expected in ("schema n8n", "table n8n.workflow", "table n8n.events_2026", "sequence n8n.standalone_seq",
                     "view n8n.workflow_view", "materialized view n8n.workflow_counts", "procedure n8n.noop()",
                     "aggregate n8n.total(integer)", "domain n8n.positive", "type n8n.span", "type n8n.pair"):
        assert expected in changed, expected


def test_second_hand_over_changes_nothing(stack):
    with stack.admin() as conn:
        hand_over_schema(conn, "n8n", "n8n")
        assert hand_over_schema(conn, "n8n", "n8n") == []


def test_the_app_role_can_use_its_objects_and_others_cannot(stack):
    with stack.admin() as conn:
        hand_over_schema(conn, "n8n", "n8n")
        assert allowed(conn, READONLY, "SELECT * FROM n8n.workflow")      # privileges re-applied
        assert allowed(conn, READONLY, "SELECT * FROM n8n.events")
        assert not allowed(conn, READONLY, "SELECT n8n.bump(1)")           # routines are the app's alone
        assert not allowed(conn, "letta", "SELECT * FROM n8n.workflow")
        assert not allowed(conn, "anon", "SELECT * FROM n8n.workflow_view")
    with stack.login("n8n") as conn, conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO workflow (mood, n) VALUES ('ok', 3)")   # serial + identity sequences
        conn.execute("ALTER TABLE workflow ADD COLUMN note text")          # only the owner may
        conn.execute("REFRESH MATERIALIZED VIEW workflow_counts")
        assert conn.execute("SELECT bump(n) FROM workflow ORDER BY id").fetchall() == [(2,), (3,), (4,)]


def test_roles_step_hands_over_what_a_restore_left(stack):
    with stack.admin() as conn:
        conn.execute("CREATE TABLE letta_embeddings.passages (id bigserial PRIMARY KEY, v extensions.vector(3))")
    result = stack.apply()
    assert result.handed_over == {"letta_embeddings": ["table letta_embeddings.passages"]}
    assert any(c.key == "letta_embeddings.passages" and "owner: supabase_admin -> letta" in c.detail
               for c in result.changes)
    with stack.admin() as conn:
        owners = conn.execute("SELECT relname, relowner::regrole::text FROM pg_class WHERE relnamespace ="
                              " 'letta_embeddings'::regnamespace ORDER BY 1").fetchall()
    assert owners == [("passages", "letta"), ("passages_id_seq", "letta"), ("passages_pkey", "letta")]


def test_refusals(stack):
    with stack.admin() as conn:
        with pytest.raises(ConsolidationError, match="schema 'nowhere' does not exist"):
            hand_over_schema(conn, "nowhere", "n8n")
        with pytest.raises(ConsolidationError, match="role 'ghost' does not exist"):
            hand_over_schema(conn, "n8n", "ghost")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
