"""The rehearsal with the real applications: the legacy stack with n8n, Letta
and the embeddings stub under its own compose project and ports, seeded
through the apps' own APIs, fingerprinted through them too.

Runs the `consolidate` CLI on the host against the published ports, with a
config, an n8n admin file and a reports folder of its own, so a developer's
stack, env/n8n-admin.env and reports/ are untouched. The cutover tests build on
this (same fingerprint after cutover and after rollback)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from migrator.apps.letta import SEARCH_SENTINEL
from tests.support import APP_SERVICES, ROOT, free_port, fresh_env_dir, run_cli
from tests.support.leaks import assert_no_leak, report_texts, stack_secrets

pytestmark = pytest.mark.integration




class Stack:
    def __init__(self, tmp: Path):
        self.name = "consolidation-apps-" + secrets.token_hex(3)
        self.ports = {key: free_port() for key in ("UNIFIED_PORT", "N8N_DB_PORT", "LETTA_DB_PORT",
                                                   "N8N_APP_PORT", "LETTA_APP_PORT")}
        self.tmp = tmp
        self.env_dir = fresh_env_dir(tmp / "env")
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.name, "COLUMNS": "200",
                    "CONSOLIDATION_ENV_DIR": str(self.env_dir), "CONSOLIDATION_REPORTS_DIR": str(tmp / "reports"),
                    **{k: str(v) for k, v in self.ports.items()}}
        self.reports = tmp / "reports"
        self.admin_file = tmp / "n8n-admin.env"
        self.n8n_url = f"http://127.0.0.1:{self.ports['N8N_APP_PORT']}"
        self.letta_url = f"http://127.0.0.1:{self.ports['LETTA_APP_PORT']}"
        self.config = tmp / "consolidation.toml"
        self.config.write_text(f"""
