"""assess and backup against real servers: exact counts, flagged functions, and a
backup that restores into a fresh server with every row intact."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

from tests.support import ROOT, project_images, run_migrator, start_postgres, write_stack_config
from tests.engine.test_migrate import MAPPING
from tests.support import leaf_tables, table_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory, images):
    n8n = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    letta = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="letta",
                           volumes=[(str(ROOT / "compose/letta-db/init.sql"), "/docker-entrypoint-initdb.d/init.sql")])
    target = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    with n8n.connect() as conn:
        conn.execute((ROOT / "tests/data/edge_cases.sql").read_text())
        conn.execute("CREATE FUNCTION public.count_trees() RETURNS bigint LANGUAGE sql"
                     " AS 'SELECT count(*) FROM public.tree'")
    with letta.connect() as conn:
        conn.execute((ROOT / "tests/data/letta_like.sql").read_text())
    config = write_stack_config(tmp_path_factory.mktemp("stack"), target, {"n8n": n8n, "letta": letta}, MAPPING)
    yield config, target, n8n, letta
    for server in (n8n, letta, target):
        server.container.stop()


def test_assess_reports_exact_counts_and_flags(stack):
    config, _, n8n, _ = stack
    result = run_migrator(config, "assess")
    assert result.returncode == 0, result.stderr
    facts = {f["source"]: f for f in json.loads((config / "reports/assessment.json").read_text())}
    rows = {t["name"]: t["rows"] for t in facts["n8n"]["tables"]}
    assert rows["everything"] == 500 and rows["no_key"] == 100 and rows["events"] is None
    assert rows["events_2024"] + rows["events_2025"] == 400
    assert facts["n8n"]["partitioned_tables"] == ["events"]
    assert {"name": "uuid-ossp", "schema": "public", "version": "1.1"} in facts["n8n"]["extensions"]
    # A body naming the moved schema: rewritten (listed before the window), not a warning.
    assert facts["n8n"]["rewritten_bodies"] == ["public.count_trees() line 1: public.tree -> n8n.tree (relation)"]
    assert facts["n8n"]["warnings"] == [] and facts["n8n"]["unchecked_routines"] == []
    letta_targets = {t["name"]: t["target_schema"] for t in facts["letta"]["tables"]}
    assert letta_targets == {"agents": "letta_agents", "messages": "letta_agents",
                             "archival_passages": "letta_embeddings", "source_passages": "letta_embeddings"}
    assert "| everything | n8n | 500 |" in (config / "reports/assessment.md").read_text()
    assert n8n.password not in result.stdout + (config / "reports/assessment.json").read_text()


def test_backup_is_checksummed_and_restores(stack, images):
    config, target, n8n, _ = stack
    result = run_migrator(config, "backup-sources", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    stamp = (config / "backups/LATEST").read_text().strip()
    run_dir = config / "backups" / stamp
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {d["database"] for d in manifest["dumps"]} == {"unified", "n8n", "letta"}
    for d in manifest["dumps"]:
        assert d["bytes"] > 0 and all(len(f["sha256"]) == 64 for f in d["files"])
        assert d["server_version"].split(".")[0] in ("15", "17")
    # Every dump (the target's holds auth and vault) is readable by its owner only.
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "unified.target-before.dump").stat().st_mode) == 0o600
    for path in run_dir.rglob("*"):
        if path.name != "manifest.json":
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    # Restore the n8n dump into a fresh PostgreSQL 17 and compare every row.
    fresh = start_postgres(images["LETTA_DB_IMAGE"], user="postgres", dbname="restored")
    try:
        restore = subprocess.run(
            ["docker", "run", "--rm", "--network", "host", "--entrypoint", "pg_restore",
             "-e", f"PGPASSWORD={fresh.password}", "-v", f"{run_dir}:/b:ro", project_images()["MIGRATOR_IMAGE"],
             "-h", fresh.host, "-p", str(fresh.port), "-U", "postgres", "-d", "restored", "--no-owner",
             "--exit-on-error", "/b/n8n"], capture_output=True, text=True)
        assert restore.returncode == 0, restore.stderr
        with n8n.connect() as src, fresh.connect() as dst:
            for table in leaf_tables(src, "public"):
                assert table_rows(dst, "public", table) == table_rows(src, "public", table), table
    finally:
        fresh.container.stop()
    assert n8n.password not in (run_dir / "manifest.json").read_text()
