"""The compose stack as an operator runs it: `docker compose up --wait`, then
`docker compose run --rm migrator preflight` sees all three databases.

Runs under its own project name and ports, so a developer's stack is untouched."""

import json
import os
import secrets
import subprocess

import pytest

from tests.support import ROOT, free_port, fresh_env_dir

pytestmark = pytest.mark.integration
REPORTS = None   # the reports folder of this module's compose project, set by its fixture





@pytest.fixture(scope="module")
def compose_project(tmp_path_factory):
    global REPORTS
    name = "consolidation-test-" + secrets.token_hex(3)
    tmp = tmp_path_factory.mktemp("compose")
    REPORTS = tmp / "reports"
    REPORTS.mkdir()
    env = {**os.environ, "COMPOSE_PROJECT_NAME": name, "UNIFIED_PORT": str(free_port()),
           "N8N_DB_PORT": str(free_port()), "LETTA_DB_PORT": str(free_port()), "COLUMNS": "200",
           "CONSOLIDATION_ENV_DIR": str(fresh_env_dir(tmp / "env")), "CONSOLIDATION_REPORTS_DIR": str(REPORTS)}

    def compose(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "compose", "-p", name, "--profile", "legacy", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)

    up = compose("up", "-d", "--wait", "unified", "n8n-db", "letta-db")
    assert up.returncode == 0, up.stderr
    try:
        yield compose
    finally:
        compose("--profile", "tools", "down", "-v", "--remove-orphans")


def test_migrator_container_preflight_sees_all_three(compose_project):
    result = compose_project("run", "--rm", "-T", "migrator", "preflight")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Preflight" in result.stdout
    facts = {f["name"]: f for f in json.loads((REPORTS / "preflight.json").read_text())}
    assert facts["unified"]["location"] == "supabase_admin@unified:5432/postgres"
    assert facts["n8n"]["location"].endswith("@n8n-db:5432/n8n_restore")
    assert facts["letta"]["location"] == "letta@letta-db:5432/letta"
    assert facts["unified"]["vector_schema"] == "extensions" and facts["letta"]["vector_schema"] == "letta"
    assert facts["n8n"]["server_version_num"] // 10000 == 15
    assert all(f["ok"] for f in facts.values())


def test_migrator_container_reports_bad_input_in_one_line(compose_project):
    # A source that does not exist on the compose network: exit 3, one line.
    result = compose_project("run", "--rm", "-T", "-v", f"{ROOT}/tests/data/bad-host.toml:/app/bad.toml:ro",
                             "-v", f"{ROOT}/tests/data/bad-host.env:/app/bad-host.env:ro",
                             "migrator", "--config", "bad.toml", "preflight", "--wait", "2")
    assert result.returncode == 3, result.stdout + result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
    assert failed == ["FAILED: source database 'ghost': unknown host 'ghost-db'"]


def test_healthy_services_report_time_to_healthy(compose_project):
    cids = compose_project("ps", "-q").stdout.split()
    assert len(cids) == 3
    out = subprocess.run(["python3", str(ROOT / "scripts/time_to_healthy.py"), "unified"], cwd=ROOT,
                         env={**os.environ, "COMPOSE_PROJECT_NAME": compose_project("ls").args[3]},
                         capture_output=True, text=True).stdout
    assert "unified: healthy" in out
    print(out)
