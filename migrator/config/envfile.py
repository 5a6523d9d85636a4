r"""Env files, read the way docker compose reads them, and rewritten key by key.

Compose is what hands these values to the containers, so the migrator reads
them exactly as compose does (docker compose 2.x, compose-go's dotenv):
``KEY=VALUE`` with an optional ``export``; an unquoted value ends at `` #``
(a space, then ``#``) and is trimmed; ``'single quotes'`` are literal;
``"double quotes"`` understand ``\\`` ``\"`` ``\$`` ``\n`` ``\t`` ``\r``;
``$$`` is one ``$``; the last of duplicate keys wins; a UTF-8 BOM and CRLF
line ends are allowed. python-dotenv reads several of these differently (its
unquoted values keep ``$VAR``, its double quotes keep ``\$``), hence this reader.

What compose would read differently depending on where it runs is refused
with one line naming the file, line and key: a ``$NAME`` or ``${NAME}`` that
compose would replace by a variable of the shell running it, a value spanning
lines, an unclosed quote. Write such a value in single quotes.

Rewriting changes only the value of the named keys (every occurrence); every
other byte (comments, blank lines, order, quoting of other keys, line ends,
BOM, a missing final newline) is written back unchanged. The new value is
quoted so that compose reads exactly it: kept unquoted when plain, else single
quotes, else double quotes with escapes. The previous file is kept beside it,
byte for byte, the new one written atomically with mode 0600, and the diff
shown to people has secrets masked.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from migrator.engine.files import utc_stamp
from migrator.errors import ConfigError
from migrator.redact import MASK

SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|KEY|URI|URL|DSN)", re.IGNORECASE)
BOM = "\ufeff"
_LEAD = re.compile(r"^[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*")
_PLAIN = re.compile(r"^[A-Za-z0-9_\-./:@+=,%~^]*$")      # needs no quotes, means the same everywhere
_INTERPOLATED = re.compile(r"\$(?:\{|[A-Za-z_])")         # what compose replaces by a variable
_ESCAPES = {"\\": "\\", '"': '"', "$": "$", "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True)
class Line:
    """One line of an env file: its text without the line end, and where the value sits."""
    text: str
    end: str                       # "\n", "\r\n" or "" (last line without one)
    key: str | None = None
    value: str | None = None       # as compose reads it
    span: tuple[int, int] = (0, 0)  # the value's raw text (with its quotes) in ``text``
    quote: str = ""


@dataclass(frozen=True)
class Rewrite:
    path: Path
    before: str
    after: str
    backup: Path | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def split_lines(text: str) -> list[tuple[str, str]]:
    """(line, line end) pairs; only \\n and \\r\\n end lines (as for compose)."""
    out = []
    for piece in re.split(r"(?<=\n)", text):
        if not piece:
            continue
        if piece.endswith("\r\n"):
            out.append((piece[:-2], "\r\n"))
        elif piece.endswith("\n"):
            out.append((piece[:-1], "\n"))
        else:
            out.append((piece, ""))
    return out


def parse(text: str, where: str = "env file") -> list[Line]:
    """Every line of ``text``; the bindings with their value as compose reads it.

    :raises ConfigError: a line compose cannot read, or would read depending on its environment.
    """
    lines = []
    for number, (body, end) in enumerate(split_lines(text.removeprefix(BOM)), start=1):
        stripped = body.strip()
        if not stripped or stripped.startswith("#"):
            lines.append(Line(body, end))
            continue
        lead = _LEAD.match(body)
        if lead is None:
            raise ConfigError(f"{where}:{number}: cannot parse this line (expected KEY=VALUE)")
        try:
            value, stop, quote = _value(body, lead.end())
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: {lead['key']}: {exc}") from None
        lines.append(Line(body, end, lead["key"], value, (lead.end(), stop), quote))
    return lines


def _value(body: str, start: int) -> tuple[str, int, str]:
    """(value, end of its raw text, quote) of the value that starts at ``start``."""
    raw = body[start:]
    if raw.startswith("'"):                       # literal: no escapes, no variables
        close = raw.find("'", 1)
        if close < 0:
            raise ValueError("the single quote is not closed on this line (values spanning lines are not supported)")
        _only_comment_after(raw[close + 1:])
        return raw[1:close], start + close + 1, "'"
    if raw.startswith('"'):
        value, stop = _unescape(raw, 1, '"')
        if stop >= len(raw):
            raise ValueError("the double quote is not closed on this line (values spanning lines are not supported)")
        _only_comment_after(raw[stop + 1:])
        return value, start + stop + 1, '"'
    if raw.startswith("#"):
        raise ValueError("an unquoted value starting with '#' reads differently in other tools; quote it")
    cut = raw.find(" #")
    text = (raw if cut < 0 else raw[:cut]).rstrip(" \t")
    value, _ = _unescape(text, 0, None)
    return value, start + len(text), ""


def _unescape(raw: str, i: int, close: str | None) -> tuple[str, int]:
    """Read from ``i`` up to the closing quote (or the end): in double quotes the escapes
    compose knows; everywhere $$ is one $, and $NAME / ${NAME} are refused (compose would
    put a variable of the shell running it there, which the migrator cannot know)."""
    out = []
    while i < len(raw) and raw[i] != close:
        char = raw[i]
        if close and char == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], raw[i:i + 2]))
            i += 2
            continue
        if char == "$" and raw.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if _INTERPOLATED.match(raw, i):
            raise ValueError("contains $NAME or ${NAME}, which docker compose replaces by a variable of the shell "
                             "running it; write the value in single quotes, or $$ for a literal $")
        out.append(char)
        i += 1
    return "".join(out), i


def _only_comment_after(rest: str) -> None:
    if rest.strip() and not rest.lstrip().startswith("#"):
        raise ValueError(f"unexpected text after the closing quote: {rest.strip()[:20]!r}")


def values(text: str, where: str = "env file") -> dict[str, str]:
    """KEY -> value, as compose hands them to the container (the last of duplicates wins)."""
    return {line.key: line.value for line in parse(text, where) if line.key is not None}


def read(path: Path) -> dict[str, str]:
    """The env file at ``path``, read as compose reads it.

    :raises ConfigError: missing, not UTF-8, or a line compose would read differently.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: env file not found (run `make env` to create it from the .example)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return values(text, str(path))


