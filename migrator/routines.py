"""Routine settings that name a moved schema follow it.

A function declared `SET search_path = letta` (what Supabase's security advisor asks
for, and what the refusal of bodies naming the schema recommends) still says `letta`
after its schema became `letta_agents`: it then resolves nothing, or the wrong thing.
The schema step rewrites such a setting in the scratch database, before the dump that
the target restores: the moved schema becomes every target schema of its source (a
split source's routines may use tables of each), plus `extensions` where the source
kept an extension (pgvector) in the moved schema, since that is where it now lives.

search_path is a list of identifiers, not free text: it is split by PostgreSQL's own
grammar (pglast parses `SET search_path = <value>`), so a quoted `"$user"` or a schema
named `"a, b"` is one element, and written back one identifier per element.
"""

from __future__ import annotations

from dataclasses import dataclass

import pglast
import psycopg
from psycopg import sql

from migrator.mapping import SourceMapping

SETTING = "search_path"

# Every non-extension routine of the given schemas with a search_path setting. regprocedure
# prints schema-qualified here (migrator sessions search pg_catalog only).
SETTINGS_SQL = """
SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text,
       pg_catalog.substr(c.setting, pg_catalog.length('search_path=') OPERATOR(pg_catalog.+) 1)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
CROSS JOIN LATERAL pg_catalog.unnest(p.proconfig) AS c(setting)
WHERE n.nspname OPERATOR(pg_catalog.=) ANY(%(schemas)s)
  AND c.setting OPERATOR(pg_catalog.~~) 'search\\_path=%%'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
ORDER BY 1
"""


@dataclass(frozen=True)
class SettingRewrite:
    routine: str                 # regprocedure, as the server prints it
    before: tuple[str, ...]      # the list's elements
    after: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.routine}: SET {SETTING} = {render(self.before)} -> {render(self.after)}"


def parse_list(value: str) -> list[str] | None:
    """The elements of a search_path value, as PostgreSQL's grammar splits it; None when
    it is not a plain list (then it is left as it is)."""
    try:
        statements = pglast.parse_sql(f"SET search_path = {value}")
    except pglast.parser.ParseError:
        return None
    if len(statements) != 1:
        return None
    stmt = statements[0].stmt
    if not isinstance(stmt, pglast.ast.VariableSetStmt) or not stmt.args:
        return None
    elements = []
    for arg in stmt.args:
        if not isinstance(arg, pglast.ast.A_Const) or not isinstance(arg.val, pglast.ast.String):
            return None
        elements.append(arg.val.sval)
    return elements


def extension_in_schema(exts, mapping: SourceMapping) -> bool:
    """The source kept an extension (Letta: pgvector) in the schema that moves: it lands
    in `extensions`, so a search_path that named the schema needs that one too."""
    return any(ext.schema == mapping.schema for ext in exts)


def replacement(mapping: SourceMapping, extension_in_schema: bool) -> list[str]:
    """What the moved schema becomes in a search_path."""
    return [*mapping.target_schemas, *(["extensions"] if extension_in_schema else [])]


def rewrite_list(elements: list[str], mapping: SourceMapping, extension_in_schema: bool) -> list[str] | None:
    """The rewritten list, or None when it does not name the moved schema."""
    if mapping.schema not in elements or mapping.target_schemas == (mapping.schema,):
        return None
    out: list[str] = []
    for element in elements:
        out.extend(replacement(mapping, extension_in_schema) if element == mapping.schema else [element])
    return list(dict.fromkeys(out))          # a schema listed twice is searched once anyway


def render(elements) -> str:
    """A list as the server prints it: each element an identifier, quoted where needed."""
    return ", ".join(sql.Identifier(e).as_string(None) if _needs_quotes(e) else e for e in elements)


def _needs_quotes(element: str) -> bool:
    return not element or not (element[0].isalpha() or element[0] == "_") or \
        any(not (c.islower() or c.isdigit() or c in "_$") for c in element)


def plan(conn: psycopg.Connection, schemas: list[str], mapping: SourceMapping,
         extension_in_schema: bool) -> list[SettingRewrite]:
    """The search_path settings of routines in ``schemas`` that name the moved schema."""
    found = []
    for routine, value in conn.execute(SETTINGS_SQL, {"schemas": schemas}).fetchall():
        elements = parse_list(value)
        after = rewrite_list(elements, mapping, extension_in_schema) if elements is not None else None
        if after is not None:
            found.append(SettingRewrite(routine, tuple(elements), tuple(after)))
    return found


def apply(conn: psycopg.Connection, mapping: SourceMapping, extension_in_schema: bool) -> list[SettingRewrite]:
    """In the scratch database, after the move, as the routines' owner (the loader): rewrite
    each setting, one identifier per element."""
    rewrites = plan(conn, list(mapping.target_schemas), mapping, extension_in_schema)
    for rewrite in rewrites:
        conn.execute(sql.SQL("ALTER ROUTINE {} SET search_path = {}").format(
            sql.SQL(rewrite.routine), sql.SQL(", ").join(sql.Identifier(e) for e in rewrite.after)))
    return rewrites


def normalized(value: str, mapping: SourceMapping | None = None, extension_in_schema: bool = False) -> str:
    """A search_path value as verify compares it: its elements, and for the source's side
    (``mapping`` given) the rewrite the move makes."""
    elements = parse_list(value)
    if elements is None:
        return value
    if mapping is not None:
        elements = rewrite_list(elements, mapping, extension_in_schema) or elements
    return render(elements)
