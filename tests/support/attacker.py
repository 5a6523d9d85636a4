"""The attacker of the superuser matrix (docs/threat-model.md, tests/engine/test_attacker_matrix.py).

Every app role, Supabase's `postgres` and whoever controls a legacy database plant code
that tries superuser-only actions, each failure swallowed as an attacker would:
``COPY ... TO PROGRAM`` (allowed even in a read-only transaction: an OS shell as the
server's user), ``CREATE ROLE pwned_<tag> SUPERUSER`` and ``ALTER ROLE <app> SUPERUSER``.
None of these can succeed unless the code runs as a superuser, so their absence
afterwards (``evidence``) proves that no planted code ran with superuser rights, whichever
command ran it. The tag says which vector fired.

MATRIX says, for every command of the CLI's own registry (migrator.cli.STEP_MODULES),
where it runs under this attack; tests/unit/test_attacker_matrix_coverage.py fails when a
command has no entry, so a command added later cannot escape the matrix.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg

from tests.support import ROOT, start_postgres, write_stack_config

# Both legacy sources into the unified instance, as the stack maps them.
MAPPING = """
[sources.n8n]
schema = "public"
target_schema = "n8n"
owner = "n8n"

[sources.letta]
schema = "letta"
target_schema = "letta_agents"
owner = "letta"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""

# The superuser-only actions. {schema}: where the function lives; {role}: the role that
# would gain SUPERUSER. tag becomes part of a file and role name: letters, digits, _.
HOOK = """
CREATE FUNCTION {schema}.hook(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
  BEGIN EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'touch /tmp/pwned_' || tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('CREATE ROLE %I SUPERUSER', 'pwned_' || tag);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '{role}');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END $f$;
CREATE FUNCTION {schema}.hook_i(tag text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN RETURN {schema}.hook(tag); END $f$;
GRANT EXECUTE ON FUNCTION {schema}.hook(text), {schema}.hook_i(text) TO PUBLIC;
"""

# What an app role plants in its own schema on the unified instance: every kind of code a
# reader, a dump, a restore, a hand-over or ANALYZE could evaluate.
APP_VECTORS = HOOK + """
CREATE TABLE {schema}.hooked_rows (
  id integer PRIMARY KEY,
  body text DEFAULT ({schema}.hook('{tag}default')::text),
  CONSTRAINT hooked_check CHECK ({schema}.hook('{tag}check')));
INSERT INTO {schema}.hooked_rows (id) SELECT g FROM pg_catalog.generate_series(1, 20) g;
CREATE INDEX hooked_index ON {schema}.hooked_rows (({schema}.hook_i('{tag}index' || id)));
CREATE STATISTICS {schema}.hooked_stats ON ({schema}.hook_i('{tag}stats' || id)), id FROM {schema}.hooked_rows;
CREATE FUNCTION {schema}.hooked_trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}trigger'); RETURN NEW; END $f$;
CREATE TRIGGER hooked_trigger BEFORE INSERT OR UPDATE ON {schema}.hooked_rows
  FOR EACH ROW EXECUTE FUNCTION {schema}.hooked_trg();
CREATE RULE hooked_rule AS ON UPDATE TO {schema}.hooked_rows DO ALSO SELECT {schema}.hook('{tag}rule');
ALTER TABLE {schema}.hooked_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE {schema}.hooked_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY hooked_policy ON {schema}.hooked_rows USING ({schema}.hook('{tag}policy'));
CREATE VIEW {schema}.hooked_view AS SELECT r.id, {schema}.hook('{tag}view') AS x FROM {schema}.hooked_rows r;
CREATE MATERIALIZED VIEW {schema}.hooked_mv AS SELECT 1 AS id, {schema}.hook('{tag}matview') AS x;
-- A cast from the table's row type to text: `row::text` (casts are not found through
-- search_path) would call it on every row (issue 22, finding 1).
CREATE FUNCTION {schema}.hooked_cast(r {schema}.hooked_rows) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}cast'); RETURN 'x'; END $f$;
CREATE CAST ({schema}.hooked_rows AS text) WITH FUNCTION {schema}.hooked_cast({schema}.hooked_rows);
-- Shadows of pg_catalog's functions and operators by argument type: an unqualified call
-- from a session whose search_path reaches this schema would pick them.
CREATE FUNCTION {schema}.hashtextextended(text, integer) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}shadow'); RETURN 0; END $f$;
CREATE FUNCTION {schema}.count() RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}shadow_count'); RETURN 0; END $f$;
CREATE FUNCTION {schema}.hooked_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}operator'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {schema}.hooked_eq);
"""

# The same cast on a table the app really has (its rows are what checksums read).
APP_TABLE_CAST = """
CREATE FUNCTION {schema}.hooked_cast_{table}(r {schema}.{table}) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM {schema}.hook('{tag}cast_{table}'); RETURN 'x'; END $f$;
CREATE CAST ({schema}.{table} AS text) WITH FUNCTION {schema}.hooked_cast_{table}({schema}.{table});
"""

# Supabase's `postgres` may create in `public`: shadows there, reachable through any
# session whose search_path has public.
POSTGRES_VECTORS = HOOK + """
CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.hook('postgres_format'); RETURN pg_catalog.format($1, $2, $3); END $f$;
CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.hook('postgres_hash'); RETURN 0; END $f$;
CREATE FUNCTION public.quote_ident(name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.hook('postgres_quote'); RETURN pg_catalog.quote_ident($1::text); END $f$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
"""