def quote_for(value: str, style: str = "") -> str:
    """``value`` written so that compose reads exactly it, in ``style`` where that allows."""
    if "\n" in value or "\r" in value:
        raise ConfigError("a value with a line break cannot be written to an env file")
    if style == "" and _PLAIN.match(value):
        return value
    if style != '"' and "'" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\t", "\\t")
    return f'"{escaped}"'


def render(text: str, updates: dict[str, str], remove: tuple[str, ...] = (), where: str = "env file") -> str:
    """The file's text with ``updates`` applied to every occurrence and ``remove`` keys dropped;
    every other byte unchanged. New keys are appended."""
    bom = BOM if text.startswith(BOM) else ""
    lines = parse(text, where)
    ending = next((line.end for line in lines if line.end), "\n")
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        if line.key in remove:
            continue
        body = line.text
        if line.key in updates:
            seen.add(line.key)
            a, b = line.span
            body = body[:a] + quote_for(updates[line.key], line.quote) + body[b:]
        out.append(body + line.end)
    result = bom + "".join(out)
    missing = [k for k in updates if k not in seen]
    if missing:
        if result and not result.endswith("\n"):
            result += ending
        result += "".join(f"{k}={quote_for(updates[k])}{ending}" for k in missing)
    return result


def masked_diff(path: Path, before: str, after: str) -> str:
    def mask(text: str) -> list[str]:
        lines = []
        for line in text.splitlines(keepends=True):
            key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
            lines.append(f"{key}={MASK}\n" if "=" in line and SECRET_KEY.search(key) else line)
        return lines
    return "".join(difflib.unified_diff(mask(before), mask(after), f"{path} (before)", f"{path} (after)"))


def write_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Replace ``path`` with exactly ``data`` (bytes as given; text as UTF-8, line ends untouched)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


new_stamp = utc_stamp  # the stamp of an env file's .bak (migrator/engine/files.py)


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
    original = path.read_bytes()
    before = original.decode("utf-8")
    after = render(before, updates, remove, str(path))
    if after == before:
        return Rewrite(path, before, after, None)
    backup = backup_path(path, stamp or new_stamp())
    if not backup.is_file():        # a rerun after a kill keeps the first, original copy
        write_atomic(backup, original)
    write_atomic(path, after.encode("utf-8"))
    return Rewrite(path, before, after, backup)
