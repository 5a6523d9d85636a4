"""Routine bodies that name the moved schema are rewritten, where a parser proves what
each name is; what it cannot prove is refused unless the operator accepts it by name.

A body is text: `SELECT ... FROM letta.agents` still says `letta` after the schema
became `letta_agents`, and fails when called. The rewrite reads SQL-language and
PL/pgSQL bodies with PostgreSQL's own lexer and parser (libpg_query, through pglast):

1. The lexer finds every place the body names the moved schema: an identifier token
   equal to it and followed by `.` (a qualified name), a bare one (`SET search_path =
   letta`), string constants that qualify a name with it (`EXECUTE 'SELECT ...
   letta.x'`, `'letta.seq'::regclass`), and string constants that are its name (which
   count only where the tree shows SQL taking them as a schema: format's `%I.`,
   set_config('search_path', ...), to_regnamespace, a comparison with nspname).
   Comments are not tokens, so they are never touched.
2. Each qualified mention is tagged (its token replaced by a marker identifier) and the
   body parsed: SQL with ``pglast.parse_sql``; PL/pgSQL with ``pglast.parse_plpgsql``,
   then every SQL expression and statement in it with ``parse_sql``. The tree says what
   each marker is: a relation (RangeVar, or the schema of a `schema.table.column`
   reference), a function (FuncCall), a type (TypeName), an operator (`OPERATOR(s.<->)`)
   or a collation. A mention the tree does not place (a PL/pgSQL declaration, a DROP's
   name list, a qualified name that is a table alias) is "cannot be checked".
3. Each placed reference is rewritten at its token's offset to the schema where that
   object lands: a table where its route sends it (split sources: `letta.passages` ->
   `letta_embeddings.passages`, `letta.agents` -> `letta_agents.agents`), its row type,
   indexes and owned sequences with it, enums/domains/sequences with the tables that use
   them (the rule of schema.move_followers), views, functions and the rest in the
   default target schema, and an extension's objects (pgvector kept in the moved
   schema) in `extensions`. A name the source's schema does not hold, or one whose
   objects land in different schemas, is ambiguous unless everything lands in one place.
4. The result is parsed again and must give the same tree as the original except for
   exactly those schema names.

Refused ("cannot be checked", listed by `assess` and refused by `migrate` before
anything is written) unless listed in ``accept_unchecked_routines``: a string naming
the schema as above (dynamic SQL the parser cannot see into), a bare schema name outside a plain
query (`SET search_path`, `GRANT ... ON SCHEMA`), a mention the tree does not place, a
body the parser cannot read, an ambiguous name, and bodies of other languages
(plpython, plv8, ...) that name the schema. An accepted routine moves with the parts
that could be proven rewritten and the rest as it is. SQL-standard bodies (`BEGIN
ATOMIC`, `RETURN ...`) are stored parsed, bound to the objects themselves, and follow
the move without any rewrite; C and internal functions have no body to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pglast
import psycopg

from migrator.config.mapping import SourceMapping
from migrator.engine import queries
from migrator.errors import ConfigError, ConsolidationError

SQL = queries.sections(__file__)
PARSED_LANGUAGES = ("sql", "plpgsql")
NO_BODY_LANGUAGES = ("c", "internal")
EXTENSIONS = "extensions"
# Statements in which a bare identifier can only name a column, table, alias, function
# or type, never a schema: a bare mention of the schema elsewhere is "cannot be checked".
QUERY_STATEMENTS = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CallStmt"}
# Name lists whose next-to-last element is a schema: (node, field) -> kind of object.
NAME_LISTS = {("FuncCall", "funcname"): "function", ("TypeName", "names"): "type",
              ("A_Expr", "name"): "operator", ("SortBy", "useOp"): "operator",
              ("SubLink", "operName"): "operator", ("CollateClause", "collname"): "collation"}
STATEMENT_WORDS = {"VariableSetStmt": "SET", "GrantStmt": "GRANT", "CreateSchemaStmt": "CREATE SCHEMA",
                   "AlterObjectSchemaStmt": "SET SCHEMA", "DropStmt": "DROP"}
KIND_WORDS = {"relation": "table or other relation", "function": "function", "type": "type",
              "operator": "operator", "collation": "collation"}


# --- where each object of the moved schema lands ---------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where the objects of one source's moved schema land, read from the source's
    catalog and the tables' routes, before anything moves."""
    schema: str
    default: str
    relations: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    functions: dict[str, frozenset[str]] = field(default_factory=dict)
    operators: dict[str, frozenset[str]] = field(default_factory=dict)
    collations: dict[str, frozenset[str]] = field(default_factory=dict)
    single: str | None = None        # the one place anything can land, when there is only one

    @property
    def moves(self) -> bool:
        """Does any name change? (A schema that keeps its name and holds no extension: no.)"""
        return self.single != self.schema

    def where(self, kind: str, name: str) -> tuple[str | None, str]:
        """(target schema, "") or (None, why it cannot be told)."""
        table = {"relation": self.relations, "type": self.types}.get(kind)
        if table is not None:
            places = frozenset([table[name]]) if name in table else frozenset()
        else:
            places = {"function": self.functions, "operator": self.operators,
                      "collation": self.collations}[kind].get(name, frozenset())
        if len(places) == 1:
            return next(iter(places)), ""
        if len(places) > 1:
            return None, f"its overloads land in {', '.join(sorted(places))}"
        if self.single is not None:
            return self.single, ""
        return None, f"schema '{self.schema}' holds no {KIND_WORDS[kind]} of that name on the source"

    def known(self, kind: str, name: str) -> bool:
        table = {"relation": self.relations, "type": self.types, "function": self.functions,
                 "operator": self.operators, "collation": self.collations}[kind]
        return name in table


