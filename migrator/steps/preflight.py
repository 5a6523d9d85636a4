"""preflight: can every database be reached, and what is in it?

Read-only. Connects to the target and every source (waiting, bounded, for
servers that are still starting), and reports per database: server version,
size, schemas with their table counts, pgvector availability and location, and
current client connections. The target must offer pgvector, since Letta's
embeddings need it.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from migrator import console
from migrator.config import argtypes
from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine.db import MIN_TARGET_VERSION, connect
from migrator.errors import DatabaseError, Reported

COMMAND = "preflight"
LOCK = None     # it reports; it must run whatever else runs (migrator/engine/runlock.py)
HELP = "reach every database and print what it holds (read-only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=argtypes.seconds, default=None,
                        help="seconds to wait for a database that is still starting (default: the global --wait)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    run(settings, wait_seconds=args.wait, reports_dir=reports_dir)
    return 0


SCHEMAS_SQL = """
SELECT n.nspname,
       count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p')) AS tables
FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
GROUP BY n.nspname ORDER BY n.nspname
"""
VECTOR_SQL = """
SELECT (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'),
       (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'vector'),
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'vector')
"""
CLIENTS_SQL = """
SELECT coalesce(nullif(application_name, ''), '?') || ' (' || coalesce(usename, '?') || ')', count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
GROUP BY 1 ORDER BY 2 DESC, 1
"""


@dataclass
class DatabaseFacts:
    name: str
    role: str
    location: str
    ok: bool = False
    problem: str | None = None
    server_version: str | None = None
    server_version_num: int | None = None
    size_bytes: int | None = None
    schemas: dict[str, int] = field(default_factory=dict)
    vector_available: str | None = None
    vector_installed: str | None = None
    vector_schema: str | None = None
    clients: dict[str, int] = field(default_factory=dict)


def inspect_database(db: DatabaseSettings, wait_seconds: float) -> DatabaseFacts:
    facts = DatabaseFacts(name=db.name, role=db.role, location=db.describe())
    try:
        with connect(db, wait_seconds) as conn:
            facts.server_version, facts.server_version_num, facts.size_bytes = conn.execute(
                "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
                " pg_database_size(current_database())").fetchone()
            facts.schemas = dict(conn.execute(SCHEMAS_SQL).fetchall())
            facts.vector_available, facts.vector_installed, facts.vector_schema = conn.execute(VECTOR_SQL).fetchone()
            facts.clients = dict(conn.execute(CLIENTS_SQL).fetchall())
    except DatabaseError as exc:
        facts.problem = exc.problem
        return facts
    facts.ok = True
    problems = []
    if db.role == "target" and facts.server_version_num < MIN_TARGET_VERSION:
        problems.append(f"PostgreSQL {facts.server_version.split()[0]} is too old for a target (the migrator "
                        f"needs {MIN_TARGET_VERSION // 10000} or later)")
    if db.role == "target" and not facts.vector_available:
        problems.append("pgvector is not available on this server (needed for the embeddings schemas)")
    if problems:
        facts.ok = False
        facts.problem = "; ".join(problems)
    return facts


def _vector_text(f: DatabaseFacts) -> str:
    if f.vector_installed:
        return f"{f.vector_installed} in {f.vector_schema}"
    return f"available {f.vector_available}" if f.vector_available else "no"


def _size_text(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render(all_facts: list[DatabaseFacts]) -> Table:
    table = Table(title="Preflight", show_lines=True)
    for col in ("database", "role", "where", "server", "size", "schemas (tables)", "pgvector", "clients", "status"):
        table.add_column(col, overflow="fold")
    for f in all_facts:
        schemas = escape(", ".join(f"{s} ({n})" for s, n in f.schemas.items()) or "-")   # names, not markup
        clients = escape(", ".join(f"{k}: {v}" for k, v in f.clients.items()) or "none")
        status = "ok" if f.ok else f"[red]{escape(f.problem)}[/red]"
        table.add_row(f.name, f.role, f.location, f.server_version or "-", _size_text(f.size_bytes),
                      schemas, _vector_text(f) if f.server_version else "-", clients if f.server_version else "-",
                      status)
    return table


def run(settings: Settings, wait_seconds: float | None = None, reports_dir: Path | None = None) -> list[DatabaseFacts]:
    """Inspect every database; raise on the first problem after printing all of them."""
    console.step(1, "preflight: reach every database")
    all_facts = [inspect_database(db, wait_seconds) for db in settings.databases]
    console.print_table(render(all_facts))
    if reports_dir is not None:
        console.write_json(reports_dir / "preflight.json", [asdict(f) for f in all_facts])
    problems = [f for f in all_facts if not f.ok]
    for f in problems:
        console.fail(f"{f.role} database '{f.name}': {f.problem}")
    if problems:
        worst = next((f for f in problems if f.role == "target"), problems[0])
        cause = DatabaseError(worst.name, worst.role, worst.problem or "unusable")
        raise Reported(cause.message, cause.exit_code)
    return all_facts
