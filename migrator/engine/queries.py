"""Catalog SQL is kept as SQL: in a ``.sql`` file beside the module that runs it
(``verify.py`` + ``verify.sql``), read once. A file holds one statement, or several
sections, each starting with a line ``-- name: <key>``; the comments above a
section say why it asks what it asks."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_SECTION = re.compile(r"^-- name: (\S+)[ \t]*$", re.MULTILINE)


@cache
def text(module_file: str, name: str | None = None) -> str:
    """The whole of ``<module>.sql`` beside ``module_file`` (or of ``name``)."""
    path = Path(module_file).with_name(name or Path(module_file).with_suffix(".sql").name)
    return path.read_text(encoding="utf-8")


@cache
def sections(module_file: str, name: str | None = None) -> dict[str, str]:
    """``-- name: key`` sections of ``<module>.sql``, in file order."""
    parts = _SECTION.split(text(module_file, name))
    return {key: body.strip() for key, body in zip(parts[1::2], parts[2::2])}