def placement(conn: psycopg.Connection, mapping: SourceMapping, routes: dict[str, str],
              extension_inside: bool) -> Placement:
    """Read on the source: where each object of ``mapping.schema`` lands (schema.py's move)."""
    schema, default = mapping.schema, mapping.target_schema
    params = {"schema": schema}
    followers = {name: {routes.get(t, default) for t in tables}
                 for name, tables in conn.execute(SQL["followers"], params).fetchall()}

    def followed(name: str) -> str:
        places = followers.get(name, set())
        return next(iter(places)) if len(places) == 1 else default

    relations = {}
    for name, kind, is_ext, owner in conn.execute(SQL["relations"], params).fetchall():
        relations[name] = (EXTENSIONS if is_ext else routes.get(owner, default) if owner
                           else followed(name) if kind in ("S", "c") else default)
    types, arrays = {}, {}
    for name, kind, is_ext, relation, element in conn.execute(SQL["types"], params).fetchall():
        if is_ext:
            types[name] = EXTENSIONS
        elif relation is not None:
            types[name] = relations.get(relation, default)
        elif element is not None:
            arrays[name] = element
        elif kind in ("e", "d", "c"):
            types[name] = followed(name)
        else:
            types[name] = default
    for name, element in arrays.items():
        types[name] = types.get(element, default)

    def grouped(section: str) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for name, is_ext in conn.execute(SQL[section], params).fetchall():
            out.setdefault(name, set()).add(EXTENSIONS if is_ext else default)
        return {k: frozenset(v) for k, v in out.items()}

    single = default if len(mapping.target_schemas) == 1 and not extension_inside else None
    return Placement(schema, default, relations, types, grouped("functions"), grouped("operators"),
                     grouped("collations"), single)


# --- reading a body ------------------------------------------------------------------

@dataclass(frozen=True)
class Rewrite:
    """One reference rewritten: where, what it is, before and after."""
    line: int
    kind: str
    before: str        # as the body wrote it: letta.agents, "letta".agents
    after: str         # letta_agents.agents
    known: bool = True  # the source's catalog holds the object (so the target must, too)
    target: str = ""   # the schema it now names
    name: str = ""     # the object's name

    def describe(self) -> str:
        return f"line {self.line}: {self.before} -> {self.after} ({self.kind})"


@dataclass(frozen=True)
class Header:
    """What PL/pgSQL's parser needs of a routine besides its body (bodies.sql, routines)."""
    kind: str = "f"                     # f function, p procedure, w window
    returns_set: bool = False
    result: str = "void"                # a stand-in type (see bodies.sql)
    modes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def create(self, body: str) -> str:
        tag = "$body$"
        while tag in body:
            tag = tag[:-1] + "x$"
        words = {"i": "IN", "o": "OUT", "b": "INOUT", "v": "VARIADIC", "t": "OUT"}
        args = ", ".join(f"{words.get(m, 'IN')} {quote(n) if n else ''} {t}".replace("  ", " ")
                         for m, n, t in zip(self.modes, self.names, self.types))
        what = "PROCEDURE" if self.kind == "p" else "FUNCTION"
        returns = "" if self.kind == "p" else f" RETURNS {'SETOF ' if self.returns_set else ''}{self.result}"
        return f"CREATE {what} consolidation_body_check({args}){returns} LANGUAGE plpgsql AS {tag}{body}{tag}"


