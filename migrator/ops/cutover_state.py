"""The cutover's own record on disk (``env/.cutover.json``), beside the env files.

It must survive the target being down, so it is not in the database. Written
atomically before each irreversible move: which env files were rewritten, the
sha256 of their original bytes and where the originals were saved. `rollback`
and a rerun of `cutover` read it to reach a consistent state from wherever a
previous run stopped.

Beside it, ``env/.decommissioned`` (written by `decommission` before it removes
the legacy containers) says the legacy databases are retired. The two files
together are where the lifecycle stands (``current``), and ``require`` is the
one place that says which command may run in which state (docs/cutover.md has
the table). The target's journal is not consulted: it must be readable while
the target is down, and it does not know about the env files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from migrator.config.envfile import write_atomic
from migrator.engine.files import sha256_of
from migrator.errors import ConfigError, RollbackRefused

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


sha256_file = sha256_of  # cutover and rollback compare env files by it (migrator/engine/files.py)


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


# --- the decommission marker -----------------------------------------------------------

def marker_path(settings) -> Path:
    """``env/.decommissioned``: the Makefile drops the legacy profile once it exists."""
    return state_path(settings).with_name(".decommissioned")


def load_marker(settings) -> dict | None:
    path = marker_path(settings)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    # An empty file is an older `make decommission`'s `touch`: retired all the same.
    return json.loads(text) if text else {}


def save_marker(settings, marker: dict) -> None:
    write_atomic(marker_path(settings), json.dumps(marker, indent=2) + "\n", mode=0o644)


# --- the lifecycle ----------------------------------------------------------------------

class Lifecycle(Enum):
    BEFORE_CUTOVER = "before cutover"
    INTERRUPTED = "cutover interrupted"      # a cutover stopped between two phases (killed)
    CUT_OVER = "cut over"
    ROLLED_BACK = "rolled back"
    DECOMMISSIONED = "decommissioned"


def current(settings) -> Lifecycle:
    """Where the lifecycle stands, from the files beside the env files alone."""
    if marker_path(settings).is_file():
        return Lifecycle.DECOMMISSIONED
    state = load(state_path(settings))
    if state is None:
        return Lifecycle.BEFORE_CUTOVER
    return {"done": Lifecycle.CUT_OVER, "rolled-back": Lifecycle.ROLLED_BACK}.get(state.phase, Lifecycle.INTERRUPTED)


L = Lifecycle
_WAY_BACK_AFTER_DECOMMISSION = (
    "the apps have written to the unified instance since the cutover, so the legacy data is stale; "
    "to undo changes restore from backups (`app-restore <app>`, `restore-instance`), or, losing every "
    "write since the cutover, {legacy_way}, remove env/.decommissioned and roll back")

# command -> state -> why it is refused there (a state not listed: allowed). The refusal is
# a ConfigError (exit 2) unless given as (error class, text).
REFUSALS: dict[str, dict[Lifecycle, object]] = {
    "cutover": {
        L.DECOMMISSIONED: "the legacy databases were decommissioned: the apps already run on the unified "
                          "instance and there is nothing left to cut over from",
    },
    "rollback": {
        L.DECOMMISSIONED: (RollbackRefused, "the legacy databases were decommissioned ({marker}); "
                           + _WAY_BACK_AFTER_DECOMMISSION),
    },
    "decommission": {
        L.BEFORE_CUTOVER: "nothing was cut over ({state}: missing): the apps still use the legacy databases",
        L.INTERRUPTED: "a cutover stopped half-way ({state}: {phase}); finish it (`cutover`) or undo it "
                       "(`rollback`) first: the legacy databases are still needed",
        L.ROLLED_BACK: "the cutover was rolled back ({state}: rolled-back): the apps use the legacy databases",
    },
}


def _legacy_way(settings, marker: dict) -> str:
    """How the legacy databases come back, as the decommission left them."""
    if marker.get("volumes_deleted"):
        return f"restore the final archives ({marker.get('archives', 'backups/decommission/')}) into new legacy databases"
    hosts = " ".join(marker.get("databases") or [db.host for db in settings.sources])
    return f"bring the legacy containers back from their kept volumes (`docker compose --profile legacy up -d {hosts}`)"


def require(settings, command: str) -> Lifecycle:
    """The current state, if ``command`` may run in it.

    :raises ConsolidationError: one line saying why not (nothing has been changed)."""
    state = current(settings)
    refusal = REFUSALS.get(command, {}).get(state)
    if refusal is None:
        return state
    error, text = refusal if isinstance(refusal, tuple) else (ConfigError, refusal)
    recorded = load(state_path(settings))
    marker = load_marker(settings) or {}
    detail = text.format(state=state_path(settings), phase=recorded.phase if recorded else "missing",
                         marker=f"{marker_path(settings)}, {marker.get('decommissioned_at', 'no date')}",
                         legacy_way=_legacy_way(settings, marker))
    raise error(f"`{command}` refused ({state.value}): {detail}; nothing was changed")
