"""The cutover's own record on disk (``env/.cutover.json``), beside the env files.

It must survive the target being down, so it is not in the database. Written
atomically before each irreversible move: which env files were rewritten, the
sha256 of their original bytes and where the originals were saved. `rollback`
and a rerun of `cutover` read it to reach a consistent state from wherever a
previous run stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from migrator.envfile import write_atomic

# Phases, in order. "failed-*" and "rolled-back" end a cutover.
PHASES = ("started", "apps-stopped", "migrated", "env-rewritten", "apps-started", "done", "rolled-back")


@dataclass
class EnvRecord:
    path: str
    original_sha256: str
    backup: str | None = None


@dataclass
class CutoverState:
    phase: str = "started"
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    env_files: dict[str, EnvRecord] = field(default_factory=dict)   # app -> record
    fingerprint_label: str | None = None
    history: list[str] = field(default_factory=list)

    def move_to(self, phase: str, path: Path) -> None:
        self.phase = phase
        self.history.append(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {phase}")
        save(self, path)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_path(settings) -> Path:
    """Beside the apps' env files (the folder of the first app's env file; env/ without apps)."""
    env_dir = next(iter(settings.apps.values())).env_file.parent if settings.apps else Path("env")
    return env_dir / ".cutover.json"


def load(path: Path) -> CutoverState | None:
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["env_files"] = {k: EnvRecord(**v) for k, v in raw.get("env_files", {}).items()}
    return CutoverState(**raw)


def save(state: CutoverState, path: Path) -> None:
    write_atomic(path, json.dumps(asdict(state), indent=2) + "\n")
