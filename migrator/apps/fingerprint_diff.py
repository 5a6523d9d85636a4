"""Application fingerprints: saving, loading and comparing them.

A fingerprint is what each application lists through its own API (see
migrator.apps.n8n.fingerprint and migrator.apps.letta.fingerprint), as plain
JSON. Two fingerprints are equal when their ``apps`` parts are equal; the
``meta`` part (when, which label, where each app's database was) is for the
reader and never compared, since the cutover changes exactly that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.errors import ConfigError

FORMAT = 1
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MISSING = object()


@dataclass(frozen=True)
class Difference:
    path: str          # dotted path, e.g. "n8n.workflows.Ab12.active"
    before: Any        # MISSING when only in the second fingerprint
    after: Any         # MISSING when only in the first

    @property
    def kind(self) -> str:
        if self.before is MISSING:
            return "added"
        if self.after is MISSING:
            return "removed"
        return "changed"

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.before is not MISSING:
            out["before"] = self.before
        if self.after is not MISSING:
            out["after"] = self.after
        return out


def _key(path: str, key: object) -> str:
    text = str(key)
    if not text or any(c in text for c in ".[] "):
        text = json.dumps(text)
    return f"{path}.{text}" if path else text


def diff(before: Any, after: Any, path: str = "") -> list[Difference]:
    """Field-by-field differences between two JSON values. Dicts are compared
    key by key (added/removed/changed), lists element by element (a different
    length reports the extra elements), anything else by equality."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[Difference] = []
        for key in sorted(set(before) | set(after), key=str):
            p = _key(path, key)
            if key not in after:
                out.append(Difference(p, before[key], MISSING))
            elif key not in before:
                out.append(Difference(p, MISSING, after[key]))
            else:
                out.extend(diff(before[key], after[key], p))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            p = f"{path}[{i}]"
            if i >= len(after):
                out.append(Difference(p, before[i], MISSING))
            elif i >= len(before):
                out.append(Difference(p, MISSING, after[i]))
            else:
                out.extend(diff(before[i], after[i], p))
        return out
    if before != after or type(before) is not type(after):
        return [Difference(path or "(root)", before, after)]
    return []


def compare(before: dict, after: dict) -> list[Difference]:
    """Differences between two fingerprints' ``apps`` parts (``meta`` ignored)."""
    return diff(before.get("apps", {}), after.get("apps", {}))


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def render_diff(differences: list[Difference], limit: int = 50) -> list[str]:
    """Readable lines: `~ path: before -> after`, `+ path: value`, `- path: value`."""
    lines = []
    for d in differences[:limit]:
        if d.kind == "added":
            lines.append(f"+ {d.path}: {_short(d.after)}")
        elif d.kind == "removed":
            lines.append(f"- {d.path}: {_short(d.before)}")
        else:
            lines.append(f"~ {d.path}: {_short(d.before)} -> {_short(d.after)}")
    if len(differences) > limit:
        lines.append(f"... and {len(differences) - limit} more (see the JSON report)")
    return lines


def check_label(label: str) -> str:
    if not LABEL.match(label):
        raise ConfigError(f"fingerprint label '{label}': use letters, digits, '.', '_' or '-' (max 64)")
    return label


def path_for(reports_dir: Path, label: str) -> Path:
    return reports_dir / f"fingerprint-{check_label(label)}.json"


def load(reports_dir: Path, label: str) -> dict:
    path = path_for(reports_dir, label)
    if not path.is_file():
        raise ConfigError(f"{path}: no saved fingerprint '{label}' (save one with `fingerprint --save {label}`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not a fingerprint ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "apps" not in data:
        raise ConfigError(f"{path}: not a fingerprint of format {FORMAT}")
    return data