@dataclass(frozen=True)
class BodyPlan:
    """What the move does to one routine's body."""
    routine: str                        # regprocedure, as the server it was read on prints it
    name: str
    language: str
    body: str
    rewrites: tuple[Rewrite, ...] = ()
    unchecked: tuple[str, ...] = ()     # why parts of it cannot be checked
    rewritten: str | None = None        # the new body, when something was rewritten

    @property
    def key(self) -> tuple[str, str, str]:
        """What finds the same routine in the scratch database (where its name is remapped)."""
        return (self.name, self.language, self.body)

    def short_name(self, schema: str) -> str:
        """The routine as accept_unchecked_routines names it: without its schema."""
        return self.routine.removeprefix(f"{schema}.").removeprefix(f'"{schema}".')

    def describe(self) -> list[str]:
        return [f"{self.routine} {r.describe()}" for r in self.rewrites]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def identifier(name: str) -> str:
    """A schema name as the rewrite writes it: bare when it can be, quoted otherwise."""
    plain = re.fullmatch(r"[a-z_][a-z0-9_$]*", name) is not None
    return name if plain and not _is_keyword(name) else quote(name)


def _is_keyword(name: str) -> bool:
    try:
        tokens = pglast.parser.scan(name)
    except pglast.parser.ParseError:
        return True
    return len(tokens) != 1 or tokens[0].kind != "NO_KEYWORD"


def _ident_value(token, text: str) -> str | None:
    """The identifier a token spells (quoted as written, unquoted folded to lower case),
    or None when it is not an identifier or keyword."""
    if token.name == "IDENT":
        if text.startswith('"'):
            return text[1:-1].replace('""', '"')
        return text.lower() if text.isascii() else "".join(c.lower() if c.isascii() else c for c in text)
    if token.kind != "NO_KEYWORD":
        return text.lower()
    return None


def _unescape(uident: str) -> str:
    """A U&"..." identifier's text with its \\XXXX and \\+XXXXXX escapes decoded (a UESCAPE
    clause is not: such a name is then just not recognised as the schema)."""
    inner = uident[3:-1] if uident[:3].lower() == 'u&"' else uident
    return re.sub(r"\\(?:\+([0-9A-Fa-f]{6})|([0-9A-Fa-f]{4}))",
                  lambda m: chr(int(m[1] or m[2], 16)), inner).replace('""', '"')


def _string_content(text: str) -> str:
    if text.startswith("$"):
        tag = text[:text.index("$", 1) + 1]
        return text[len(tag):-len(tag)]
    start = text.index("'")
    return text[start + 1:-1].replace("''", "'")


def string_qualifies_with_schema(content: str, schema: str) -> bool:
    """Does a string constant qualify a name with the schema (`letta.x`, `"letta".x`), as
    SQL built at run time or a regclass literal would?"""
    name = re.escape(schema)
    return re.search(rf'(?<![\w$."]){name}\s*\.|"{name}"\s*\.', content, re.IGNORECASE) is not None


def string_is_schema_name(content: str, schema: str) -> bool:
    """Is a string constant the schema's name, or a list of names holding it ('letta',
    'letta, public')? It names the schema only where SQL takes it as one (see _place)."""
    elements = [e.strip().strip('"') for e in content.split(",")]
    return all(re.fullmatch(r"[\w$]+", e) for e in elements) and schema in (e.lower() for e in elements)


# A column compared with a string that is the schema's name makes it a schema name:
# the catalogs' and information_schema's schema columns.
SCHEMA_COLUMN = re.compile(r"(^|_)(nspname|schemaname|schema|schema_name)$")


@dataclass
class _Mention:
    start: int
    end: int               # exclusive
    text: str
    qualified: bool
    marker: str = ""
    kind: str | None = None      # what the tree says it is
    name: str | None = None
    problem: str | None = None
    string: bool = False         # a string constant that is the schema's name


def line_of(body: str, offset: int) -> int:
    return body.count("\n", 0, offset) + 1


