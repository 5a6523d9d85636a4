"""The roles step's options on a real Supabase stand-in: the API opt-in and
its removal, connection limits, the vector dimension, refusals that leave
everything as it was, other role names, and a new application added by
configuration plus one SQL file."""

import textwrap
from dataclasses import replace

import psycopg
import pytest

from tests.support import ROOT

from migrator.config.rolesconfig import RoleSpec
from migrator.errors import DatabaseError
from tests.support.rolestack import READONLY, allowed, fresh_stack, passwords_for, sql_dir_with

pytestmark = pytest.mark.integration

API = ("anon", "authenticated", "service_role")


def readme_block(after: str, language: str) -> str:
    """The first ```language block after a heading text in docs/roles.md (the docs are what we test)."""
    text = (ROOT / "docs/roles.md").read_text()
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return textwrap.dedent(text[start:text.index("```", start)])


@pytest.fixture(scope="module")
def stack(images):
    s = fresh_stack(images)
    yield s
    s.server.container.stop()


def api_reach(conn) -> dict[str, bool]:
    """schema -> whether any API role has any privilege on it or on anything in it."""
    return dict(conn.execute(
        "SELECT n.nspname::text, bool_or(has_schema_privilege(r, n.oid, 'USAGE'))"
        " OR EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) a WHERE c.relnamespace = n.oid"
        "            AND a.grantee::regrole::text = ANY(%s))"
        " OR EXISTS (SELECT FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE d.defaclnamespace = n.oid"
        "            AND a.grantee::regrole::text = ANY(%s))"
        " FROM pg_namespace n, unnest(%s::text[]) r"
        " WHERE n.nspname IN ('n8n', 'rag_documents', 'rag_embeddings') GROUP BY n.nspname, n.oid",
        (list(API), list(API), list(API))).fetchall())


def test_api_opt_in_grants_and_its_removal_revokes(stack):
    opted = stack.apply(replace(stack.cfg, api_schemas=("rag_documents",)))
    assert {(c.section, c.key) for c in opted.changes} >= {("schema", "rag_documents"),
                                                          ("registry", "schema rag_documents")}
    assert opted.warnings == []
    with stack.login("rag") as rag:
        rag.execute("CREATE TABLE rag_documents.feedback (id int)")      # created after the opt-in
    with stack.admin() as conn:
        assert api_reach(conn) == {"n8n": False, "rag_documents": True, "rag_embeddings": False}
        for role in API:
            assert allowed(conn, role, "SELECT * FROM rag_documents.documents"), role
            assert allowed(conn, role, "INSERT INTO rag_documents.feedback VALUES (1)"), role
            assert not allowed(conn, role, "SELECT * FROM rag_embeddings.chunks"), role

    removed = stack.apply()
    assert removed.changed and removed.warnings == []
    with stack.admin() as conn:
        assert api_reach(conn) == {"n8n": False, "rag_documents": False, "rag_embeddings": False}
        assert not allowed(conn, "service_role", "SELECT * FROM rag_documents.feedback")
        assert allowed(conn, READONLY, "SELECT * FROM rag_documents.feedback")
        conn.execute("DROP TABLE rag_documents.feedback")
    assert stack.apply().changes == []


def test_unknown_api_schema_is_refused_and_nothing_changes(stack):
    with pytest.raises(DatabaseError) as err:
        stack.apply(replace(stack.cfg, api_schemas=("auth", "rag_documents")))
    assert "api_schemas names schemas that are not application schemas: auth" in err.value.message
    assert err.value.exit_code == 4
    with stack.admin() as conn:
        assert api_reach(conn)["rag_documents"] is False


def test_connection_limit_is_enforced(stack):
    tight = replace(stack.cfg, roles=tuple(replace(r, connection_limit=2) if r.app == "rag" else r
                                          for r in stack.cfg.roles))
    stack.apply(tight)
    try:
        with stack.login("rag"), stack.login("rag"):
            with pytest.raises(psycopg.OperationalError, match='too many connections for role "rag"'):
                stack.login("rag")
            with stack.login("letta") as other:       # the other apps are not affected
                assert other.execute("SELECT 1").fetchone() == (1,)
    finally:
        stack.apply()


