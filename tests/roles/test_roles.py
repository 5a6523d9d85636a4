"""Per-application roles and schema isolation on a real Supabase stand-in.

One fresh container for this module: sql/ applied once with the defaults,
then every test asks the server what each role may do."""

import psycopg
import pytest
from psycopg import sql

from migrator.engine import access
from tests.support.rolestack import (APP_SCHEMAS, MONITOR, MONITORING_SCHEMA, OWN, READONLY, Stack, allowed, as_role, fresh_stack, plain_roles,
                             schemas)

pytestmark = pytest.mark.integration

OPS = ("SELECT", "INSERT", "CREATE")


def statement(schema: str, op: str) -> sql.Composable:
    table = sql.Identifier(schema, "matrix_probe")
    return {"SELECT": sql.SQL("SELECT * FROM {}").format(table),
            "INSERT": sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table),
            "CREATE": sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(schema, "matrix_new"))}[op]


def create_probes(conn: psycopg.Connection, names: list[str]) -> None:
    """One table per schema, created by the schema's owner where it is an ordinary role,
    so that the owner's default privileges apply as they would to real tables."""
    for schema in names:
        owner = conn.execute("SELECT r.rolname, r.rolsuper OR r.rolname ~ '^pg_' FROM pg_namespace n"
                             " JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = %s", (schema,)).fetchone()
        with conn.transaction():
            if not owner[1]:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner[0])))
            conn.execute(sql.SQL("CREATE TABLE {} (id int DEFAULT 1)").format(sql.Identifier(schema, "matrix_probe")))


def measure(conn: psycopg.Connection, roles: list[str], names: list[str]) -> dict[tuple[str, str, str], bool]:
    return {(role, schema, op): allowed(conn, role, statement(schema, op))
            for role in roles for schema in names for op in OPS}


@pytest.fixture(scope="module")
def stack(images):
    """Probes and a baseline in Supabase's schemas first, then sql/ applied, then probes in the new schemas."""
    s = fresh_stack(images, apply=False)
    with s.admin() as conn:
        supabase_schemas = schemas(conn)
        create_probes(conn, supabase_schemas)
        s.baseline = measure(conn, plain_roles(conn), supabase_schemas)
    s.first = s.apply()
    with s.admin() as conn:
        create_probes(conn, [n for n in schemas(conn) if n not in supabase_schemas])
    yield s
    s.server.container.stop()


def designed(stack: Stack, role: str, schema: str, op: str) -> bool:
    """The access the design grants (README "Access matrix")."""
    apps = {stack.cfg.role(app).name: app for app in OWN}
    if role in apps:
        return schema in OWN[apps[role]]
    if role == READONLY:
        return op == "SELECT" and schema in APP_SCHEMAS
    if role == MONITOR:             # pg_monitor only: no table of any schema (docs/monitoring.md)
        return False
    if schema in APP_SCHEMAS or schema in ("consolidation_admin", MONITORING_SCHEMA, "consolidation_pooler"):
        return False
    if role == stack.cfg.pooler_role:           # sql/80: it may call the pooler's lookup function, nothing else
        return False
    return stack.baseline[(role, schema, op)]   # Supabase's own roles keep exactly what they had


def test_access_matrix_enumerated_from_the_catalog(stack):
    with stack.admin() as conn:
        names, role_names = schemas(conn), plain_roles(conn)
        actual = measure(conn, role_names, names)
    # The enumeration really covers the layout (a broken catalog query must not pass vacuously).
    assert APP_SCHEMAS | {"public", "auth", "storage", "vault", "extensions", "consolidation_admin",
                          MONITORING_SCHEMA} <= set(names)
    assert {"n8n", "letta", "rag", READONLY, MONITOR, "anon", "authenticated", "service_role", "postgres"} <= set(role_names)
    expected = {key: designed(stack, *key) for key in actual}
    wrong = sorted(f"{r} {op} on {s}: server says {'yes' if actual[(r, s, op)] else 'no'}"
                   for (r, s, op) in actual if actual[(r, s, op)] != expected[(r, s, op)])
    assert wrong == []
    # Sanity: both answers occur, so the probes really reached the server.
    assert actual[("n8n", "n8n", "INSERT")] and not actual[("n8n", "letta_agents", "SELECT")]


