"""Who may do what on the unified instance, read from the catalog.

``snapshot`` captures everything the roles step can change (roles, database
and schema ACLs, default ACLs, event triggers, relations, routines, the
registry) so that a run can say exactly what it changed, and a second run can
say "no change". ``matrix`` computes the access matrix (role x schema) that the
step prints, and ``isolation_warnings`` flags any cell the design forbids.
Password hashes are never read here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import psycopg
from rich.markup import escape
from rich.table import Table

from migrator.engine import queries

API_ROLES = ("anon", "authenticated", "service_role")

# The catalog queries live in access.sql: "snapshot" yields (section, key, value) for every
# object the roles step may touch (ACLs sorted, NULL ACLs spelled out with acldefault());
# "registry" the apps and schemas registered; "matrix" role x schema privileges.
SNAPSHOT_SQL = queries.sections(__file__)["snapshot"]
REGISTRY_SQL = queries.sections(__file__)["registry"]

Snapshot = dict[tuple[str, str], object]


def snapshot(conn: psycopg.Connection) -> Snapshot:
    rows = conn.execute(SNAPSHOT_SQL).fetchall()
    if conn.execute("SELECT to_regclass('consolidation_admin.app_schema') IS NOT NULL").fetchone()[0]:
        rows += conn.execute(REGISTRY_SQL).fetchall()
    return {(section, key): value for section, key, value in rows}


@dataclass(frozen=True)
class Change:
    section: str   # "role", "schema", "relation", ...
    key: str       # the object
    change: str    # "added", "removed", "changed"
    detail: str    # what differs (changed) or a short summary (added/removed)


def _short(value: object, limit: int = 90) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value_changed(before: object, after: object) -> str:
    """Lists (ACLs, members) as +added -removed; anything else as before -> after."""
    if isinstance(before, list) and isinstance(after, list):
        return ", ".join([f"+{x}" for x in after if x not in before] + [f"-{x}" for x in before if x not in after])
    return f"{_short(before, 60)} -> {_short(after, 60)}"


def _fields_changed(before: object, after: object) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return "; ".join(f"{k}: {_value_changed(before.get(k), after.get(k))}"
                         for k in keys if before.get(k) != after.get(k))
    return _value_changed(before, after)


def _summary(value: object) -> str:
    """An added or removed object in a few words: its owner when it has one."""
    if isinstance(value, dict) and "owner" in value:
        return f"owner {value['owner']}"
    return _short(value)


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    """Objects added, removed or changed between two snapshots, in a stable order."""
    changes = []
    for key in sorted(set(before) | set(after)):
        section, name = key
        if key not in before:
            changes.append(Change(section, name, "added", _summary(after[key])))
        elif key not in after:
            changes.append(Change(section, name, "removed", _summary(before[key])))
        elif before[key] != after[key]:
            changes.append(Change(section, name, "changed", _fields_changed(before[key], after[key])))
    return changes


MATRIX_SQL = queries.sections(__file__)["matrix"]


@dataclass(frozen=True)
class Cell:
    owner: bool
    usage: bool
    create: bool
    tables: int
    readable: int
    writable: int

    def label(self) -> str:
        """'owner', or what a non-owner can do: read / write (k/n when partial) / create / usage / -."""
        if self.owner:
            return "owner"
        parts = []
        if self.usage and self.tables:
            for verb, count in (("read", self.readable), ("write", self.writable)):
                if count:
                    parts.append(verb if count == self.tables else f"{verb} {count}/{self.tables}")
        if self.create:
            parts.append("create")
        return ", ".join(parts) or ("usage" if self.usage else "-")


Matrix = dict[str, dict[str, Cell]]   # role -> schema -> cell


def matrix(conn: psycopg.Connection, roles: list[str]) -> Matrix:
    result: Matrix = {role: {} for role in roles}
    for role, schema, *cell in conn.execute(MATRIX_SQL, (roles,)).fetchall():
        result[role][schema] = Cell(*cell)
    return {role: dict(sorted(cells.items())) for role, cells in result.items() if cells}


def matrix_json(m: Matrix) -> dict:
    return {role: {schema: {**asdict(cell), "label": cell.label()} for schema, cell in cells.items()}
            for role, cells in m.items()}


def render_matrix(m: Matrix, own: dict[str, set[str]]) -> Table:
    """Schemas down, roles across; a role's own schemas are bold."""
    roles = list(m)
    table = Table(title="Access matrix (schema x role)", show_lines=False)
    table.add_column("schema")
    for role in roles:
        table.add_column(role, overflow="fold")
    schemas = sorted({schema for cells in m.values() for schema in cells})
    for schema in schemas:
        row = []
        for role in roles:
            label = m[role][schema].label() if schema in m[role] else "?"
            row.append(f"[bold]{label}[/bold]" if schema in own.get(role, set()) else label)   # labels are ours
        table.add_row(escape(schema), *row)
    return table


def summarize_changes(changes: list[Change]) -> str:
    """One line for the screen: how many changes of each kind (the list is in the reports).
    ``Changes (438): relation 402 added; role 7 added, 2 changed; ...``"""
    counts: dict[str, dict[str, int]] = {}
    for c in changes:
        kinds = counts.setdefault(c.section, {})
        kinds[c.change] = kinds.get(c.change, 0) + 1
    parts = [f"{section} " + ", ".join(f"{n} {change}" for change, n in sorted(kinds.items()))
             for section, kinds in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))]
    return f"Changes ({len(changes)}): " + "; ".join(parts)


def changes_markdown(changes: list[Change]) -> list[str]:
    """The full change list as a Markdown table (reports/roles.md)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")
    lines = [f"## Changes ({len(changes)})", "", "| object | change | detail |", "|---|---|---|"]
    lines += [f"| {cell(f'{c.section} {c.key}')} | {c.change} | {cell(c.detail)} |" for c in changes]
    return lines


OPS_SCHEMA = "_consolidation_ops"   # backup runs (compose/pgbackrest/backup_runs.sql), read by pg_monitor


def isolation_warnings(m: Matrix, own: dict[str, set[str]], readers: set[str],
                       api_schemas: set[str]) -> list[str]:
    """Cells the design forbids (see sql/): each is one sentence naming role and schema."""
    app_schemas = set().union(*own.values()) if own else set()
    warnings = []
    for role, cells in m.items():
        for schema, cell in cells.items():
            problem = _forbidden(role, schema, cell, own, readers, app_schemas, api_schemas)
            if problem:
                warnings.append(f"role {role} {problem} in schema {schema} ({cell.label()})")
    return warnings


def _forbidden(role: str, schema: str, cell: Cell, own: dict[str, set[str]], readers: set[str],
               app_schemas: set[str], api_schemas: set[str]) -> str | None:
    reaches = cell.usage or cell.create
    if schema == "consolidation_admin" and reaches:
        return "can reach the registry"
    if role in own:  # an app role: its own schemas, and extensions for pgvector (no create, no writes)
        if schema in own[role]:
            return None
        if schema == "extensions":
            return "can create or write" if cell.create or cell.writable else None
        return "can reach another schema" if reaches else None
    if role in readers:
        if schema in app_schemas or schema == OPS_SCHEMA:
            # The backup history (pg_monitor may read it: monitoring's backup age) is not app data.
            return "can create or write" if cell.create or cell.writable else None
        return "can reach a non-application schema" if reaches else None
    # Anyone else (postgres, Supabase's API roles): no application schema, unless opted in for the API.
    if schema in app_schemas and reaches and not (role in API_ROLES and schema in api_schemas):
        return "can reach an application schema"
    return None
