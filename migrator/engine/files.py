"""files: what every command that writes dated, checksummed files shares.

One UTC stamp for directory and file names (sorting them sorts by time), one
sha256 of a file, one manifest entry per file. Backups, app backups, envfile
copies, drills and the cutover's state file all use these, so a manifest
written by one command is checked by another with the same rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

STAMP = "%Y%m%dT%H%M%SZ"


def utc_stamp(*, micro: bool = False) -> str:
    """Now in UTC as 20260101T120000Z (with microseconds when two may fall in one second)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ" if micro else STAMP)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(root: Path) -> list[dict]:
    """Manifest entries (path relative to root's parent, bytes, sha256) for a file or a tree."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [{"path": str(p.relative_to(root.parent)), "bytes": p.stat().st_size, "sha256": sha256_of(p)}
            for p in files]