def test_printed_matrix_agrees_with_the_server_and_warns_of_nothing(stack):
    assert stack.first.warnings == []
    m = stack.first.matrix
    assert m["n8n"]["n8n"].label() == "owner" and m["letta"]["letta_embeddings"].label() == "owner"
    assert m["rag"]["auth"].label() == "-" and m["letta"]["n8n"].label() == "-"
    assert m["n8n"]["extensions"].usage and not m["n8n"]["extensions"].create
    assert m[READONLY]["rag_documents"].label() == "read"          # documents exists: readable, not writable
    for api in access.API_ROLES:
        assert all(m[api][schema].label() == "-" for schema in APP_SCHEMAS)
    with stack.admin() as conn:
        now = access.matrix(conn, [stack.cfg.role(a).name for a in ("n8n", "letta", "rag", "readonly")])
        for role, cells in now.items():
            for schema, cell in cells.items():
                assert cell.create == allowed(conn, role, statement(schema, "CREATE")), (role, schema)


def test_app_roles_are_plain_login_roles(stack):
    with stack.admin() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin,"
            " rolconnlimit, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid OR m.roleid = r.oid)"
            " FROM pg_roles r WHERE rolname = ANY(%s)", (["n8n", "letta", "rag", READONLY],))}
        member_of = conn.execute("SELECT roleid::regrole::text FROM pg_auth_members"
                                 " WHERE member = %s::regrole", (READONLY,)).fetchall()
        db_create = {r: conn.execute("SELECT has_database_privilege(%s, current_database(), 'CREATE')",
                                     (r,)).fetchone()[0] for r in rows}
    assert rows["n8n"] == (False, False, False, False, False, True, 20, 0)
    assert rows["letta"] == (False, False, False, False, False, True, 40, 0)
    assert rows["rag"] == (False, False, False, False, False, True, 20, 0)
    assert rows[READONLY] == (False, False, False, False, False, True, 5, 1)
    assert member_of == [("pg_monitor",)]
    assert db_create == {"n8n": True, "letta": False, "rag": False, READONLY: False}


@pytest.mark.parametrize("app, search_path, timeout", [
    ("n8n", "n8n, extensions", "5min"),
    ("letta", "letta_agents, letta_embeddings, extensions", "5min"),
    ("rag", "rag_documents, rag_embeddings, extensions", "2min"),
])
def test_default_search_path_resolves_vector_and_own_tables(stack, app, search_path, timeout):
    own = sorted(OWN[app], key=search_path.index)
    with stack.login(app) as conn, conn.transaction(force_rollback=True):
        assert conn.execute("SHOW search_path").fetchone()[0] == search_path
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == timeout
        assert conn.execute("SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector").fetchone()[0] == 1.0
        conn.execute(sql.SQL("CREATE TABLE {} (v vector(3))").format(sql.Identifier(own[-1], "probe_emb")))
        conn.execute("INSERT INTO probe_emb VALUES ('[1,2,3]')")          # unqualified: found via search_path
        assert conn.execute("SELECT v::text FROM probe_emb").fetchone()[0] == "[1,2,3]"
        conn.execute("CREATE TABLE probe_plain (x int)")                   # unqualified: first own schema
        assert conn.execute("SELECT relnamespace::regnamespace::text FROM pg_class"
                            " WHERE relname = 'probe_plain'").fetchone()[0] == own[0]


def test_table_n8n_creates_later_stays_private(stack):
    with stack.login("n8n") as n8n:
        n8n.execute("CREATE TABLE later_table (id int, secret text)")
        n8n.execute("INSERT INTO later_table VALUES (1, 'n8n only')")
    with stack.admin() as conn:
        assert not allowed(conn, "letta", "SELECT * FROM n8n.later_table")
        assert not allowed(conn, "anon", "SELECT * FROM n8n.later_table")
        with as_role(conn, READONLY):
            assert conn.execute("SELECT secret FROM n8n.later_table").fetchall() == [("n8n only",)]
        assert not allowed(conn, READONLY, "INSERT INTO n8n.later_table VALUES (2, 'x')")
        acl = conn.execute("SELECT relacl::text[] FROM pg_class WHERE oid = 'n8n.later_table'::regclass").fetchone()[0]
    assert sorted(acl) == sorted(["n8n=arwdDxtm/n8n", f"{READONLY}=r/n8n"])
    with stack.login("letta") as letta, pytest.raises(psycopg.errors.InsufficientPrivilege):
        letta.execute("SELECT * FROM n8n.later_table")


