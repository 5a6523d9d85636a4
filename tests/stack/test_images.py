"""The images present the layouts the migration relies on (checked on live servers)."""

import pytest

pytestmark = pytest.mark.integration


def test_unified_has_supabase_roles(unified_server):
    with unified_server.connect() as conn:
        roles = dict(conn.execute(
            "SELECT rolname, ARRAY[rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin]"
            " FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%'").fetchall())
    assert roles["supabase_admin"][0] is True
    # postgres is privileged but NOT a superuser on Supabase.
    assert roles["postgres"] == [False, True, True, True, True, True]
    for role in ("authenticator", "anon", "authenticated", "service_role",
                 "supabase_auth_admin", "supabase_storage_admin"):
        assert role in roles, role
    assert roles["anon"][5] is False and roles["authenticator"][5] is True


def test_unified_schemas_extensions_and_search_path(unified_server):
    with unified_server.connect() as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
        extensions = dict(conn.execute(
            "SELECT extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"))
        search_path = conn.execute(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
            " WHERE r.rolname = 'postgres' AND s.setdatabase = 0").fetchone()[0]
        users = conn.execute("SELECT email FROM auth.users ORDER BY email").fetchall()
        objects = conn.execute("SELECT count(*) FROM storage.objects").fetchone()[0]
    assert {"auth", "storage", "extensions", "graphql", "graphql_public", "realtime", "vault"} <= schemas
    for ext in ("vector", "pg_stat_statements", "pgcrypto", "uuid-ossp"):
        assert extensions[ext] == "extensions", ext
    assert 'search_path="$user", public, extensions' in search_path
    assert [u[0] for u in users] == ["ada@example.com", "alan@example.com", "grace@example.com"]
    assert objects == 2


def test_postgres_role_resolves_vector_unqualified(unified_server):
    with unified_server.connect(user="postgres") as conn:
        assert conn.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector").fetchone()[0] == 1.0


def test_n8n_legacy_is_postgres_15_with_its_database(n8n_db_server):
    with n8n_db_server.connect() as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        assert conn.execute("SELECT current_database()").fetchone()[0] == "n8n_restore"
    assert version.startswith("15")


def test_letta_legacy_layout(letta_db_server):
    with letta_db_server.connect() as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        ext_schema = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE extname = 'vector'").fetchone()[0]
        owner = conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'letta'").fetchone()[0]
        search_path = conn.execute("SHOW search_path").fetchone()[0]
    assert version.startswith("17")
    assert ext_schema == "letta" and owner == "letta" and search_path == "letta"
