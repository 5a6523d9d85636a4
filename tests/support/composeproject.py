"""A compose project of the test's own: its own name, ports, env/ and reports/, so the
operator's stack (project `consolidation`, ./env) is never read or changed."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import psycopg

from tests.support import ROOT, env_values, free_port, fresh_env_dir

PORT_KEYS = ("UNIFIED_PORT", "N8N_DB_PORT", "LETTA_DB_PORT", "META_PORT", "N8N_APP_PORT", "LETTA_APP_PORT")
ENV_FILES = {"unified": "unified.env", "n8n-db": "n8n-db.env", "letta-db": "letta-db.env"}


class ComposeProject:
    def __init__(self, tmp: Path, prefix: str, **extra_env: str):
        self.name = f"consolidation-{prefix}-{secrets.token_hex(3)}"
        self.env_dir, self.reports = tmp / "env", tmp / "reports"
        fresh_env_dir(self.env_dir)
        self.reports.mkdir(exist_ok=True)
        self.ports = {key: free_port() for key in PORT_KEYS}
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.name, "COLUMNS": "200",
                    "CONSOLIDATION_ENV_DIR": str(self.env_dir), "CONSOLIDATION_REPORTS_DIR": str(self.reports),
                    **{k: str(v) for k, v in self.ports.items()}, **extra_env}
        self.outputs: list[str] = []
        self.run_args: list[str] = []      # more `docker compose run` arguments for the migrator

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "compose", "-p", self.name, *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def migrator(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        """`docker compose run migrator ...` with this checkout's code mounted over the image's."""
        return self.compose("run", "--rm", "-T", "-v", f"{ROOT / 'migrator'}:/src/migrator:ro", *self.run_args,
                            "migrator", *args, timeout=timeout)

    def password(self, service: str = "unified") -> str:
        return env_values(self.env_dir / ENV_FILES[service])["POSTGRES_PASSWORD"]

    def db(self, service: str = "unified", port: int | None = None) -> psycopg.Connection:
        env = env_values(self.env_dir / ENV_FILES[service])
        port = port or self.ports[{"unified": "UNIFIED_PORT", "n8n-db": "N8N_DB_PORT",
                                   "letta-db": "LETTA_DB_PORT"}[service]]
        return psycopg.connect(host="127.0.0.1", port=port, user=env["POSTGRES_USER"],
                               password=env["POSTGRES_PASSWORD"], dbname=env["POSTGRES_DB"], autocommit=True)

    def down(self, *profiles: str) -> None:
        self.compose(*[a for p in profiles for a in ("--profile", p)], "down", "-v", "--remove-orphans")
