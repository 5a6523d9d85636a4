"""python -m bench.backups [--size 1GB]: backups of the unified instance, timed (`make bench-backups`).

A compose project of its own (never the operator's stack): the unified instance with
roles applied and app-like tables of about --size (n8n execution data, Letta passages
with 256-dimension vectors, RAG documents), archiving on. Then, wall times and sizes of:

  pgBackRest full backup   | pg_basebackup -Ft -Z zstd:3 (same data)
  change 5% of every table, pgBackRest differential
  full restore (restore-instance --scratch: restore + recovery + checksums)
  one-app backup + restore (n8n), when `app-backup` exists | pg_dump -Fc of the database
  app query latency (p50/p99 of primary-key reads as n8n) idle vs during the full backup

Prints a table and writes reports/bench-backups.json. Machines here are shared and
noisy: read ratios, not absolute figures, and run it twice before believing one."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support import env_values, free_port, fresh_env_dir  # noqa: E402  (config of its own, as tests make it)

DATA_SQL = """
CREATE TABLE n8n.execution_data (id bigint PRIMARY KEY, workflow_id int, data text);
-- Hex digests, not one repeated: about as compressible as real JSON (2-3x), not 100x.
INSERT INTO n8n.execution_data
  SELECT g, g % 500, (SELECT string_agg(md5(g::text || '/' || i), '') FROM generate_series(1, {n8n_rep}) i)
  FROM generate_series(1, {rows}) g;
CREATE TABLE letta_embeddings.passages (id bigint PRIMARY KEY, body text, embedding extensions.vector(256));
INSERT INTO letta_embeddings.passages
  SELECT g, md5(g::text) || md5((-g)::text) || repeat(md5((g * 3)::text), 6), array_fill((g % 97)::real / 97, ARRAY[256])::extensions.vector
  FROM generate_series(1, {rows} / 2) g;