def test_n8n_recreates_its_schema_but_nothing_else(stack):
    with stack.login("n8n") as conn:
        for _ in range(2):   # what n8n runs on every pooled connection
            conn.execute("CREATE SCHEMA IF NOT EXISTS n8n")
        conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')  # n8n's start-up: installed already
        for refused in ("CREATE SCHEMA other", "CREATE SCHEMA IF NOT EXISTS n8n_two",
                        "ALTER SCHEMA n8n RENAME TO n8n_renamed", "CREATE EXTENSION hstore",
                        "CREATE PUBLICATION n8n_pub"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                conn.execute(refused)
            assert "refused for role n8n" in str(err.value)
    with stack.login("letta") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")   # Letta's start-up: installed already
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for database"):
            conn.execute("CREATE SCHEMA letta_extra")
    with stack.admin() as conn:
        leftovers = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname IN"
                                 " ('other', 'n8n_two', 'n8n_renamed', 'letta_extra')").fetchall()
        pubs = conn.execute("SELECT pubname FROM pg_publication ORDER BY 1").fetchall()
        exts = conn.execute("SELECT extname FROM pg_extension WHERE extname = 'hstore'").fetchall()
        conn.execute("CREATE SCHEMA admin_made; DROP SCHEMA admin_made")   # the guard leaves others alone
    assert leftovers == [] and pubs == [("supabase_realtime",)] and exts == []


def test_api_roles_see_no_app_schema(stack):
    with stack.admin() as conn:
        usage = conn.execute(
            "SELECT r, s, has_schema_privilege(r, s, 'USAGE') OR has_schema_privilege(r, s, 'CREATE')"
            " FROM unnest(%s::text[]) r, unnest(%s::text[]) s", (list(access.API_ROLES), sorted(APP_SCHEMAS))).fetchall()
        table_grants = conn.execute(
            "SELECT c.oid::regclass::text, a.grantee::regrole::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a"
            " WHERE n.nspname = ANY(%s) AND a.grantee::regrole::text = ANY(%s)",
            (sorted(APP_SCHEMAS), list(access.API_ROLES))).fetchall()
        # No default privileges anywhere (global or in app schemas) hand app objects to the API roles.
        leaky_defaults = conn.execute(
            "SELECT d.defaclrole::regrole::text, d.defaclnamespace FROM pg_default_acl d, aclexplode(d.defaclacl) a"
            " WHERE a.grantee::regrole::text = ANY(%s)"
            " AND (d.defaclnamespace = 0 OR d.defaclnamespace::regnamespace::text = ANY(%s))",
            (list(access.API_ROLES), sorted(APP_SCHEMAS))).fetchall()
    assert [u for u in usage if u[2]] == []
    assert table_grants == [] and leaky_defaults == []


def test_supabase_is_untouched_and_public_is_closed_to_new_roles(stack):
    with stack.admin() as conn:
        assert conn.execute("SELECT count(*) FROM auth.users").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM storage.objects").fetchone()[0] == 2
        assert conn.execute("SELECT name FROM vault.secrets").fetchall() == [("stripe_key",)]
        public_usage = dict(conn.execute(
            "SELECT r.rolname, has_schema_privilege(r.oid, 'public', 'USAGE') FROM pg_roles r"
            " WHERE NOT rolsuper AND rolname !~ '^pg_'").fetchall())
        public_acl = conn.execute("SELECT nspacl::text[] FROM pg_namespace WHERE nspname = 'public'").fetchone()[0]
        conn.execute("CREATE ROLE later_role")
        try:
            later = conn.execute("SELECT has_schema_privilege('later_role', 'public', 'USAGE')").fetchone()[0]
        finally:
            conn.execute("DROP ROLE later_role")
    # Every role that existed before keeps USAGE on public; ours do not; nor does a role created later.
    for role in ("postgres", "anon", "authenticated", "service_role", "authenticator", "supabase_auth_admin",
                 "supabase_storage_admin", "dashboard_user"):
        assert public_usage[role], role
    assert not any(public_usage[r] for r in ("n8n", "letta", "rag", READONLY))
    assert not any(item.startswith("=") for item in public_acl) and later is False