def analyze(routine: str, name: str, language: str, body: str, placement: Placement,
            header: Header | None = None, raise_messages: tuple[str, ...] = ()) -> BodyPlan:
    """The plan for one SQL or PL/pgSQL body (see the module's docstring)."""
    plan = BodyPlan(routine, name, language, body)
    schema = placement.schema
    try:
        tokens = pglast.parser.scan(body)
    except pglast.parser.ParseError as exc:
        if re.search(re.escape(schema), body, re.IGNORECASE):
            return _with(plan, unchecked=(f"the lexer cannot read the body ({exc})",))
        return plan
    mentions: list[_Mention] = []
    strings = []
    for i, token in enumerate(tokens):
        text = body[token.start:token.end + 1]
        if token.name in ("SCONST", "USCONST"):
            content = _string_content(text) if token.name == "SCONST" else text
            if string_qualifies_with_schema(content, schema) and content not in raise_messages:
                strings.append((token.start, text))
            elif token.name == "SCONST" and string_is_schema_name(content, schema):
                mentions.append(_Mention(token.start, token.end + 1, text, False, string=True))
            continue
        if token.name == "UIDENT" and schema in _unescape(text).lower():      # U&"lett\0061"
            mentions.append(_Mention(token.start, token.end + 1, text, True,
                                     problem=f"{_clip(text)}: a Unicode-escaped name is not read by the rewrite"))
            continue
        if _ident_value(token, text) != schema:
            continue
        after_dot = i > 0 and tokens[i - 1].name == "ASCII_46"
        before_dot = i + 1 < len(tokens) and tokens[i + 1].name == "ASCII_46"
        if before_dot:
            mentions.append(_Mention(token.start, token.end + 1, text, True))
        elif not after_dot:
            mentions.append(_Mention(token.start, token.end + 1, text, False))
    if not mentions and not strings:
        return plan
    problems = [f"line {line_of(body, at)}: the string {_clip(text)} names schema '{schema}' "
                "(SQL built at run time, a regclass or a search_path set by the body: the parser cannot see into it)"
                for at, text in strings]
    if mentions:
        problems += _place(body, mentions, language, header, schema)
    rewrites = []
    for m in mentions:
        if m.string and m.problem:
            problems.append(f"line {line_of(body, m.start)}: the string {_clip(m.text)} {m.problem}")
            continue
        if not m.qualified or m.problem or m.kind in (None, "alias"):
            if m.problem:
                problems.append(f"line {line_of(body, m.start)}: {m.problem}")
            continue
        target, why = placement.where(m.kind, m.name)
        if target is None:
            problems.append(f"line {line_of(body, m.start)}: {m.text}.{m.name} ({m.kind}): where it lands is "
                            f"ambiguous: {why}")
            continue
        if target == schema:
            continue
        after = identifier(target)
        shown = display_name(m.kind, m.name)
        rewrites.append((m, Rewrite(line_of(body, m.start), m.kind, f"{m.text}.{shown}", f"{after}.{shown}",
                                    placement.known(m.kind, m.name), target, m.name)))
    rewritten = None
    if rewrites:
        pieces, at = [], 0
        for m, r in rewrites:
            pieces += [body[at:m.start], identifier(r.target)]
            at = m.end
        rewritten = "".join(pieces) + body[at:]
        _prove(body, rewritten, [r for _, r in rewrites], language, header, schema)
    return _with(plan, rewrites=tuple(r for _, r in rewrites), unchecked=tuple(dict.fromkeys(problems)),
                 rewritten=rewritten)


def _with(plan: BodyPlan, **changes) -> BodyPlan:
    return BodyPlan(**{**plan.__dict__, **changes})


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def display_name(kind: str, name: str) -> str:
    return name if kind == "operator" else identifier(name)


def _markers(body: str) -> tuple[str, str]:
    """A marker prefix no identifier of the body starts with, and the bare marker."""
    prefix = "zzmoved"
    while prefix in body.lower():
        prefix += "x"
    return prefix, f"{prefix}_bare"


