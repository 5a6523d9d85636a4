"""Which source schema goes to which target schema: data, not code.

Each ``[sources.<name>]`` table in consolidation.toml says which schema of the
source database moves (``schema``), where it lands (``target_schema``), which app
role ends up owning it (``owner``), and optional routing rules that send some
tables elsewhere. A rule is ``{ when = "<predicate>", target_schema = "..." }``;
predicates: ``has_vector_column`` (a column typed with pgvector's ``vector``),
``name:<regex>`` (table name matches). The first matching rule wins.
``accept_unchecked_routines`` lists routines (``"name(argument types)"``, as `assess`
prints them) whose bodies name the moved schema where the rewrite cannot check it
(migrator/engine/bodies.py): they move anyway, with those parts unchanged.

Types and sequences follow the tables that use them: an object used only by
tables routed to one other schema moves there; anything else stays in the
source's default target schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from migrator.config.settings import DatabaseSettings, Settings
from migrator.errors import ConfigError

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_NAME_BYTES = 63          # PostgreSQL's NAMEDATALEN - 1: longer names are cut short, not refused
RESERVED_PREFIX = "pg_"      # schemas and roles named pg_* are the server's own (CREATE refuses them)
PREDICATES = ("has_vector_column",)
SOURCE_KEYS = {"env_file", "schema", "target_schema", "owner", "rules", "accept_unchecked_routines"}
# A routine as `assess` names it: name(argument types), the schema optional.
ROUTINE_NAME = re.compile(r"^[^\s()][^()]*\([^()]*\)$")


@dataclass(frozen=True)
class Rule:
    when: str
    target_schema: str

    def matches(self, table: str, has_vector: bool) -> bool:
        if self.when == "has_vector_column":
            return has_vector
        if self.when.startswith("name:"):
            return re.fullmatch(self.when[5:], table) is not None
        return False


@dataclass(frozen=True)
class SourceMapping:
    name: str
    db: DatabaseSettings
    schema: str                      # schema in the source database
    target_schema: str               # default schema on the target
    owner: str | None = None         # app role that owns the target schemas afterwards
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    accept_unchecked: tuple[str, ...] = ()   # routines moved although their bodies cannot be checked

    @property
    def target_schemas(self) -> tuple[str, ...]:
        names = [self.target_schema] + [r.target_schema for r in self.rules]
        return tuple(dict.fromkeys(names))

    def route(self, table: str, has_vector: bool) -> str:
        for rule in self.rules:
            if rule.matches(table, has_vector):
                return rule.target_schema
        return self.target_schema


def _ident(value: object, where: str) -> str:
    if isinstance(value, str) and len(value.encode()) > MAX_NAME_BYTES:
        raise ConfigError(f"{where}: '{value}' is {len(value.encode())} bytes long; PostgreSQL names are at most "
                          f"{MAX_NAME_BYTES} bytes")
    if not isinstance(value, str) or not IDENT.match(value):
        raise ConfigError(f"{where}: '{value}' is not a plain lower-case identifier")
    return value


def _created(value: object, where: str, what: str) -> str:
    """A name the migration creates on the target (a schema, a role): also not one of the server's own."""
    name = _ident(value, where)
    if name.startswith(RESERVED_PREFIX):
        raise ConfigError(f"{where}: {what} '{name}' is reserved (names starting with {RESERVED_PREFIX} are "
                          "PostgreSQL's own)")
    return name


def _routines(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: accept_unchecked_routines must be a list of strings like \"cleanup(integer)\"")
    for entry in value:
        if not ROUTINE_NAME.match(entry.strip()):
            raise ConfigError(f"{where}: accept_unchecked_routines: '{entry}' is not a routine as `assess` names it "
                              "(name(argument types), e.g. \"cleanup(integer)\")")
    return tuple(v.strip() for v in value)


def load_mappings(settings: Settings) -> list[SourceMapping]:
    """Every source's mapping, parsed once per configuration (``settings.mappings``)."""
    return list(settings.mappings)


def parse_mappings(settings: Settings) -> list[SourceMapping]:
    """Validate every source's mapping; target schemas must not collide across sources."""
    mappings: list[SourceMapping] = []
    claimed: dict[str, str] = {}
    sources = settings.section("sources")
    for db in settings.sources:
        cfg = sources[db.name]
        where = f"{settings.config_file}: [sources.{db.name}]"
        if "schema" not in cfg or "target_schema" not in cfg:
            raise ConfigError(f"{where} needs schema and target_schema")
        unknown = set(cfg) - SOURCE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]} (expected {', '.join(sorted(SOURCE_KEYS))})")
        if not isinstance(cfg.get("rules", []), list) or not all(isinstance(r, dict) for r in cfg.get("rules", [])):
            raise ConfigError(f"{where}: rules must be a list of {{ when = ..., target_schema = ... }} tables")
        rules = []
        for i, rule in enumerate(cfg.get("rules", [])):
            when = rule.get("when", "")
            if when not in PREDICATES and not when.startswith("name:"):
                raise ConfigError(f"{where} rule {i + 1}: unknown predicate '{when}' "
                                  f"(use {', '.join(PREDICATES)} or name:<regex>)")
            if when.startswith("name:"):
                try:
                    re.compile(when[5:])
                except re.error as exc:
                    raise ConfigError(f"{where} rule {i + 1}: invalid regex in '{when}' ({exc})") from None
            rules.append(Rule(when, _created(rule.get("target_schema"), f"{where} rule {i + 1}", "target schema")))
        mapping = SourceMapping(
            name=db.name, db=db, schema=_ident(cfg["schema"], where),
            target_schema=_created(cfg["target_schema"], where, "target schema"),
            owner=_created(cfg["owner"], where, "owner role") if cfg.get("owner") else None, rules=tuple(rules),
            accept_unchecked=_routines(cfg.get("accept_unchecked_routines", []), where))
        for schema in mapping.target_schemas:
            if schema in claimed:
                raise ConfigError(f"{where}: target schema '{schema}' is also used by source '{claimed[schema]}'")
            if schema.startswith("_consolidation") or schema in RESERVED_SCHEMAS:
                raise ConfigError(f"{where}: target schema '{schema}' is reserved")
            claimed[schema] = db.name
        mappings.append(mapping)
    return mappings


# Supabase's own schemas: never a migration target.
RESERVED_SCHEMAS = {"public", "auth", "storage", "extensions", "graphql", "graphql_public", "realtime",
                    "vault", "pgbouncer", "supabase_functions", "supabase_migrations", "net", "cron",
                    "pg_catalog", "information_schema"}