def test_readonly_reads_and_monitors_but_never_writes(stack):
    with stack.login("readonly") as ro:
        assert ro.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert ro.execute("SELECT count(*) FROM rag_documents.documents").fetchone()[0] == 0
        for refused in ("INSERT INTO rag_documents.documents (source_uri, content) VALUES ('x', 'y')",
                        "CREATE TABLE n8n.ro_table (x int)", "SELECT * FROM auth.users"):
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
                ro.execute(refused)
        ro.execute("SET default_transaction_read_only = off")   # the seat belt off: privileges still refuse
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("INSERT INTO rag_documents.documents (source_uri, content) VALUES ('x', 'y')")
        with stack.login("n8n") as n8n:
            n8n.execute("SELECT 'visible to monitoring'")
            queries = [r[0] for r in ro.execute("SELECT query FROM pg_stat_activity WHERE usename = 'n8n'")]
    assert queries == ["SELECT 'visible to monitoring'"]   # pg_monitor: other sessions' statements


def test_monitoring_role_has_pg_monitor_and_nothing_else(stack):
    with stack.admin() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin, rolconnlimit,"
            " has_database_privilege(oid, current_database(), 'CREATE'),"
            " has_database_privilege(oid, current_database(), 'TEMPORARY WITH GRANT OPTION'),"
            " (SELECT array_agg(roleid::regrole::text) FROM pg_auth_members WHERE member = r.oid),"
            " (SELECT count(*) FROM pg_auth_members WHERE roleid = r.oid)"
            " FROM pg_roles r WHERE rolname = %s", (MONITOR,)).fetchone()
        tables = [r[0] for r in conn.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables WHERE schemaname = ANY(%s)",
            (sorted(APP_SCHEMAS),))]
        # The sequence-values function runs as its superuser owner: nobody else may call it.
        callers = [r[0] for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE NOT rolsuper AND has_function_privilege("
            "oid, 'consolidation_monitoring.sequence_usage()', 'EXECUTE') ORDER BY 1")]
        view_readers = [r[0] for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE NOT rolsuper AND rolname !~ '^pg_' AND has_table_privilege("
            "oid, 'consolidation_monitoring.pg_stat_statements', 'SELECT') ORDER BY 1")]
    assert row == (False, False, False, False, False, True, 3, False, False, ["pg_monitor"], 0)
    assert callers == [MONITOR] and view_readers == [MONITOR]
    assert tables, "the probes must exist, or this test proves nothing"
    with stack.login("monitoring") as mon:
        assert mon.execute("SHOW search_path").fetchone()[0] == f"pg_catalog, {MONITORING_SCHEMA}, pg_temp"
        assert mon.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        for table in tables:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                mon.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with stack.login("n8n") as n8n:
            n8n.execute("SELECT 'seen by the exporter'")
            seen = mon.execute("SELECT query FROM pg_stat_activity WHERE usename = 'n8n'").fetchall()
            assert n8n.execute("SHOW pg_stat_statements.track_utility").fetchone()[0] == "off"
        # The exporter's stat_statements collector names the view unqualified; it shows other roles' texts.
        users = {r[0] for r in mon.execute("SELECT pg_get_userbyid(userid) FROM pg_stat_statements")}
        sequences = {r[0] for r in mon.execute("SELECT schema_name FROM consolidation_monitoring.sequence_usage()")}
    assert "rag_embeddings" in sequences          # chunks.id is an identity column
    assert seen == [("SELECT 'seen by the exporter'",)] and "n8n" in users


def test_postgres_cannot_take_over_an_app_role(stack):
    # A real login: SET ROLE is checked against the session user, so SET LOCAL ROLE would not do.
    with stack.server.connect(user="postgres") as conn:
        assert conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = 'postgres'").fetchone()[0]
        for attempt in ("ALTER ROLE n8n PASSWORD 'x'", "GRANT n8n TO postgres", "SET ROLE n8n",
                        "ALTER ROLE letta SET search_path = public", "DROP ROLE rag",
                        "SELECT * FROM n8n.matrix_probe"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attempt)


def test_second_apply_reports_no_change(stack):
    first = stack.first
    assert first.changed and {"role n8n", "schema n8n", "event trigger consolidation_guard_app_ddl",
                              "relation rag_embeddings.chunks"} <= {f"{c.section} {c.key}" for c in first.changes}
    assert set(first.passwords.values()) == {"set"}
    again = stack.apply()
    assert again.changes == [] and not again.changed
    assert set(again.passwords.values()) == {"unchanged"}
