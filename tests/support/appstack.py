"""The real-app stack: a compose project of the test's own (own name, ports, env/ and
reports/) with both legacy databases, the unified instance, the real n8n and Letta and
the embeddings stub, seeded through the apps' APIs. Starting and seeding it is the
slowest set-up of the suite, so the modules that can share one do (docs/tests.md):

- ``AppStacks.acquire(user)`` gives the session's current stack, started and seeded on
  first use. It is handed over on the legacy databases (a module that left it cut over
  is rolled back) with the env files byte for byte as seeded; ``fresh_unified=True``
  also gives it a unified instance no earlier module touched (a new data volume, no
  cutover state) when an earlier module asked for one too.
- ``AppStacks.consume(user)`` is for a module that leaves the stack unfit for others
  (plants hostile objects in the legacy databases, decommissions them): it gets the
  current stack (or a new one) and the next ``acquire`` starts a new stack.
  ``release`` removes a consumed stack at once (its module's teardown).

Which modules share, and in what order, is tests/support/collection.py's
SHARED_APP_STACK."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import time
from pathlib import Path

import psycopg

from migrator.systems import services
from tests.support import APP_SERVICES, ROOT, env_values, free_port, fresh_env_dir, remove_compose_project, wait_until

PORT_KEYS = ("UNIFIED_PORT", "N8N_DB_PORT", "LETTA_DB_PORT", "META_PORT", "N8N_APP_PORT", "LETTA_APP_PORT",
             "POOLER_PORT", "POOLER_EXPORTER_PORT")
ALL_PROFILES = ("apps", "tools", "studio", "pooler", "legacy")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class AppStack:
    def __init__(self, tmp: Path):
        self.name = "consolidation-apps-" + secrets.token_hex(3)
        self.tmp = tmp
        self.env_dir = tmp / "env"
        self.reports = tmp / "reports"
        fresh_env_dir(self.env_dir)
        self.reports.mkdir()
        self.ports = {key: free_port() for key in PORT_KEYS}
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.name, "COLUMNS": "200",
                    "CONSOLIDATION_ENV_DIR": str(self.env_dir), "CONSOLIDATION_REPORTS_DIR": str(self.reports),
                    **{k: str(v) for k, v in self.ports.items()}}
        self.outputs: list[str] = []
        self.originals = {p.name: sha(p) for p in self.env_dir.glob("*.env")}
        self.users: list[str] = []          # the modules that had it, in order (for failure messages)
        self.extra_mounts: list[str] = []   # e.g. the corpus's mapping over the stack's (test_cutover)
        self.corpus = None                  # tests.support.corpus.InStack, when a module loaded it
        self.timings: dict[str, float] = {}

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "compose", "-p", self.name, "--profile", "legacy", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def migrator_args(self, *args: str, name: str | None = None) -> list[str]:
        # The code under test is this checkout's (mounted over the image's copy).
        mounts = ["-v", f"{ROOT / 'migrator'}:/src/migrator:ro", *self.extra_mounts]
        return ["run", "--rm", "-T", *(["--name", name] if name else []), *mounts, "migrator", *args]

    def migrator(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        result = self.compose(*self.migrator_args(*args), timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def db(self, service: str) -> psycopg.Connection:
        env = env_values(self.env_dir / {"unified": "unified.env", "n8n-db": "n8n-db.env",
                                         "letta-db": "letta-db.env"}[service])
        port = self.ports[{"unified": "UNIFIED_PORT", "n8n-db": "N8N_DB_PORT", "letta-db": "LETTA_DB_PORT"}[service]]
        return psycopg.connect(host="127.0.0.1", port=port, user=env["POSTGRES_USER"],
                               password=env["POSTGRES_PASSWORD"], dbname=env["POSTGRES_DB"], autocommit=True)

    def process_env(self, service: str) -> dict[str, str]:
        return services.process_env(services.client(), services.Service(self.name, service))

    def healthy(self, service: str) -> bool:
        """As the cutover judges it: docker says so, or the container's check passes now."""
        cid = self.compose("ps", "-q", service).stdout.strip()
        return services.health_status(services.client().containers.get(cid)) == "healthy"

    def env_unchanged(self) -> bool:
        return {p.name: sha(p) for p in self.env_dir.glob("*.env")} == self.originals

    # --- life cycle (AppStacks) ---------------------------------------------------------

    def start(self) -> None:
        """Up with the apps on the legacy databases, seeded through their APIs."""
        started = time.monotonic()
        up = self.compose("--profile", "apps", "up", "-d", "--wait", *APP_SERVICES)
        self.up_seconds = time.monotonic() - started
        if up.returncode != 0:
            logs = self.compose("--profile", "apps", "logs", "--tail", "40", "n8n", "letta").stdout
            raise AssertionError(f"apps did not become healthy:\n{up.stderr[-2000:]}\n{logs[-4000:]}")
        seed = self.migrator("seed", timeout=900)
        assert seed.returncode == 0, seed.stdout[-3000:] + seed.stderr[-3000:]
        self.originals = {p.name: sha(p) for p in self.env_dir.glob("*.env")}

    def back_on_legacy(self) -> None:
        """As the next module expects it: apps on the old databases, env files as seeded."""
        if self.process_env("n8n").get("DB_POSTGRESDB_HOST") != "n8n-db" or \
                "@letta-db:5432/" not in self.process_env("letta").get("LETTA_PG_URI", ""):
            back = self.migrator("rollback")
            assert back.returncode == 0, f"after {self.users}: " + back.stdout[-3000:] + back.stderr[-3000:]
        assert self.env_unchanged(), f"env files changed after {self.users}"
        # A restarted app can answer before docker's health check says so (slow on a loaded machine).
        wait_until(lambda: self.healthy("n8n") and self.healthy("letta"), 900, f"apps healthy after {self.users}",
                   interval=2)

    def fresh_unified(self) -> None:
        """A unified instance as the compose file starts it: the services on it removed, its
        volumes deleted, the cutover's state gone (the apps stay on their legacy databases)."""
        assert self.compose("--profile", "pooler", "--profile", "studio", "rm", "-s", "-f", "-v",
                            "pgbouncer", "pgbouncer-exporter", "meta", "unified").returncode == 0
        for volume in ("unified-data", "unified-run", "backups"):    # backups: the cutover's source dumps
            subprocess.run(["docker", "volume", "rm", "-f", f"{self.name}_{volume}"], capture_output=True)
        for state in (".cutover.json",):
            (self.env_dir / state).unlink(missing_ok=True)
        up = self.compose("up", "-d", "--wait", "unified")
        assert up.returncode == 0, up.stderr[-2000:]

    def remove(self) -> None:
        self.compose(*[a for p in ALL_PROFILES for a in ("--profile", p)], "down", "-v", "--remove-orphans")
        remove_compose_project(self.name)        # after decommission, `down` can fail on the removed databases


class AppStacks:
    """The session's real-app stacks (see the module's docstring)."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.current: AppStack | None = None
        self.unified_used = False
        self.started: list[AppStack] = []

    def _give(self, user: str, fresh_unified: bool) -> AppStack:
        if self.current is None:
            stack = AppStack(self.tmp_path_factory.mktemp("apps"))
            self.started.append(stack)
            stack.start()                  # removed at the session's end even if this fails
            self.current, self.unified_used = stack, False
        stack = self.current
        if stack.users:
            stack.back_on_legacy()
            if fresh_unified and self.unified_used:
                stack.fresh_unified()
        self.unified_used = self.unified_used or fresh_unified
        stack.users.append(user)
        return stack

    def acquire(self, user: str, *, fresh_unified: bool = False) -> AppStack:
        return self._give(user, fresh_unified)

    def consume(self, user: str, *, fresh_unified: bool = True) -> AppStack:
        stack = self._give(user, fresh_unified)
        self.current = None
        return stack

    def release(self, stack: AppStack) -> None:
        if stack is not self.current and stack in self.started:
            self.started.remove(stack)
            stack.remove()

    def close(self) -> None:
        for stack in self.started:
            stack.remove()
        self.started, self.current = [], None