def _place(body: str, mentions: list[_Mention], language: str, header: Header | None,
           schema: str) -> list[str]:
    """Tag each mention, parse, and record what the tree says it is; returns problems
    that concern the whole body (it cannot be parsed)."""
    prefix, shared = _markers(body)
    pieces, at = [], 0
    for i, m in enumerate(mentions):
        # PL/pgSQL: one marker for every bare mention, so a variable named like the schema
        # stays one variable; SQL has no variables, and each mention gets its own.
        if m.string:
            m.marker = f"{prefix}_s{i}"
            pieces += [body[at:m.start], f"'{m.marker}'"]
            at = m.end
            continue
        m.marker = f"{prefix}_{i}" if m.qualified or language == "sql" else shared
        pieces += [body[at:m.start], m.marker]
        at = m.end
    marked = "".join(pieces) + body[at:]
    try:
        statements = _statements(marked, language, header)
    except (pglast.parser.ParseError, ValueError) as exc:
        return [f"the {language} parser cannot read the body ({str(exc).splitlines()[0]})"]
    by_marker = {m.marker: m for m in mentions if m.qualified}
    strings = {m.marker: m for m in mentions if m.string}
    bare_by_marker: dict[str, list[_Mention]] = {}
    for m in mentions:
        if not m.qualified and not m.string:
            bare_by_marker.setdefault(m.marker, []).append(m)
    seen = set()
    for statement in statements:
        for marker, why in _strings_used_as_schema(statement, set(strings)):
            strings[marker].problem = strings[marker].problem or why
        top = statement.get("@")
        for occurrence in _occurrences(statement, set(by_marker) | set(bare_by_marker)):
            marker, node, field_name, index, size = occurrence
            if marker in bare_by_marker:
                if top not in QUERY_STATEMENTS:
                    what = STATEMENT_WORDS.get(top, top.removesuffix("Stmt"))
                    for m in bare_by_marker[marker]:
                        m.problem = m.problem or (f"schema '{schema}' named in a {what} statement "
                                                  "(a schema name on its own is not rewritten)")
                continue
            m = by_marker[marker]
            seen.add(marker)
            kind, name = _classify(node, field_name, index, size)
            if kind is None:
                m.problem = f"{m.text}. in a {node.get('@')} that the rewrite does not place"
            elif m.kind not in (None, kind) or (m.name is not None and m.name != name):
                m.problem = f"{m.text}. read two ways by the parser"
            else:
                m.kind, m.name = kind, name
    for marker, m in by_marker.items():
        if marker not in seen and not m.problem:
            m.problem = (f"{m.text}. outside any SQL statement the parser can place "
                         "(a PL/pgSQL declaration or label)")
    return []


