"""Per-application backups (`app-backup`, `app-restore`) against real servers.

A Supabase stand-in with `consolidate roles` applied holds three apps' data: n8n
(with a hostile CHECK/index function planted by its own role), Letta (two schemas,
a foreign key across them, pgvector) and RAG (sql/70's model). Each app's dump
restores alone into an empty PostgreSQL 17 with pgvector; a live restore brings back
one app's deleted rows and leaves the others' checksums as they were; Letta's schemas
come back as one unit; no app code ever runs as a superuser.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from migrator.ops import appdump
from tests.support import ROOT, run_migrator, start_postgres
from tests.support.rolestack import fresh_stack

pytestmark = pytest.mark.integration

MAPPING = """
[sources.n8n]
env_file = "env/target.env"
schema = "public"
target_schema = "n8n"
owner = "n8n"

[sources.letta]
env_file = "env/target.env"
schema = "letta"
target_schema = "letta_agents"
owner = "letta"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]

[roles]
env_file = "env/app-roles.env"
"""

# n8n's role plants code that a restore runs for every row (CHECK during COPY, an index
# expression at the index build): it tries to become or create a superuser and reports
# whose rights it ran with (NOTIFY reaches a listener once the restore commits).
N8N_DATA = """
SET ROLE n8n;
CREATE FUNCTION n8n.attack(v text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
  BEGIN EXECUTE 'CREATE ROLE pwned_appdump SUPERUSER LOGIN'; EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', current_user); EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN PERFORM pg_catalog.pg_notify('appdump_attack', current_user || ':' ||
    (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user)::text);
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END $f$;
CREATE TABLE n8n.workflow_entity (id serial PRIMARY KEY, name text NOT NULL CHECK (n8n.attack(name)),
                                  nodes jsonb NOT NULL DEFAULT '[]');
CREATE INDEX workflow_attack ON n8n.workflow_entity ((n8n.attack(name)));
INSERT INTO n8n.workflow_entity (name, nodes)
  SELECT 'workflow ' || g, pg_catalog.jsonb_build_array(g) FROM pg_catalog.generate_series(1, 200) g;
RESET ROLE;
"""
LETTA_DATA = """
SET ROLE letta;
CREATE TABLE letta_agents.agents (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE letta_embeddings.passages (id serial PRIMARY KEY, agent_id text NOT NULL
  REFERENCES letta_agents.agents (id), embedding extensions.vector(3) NOT NULL);
INSERT INTO letta_agents.agents SELECT 'agent-' || g, 'agent ' || g FROM pg_catalog.generate_series(1, 20) g;
INSERT INTO letta_embeddings.passages (agent_id, embedding)
  SELECT 'agent-' || (g % 20 + 1), ('[' || g || ',1,2]')::extensions.vector FROM pg_catalog.generate_series(1, 300) g;
RESET ROLE;
"""
RAG_DATA = """
SET ROLE rag;
INSERT INTO rag_documents.documents (source_uri, content) VALUES ('file:///a', 'alpha'), ('file:///b', 'beta');
INSERT INTO rag_embeddings.chunks (document_id, chunk_index, content, embedding, model)
  SELECT id, 0, content, ('[' || pg_catalog.array_to_string(pg_catalog.array_fill(0.5, ARRAY[1536]), ',') || ']')::extensions.vector, 'm'
  FROM rag_documents.documents;
RESET ROLE;
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory, images):
    stack = fresh_stack(images)
    with stack.admin() as conn:
        conn.execute(N8N_DATA + LETTA_DATA + RAG_DATA)
    config = tmp_path_factory.mktemp("appdumps")
    (config / "env").mkdir()
    (config / "env/target.env").write_text(stack.server.env_text())
    (config / "env/app-roles.env").write_text("".join(f"{app.upper()}_ROLE_PASSWORD={pw}\n"
                                                      for app, pw in stack.passwords.items()))
    (config / "consolidation.toml").write_text('[target]\nname = "unified"\nenv_file = "env/target.env"\n\n' + MAPPING)
    backup(config, "n8n", "letta", "rag")       # every test starts from these backups
    yield config, stack
    stack.server.container.stop()


def sums(conn: psycopg.Connection, schemas: list[str]) -> list[dict]:
    return appdump.table_sums(conn, schemas)


def backup(config: Path, *apps: str) -> dict[str, Path]:
    result = run_migrator(config, "app-backup", *apps)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {app: appdump.latest_dir(config / "backups/apps", app) for app in apps}