def test_vector_dimension_changes_only_while_chunks_is_empty(stack):
    def embedding_type():
        with stack.admin() as conn:
            return conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                                " 'rag_embeddings.chunks'::regclass AND attname = 'embedding'").fetchone()[0]

    small = stack.apply(replace(stack.cfg, vector_dimension=8))
    assert embedding_type() == "vector(8)"
    chunks = next(c for c in small.changes if c.key == "rag_embeddings.chunks")
    assert "+embedding extensions.vector(8), -embedding extensions.vector(1536)" in chunks.detail
    with stack.login("rag") as conn:
        doc = conn.execute("INSERT INTO documents (source_uri, content) VALUES ('x', 'y') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO chunks (document_id, chunk_index, content, embedding, model)"
                     " VALUES (%s, 0, 'y', '[1,2,3,4,5,6,7,8]', 'm')", (doc,))
    with pytest.raises(DatabaseError, match=r"is vector\(8\) and holds rows; vector_dimension 16"):
        stack.apply(replace(stack.cfg, vector_dimension=16))
    assert embedding_type() == "vector(8)"
    with stack.login("rag") as conn:
        conn.execute("DELETE FROM documents")
    stack.apply()
    assert embedding_type() == "vector(1536)"
    with stack.admin() as conn:   # the HNSW index was rebuilt with the column
        assert conn.execute(
            "SELECT am.amname, opc.opcname, format_type(a.atttypid, a.atttypmod) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
            " JOIN pg_opclass opc ON opc.oid = i.indclass[0] JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1"
            " WHERE c.oid = 'rag_embeddings.chunks_embedding_hnsw'::regclass").fetchone() == \
            ("hnsw", "vector_cosine_ops", "vector(1536)")


def test_an_existing_superuser_is_never_taken_over(stack):
    with stack.admin() as conn:
        conn.execute("CREATE ROLE boss SUPERUSER")
    try:
        cfg = replace(stack.cfg, roles=tuple(replace(r, name="boss") if r.app == "letta" else r
                                            for r in stack.cfg.roles))
        with pytest.raises(DatabaseError, match='role "boss" \\(app letta\\) is a superuser'):
            stack.apply(cfg)
        with stack.admin() as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'boss'").fetchone()[0] is True
            assert conn.execute("SELECT role_name FROM consolidation_admin.app_role WHERE app = 'letta'"
                                ).fetchone()[0] == "letta"
    finally:
        with stack.admin() as conn:
            conn.execute("DROP ROLE boss")


def test_a_monitoring_schema_owned_by_someone_else_is_refused(stack):
    # It is on the monitoring role's search_path: Supabase's `postgres` (which may create
    # schemas) must not own it and plant objects the exporter would resolve.
    with stack.admin() as conn:
        conn.execute("DROP SCHEMA consolidation_monitoring CASCADE")
        conn.execute("CREATE SCHEMA consolidation_monitoring AUTHORIZATION postgres")
    try:
        with pytest.raises(DatabaseError, match="schema consolidation_monitoring belongs to postgres"):
            stack.apply()
    finally:
        with stack.admin() as conn:
            conn.execute("DROP SCHEMA consolidation_monitoring CASCADE")
        stack.apply()
    with stack.admin() as conn:
        assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace"
                            " WHERE nspname = 'consolidation_monitoring'").fetchone()[0] == "supabase_admin"


@pytest.fixture
def fresh(images):
    s = fresh_stack(images, apply=False)
    yield s
    s.server.container.stop()


def test_other_role_names_and_a_new_application(fresh, tmp_path):
    # Operator's recipe (docs/roles.md): [roles.<app>] in the config, a password, one SQL file registering the schema.
    wiki_sql = readme_block("**Adding an application schema**", "sql")
    renamed = tuple(replace(r, name=f"{r.name}_app") for r in fresh.cfg.roles)
    fresh.cfg = replace(fresh.cfg, roles=(*renamed, RoleSpec("wiki", "wiki", 3, "30s")),
                        sql_dir=sql_dir_with(tmp_path, {"15-app-wiki.sql": wiki_sql}))
    fresh.passwords = passwords_for(fresh.cfg)
    result = fresh.apply()
    assert result.warnings == []
    assert result.matrix["wiki"]["wiki"].label() == "owner" and result.matrix["n8n_app"]["wiki"].label() == "-"
    with fresh.admin() as conn:
        owners = dict(conn.execute("SELECT nspname, nspowner::regrole::text FROM pg_namespace WHERE nspname IN"
                                   " ('n8n', 'letta_agents', 'rag_embeddings', 'wiki')").fetchall())
        assert not allowed(conn, "n8n_app", "CREATE TABLE wiki.t (x int)")
    assert owners == {"n8n": "n8n_app", "letta_agents": "letta_app", "rag_embeddings": "rag_app", "wiki": "wiki"}
    with fresh.login("wiki") as wiki:
        assert wiki.execute("SHOW search_path").fetchone()[0] == "wiki, extensions"
        wiki.execute("CREATE TABLE pages (id int, body text, v vector(3))")
        wiki.execute("INSERT INTO pages VALUES (1, 'home', '[1,1,1]')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for database"):
            wiki.execute("CREATE SCHEMA wiki_two")
    with fresh.login("n8n") as n8n:
        n8n.execute("CREATE SCHEMA IF NOT EXISTS n8n")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused for role n8n_app"):
            n8n.execute("CREATE SCHEMA wiki_two")
    with fresh.login("readonly") as ro:
        assert ro.execute("SELECT body FROM wiki.pages").fetchall() == [("home",)]
    assert fresh.apply().changes == []
