"""Rewriting an app's .env file in place without disturbing anything else.

python-dotenv parses the file; each binding keeps its exact original text, so
every line that is not changed (comments, blank lines, order, quoting,
unrelated keys) is written back byte for byte. A changed key keeps its
``export`` prefix and its quote style. Keys that are new are appended. The
previous file is kept beside it with a timestamp, the new one is written
atomically with mode 0600, and the diff shown to people has secrets masked.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dotenv.parser import parse_stream

from migrator.errors import ConfigError
from migrator.redact import MASK

SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|KEY|URI|URL|DSN)", re.IGNORECASE)
_BINDING = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)(?P<eq>\s*=\s*)"
                      r"(?P<value>.*?)(?P<trail>\s*(?:\s#.*)?)(?P<nl>\r?\n?)$", re.DOTALL)


@dataclass(frozen=True)
class Rewrite:
    path: Path
    before: str
    after: str
    backup: Path | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _quote_like(original_value: str, value: str) -> str:
    if original_value.startswith("'") and "'" not in value:
        return f"'{value}'"
    if original_value.startswith('"') or re.search(r"[\s#'\"\\$`]", value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{escaped}"'
    return value


def render(text: str, updates: dict[str, str], remove: tuple[str, ...] = ()) -> str:
    """The file's text with ``updates`` applied and ``remove`` keys dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for lineno, binding in enumerate(parse_stream(_Stream(text)), start=1):
        original = binding.original.string
        if binding.error:
            raise ConfigError(f"cannot parse env line near {lineno}: expected KEY=VALUE")
        key = binding.key
        if key in remove:
            continue
        if key in updates:
            match = _BINDING.match(original)
            if match is None:
                raise ConfigError(f"cannot rewrite the line of {key}")
            seen.add(key)
            original = (match["lead"] + key + match["eq"] + _quote_like(match["value"], updates[key])
                        + match["trail"] + (match["nl"] or ""))
        out.append(original)
    result = "".join(out)
    missing = [k for k in updates if k not in seen]
    if missing:
        if result and not result.endswith("\n"):
            result += "\n"
        result += "".join(f"{k}={_quote_like('', updates[k])}\n" for k in missing)
    return result


class _Stream:
    """parse_stream wants a stream with read()."""

    def __init__(self, text: str):
        self._text = text

    def read(self) -> str:
        return self._text


def masked_diff(path: Path, before: str, after: str) -> str:
    def mask(text: str) -> list[str]:
        lines = []
        for line in text.splitlines(keepends=True):
            key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
            lines.append(f"{key}={MASK}\n" if "=" in line and SECRET_KEY.search(key) else line)
        return lines
    return "".join(difflib.unified_diff(mask(before), mask(after), f"{path} (before)", f"{path} (after)"))


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def new_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def backup_path(path: Path, stamp: str) -> Path:
    """Where the original of ``path`` is kept: ``<name>.<stamp>.bak`` beside it."""
    return path.with_name(f"{path.name}.{stamp}.bak")


def stamp_of(backup: Path) -> str:
    return backup.name.rsplit(".", 2)[-2]


def rewrite(path: Path, updates: dict[str, str], remove: tuple[str, ...] = (),
            stamp: str | None = None) -> Rewrite:
    """Apply ``updates`` to the file at ``path``; keep the old file as ``<name>.<stamp>.bak``."""
    if not path.is_file():
        raise ConfigError(f"{path}: env file not found")
    before = path.read_text(encoding="utf-8")
    after = render(before, updates, remove)
    if after == before:
        return Rewrite(path, before, after, None)
    backup = backup_path(path, stamp or new_stamp())
    if not backup.is_file():        # a rerun after a kill keeps the first, original copy
        write_atomic(backup, before)
    write_atomic(path, after)
    return Rewrite(path, before, after, backup)