def test_backup_files_are_private_and_checksummed(world):
    config, stack = world
    dirs = {app: appdump.latest_dir(config / "backups/apps", app) for app in ("n8n", "letta", "rag")}
    for app, run_dir in dirs.items():
        manifest = appdump.read_manifest(run_dir)
        assert manifest["schemas"] == {"n8n": ["n8n"], "letta": ["letta_agents", "letta_embeddings"],
                                       "rag": ["rag_documents", "rag_embeddings"]}[app]
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in run_dir.iterdir())
        with stack.admin() as conn:
            assert manifest["tables"] == sums(conn, manifest["schemas"])
        assert "PASSWORD" not in (run_dir / "roles.json").read_text().upper()
    rows = {t["table"]: t["rows"] for t in appdump.read_manifest(dirs["letta"])["tables"]}
    assert rows == {"agents": 20, "passages": 300}


@pytest.mark.parametrize("app", ["n8n", "letta", "rag"])
def test_each_dump_restores_alone_into_an_empty_postgres17(world, images, tmp_path, app):
    config, stack = world
    run_dir = appdump.latest_dir(config / "backups/apps", app)
    empty = start_postgres(images["LETTA_DB_IMAGE"], user="postgres", dbname="postgres")
    try:
        env_file = config / f"env/empty-{app}.env"
        env_file.write_text(empty.env_text())
        result = run_migrator(config, "app-restore", app, "--into-empty", f"/work/env/empty-{app}.env")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        manifest = appdump.read_manifest(run_dir)
        with empty.connect() as conn:
            assert sums(conn, manifest["schemas"]) == manifest["tables"]
            owners = {r[0] for r in conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE nspname = ANY(%s)", (manifest["schemas"],))}
            assert owners == {manifest["role"]}
            assert conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension"
                                " WHERE extname = 'vector'").fetchone() in (None, ("extensions",))
        # The app logs in with its own role and password (from env/app-roles.env) and reads its data.
        with psycopg.connect(**empty.conninfo(user=manifest["role"], password=stack.passwords[app])) as own:
            table = manifest["tables"][0]
            own.execute(f'SELECT count(*) FROM "{table["schema"]}"."{table["table"]}"').fetchone()
        # A second restore into the same instance is refused: nothing is overwritten.
        again = run_migrator(config, "app-restore", app, "--into-empty", f"/work/env/empty-{app}.env")
        assert again.returncode == 4 and "already exists" in again.stderr
    finally:
        empty.container.stop()


