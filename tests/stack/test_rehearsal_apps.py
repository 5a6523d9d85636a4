"""The rehearsal with the real applications: the legacy stack with n8n, Letta
and the embeddings stub under its own compose project and ports, seeded
through the apps' own APIs, fingerprinted through them too.

The stack is the session's shared one (tests/support/appstack.py), seeded there by
`docker compose run migrator seed`; this module seeds again through the `consolidate`
CLI on the host against the published ports (already seeded: idempotent), with a config
of its own and the stack's own env/ and reports/, so a developer's stack, env/ and
reports/ are untouched. The cutover tests build on this (same fingerprint after cutover
and after rollback)."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from migrator.apps.letta import SEARCH_SENTINEL
from tests.support import APP_SERVICES, run_cli
from tests.support.appstack import AppStack
from tests.support.leaks import assert_no_leak, report_texts, stack_secrets

pytestmark = pytest.mark.integration




class Stack(AppStack):
    """The session's shared real-app stack (tests/support/appstack.py) seen as the host CLI
    sees it: a config and reports folder of the test's own pointing at the published ports
    (the same object's state, not a copy)."""

    def __init__(self, shared: AppStack):
        self.__dict__ = shared.__dict__
        self.admin_file = self.env_dir / "n8n-admin.env"       # where `migrator seed` left the login
        self.n8n_url = f"http://127.0.0.1:{self.ports['N8N_APP_PORT']}"
        self.letta_url = f"http://127.0.0.1:{self.ports['LETTA_APP_PORT']}"
        self.config = self.tmp / "rehearsal.toml"
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
def stack(app_stacks):
    """The session's shared stack: it reads and seeds through the apps only, never the unified
    instance, so it needs no fresh one and leaves the stack fit for the next module."""
    s = Stack(app_stacks.acquire("test_rehearsal_apps"))
    if s.users == ["test_rehearsal_apps"] and hasattr(s, "up_seconds"):
        print(f"\n[apps] n8n, Letta and the stub healthy {s.up_seconds:.1f} s after `up`")
    return s


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