[target]
name = "unified"
env_file = "{self.env_dir}/unified.env"
[sources.n8n]
env_file = "{self.env_dir}/n8n-db.env"
[sources.letta]
env_file = "{self.env_dir}/letta-db.env"
[apps.n8n]
url = "{self.n8n_url}"
env_file = "{self.env_dir}/n8n.env"
admin_file = "{self.admin_file}"
[apps.letta]
url = "{self.letta_url}"
env_file = "{self.env_dir}/letta.env"
embedding_endpoint = "http://embeddings:8000/v1"
""")
        self.outputs: list[str] = []

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "compose", "-p", self.name, "--profile", "legacy", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        result = run_cli("--config", str(self.config), "--reports-dir", str(self.reports), *args,
                         timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def health(self, service: str) -> dict:
        cid = self.compose("ps", "-q", service).stdout.strip()
        state = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True).stdout)[0]
        return state["State"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("apps"))
    start = time.monotonic()
    up = s.compose("--profile", "apps", "up", "-d", "--wait", *APP_SERVICES)
    s.up_seconds = time.monotonic() - start
    try:
        if up.returncode != 0:
            logs = s.compose("--profile", "apps", "logs", "--tail", "40", "n8n", "letta").stdout
            pytest.fail(f"apps did not become healthy:\n{up.stderr[-2000:]}\n{logs[-4000:]}")
        print(f"\n[apps] n8n, Letta and the stub healthy {s.up_seconds:.1f} s after `up`")
        yield s
    finally:
        s.compose("--profile", "apps", "--profile", "tools", "down", "-v", "--remove-orphans")


@pytest.fixture(scope="module")
def seeded(stack):
    result = stack.cli("seed", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    saved = stack.cli("fingerprint", "--save", "legacy")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    print(saved.stdout)
    return json.loads((stack.reports / "fingerprint-legacy.json").read_text())


def test_apps_are_healthy_on_the_legacy_databases(stack):
    for service in APP_SERVICES:
        assert stack.health(service)["Health"]["Status"] == "healthy", service
    assert requests.get(stack.n8n_url + "/healthz/readiness", timeout=10).status_code == 200
    health = requests.get(stack.letta_url + "/v1/health/", timeout=10).json()
    assert health["status"] == "ok" and health["version"] == "0.16.8"
    # The stand-in/upstream image runs its migrations before the server: Letta's
    # tables are in its own schema on letta-db, n8n's in public on n8n-db.
    letta_tables = stack.compose("exec", "-T", "letta-db", "psql", "-U", "letta", "-d", "letta", "-tAc",
                                 "SELECT count(*) FROM pg_tables WHERE schemaname = 'letta'").stdout.strip()
    assert int(letta_tables) >= 45
    n8n_tables = stack.compose("exec", "-T", "n8n-db", "psql", "-U", "postgres", "-d", "n8n_restore", "-tAc",
                               "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").stdout.strip()
    assert int(n8n_tables) >= 50


def test_fingerprint_is_non_trivial(seeded, stack):
    n8n, letta = seeded["apps"]["n8n"], seeded["apps"]["letta"]
    workflows = n8n["workflows"].values()
    assert len(workflows) >= 6 and sum(w["active"] for w in workflows) >= 2
    assert all(w["versionId"] for w in workflows)
    assert len(n8n["credentials"]) >= 1
    assert all(c["data_keys"] == ["name", "value"] for c in n8n["credentials"].values())
    assert sum(sum(v.values()) for v in n8n["executions"].values()) >= 4
    assert n8n["webhook"]["status"] == 200
    assert n8n["webhook"]["body"] == {"service": "n8n", "answer": "ready", "echo": "fingerprint"}
    assert n8n["users"] == ["owner@rehearsal.example.com"]

    agents = sorted((a for a in letta["agents"].values() if a["name"].startswith("rehearsal-agent-")),
                    key=lambda a: a["name"])
    assert len(agents) >= 2
    for agent in agents:
        assert {"human", "persona", "company", "policies"} <= set(agent["blocks"])
        assert {"lookup_order", "convert_currency", "schedule_meeting"} <= set(agent["tools"])
        assert agent["passages"] >= 5 and agent["messages"] >= 1 and agent["embedding_dim"] == 1536
    assert "Timezone: UTC+1" in agents[0]["blocks"]["human"]  # the core-memory edit
    assert letta["search"]["results"][0] == SEARCH_SENTINEL
    handbook = [s for s in letta["sources"].values() if s["name"] == "rehearsal-handbook"]
    assert handbook and handbook[0]["files"] == {"handbook.txt": "completed"} and handbook[0]["passages"] >= 1
    assert seeded["meta"]["apps"]["letta"]["database"].startswith("letta@letta-db:5432/letta")
    assert "schema public" in seeded["meta"]["apps"]["n8n"]["database"]


def test_fingerprint_is_stable_and_seed_idempotent(seeded, stack):
    again = stack.cli("seed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already seeded" in again.stdout
    same = stack.cli("fingerprint", "--compare", "legacy")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "fingerprint equal to 'legacy'" in same.stdout
    report = json.loads((stack.reports / "fingerprint-diff-legacy.json").read_text())
    assert report["equal"] is True and report["differences"] == []


def test_migrator_container_reaches_the_apps_on_the_compose_network(seeded, stack):
    """`docker compose run migrator fingerprint` (what make targets do) uses the
    in-network URLs of consolidation.toml; the admin file is the test's own."""
    result = stack.compose("run", "--rm", "-T", "-v", f"{stack.admin_file}:/app/env/n8n-admin.env",
                           "migrator", "--reports-dir", "/tmp/reports", "fingerprint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Application fingerprint" in result.stdout and "HTTP 200" in result.stdout
    stack.outputs.append(result.stdout + result.stderr)


def test_compare_reports_a_change_field_by_field(seeded, stack):
    # A change made through the app's own API must show up as a difference.
    block_id = next(k for k, b in seeded["apps"]["letta"]["blocks"].items() if b["label"] == "policies")
    patched = requests.patch(f"{stack.letta_url}/v1/blocks/{block_id}", json={"value": "changed"}, timeout=30)
    assert patched.status_code == 200, patched.text
    result = stack.cli("fingerprint", "--compare", "legacy")
    assert result.returncode == 5, result.stdout + result.stderr
    assert f"~ letta.blocks.{block_id}.value: " in result.stdout
    assert '-> "changed"' in result.stdout
    assert "FAILED: fingerprint differs from 'legacy'" in result.stderr
    report = json.loads((stack.reports / "fingerprint-diff-legacy.json").read_text())
    assert report["equal"] is False
    assert {"path": f"letta.blocks.{block_id}.value", "kind": "changed",
            "before": seeded["apps"]["letta"]["blocks"][block_id]["value"], "after": "changed"} \
        in report["differences"]


def test_no_secret_in_any_output_or_report(seeded, stack):
    """The secrets this stack ran with (its own env dir and admin file, tests/support/leaks.py),
    not the checkout's env/ (which the stack never saw)."""
    secrets_ = stack_secrets(stack.env_dir, stack.admin_file)
    assert len(secrets_) >= 10
    # They are the ones the running apps were given.
    with_n8n = subprocess.run(["docker", "inspect", "--format", "{{json .Config.Env}}",
                               stack.compose("ps", "-q", "n8n").stdout.strip()], capture_output=True, text=True)
    n8n_env = dict(e.split("=", 1) for e in json.loads(with_n8n.stdout))
    assert {n8n_env["DB_POSTGRESDB_PASSWORD"], n8n_env["N8N_ENCRYPTION_KEY"]} <= set(secrets_)
    assert {"N8N_OWNER_PASSWORD", "N8N_API_KEY"} <= {name.split(":")[1] for name in secrets_.values()}
    assert_no_leak(stack.outputs + list(report_texts(stack.reports).values()), secrets_)
    assert oct(stack.admin_file.stat().st_mode & 0o777) == "0o600"