def test_live_restore_brings_n8n_back_and_leaves_other_apps_untouched(world):
    config, stack = world
    with stack.admin() as conn:
        before = {s: sums(conn, [s]) for s in ("letta_agents", "letta_embeddings", "rag_documents", "rag_embeddings")}
        ran_as: set[str] = set()
        conn.add_notify_handler(lambda n: ran_as.add(n.payload))
        conn.execute("LISTEN appdump_attack")
        conn.execute("DELETE FROM n8n.workflow_entity WHERE id <= 10")
        # The app is connected: refused, nothing changed.
        with stack.login("n8n") as app_session:
            app_session.execute("SELECT 1")
            refused = run_migrator(config, "app-restore", "n8n")
            assert refused.returncode == 4 and "open session" in refused.stderr, refused.stderr
        assert conn.execute("SELECT count(*) FROM n8n.workflow_entity").fetchone()[0] == 190
        result = run_migrator(config, "app-restore", "n8n")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert conn.execute("SELECT count(*) FROM n8n.workflow_entity WHERE id <= 10").fetchone()[0] == 10
        assert {s: sums(conn, [s]) for s in before} == before
        kept = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'n8n_replaced_%'")]
        assert len(kept) == 1 and f"DROP SCHEMA {kept[0]} CASCADE" in " ".join(result.stdout.split())
        assert conn.execute(f"SELECT count(*) FROM {kept[0]}.workflow_entity").fetchone()[0] == 190
        # Ownership and privileges as `consolidate roles` leaves them.
        assert {r[0] for r in conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'n8n'::regnamespace")} \
            == {"n8n"}
        assert conn.execute("SELECT has_table_privilege('consolidation_readonly', 'n8n.workflow_entity', 'SELECT')"
                            ).fetchone()[0]
        # The hostile function ran during the restore, as the loader, never as a superuser.
        conn.execute("SELECT 1")       # delivers what arrived since to the handler
        assert ran_as and all(p.endswith(":false") for p in ran_as), ran_as
        # As the loader during the restore; as n8n itself when autovacuum's ANALYZE later evaluates
        # the expression index as the table's owner (timing-dependent). Never anyone else.
        assert ran_as <= {"consolidation_loader_n8n:false", "n8n:false"}
        supers = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper")}
        assert "pwned_appdump" not in supers and not supers & {"n8n", "consolidation_loader_n8n"}
        conn.execute(f"DROP SCHEMA {kept[0]} CASCADE")
    with stack.login("n8n") as own:     # the app works on the restored schema
        assert own.execute("SELECT count(*) FROM workflow_entity").fetchone()[0] == 200


def test_letta_restores_as_one_unit(world):
    config, stack = world
    run_dir = appdump.latest_dir(config / "backups/apps", "letta")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    with stack.admin() as conn:
        rag_before = sums(conn, ["rag_documents", "rag_embeddings"])
        conn.execute("DELETE FROM letta_embeddings.passages WHERE agent_id = 'agent-3'")
        conn.execute("DELETE FROM letta_agents.agents WHERE id = 'agent-3'")
        result = run_migrator(config, "app-restore", "letta")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert sums(conn, ["letta_agents", "letta_embeddings"]) == manifest["tables"]
        # The foreign key across the two schemas holds in the restored pair.
        assert conn.execute("SELECT count(*) FROM letta_embeddings.passages p LEFT JOIN letta_agents.agents a"
                            " ON a.id = p.agent_id WHERE a.id IS NULL").fetchone()[0] == 0
        assert sums(conn, ["rag_documents", "rag_embeddings"]) == rag_before


def test_a_tampered_dump_is_refused_before_anything_changes(world, tmp_path):
    config, stack = world
    run_dir = appdump.latest_dir(config / "backups/apps", "rag")
    with stack.admin() as conn:
        before = sums(conn, ["rag_documents", "rag_embeddings"])
    dump = run_dir / "rag.dump"
    original = dump.read_bytes()
    try:
        dump.write_bytes(original[:-10] + b"0123456789")
        result = run_migrator(config, "app-restore", "rag", "--force")
        assert result.returncode == 2 and "sha256" in result.stderr
    finally:
        dump.write_bytes(original)
    with stack.admin() as conn:
        assert sums(conn, ["rag_documents", "rag_embeddings"]) == before
        assert not conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rag%replaced%'").fetchone()[0]


SWAP_BACK = """
import shutil, sys
from pathlib import Path
from migrator.config.settings import database_from_env
from migrator.errors import VerificationError
from migrator.ops import appdump
src = appdump.latest_dir(Path("backups/apps"), "n8n")
bad = Path("bad-n8n") / src.name
shutil.copytree(src, bad)
manifest = appdump.read_manifest(bad)
manifest["tables"][-1]["rows"] += 1          # the backup now claims a row the dump does not hold
(bad / "manifest.json").write_text(appdump.json.dumps(manifest))
try:
    appdump.restore_live(database_from_env("unified", "target", Path("env/target.env")), bad, scratch=False)
except VerificationError as exc:
    print("refused:", exc.message)
    sys.exit(0)
sys.exit("restore_live accepted a dump that differs from its manifest")
"""


def test_a_failed_live_restore_swaps_the_old_schemas_back(world, images):
    """After the rename aside, a restore that does not verify puts the old schemas back
    (scratch check skipped on purpose, through the API, to reach that point)."""
    config, stack = world
    with stack.admin() as conn:
        conn.execute("DELETE FROM n8n.workflow_entity WHERE id = 42")
        before = sums(conn, ["n8n"])
    run = subprocess.run(["docker", "run", "--rm", "--network", "host", "-v", f"{config}:/work", "-w", "/work",
                          "-v", f"{ROOT / 'migrator'}:/src/migrator:ro", "--entrypoint", "python3",
                          images["MIGRATOR_IMAGE"], "-c", SWAP_BACK], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "differs from its backup" in run.stdout and "swapped back" in run.stdout
    with stack.admin() as conn:
        assert sums(conn, ["n8n"]) == before
        assert not conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'n8n_replaced_%'").fetchone()[0]
        assert {r[0] for r in conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'n8n'::regnamespace")} \
            == {"n8n"}