CREATE TABLE rag_documents.docs (id bigint PRIMARY KEY, body text);
INSERT INTO rag_documents.docs SELECT g, repeat(md5((g * 7)::text), 16) FROM generate_series(1, {rows} / 4) g;
ANALYZE;
"""
CHANGE_SQL = """
UPDATE n8n.execution_data SET workflow_id = workflow_id + 1 WHERE id % 20 = 0;
UPDATE letta_embeddings.passages SET body = body || 'x' WHERE id % 20 = 0;
UPDATE rag_documents.docs SET body = body || 'x' WHERE id % 20 = 0;
"""


class Project:
    def __init__(self, tmp: Path):
        self.name = f"consolidation-benchbk-{secrets.token_hex(3)}"
        self.env_dir, self.reports = tmp / "env", tmp / "reports"
        fresh_env_dir(self.env_dir)
        self.reports.mkdir()
        self.port = free_port()
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.name, "CONSOLIDATION_ENV_DIR": str(self.env_dir),
                    "CONSOLIDATION_REPORTS_DIR": str(self.reports), "UNIFIED_PORT": str(self.port),
                    "N8N_DB_PORT": str(free_port()), "LETTA_DB_PORT": str(free_port()),
                    "BACKUP_FULL_EVERY": "999999999", "BACKUP_DIFF_EVERY": "999999999"}

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "compose", "-p", self.name, *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True)
        if check and result.returncode not in (0,):
            raise SystemExit(f"docker compose {' '.join(args[:3])} failed: {result.stdout[-800:]}{result.stderr[-800:]}")
        return result

    def migrator(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.compose("run", "--rm", "-T", "-v", f"{ROOT / 'migrator'}:/src/migrator:ro", "migrator", *args,
                            check=check)

    def connect(self) -> psycopg.Connection:
        env = env_values(self.env_dir / "unified.env")
        return psycopg.connect(host="127.0.0.1", port=self.port, user=env["POSTGRES_USER"],
                               password=env["POSTGRES_PASSWORD"], dbname="postgres", autocommit=True)


def timed(fn) -> tuple[float, object]:
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def repo_bytes(p: Project) -> int:
    out = p.compose("run", "--rm", "-T", "backups", "du", "-sb", "/var/lib/pgbackrest").stdout
    return int(out.split()[0])


def sized(p: Project, command: str) -> tuple[float, int]:
    """Seconds (measured inside, without the container's start) and MB of what ``command``
    writes into /tmp/out, in a container of the unified image."""
    script = (f't0=$(date +%s.%N); {command}; t1=$(date +%s.%N); '
              'echo "ELAPSED $(awk "BEGIN{{print $t1 - $t0}}") SIZE $(du -sb /tmp/out | cut -f1)"')
    out = p.compose("run", "--rm", "-T", "--entrypoint", "sh", "backups", "-c", script).stdout.split()
    return round(float(out[out.index("ELAPSED") + 1]), 1), int(out[out.index("SIZE") + 1]) // 1000000


def pgbackrest_seconds(result: subprocess.CompletedProcess) -> float:
    """pgBackRest's own duration ("backup command end: completed successfully (1234ms)")."""
    for line in result.stdout.splitlines():
        if "backup command end: completed successfully" in line:
            return round(int(line.rsplit("(", 1)[1].rstrip("ms)")) / 1000, 1)
    raise SystemExit(f"no backup duration in: {result.stdout[-500:]}")


def latency_ms(p: Project, seconds: float, rows: int, stop: threading.Event | None = None) -> list[float]:
    """Primary-key reads as an app would make them, one connection, for ``seconds`` (or until ``stop``)."""
    samples = []
    with p.connect() as conn:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            i = (i * 7919 + 13) % rows + 1
            t0 = time.perf_counter()
            conn.execute("SELECT length(data) FROM n8n.execution_data WHERE id = %s", (i,)).fetchone()
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    return round(statistics.quantiles(samples, n=100)[int(q) - 1], 2) if len(samples) > 100 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.backups", description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1000, help="approximate table data in MB (default 1000)")
    args = ap.parse_args(argv)
    rows = max(args.size_mb * 1_000_000 // 1600, 1000)     # ~1.6 KB of table data per unit over the three tables
    figures: dict[str, object] = {"size_mb_requested": args.size_mb}
    with tempfile.TemporaryDirectory() as tmp:
        p = Project(Path(tmp))
        try:
            p.compose("up", "-d", "--wait", "unified", "n8n-db", "letta-db")
            p.migrator("roles")
            with p.connect() as conn:
                figures["load_s"] = round(timed(lambda: conn.execute(DATA_SQL.format(rows=rows, n8n_rep=24)))[0], 1)
                figures["database_mb"] = conn.execute("SELECT pg_database_size('postgres') / 1000000").fetchone()[0]
            setup = p.compose("run", "--rm", "-T", "backups", "setup", check=False)
            if setup.returncode == 10:
                p.compose("restart", "unified")
                p.compose("up", "-d", "--wait", "unified")
                p.compose("run", "--rm", "-T", "backups", "setup")
            idle = latency_ms(p, 10, rows)
            stop, during = threading.Event(), []
            reader = threading.Thread(target=lambda: during.extend(latency_ms(p, 3600, rows, stop)))
            reader.start()
            figures["pgbackrest_full_s"] = pgbackrest_seconds(p.compose("run", "--rm", "-T", "backups", "backup", "full"))
            stop.set()
            reader.join()
            figures["repo_after_full_mb"] = repo_bytes(p) // 1000000
            figures["latency_idle_p50_p99_ms"] = [pct(idle, 50), pct(idle, 99)]
            figures["latency_during_full_p50_p99_ms"] = [pct(during, 50), pct(during, 99)]
            with p.connect() as conn:
                figures["change_5pct_s"] = round(timed(lambda: conn.execute(CHANGE_SQL))[0], 1)
            figures["pgbackrest_diff_s"] = pgbackrest_seconds(p.compose("run", "--rm", "-T", "backups", "backup", "diff"))
            figures["repo_after_diff_mb"] = repo_bytes(p) // 1000000
            figures["restore_command_wall_s"] = round(timed(lambda: p.migrator("restore-instance", "--to", "latest", "--scratch"))[0], 1)
            scratch = json.loads(sorted(p.reports.glob("restore-scratch-*.json"))[-1].read_text())
            figures["restore_files_s"], figures["restore_recovery_s"] = scratch["restore_seconds"], scratch["recovery_seconds"]
            # The same data by PostgreSQL's own tools, over the shared socket (no password, no network).
            figures["pg_basebackup_s"], figures["pg_basebackup_mb"] = sized(
                p, "pg_basebackup -h /var/run/postgresql -U supabase_admin -D /tmp/out -Ft -Z zstd:3 -X fetch -c fast")
            figures["pg_dump_fc_s"], figures["pg_dump_fc_mb"] = sized(
                p, "mkdir /tmp/out && pg_dump -h /var/run/postgresql -U supabase_admin -d postgres -Fc -Z zstd:3 "
                   "-f /tmp/out/all.dump")
            if p.migrator("app-backup", "--help", check=False).returncode == 0:
                figures["app_backup_n8n_s"] = round(timed(lambda: p.migrator("app-backup", "n8n"))[0], 1)
                figures["app_restore_n8n_s"] = round(timed(lambda: p.migrator("app-restore", "n8n", "--force"))[0], 1)
        finally:
            p.compose("--profile", "backups", "--profile", "tools", "down", "-v", "--remove-orphans", check=False)
    print(json.dumps(figures, indent=2))
    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    (out / "bench-backups.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
