"""`make clean` (scripts/forget_cutover.py): once the stack's volumes are gone, the cutover's
record must not say "done" any more, and the env files it rewrote get their originals back."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = b"DB_POSTGRESDB_HOST=n8n-db\nDB_POSTGRESDB_PASSWORD=original-secret-1\n"
REWRITTEN = b"DB_POSTGRESDB_HOST=unified\nDB_POSTGRESDB_PASSWORD=role-secret-2\n"


def cut_over_env(tmp_path: Path, backup_bytes: bytes = ORIGINAL) -> Path:
    env = tmp_path / "env"
    env.mkdir()
    (env / "n8n.env").write_bytes(REWRITTEN)
    (env / "n8n.env.20261207T000000Z.bak").write_bytes(backup_bytes)
    (env / ".decommissioned").write_text("legacy retired\n")
    # Paths as the migrator container recorded them (its own mount point).
    (env / ".cutover.json").write_text(json.dumps({"phase": "done", "env_files": {"n8n": {
        "path": "/work/env/n8n.env", "original_sha256": hashlib.sha256(ORIGINAL).hexdigest(),
        "backup": "/work/env/n8n.env.20261207T000000Z.bak"}}}))
    return env


def forget(env: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/forget_cutover.py"), str(env)],
                          capture_output=True, text=True, timeout=30)


def test_clean_restores_the_originals_and_sets_the_record_aside(tmp_path):
    env = cut_over_env(tmp_path)
    done = forget(env)
    assert done.returncode == 0, done.stderr
    assert (env / "n8n.env").read_bytes() == ORIGINAL
    assert not (env / ".cutover.json").exists() and not (env / ".decommissioned").exists()
    assert len(list(env.glob(".cutover.json.*.cleared"))) == 1
    assert "secret" not in done.stdout + done.stderr
    again = forget(env)                 # nothing recorded any more: nothing to do
    assert again.returncode == 0 and again.stdout == ""


def test_an_altered_saved_original_is_left_alone_and_named(tmp_path):
    env = cut_over_env(tmp_path, backup_bytes=b"DB_POSTGRESDB_HOST=elsewhere\n")
    done = forget(env)
    assert done.returncode == 1
    assert (env / "n8n.env").read_bytes() == REWRITTEN
    assert "n8n.env: its saved original is missing or altered" in done.stderr
    assert "secret" not in done.stdout + done.stderr
