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
named `"a, b"` is one element, and written back one identifier per element. A list
given quoted (`SET search_path TO 'public', 'pg_temp'`) is the same list.

The other setting of PostgreSQL's own whose value names a schema is
`default_text_search_config` (`'public.my_config'`): a qualified name, split by the
same grammar; its schema becomes the one the configuration lands in (the default
target schema, or `extensions` for an extension's configuration). Every other
built-in setting names no schema. A custom setting (`SET app.schema = 'public'`) is
free text whose meaning only its application knows: one whose value names the moved
schema is refused before anything is written, naming the routine and the setting.
Accepting it by name would not help: the definitions are restored by the loader, not
a superuser, and PostgreSQL lets only a superuser (or a role granted SET on that
parameter) set a custom parameter in a routine ("permission denied to set parameter").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pglast
import psycopg
from psycopg import sql

from migrator.config.mapping import SourceMapping

SETTING = "search_path"
TS_CONFIG = "default_text_search_config"

# Every setting of every non-extension routine of the given schemas: (routine, name, value).
# regprocedure prints schema-qualified here (migrator sessions search pg_catalog only).
SETTINGS_SQL = """
SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text,
       pg_catalog.split_part(c.setting, '=', 1),
       pg_catalog.substr(c.setting, pg_catalog.strpos(c.setting, '=') OPERATOR(pg_catalog.+) 1)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
CROSS JOIN LATERAL pg_catalog.unnest(p.proconfig) AS c(setting)
WHERE n.nspname OPERATOR(pg_catalog.=) ANY(%(schemas)s)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
ORDER BY 1, 2
"""

# Where a text search configuration of ``schema`` named ``name`` is: its schema, and
# whether it belongs to an extension (which moves to `extensions`).
TS_CONFIG_SQL = """
SELECT n.nspname, EXISTS (SELECT FROM pg_catalog.pg_depend d
                          WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_ts_config'::pg_catalog.regclass
                            AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
FROM pg_catalog.pg_ts_config c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.cfgnamespace
WHERE c.cfgname OPERATOR(pg_catalog.=) %(name)s AND n.nspname OPERATOR(pg_catalog.=) ANY(%(schemas)s)
ORDER BY pg_catalog.array_position(%(schemas)s, n.nspname::pg_catalog.text)
"""


@dataclass(frozen=True)
class SettingRewrite:
    routine: str                 # regprocedure, as the server prints it
    before: tuple[str, ...]      # the list's elements (search_path), or the name's parts
    after: tuple[str, ...]
    setting: str = SETTING

    def describe(self) -> str:
        if self.setting == SETTING:
            return f"{self.routine}: SET {SETTING} = {render(self.before)} -> {render(self.after)}"
        return f"{self.routine}: SET {self.setting} = '{render_name(self.before)}' -> '{render_name(self.after)}'"

    def value(self) -> sql.Composable:
        """The new value as ALTER ROUTINE ... SET takes it."""
        if self.setting == SETTING:
            return sql.SQL(", ").join(sql.Identifier(e) for e in self.after)
        return sql.Literal(render_name(self.after))


@dataclass(frozen=True)
class UncheckedSetting:
    """A custom setting whose value names the moved schema: what it means, only its
    application knows."""
    routine: str
    setting: str
    value: str

    def describe(self, schema: str) -> str:
        return f"{self.routine}: SET {self.setting} = '{self.value}' names schema '{schema}'"


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


def parse_name(value: str) -> list[str] | None:
    """The parts of a qualified name (`public.my_config`, `"My".cfg`) as PostgreSQL's
    grammar splits it; None when the value is not one name."""
    try:
        statements = pglast.parse_sql(f"DROP TEXT SEARCH CONFIGURATION {value}")
    except pglast.parser.ParseError:
        return None
    if len(statements) != 1 or not isinstance(statements[0].stmt, pglast.ast.DropStmt):
        return None
    objects = statements[0].stmt.objects or ()
    if len(objects) != 1:
        return None
    parts = [getattr(part, "sval", None) for part in objects[0]]
    return parts if all(isinstance(p, str) for p in parts) else None


def render_name(parts) -> str:
    return ".".join(sql.Identifier(p).as_string(None) if _needs_quotes(p) else p for p in parts)


def names_schema(value: str, schema: str) -> bool:
    """Whether free text names ``schema`` as a word or a qualifier (`public`, `public.x`,
    `"public"`): the test for custom settings, whose grammar is their application's."""
    return re.search(rf'(?<![\w$"]){re.escape(schema)}(?![\w$"])|"{re.escape(schema)}"', value) is not None


def custom(setting: str) -> bool:
    """A placeholder (`app.tenant`): defined by an application or a library, not PostgreSQL."""
    return "." in setting


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


def ts_config_home(conn: psycopg.Connection, mapping: SourceMapping, name: str) -> str:
    """The schema a text search configuration of the moved schema lands in. On the
    source it is still in the moved schema: an extension's goes to `extensions`, any
    other to the default target schema (the schema step renames the schema). In the
    scratch database, after the move, it is wherever the move put it."""
    found = conn.execute(TS_CONFIG_SQL, {"name": name, "schemas": [mapping.schema]}).fetchall()
    if found:
        return "extensions" if found[0][1] else mapping.target_schema
    found = conn.execute(TS_CONFIG_SQL, {"name": name,
                                         "schemas": [*mapping.target_schemas, "extensions"]}).fetchall()
    return found[0][0] if found else mapping.target_schema


def rewrite_ts_config(conn: psycopg.Connection, value: str, mapping: SourceMapping) -> list[str] | None:
    """`'<moved schema>.<config>'` -> `'<where it landed>.<config>'`; None when the value
    does not qualify with the moved schema (unqualified: found through search_path)."""
    parts = parse_name(value)
    if parts is None or len(parts) != 2 or parts[0] != mapping.schema or mapping.schema in mapping.target_schemas:
        return None
    return [ts_config_home(conn, mapping, parts[1]), parts[1]]


def plan(conn: psycopg.Connection, schemas: list[str], mapping: SourceMapping,
         extension_in_schema: bool) -> list[SettingRewrite]:
    """The settings of routines in ``schemas`` that name the moved schema and are rewritten."""
    found = []
    for routine, setting, value in conn.execute(SETTINGS_SQL, {"schemas": schemas}).fetchall():
        if setting == SETTING:
            elements = parse_list(value)
            after = rewrite_list(elements, mapping, extension_in_schema) if elements is not None else None
            if after is not None:
                found.append(SettingRewrite(routine, tuple(elements), tuple(after)))
        elif setting == TS_CONFIG:
            after = rewrite_ts_config(conn, value, mapping)
            if after is not None:
                found.append(SettingRewrite(routine, tuple(parse_name(value)), tuple(after), TS_CONFIG))
    return found


def unchecked(conn: psycopg.Connection, mapping: SourceMapping) -> list[UncheckedSetting]:
    """On the source: custom settings of the moved schema's routines that name it."""
    return [UncheckedSetting(routine, setting, value)
            for routine, setting, value in conn.execute(SETTINGS_SQL, {"schemas": [mapping.schema]}).fetchall()
            if custom(setting) and mapping.schema not in mapping.target_schemas and names_schema(value, mapping.schema)]


def refusal(mapping: SourceMapping, found: list[UncheckedSetting]) -> str:
    first = found[0]
    more = f" (and {len(found) - 1} more: see `consolidate assess`)" if len(found) > 1 else ""
    return (f"{first.describe(mapping.schema)}, a custom setting the move cannot rewrite (only its application "
            f"knows what it means){more}; change it on the source (e.g. pass the schema as an argument, or read "
            "current_schema())")


def apply(conn: psycopg.Connection, mapping: SourceMapping, extension_in_schema: bool) -> list[SettingRewrite]:
    """In the scratch database, after the move, as the routines' owner (the loader): rewrite
    each setting, one identifier per element."""
    rewrites = plan(conn, list(mapping.target_schemas), mapping, extension_in_schema)
    for rewrite in rewrites:
        conn.execute(sql.SQL("ALTER ROUTINE {} SET {} = {}").format(
            sql.SQL(rewrite.routine), sql.Identifier(rewrite.setting), rewrite.value()))
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
