"""The migrator never runs anyone else's code with superuser rights (README "Threat model").

An attacker controls both legacy databases (tests/data/attacker.sql: CHECK,
domain, DEFAULT, generated column, index expression, trigger and matview all
call a function that tries to create or become a superuser and to copy another
app's rows), the app roles on the unified instance (functions that shadow
pg_catalog's by argument type, an RLS policy and views that call their own
code, a table swapped for a view), and Supabase's `postgres` (shadowing
functions in `public`). migrate, roles and verify run as an operator runs
them; the read-only role reads as an administrator would. Afterwards the role
catalog is exactly what `consolidate roles` made, no row crossed between apps,
and verify still tells a real difference from the plants.
"""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.support import attacker, run_cli, run_migrator

pytestmark = pytest.mark.integration

# Who may hold which attributes and memberships, as the role catalog says.
ROLES_SQL = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
       ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = r.oid ORDER BY 1)
FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1
"""

# An app role's plants on the unified instance: functions that an unqualified call
# from a superuser session would pick over pg_catalog's, and a probe that says
# whose rights it ran with.
APP_PLANTS = """
CREATE FUNCTION {schema}.escalate() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '{role}'); EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE 'CREATE ROLE pwned_{role} SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'CREATE ROLE pwned_reset_{role} SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END $f$;
CREATE FUNCTION {schema}.hashtextextended(text, integer) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.escalate(); RETURN pg_catalog.hashtextextended($1, $2::bigint); END $f$;
CREATE FUNCTION {schema}.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.escalate(); RETURN QUERY SELECT pg_catalog.unnest($1); END $f$;
CREATE FUNCTION {schema}.count() RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.escalate(); RETURN 0; END $f$;
CREATE FUNCTION {schema}.probe() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.escalate(); RAISE EXCEPTION 'probe ran as %', current_user; END $f$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO PUBLIC;
"""
POSTGRES_PLANTS = """
CREATE FUNCTION public.pwn() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  BEGIN EXECUTE 'ALTER ROLE postgres SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE 'CREATE ROLE pwned_by_postgres SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
END $f$;
CREATE FUNCTION public.format(text, name, integer) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.pwn(); RETURN pg_catalog.format($1, $2, $3); END $f$;
CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.pwn(); RETURN pg_catalog.format($1, $2, $3); END $f$;
CREATE FUNCTION public.format(text, text, name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.pwn(); RETURN pg_catalog.format($1, $2, $3); END $f$;
CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.pwn(); RETURN pg_catalog.hashtextextended($1, $2::bigint); END $f$;
CREATE FUNCTION public.quote_ident(name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.pwn(); RETURN pg_catalog.quote_ident($1::text); END $f$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
"""


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory):
    world = attacker.hostile_world(images, tmp_path_factory.mktemp("attack"))
    yield world
    attacker.stop_world(world)


def login(stack, user: str, password: str) -> psycopg.Connection:
    t = stack["target"]
    return psycopg.connect(host=t.host, port=t.port, dbname="postgres", user=user, password=password,
                           autocommit=True)


def roles_now(stack) -> list[tuple]:
    with stack["target"].connect() as conn:
        return conn.execute(ROLES_SQL).fetchall()


def assert_no_escalation(stack, baseline: list[tuple]) -> None:
    """The role catalog is the baseline, plus loader roles that hold nothing dangerous."""
    now = roles_now(stack)
    loaders = [r for r in now if r[0].startswith("consolidation_loader_")]
    assert [r for r in now if not r[0].startswith("consolidation_loader_")] == \
           [r for r in baseline if not r[0].startswith("consolidation_loader_")]
    for name, superuser, createrole, createdb, _bypassrls, replication, member_of in loaders:
        assert not (superuser or createrole or createdb or replication or member_of), name
    with stack["target"].connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pwned%'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_loader_%'"
                            " AND rolcanlogin").fetchone()[0] == 0
        for schema in ("n8n", "letta_agents"):
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.captured",)).fetchone()[0]:
                assert conn.execute(f"SELECT count(*) FROM {schema}.captured").fetchone()[0] == 0, schema


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def roles_cli(stack) -> subprocess.CompletedProcess:
    return run_cli("--config", str(stack["config"] / "consolidation.toml"), "roles", "--wait", "10")


def test_no_plant_runs_with_superuser_rights(stack):
    target, passwords = stack["target"], stack["passwords"]
    ok(roles_cli(stack))                       # roles and empty schemas first, as an operator may
    baseline = roles_now(stack)

    # Supabase's postgres plants shadows in public (it may create there).
    with target.connect() as conn:
        conn.execute("SET ROLE postgres")
        conn.execute(POSTGRES_PLANTS)

    ok(run_migrator(stack["config"], "migrate", "--jobs", "2"))
    assert_no_escalation(stack, baseline)
    ok(roles_cli(stack))                       # hands the migrated schemas to the app roles
    assert_no_escalation(stack, baseline)
    assert "identical" in ok(run_migrator(stack["config"], "verify"))
    assert_no_escalation(stack, baseline)

    # The app roles plant shadows of what verify and the roles step call.
    for role, schema in (("n8n", "n8n"), ("letta", "letta_agents")):
        with login(stack, role, passwords[role]) as conn:
            conn.execute(APP_PLANTS.format(schema=schema, role=role))
    with login(stack, "n8n", passwords["n8n"]) as conn:
        conn.execute("ALTER TABLE n8n.secrets ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY everyone ON n8n.secrets USING (n8n.probe())")
        conn.execute("CREATE VIEW n8n.secrets_view AS SELECT * FROM n8n.booby WHERE n8n.probe()")

    # verify names every plant as an object only on the target, and finds the rows intact.
    planted = run_migrator(stack["config"], "verify")
    assert planted.returncode == 5, planted.stdout[-3000:] + planted.stderr[-3000:]
    assert "function hashtextextended(text, integer): only on the target" in planted.stdout
    assert "data diffs" in planted.stdout and "differing key ranges" not in planted.stdout
    assert "rows (target)" in planted.stdout and "different content" not in planted.stdout
    assert_no_escalation(stack, baseline)
    ok(roles_cli(stack))
    assert_no_escalation(stack, baseline)

    # The read-only role reads app tables, and runs none of the apps' code.
    with login(stack, "consolidation_readonly", passwords["readonly"]) as conn:
        assert conn.execute("SELECT count(*) FROM n8n.booby").fetchone()[0] == 50
        assert conn.execute("SELECT count(*) FROM letta_agents.secrets").fetchone()[0] == 1
        for query, refusal in (("SELECT * FROM n8n.secrets", "row-level security"),
                               ("SELECT * FROM n8n.secrets_view", "is restricted")):
            with pytest.raises(psycopg.Error) as failure:
                conn.execute(query)
            assert refusal in str(failure.value) and "probe ran" not in str(failure.value)
    assert_no_escalation(stack, baseline)

    # Nothing crossed between apps, and every migrated row is there.
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM n8n.booby").fetchone()[0] == 50
        assert conn.execute("SELECT count(*) FROM letta_agents.booby").fetchone()[0] == 50
        assert conn.execute("SELECT count(*) FROM n8n.booby_mv").fetchone()[0] == 50
        assert conn.execute("SELECT secret FROM letta_agents.secrets").fetchone()[0] == "secret of letta"


def test_verify_refuses_a_table_swapped_for_a_view_and_still_sees_real_differences(stack):
    baseline = roles_now(stack)
    passwords = stack["passwords"]
    with login(stack, "letta", passwords["letta"]) as conn:
        conn.execute("ALTER TABLE letta_agents.secrets RENAME TO secrets_real")
        conn.execute("CREATE VIEW letta_agents.secrets AS SELECT * FROM letta_agents.secrets_real"
                     " WHERE letta_agents.escalate()")
    swapped = run_migrator(stack["config"], "verify")
    assert swapped.returncode == 5, swapped.stdout[-2000:] + swapped.stderr[-2000:]
    assert "letta_agents.secrets" in swapped.stdout and "not a table" in swapped.stdout
    assert_no_escalation(stack, baseline)

    with login(stack, "letta", passwords["letta"]) as conn:
        conn.execute("DROP VIEW letta_agents.secrets")
        conn.execute("ALTER TABLE letta_agents.secrets_real RENAME TO secrets")
        conn.execute("UPDATE letta_agents.secrets SET secret = 'changed on the target'")
    changed = run_migrator(stack["config"], "verify")
    assert changed.returncode == 5, changed.stdout[-2000:]
    assert "letta_agents.secrets" in changed.stdout and "same count, different content" in changed.stdout
    assert_no_escalation(stack, baseline)
    with stack["target"].connect() as conn:   # verify's reader is gone, with its grants
        assert conn.execute("SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a"
                            " WHERE (a.grantee::regrole::text LIKE 'consolidation_loader_%'"
                            " OR a.grantee::regrole::text LIKE 'consolidation_reader_%')"
                            " AND c.relnamespace::regnamespace::text <> '_consolidation'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_reader_%'").fetchone()[0] == 0
