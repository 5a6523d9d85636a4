"""psql variables in plain SQL files, substituted the way psql does it.

The files under ``sql/`` are written for ``psql -v name=value -f file``:
``:'name'`` becomes a quoted literal and ``:"name"`` a quoted identifier. The
migrator applies the same files through psycopg, so this module reproduces
psql's rule: variables are replaced only outside string literals, quoted
identifiers, dollar-quoted bodies and comments (psql does not look inside
those either), and ``::`` casts are left alone. Values are quoted by psycopg
(``sql.Literal`` / ``sql.Identifier``), never pasted.

Stricter than psql on purpose: an unknown variable is an error (psql would leave
the text as is and the server would fail later with a confusing syntax error),
and the raw form ``:name`` of a known variable is refused, because a raw value
is pasted unquoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from psycopg import sql
from psycopg.abc import AdaptContext

# One token each: what psql skips, what it substitutes, or a plain run of text.
_TOKEN = re.compile(r"""
    (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$)
  | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*)
  | (?P<cast>::)
  | (?P<var_literal>:'(?P<lit_name>[A-Za-z0-9_]+)')
  | (?P<var_ident>:"(?P<id_name>[A-Za-z0-9_]+)")
  | (?P<var_raw>:(?P<raw_name>[A-Za-z0-9_]+))
  | (?P<unterminated>['"])
""", re.VERBOSE | re.DOTALL)


class SqlVariableError(ValueError):
    """A variable is missing, or used in a form this module refuses."""


def _skip_block_comment(text: str, pos: int) -> int:
    """End of a (nestable, as in PostgreSQL) /* ... */ comment starting at ``pos``."""
    depth, i = 0, pos
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlVariableError("unterminated /* comment")


def _tokens(text: str) -> Iterator[tuple[str, str, str | None]]:
    """Yield (kind, source text, variable name) covering ``text`` completely."""
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # any other character (operators, spaces, ...): copy it
            yield "other", text[pos], None
            pos += 1
            continue
        kind = next(k for k in _KINDS if match.group(k) is not None)
        if kind == "unterminated":
            raise SqlVariableError(f"unterminated {match.group(kind)} quote at offset {pos}")
        end = match.end()
        if kind == "block_comment":
            end = _skip_block_comment(text, pos)
        elif kind == "dollar":
            close = text.find(match.group("dollar"), match.end())
            if close < 0:
                raise SqlVariableError(f"unterminated dollar-quoted string {match.group('dollar')}")
            end = close + len(match.group("dollar"))
        name = match.group("lit_name") or match.group("id_name") or match.group("raw_name")
        yield kind, text[pos:end], name
        pos = end


_KINDS = ("line_comment", "block_comment", "estring", "string", "ident", "dollar", "word", "cast",
          "var_literal", "var_ident", "var_raw", "unterminated")


def substitute(text: str, variables: Mapping[str, str], context: AdaptContext | None = None) -> str:
    """Return ``text`` with every ``:'name'`` / ``:"name"`` replaced by a quoted value.

    ``context`` is a psycopg connection (quoting then follows its settings) or None.
    :raises SqlVariableError: unknown variable, raw ``:name`` of a known variable,
        or an unterminated quote/comment (so nothing half-substituted is returned).
    """
    out: list[str] = []
    for kind, source, name in _tokens(text):
        if kind in ("var_literal", "var_ident"):
            if name not in variables:
                raise SqlVariableError(f"variable '{name}' is not defined")
            value = str(variables[name])
            quoted = sql.Literal(value) if kind == "var_literal" else sql.Identifier(value)
            out.append(quoted.as_string(context))
        elif kind == "var_raw" and name in variables:
            raise SqlVariableError(f"variable :{name} is used unquoted; write :'{name}' or :\"{name}\"")
        else:
            out.append(source)
    return "".join(out)


def referenced(text: str) -> set[str]:
    """Names of the variables ``text`` uses in the quoted forms."""
    return {name for kind, _, name in _tokens(text) if kind in ("var_literal", "var_ident")}