def _strings_used_as_schema(statement: dict, markers: set[str]):
    """(marker, why) for each tagged string constant (the schema's name) that the tree
    uses where SQL takes it as a schema name: the qualifier of a format() (`%I.%I`), the
    value of set_config('search_path', ...), an argument of a function that takes a
    schema name (to_regnamespace, has_schema_privilege), a cast to regnamespace, or a
    comparison with a schema column (nspname, table_schema). Elsewhere it is data: Letta's
    database and role are named like its schema."""
    stack = [(statement, None)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend((item, parent) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        value = node.get("val")
        if node.get("@") == "A_Const" and isinstance(value, dict) and value.get("sval") in markers:
            why = _schema_position(parent or {}, node)
            if why:
                yield value["sval"], why
            continue
        for item in node.values():
            if isinstance(item, (dict, list, tuple)):
                stack.append((item, node))


SCHEMA_FUNCTIONS = {"to_regnamespace", "has_schema_privilege", "pg_my_temp_schema"}
FORMAT_SPEC = re.compile(r"%(?:(\d+)\$)?-?(?:\d+|\*(?:\d+\$)?)?([sIL%])")


def _schema_position(parent: dict, const: dict) -> str | None:
    tag = parent.get("@")
    if tag == "FuncCall":
        name = parent.get("funcname", ({},))[-1].get("sval", "?")
        args = list(parent.get("args", ()))
        at = next((i for i, a in enumerate(args) if a is const), None)
        if name in SCHEMA_FUNCTIONS:
            return f"is passed to {name}(), which takes a schema's name"
        if name == "set_config" and at == 1 and _constant(args[0]) == "search_path":
            return "sets search_path at run time"
        if name == "format" and at is not None and at > 0:
            template = _constant(args[0])
            if template is None:
                return "is passed to format() with a format string the parser cannot read"
            if at in _qualifier_arguments(template):
                return "qualifies a name in format()'s SQL, built at run time"
        return None
    if tag == "TypeCast":
        names = [n.get("sval", "?") for n in parent.get("typeName", {}).get("names", ())]
        if names and names[-1] == "regnamespace":
            return "is cast to regnamespace"
        return None
    if tag == "A_Expr":
        for side in (parent.get("lexpr"), parent.get("rexpr")):
            if isinstance(side, dict) and side.get("@") == "ColumnRef":
                column = side.get("fields", ({},))[-1].get("sval", "")
                if SCHEMA_COLUMN.search(column):
                    return f"is compared with the schema column {column}"
    return None


def _constant(node) -> str | None:
    if isinstance(node, dict) and node.get("@") == "A_Const" and isinstance(node.get("val"), dict):
        return node["val"].get("sval")
    return None


def _qualifier_arguments(template: str) -> set[int]:
    """format()'s argument positions (1 = the first after the template) whose specifier is
    followed by a dot: the schema of a name (`%I.%I`)."""
    found, following = set(), 1
    for match in FORMAT_SPEC.finditer(template):
        if match[2] == "%":
            continue
        position = int(match[1]) if match[1] else following
        following = position + 1
        if template[match.end():match.end() + 1] == ".":
            found.add(position)
    return found


def _classify(node: dict, field_name: str, index: int | None, size: int | None) -> tuple[str | None, str | None]:
    tag = node.get("@")
    if tag == "RangeVar" and field_name == "schemaname":
        return "relation", node["relname"]
    if tag == "ColumnRef" and field_name == "fields":
        rest = size - index - 1
        if rest == 1:
            return "alias", None     # a.column: a table alias named like the schema, not the schema
        following = node["fields"][index + 1]
        if rest == 2 and following.get("@") == "String":
            return "relation", following["sval"]
        return None, None
    kind = NAME_LISTS.get((tag, field_name))
    if kind and index == size - 2:
        return kind, node[field_name][-1]["sval"]
    return None, None


def _occurrences(node, markers: set[str]):
    """(marker, parent node, field, index in the field's list, list size) for each marker
    the tree holds, as a String node or a string field (a list inside a list, as DROP's
    names are, reports the node that holds the outer one)."""
    stack = [(node, None, None)]
    while stack:
        value, parent, field_name = stack.pop()
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, dict) and item.get("@") == "String":
                    if item.get("sval") in markers:
                        yield item["sval"], parent, field_name, i, len(value)
                else:
                    stack.append((item, parent, field_name))
        elif isinstance(value, dict):
            if value.get("@") == "String":
                if value.get("sval") in markers:
                    yield value["sval"], parent, field_name, None, None
                continue
            for key, item in value.items():
                if isinstance(item, str):
                    if item in markers and key != "@":
                        yield item, value, key, None, None
                else:
                    stack.append((item, value, key))


def _statements(text: str, language: str, header: Header | None) -> list[dict]:
    """The body's SQL statements as trees (dicts, '@' naming the node): for PL/pgSQL,
    every SQL expression and statement PL/pgSQL's own parser found in it."""
    if language == "sql":
        return [raw.stmt(depth=None, skip_none=True) for raw in pglast.parse_sql(text)]
    tree = pglast.parse_plpgsql((header or Header()).create(text))
    out = []
    for query, mode in _plpgsql_expressions(tree):
        out += [raw.stmt(depth=None, skip_none=True) for raw in pglast.parse_sql(_as_sql(query, mode))]
    return out


def _plpgsql_expressions(tree) -> list[tuple[str, int]]:
    found, stack = [], [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(reversed(current))
        elif isinstance(current, dict):
            expr = current.get("PLpgSQL_expr")
            if isinstance(expr, dict) and "query" in expr:
                found.append((expr["query"], expr.get("parseMode", 0)))
            stack.extend(reversed(list(current.values())))
    return found


def raise_messages(tree) -> tuple[str, ...]:
    """The message strings of PL/pgSQL's RAISE statements (text for people, not SQL)."""
    found, stack = [], [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, dict):
            stmt = current.get("PLpgSQL_stmt_raise")
            if isinstance(stmt, dict) and isinstance(stmt.get("message"), str):
                found.append(stmt["message"])
            stack.extend(current.values())
    return tuple(found)


def _as_sql(query: str, mode: int) -> str:
    """A PL/pgSQL expression as a statement parse_sql reads (libpg_query's RawParseMode)."""
    if mode == 0:                       # a whole statement
        return query
    if mode == 1:                       # a type name
        return f"SELECT NULL::{query}"
    if mode == 2:                       # an expression
        return f"SELECT {query}"
    # an assignment (target := expression): the expression; the target is a variable
    tokens = pglast.parser.scan(query)
    split = next((t for t in tokens if t.name in ("COLON_EQUALS", "ASCII_61")), None)
    if split is None:
        raise ValueError(f"an assignment without := ({query})")
    return f"SELECT {query[split.end + 1:]}"


def _strip(node):
    """A tree without its offsets, for comparing two parses."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in ("location", "stmt_location", "stmt_len")}
    if isinstance(node, (list, tuple)):
        return [_strip(v) for v in node]
    return node


def _trees(text: str, language: str, header: Header | None):
    if language == "sql":
        return [_strip(raw(depth=None, skip_none=True)) for raw in pglast.parse_sql(text)]
    tree = pglast.parse_plpgsql((header or Header()).create(text))
    return [_without_queries(tree)] + [
        _strip([raw(depth=None, skip_none=True) for raw in pglast.parse_sql(_as_sql(q, m))])
        for q, m in _plpgsql_expressions(tree)]


def _without_queries(node):
    """PL/pgSQL's tree with each SQL text left out (compared parsed, above)."""
    if isinstance(node, dict):
        return {k: _without_queries(v) for k, v in node.items() if k != "query"}
    if isinstance(node, list):
        return [_without_queries(v) for v in node]
    return node


def _prove(before: str, after: str, rewrites: list[Rewrite], language: str, header: Header | None,
           schema: str) -> None:
    """The rewritten body parses to the original's tree but for the rewritten schema names."""
    try:
        old, new = _trees(before, language, header), _trees(after, language, header)
    except pglast.parser.ParseError as exc:
        raise ConsolidationError(f"internal: a rewritten body does not parse ({exc})") from None
    changes: list[tuple[str, str]] = []
    if not _same_but_schemas(old, new, changes) or \
            sorted(changes, key=repr) != sorted(((schema, r.target) for r in rewrites), key=repr):
        raise ConsolidationError("internal: a rewritten body differs from the original by more than "
                                 f"its schema names ({changes})")


def _same_but_schemas(a, b, changes: list) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        return all(_same_but_schemas(a[k], b[k], changes) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_but_schemas(x, y, changes) for x, y in zip(a, b))
    if a != b:
        changes.append((a, b))
    return True


# --- every routine of a schema ---------------------------------------------------------

OTHER_LANGUAGE = ("language {language}: only SQL and PL/pgSQL bodies are parsed, and this one names "
                  "schema '{schema}'")


def plans(conn: psycopg.Connection, schemas: list[str], placement: Placement) -> list[BodyPlan]:
    """The plan of every routine in ``schemas`` whose body names the moved schema
    (``placement.schema``): on the source before the move, or in the scratch database
    after it (bodies still say the old name there)."""
    if not placement.moves:
        return []
    schema = placement.schema
    bare = re.compile(rf'(?<![\w$]){re.escape(schema)}(?![\w$])|"{re.escape(schema)}"', re.IGNORECASE)
    found = []
    for (routine, name, language, body, standard, kind, retset, result, modes, names,
         types) in conn.execute(SQL["routines"], {"schemas": schemas}).fetchall():
        if standard or language in NO_BODY_LANGUAGES or not body or not (bare.search(body) or 'u&"' in body.lower()):
            continue
        if language not in PARSED_LANGUAGES:
            found.append(BodyPlan(routine, name, language, body,
                                  unchecked=(OTHER_LANGUAGE.format(language=language, schema=schema),)))
            continue
        header = Header(kind, retset, result or "void", tuple(modes), tuple(names), tuple(types))
        messages: tuple[str, ...] = ()
        if language == "plpgsql":
            try:
                messages = raise_messages(pglast.parse_plpgsql(header.create(body)))
            except pglast.parser.ParseError:
                pass                      # analyze() says so, if the body names the schema
        plan = analyze(routine, name, language, body, placement, header, messages)
        if plan.rewrites or plan.unchecked:
            found.append(plan)
    return found


def normalize_accepted(entry: str) -> str:
    return "".join(entry.split())


def refused(found: list[BodyPlan], mapping: SourceMapping) -> list[BodyPlan]:
    """The plans with parts that cannot be checked and that the operator did not accept."""
    accepted = {normalize_accepted(a) for a in mapping.accept_unchecked}
    return [p for p in found if p.unchecked and normalize_accepted(p.short_name(mapping.schema)) not in accepted
            and normalize_accepted(p.routine) not in accepted]


def check_accepted(conn: psycopg.Connection, mapping: SourceMapping) -> None:
    """Every routine accept_unchecked_routines names exists in the moved schema."""
    if not mapping.accept_unchecked:
        return
    names = {normalize_accepted(r[0]) for r in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s", (mapping.schema,)).fetchall()}
    names |= {n.removeprefix(f"{mapping.schema}.") for n in names}
    for entry in mapping.accept_unchecked:
        if normalize_accepted(entry) not in names:
            raise ConfigError(f"[sources.{mapping.name}] accept_unchecked_routines names '{entry}', which is "
                                     f"no routine of schema '{mapping.schema}' (write it as `assess` lists it, "
                                     "e.g. \"cleanup(integer)\")")


def unchecked_lines(found: list[BodyPlan], mapping: SourceMapping) -> list[dict]:
    """For the assessment: each routine with parts that cannot be checked, accepted or not."""
    refused_now = {p.routine for p in refused(found, mapping)}
    return [{"routine": p.routine, "accept_as": p.short_name(mapping.schema), "reasons": list(p.unchecked),
             "accepted": p.routine not in refused_now} for p in found if p.unchecked]


def refusal(mapping: SourceMapping, found: list[BodyPlan]) -> str:
    first = found[0]
    more = f" (and {len(found) - 1} more routines: see `consolidate assess`)" if len(found) > 1 else ""
    return (f"{first.routine} names schema '{mapping.schema}' in its body where the rewrite cannot check it: "
            f"{first.unchecked[0]}{more}; rewrite it on the source, or accept it by name in [sources.{mapping.name}] "
            f"accept_unchecked_routines = [\"{first.short_name(mapping.schema)}\"] (it then moves with those parts "
            "unchanged)")


def apply(conn: psycopg.Connection, planned: list[BodyPlan], schemas: list[str]) -> list[BodyPlan]:
    """In the scratch database, after the move, as the routines' owner (the loader): each
    routine whose body the plan (made on the source) rewrites is replaced, CREATE OR
    REPLACE with the new body and everything else as pg_get_functiondef prints it.
    Returns the plans as applied, named as the routines are named now."""
    wanted = {p.key: p for p in planned if p.rewritten is not None}
    if not wanted:
        return []
    applied = []
    conn.execute("SET LOCAL check_function_bodies = off")   # the rewrite was proven by parsing
    for row in conn.execute(SQL["routines"], {"schemas": schemas}).fetchall():
        routine, name, language, body = row[:4]
        plan = wanted.get((name, language, body))
        if plan is None:
            continue
        definition, source = conn.execute(SQL["functiondef"], {"oid": routine}).fetchone()
        conn.execute(replace_body(definition, source, plan.rewritten))
        applied.append(_with(plan, routine=routine))
    expected = sum(1 for p in planned if p.rewritten is not None)
    if len(applied) != expected:
        raise ConsolidationError(f"internal: {expected} routine bodies to rewrite, {len(applied)} found after the move")
    for plan in applied:
        for r in plan.rewrites:
            if r.known and not conn.execute(SQL["exists"], {"kind": r.kind, "schema": r.target,
                                                            "name": r.name}).fetchone()[0]:
                raise ConsolidationError(f"internal: {plan.routine}: {r.after} ({r.kind}) is not where the "
                                         "rewrite placed it")
    return applied


def replace_body(definition: str, body: str, new_body: str) -> str:
    """pg_get_functiondef's CREATE OR REPLACE with its body (the last thing it prints,
    dollar-quoted) replaced."""
    match = re.search(r"(\$(?:function|procedure)\w*\$)\n?$", definition)
    if match is None:
        raise ConsolidationError("internal: a routine definition without a dollar-quoted body")
    tag = match[1]
    head = definition[:match.start()]
    if not head.endswith(tag + body):
        raise ConsolidationError("internal: a routine definition whose body is not where it should be")
    head = head[:-len(tag + body)]
    new_tag = "$function$"
    while new_tag in new_body:
        new_tag = new_tag[:-1] + "x$"
    return head + new_tag + new_body + new_tag