# The tool's own schemas, as a non-superuser would create them before the tool does
# (issue 22, finding 4): with a function the tool would call and a table it would trust.
PRECREATED_TOOL_SCHEMA = """
CREATE SCHEMA {schema};
CREATE TABLE {schema}.app_schema (schema_name name, app text, search_order int, api_access boolean);
"""

# Who is a superuser on the Supabase stand-in: its bootstrap superuser, nobody else.
UNIFIED_SUPERUSERS = frozenset({"supabase_admin"})


def legacy_plants(schema: str, dbname: str, app_role: str, victim: str) -> str:
    """tests/data/attacker.sql for one legacy database (its placeholders filled in)."""
    text = (ROOT / "tests/data/attacker.sql").read_text()
    for key, value in (("__SCHEMA__", schema), ("__SOURCE_DB__", dbname), ("__APP_ROLE__", app_role),
                       ("__VICTIM__", victim)):
        text = text.replace(key, value)
    return text


def hostile_world(images: dict[str, str], config_dir, source_command: str | None = None) -> dict:
    """Both legacy databases (planted), a unified instance, and a config dir of the test's
    own pointing at them (with [roles] and app role passwords). Stop with ``stop_world``.
    ``source_command``: the sources' server command line (e.g. wal_level=logical)."""
    n8n = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore", command=source_command)
    letta = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="letta", command=source_command,
                           volumes=[(str(ROOT / "compose/letta-db/init.sql"), "/docker-entrypoint-initdb.d/init.sql")])
    target = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    for server, schema, role, victim in ((n8n, "public", "n8n", "letta_agents.secrets"),
                                         (letta, "letta", "letta", "n8n.secrets")):
        with server.connect() as conn:
            conn.execute(legacy_plants(schema, server.dbname, role, victim))
    config = write_stack_config(config_dir, target, {"n8n": n8n, "letta": letta}, MAPPING)
    passwords = {app: f"pw-{app}-{secrets.token_hex(8)}" for app in ("n8n", "letta", "rag", "readonly")}
    (config / "env/app-roles.env").write_text("".join(f"{a.upper()}_ROLE_PASSWORD={p}\n" for a, p in passwords.items()))
    with (config / "consolidation.toml").open("a") as toml:
        toml.write(f'\n[roles]\nsql_dir = "{ROOT / "sql"}"\nenv_file = "env/app-roles.env"\n')
    return {"config": config, "target": target, "passwords": passwords, "images": images,
            "servers": [n8n, letta, target], "sources": {"n8n": n8n, "letta": letta}}


def stop_world(world: dict) -> None:
    for server in world["servers"]:
        server.container.stop()


def app_vectors(schema: str, role: str, tag: str) -> str:
    return APP_VECTORS.format(schema=schema, role=role, tag=tag)


def evidence(conn: psycopg.Connection, container=None, allowed_superusers: set[str] = frozenset()) -> list[str]:
    """Every sign that planted code ran as a superuser: roles it created, roles it made
    superusers, files its COPY ... TO PROGRAM wrote in ``container`` (testcontainers'
    or the docker SDK's). Empty: nothing ran as a superuser."""
    found = [f"role {name} exists" for (name,) in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pwned%' ORDER BY 1").fetchall()]
    found += [f"role {name} is a superuser" for (name,) in conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1").fetchall() if name not in allowed_superusers]
    if container is not None:
        wrapped = getattr(container, "get_wrapped_container", lambda: container)()
        code, out = wrapped.exec_run(["sh", "-c", "ls /tmp | grep '^pwned' || true"])
        found += [f"file /tmp/{line} (COPY TO PROGRAM ran)" for line in out.decode().split() if line]
    return found


@dataclass(frozen=True)
class Case:
    """Where a command runs under attack: ``test`` is a pytest node (file::function) that runs
    it as an operator would and asserts ``evidence`` is empty afterwards; or ``no_database``
    says why the command opens no database session at all (checked from its imports)."""
    test: str | None = None
    no_database: str | None = None


ENGINE = "tests/engine/test_attacker_matrix.py::test_every_command_under_attack"
MATRIX: dict[str, Case] = {
    "preflight": Case(ENGINE),
    "assess": Case(ENGINE),
    "backup-sources": Case(ENGINE),
    "schema": Case(ENGINE),
    "copy": Case(ENGINE),
    "post-data": Case(ENGINE),
    "migrate": Case(ENGINE),
    "verify": Case(ENGINE),
    "roles": Case(ENGINE),
    "app-backup": Case(ENGINE),
    "app-restore": Case(ENGINE),
    "status": Case(ENGINE),
    "restore-drill": Case("tests/stack/test_backups.py::test_drill_and_pitr_copy_run_no_planted_code_as_superuser"),
    "restore-instance": Case("tests/stack/test_backups.py::test_drill_and_pitr_copy_run_no_planted_code_as_superuser"),
    "cutover": Case("tests/stack/test_cutover.py::test_cutover_then_rollback"),
    "rollback": Case("tests/stack/test_cutover.py::test_cutover_then_rollback"),
    "decommission": Case("tests/stack/test_app_backups_real_apps.py::"
                         "test_decommission_archives_checks_and_removes_the_legacy_databases"),
    "seed": Case(no_database="talks to the apps' HTTP APIs only"),
    "fingerprint": Case(no_database="reads the apps' HTTP APIs only"),
    "pooler": Case(no_database="renders pgbouncer.ini from consolidation.toml"),
    "online": Case("tests/engine/test_online.py::test_online_commands_under_attack"),
}
