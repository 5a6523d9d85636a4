#!/usr/bin/env python3
"""make clean: the stack's data is gone, so is the cutover it recorded.

`make clean` deletes every volume of the stack: the unified instance the apps were
switched to, and the legacy databases. Left as they were, env/.cutover.json would say
"done" (a new `make rehearsal` would print "already cut over" and switch nothing) and
the rewritten env files would point the apps at roles that no longer exist. So, after
the volumes are gone:

- each env file the cutover rewrote gets its original bytes back from the copy the
  cutover saved (``<file>.<stamp>.bak``), when that copy still has the sha256 recorded;
- env/.cutover.json and env/.decommissioned are renamed aside
  (``.cutover.json.<stamp>.cleared``), kept for the record, no longer read.

Standard library only (it runs without the virtualenv). Never prints a value. A file
whose saved copy is missing or altered is left as it is and named: exit 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def restore(env_dir: Path, record: dict) -> str | None:
    """Put one env file back; returns a problem, or None."""
    current = env_dir / Path(record["path"]).name
    if current.is_file() and sha256(current) == record["original_sha256"]:
        return None                                    # never rewritten, or restored already
    backup = env_dir / Path(record.get("backup") or "").name if record.get("backup") else None
    if backup is None or not backup.is_file() or sha256(backup) != record["original_sha256"]:
        return f"{current.name}: its saved original is missing or altered; left as it is"
    tmp = current.with_name(f".{current.name}.tmp")
    tmp.write_bytes(backup.read_bytes())
    os.chmod(tmp, 0o600)
    os.replace(tmp, current)
    print(f"[clean] {current.name}: original restored (the cutover had rewritten it)")
    return None


def main(env_dir: Path) -> int:
    state_file = env_dir / ".cutover.json"
    if not state_file.is_file():
        return 0
    state = json.loads(state_file.read_text(encoding="utf-8"))
    problems = [p for p in (restore(env_dir, r) for r in state.get("env_files", {}).values()) if p]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for name in (".cutover.json", ".decommissioned"):
        path = env_dir / name
        if path.exists():
            path.rename(env_dir / f"{name}.{stamp}.cleared")
    print(f"[clean] the cutover record (phase {state.get('phase')}) set aside as .cutover.json.{stamp}.cleared")
    for problem in problems:
        print(f"[clean] {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "env")))
