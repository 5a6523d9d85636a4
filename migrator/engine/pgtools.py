"""Running pg_dump / pg_restore: passwords go through the environment (never
argv, where `ps` would show them), and stderr is redacted before it is shown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from functools import cache
from pathlib import Path

from migrator.config.settings import DatabaseSettings
from migrator.errors import ConfigError, ConsolidationError, DatabaseError
from migrator.redact import redact

PSQL_FENCE = re.compile(r"^\\(un)?restrict \S+\s*$")


def _binary(name: str) -> str:
    # Prefer the newest PostgreSQL client: pg_dump must be >= the server's major.
    for major in ("17", "16"):
        candidate = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ConsolidationError(f"{name} not found: install a PostgreSQL 17 client")
    return found


def _env(db: DatabaseSettings, dbname: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PGHOST=db.host, PGPORT=str(db.port), PGUSER=db.user, PGPASSWORD=db.password,
               PGDATABASE=dbname or db.dbname, PGAPPNAME="consolidation-migrator", PGCONNECT_TIMEOUT="10")
    return env


def private_dir(path: Path) -> Path:
    """A directory only the migrator's user can read (dumps hold every row of a database)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


# pg_restore's "from TOC entry 3370; 1259 16390 INDEX n8n t_x_idx owner": the kind, schema and name.
TOC_ENTRY = re.compile(r"from TOC entry \d+; \d+ \d+ (.{1,120})$")


def run(tool: str, args: list[str], db: DatabaseSettings, dbname: str | None = None,
        what: str = "") -> subprocess.CompletedProcess:
    # umask 077: dumps and listings hold data (the target's dump holds auth and vault), owner-only.
    proc = subprocess.run([_binary(tool), *args], env=_env(db, dbname), capture_output=True, text=True,
                          umask=0o077)
    if proc.returncode != 0:
        lines = [line for line in redact(proc.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if "error:" in line]     # not the "detail:" line after it
        detail = (errors or lines or [f"exit code {proc.returncode}"])[0 if errors else -1]
        entry = next((m[1] for m in map(TOC_ENTRY.search, lines) if m), None)
        at = f" at {entry.strip()}" if entry else ""      # pg_restore names the object it was restoring
        raise DatabaseError(db.name, db.role, f"{tool} {what} failed{at}: {detail}".replace("  ", " "))
    return proc


def server_major(tool_version_output: str) -> int:
    return int(tool_version_output.split()[-1].split(".")[0])


def client_version(tool: str = "pg_dump") -> str:
    return subprocess.run([_binary(tool), "--version"], capture_output=True, text=True).stdout.strip()


@cache
def client_major(tool: str = "pg_dump") -> int:
    """Asked once per process: the cutover checks it several times, some inside its window."""
    return server_major(client_version(tool))


def require_client_for(conn, db: DatabaseSettings) -> None:
    """pg_dump/pg_restore must be at least the server's major version: refused up front
    (exit 2), before anything is written, instead of failing half-way with pg_dump's detail line.

    :raises ConfigError: naming the client, the server and the way out."""
    server = conn.info.server_version // 10000
    client = client_major()
    if client < server:
        raise ConfigError(f"pg_dump {client} cannot dump PostgreSQL {server} ({db.name}); run the migrator "
                          f"from its image (`docker compose run --rm db-tools ...`) or install a PostgreSQL "
                          f"{server} client")


def restore_list(dump: Path, db: DatabaseSettings) -> list[str]:
    """The table of contents of a custom/directory dump (pg_restore --list)."""
    key = _dump_key(dump) if dump.is_file() else None
    if key is None or key not in _LISTED:
        listed = run("pg_restore", ["--list", str(dump)], db, what="--list").stdout.splitlines()
        if key is None:
            return listed
        _LISTED[key] = listed
    return list(_LISTED[key])


# What pg_restore said about a dump file, kept for this process: the cutover renders the
# per-table index scripts before its window (post_data.prerender) and only runs them in
# it. Keyed by the dump's path, size and mtime: a dump written again (the schema step
# redone) is read again.
_RENDERED: dict[tuple, str] = {}
_LISTED: dict[tuple, list[str]] = {}


def _dump_key(dump: Path) -> tuple:
    stat = dump.stat()
    return str(dump.resolve()), stat.st_size, stat.st_mtime_ns


def forget(dump: Path) -> None:
    """Before a dump file is written again: what was read from its old content goes."""
    path = str(dump.resolve())
    for cached in (_RENDERED, _LISTED):
        for key in [k for k in cached if k[0] == path]:
            cached.pop(key, None)


def restore_script(dump: Path, toc_lines: list[str], db: DatabaseSettings, what: str = "") -> str:
    """The SQL pg_restore would run for these TOC entries (no connection: -f -)."""
    key = (*_dump_key(dump), tuple(toc_lines))
    if key not in _RENDERED:
        _RENDERED[key] = _render(dump, toc_lines, db, what)
    return _RENDERED[key]


def _render(dump: Path, toc_lines: list[str], db: DatabaseSettings, what: str) -> str:
    listing = dump.parent / f".{dump.name}.{os.getpid()}.{threading.get_ident()}.list"
    listing.write_text("\n".join(toc_lines) + "\n")
    try:
        script = run("pg_restore", ["--no-owner", "--no-acl", "-L", str(listing), "-f", "-", str(dump)],
                     db, what=what).stdout
    finally:
        listing.unlink(missing_ok=True)
    # Since 17.6 scripts are fenced with psql meta-commands (\restrict KEY ... \unrestrict KEY)
    # against injected meta-commands; we run the SQL ourselves, not through psql.
    return "".join(line for line in script.splitlines(keepends=True)
                   if not PSQL_FENCE.match(line))


def restore_listed(dump: Path, toc: list[str], hands: DatabaseSettings, *, dbname: str | None = None,
                   options: tuple[str, ...] = ("--single-transaction",), listing: Path | None = None,
                   what: str = "") -> None:
    """The one way the migrator restores objects: exactly the TOC entries ``toc`` (written to a
    ``-L`` list, removed afterwards) of ``dump`` into ``dbname``, as ``hands`` (a loader, never a
    superuser: restoring runs the dump's expressions), without owners or grants, stopping at the
    first error. ``options``: one transaction by default; post-data passes ``--jobs`` instead."""
    listing = listing or dump.parent / f".{dump.name}.{os.getpid()}.{threading.get_ident()}.list"
    listing.write_text("\n".join(toc) + "\n")
    try:
        run("pg_restore", ["--no-owner", "--no-acl", "--exit-on-error", *options, "-L", str(listing),
                           "-d", dbname or hands.dbname, str(dump)], hands, dbname=dbname, what=what)
    finally:
        listing.unlink(missing_ok=True)


def toc_lines(dump: Path, db: DatabaseSettings, schemas: set[str]) -> list[str]:
    """pg_restore's TOC without the SCHEMA entries (and their comments): we create schemas ourselves."""
    keep = []
    for line in restore_list(dump, db):
        parts = line.split()
        if not line.strip() or line.startswith(";"):
            continue
        if len(parts) > 5 and parts[3] == "SCHEMA" and parts[5] in schemas:
            continue
        if "COMMENT - SCHEMA" in line and any(f"SCHEMA {s} " in line + " " for s in schemas):
            continue
        keep.append(line)
    return keep
