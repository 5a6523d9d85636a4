"""One lock per target for every command: readers together, writers alone.

Each step module declares ``LOCK`` next to its COMMAND:

- ``"exclusive"``: it changes the target, a loader role (its password, its grants)
  or the journal. It runs alone.
- ``"exclusive-if-up"``: the same, but it must also work when the target is down
  (``rollback`` is the way back from a broken target; ``restore-instance`` replaces
  a lost one): when the target cannot be reached it runs without the lock.
- ``"shared"``: it only reads the target, and a writer running meanwhile would make
  its reading wrong. It runs beside other readers, never beside a writer.
- ``None``: it does not read the target (sources, the apps, files), or only to
  report (``status``, ``preflight``); it always runs.

The lock is one session-level advisory lock (shared or exclusive on the same key)
held by a superuser session pinned to pg_catalog for the command's length. Its
``application_name`` names the command, so a command that cannot run now says which
one holds the target (MigratorBusy, exit 7, before anything is written). A command
run inside another in the same process (cutover runs migrate, verify, rollback)
finds the lock already held and takes nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from migrator.errors import DatabaseError, MigratorBusy

KEY = 0x636F6E73            # "cons": the key the migrator always used, so an older one is seen too
MODES = ("exclusive", "exclusive-if-up", "shared", None)
APP_PREFIX = "consolidation-lock: "     # application_name of the holding session: "...: migrate"


@dataclass
class _Held:
    mode: str               # "exclusive" or "shared"
    command: str
    conn: psycopg.Connection


_held: _Held | None = None      # what this process holds, for commands run inside a command

HOLDERS_SQL = """
SELECT a.pid, a.application_name, a.backend_start, l.mode
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
  AND l.classid OPERATOR(pg_catalog.=) 0 AND l.objid OPERATOR(pg_catalog.=) %s
  AND l.objsubid OPERATOR(pg_catalog.=) 1 AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
ORDER BY a.backend_start
"""


def holds(mode: str) -> bool:
    """True when this process already holds the lock in ``mode`` or a stronger one."""
    return _held is not None and (_held.mode == "exclusive" or mode == "shared")


def _describe(row: tuple) -> str:
    pid, app, started, _ = row
    name = f"`{app[len(APP_PREFIX):]}`" if app and app.startswith(APP_PREFIX) else "a migrator"
    return f"{name} (pid {pid}, started {started:%Y-%m-%d %H:%M:%S})"


def refusal(conn: psycopg.Connection, command: str) -> MigratorBusy:
    """Exit 7, naming every command that holds the target now."""
    holders = conn.execute(HOLDERS_SQL, (KEY,)).fetchall()
    who = ": " + ", ".join(_describe(r) for r in holders) if holders else ""
    return MigratorBusy(f"another migrator is already running against this target{who}; "
                        f"`{command}` changed nothing (run it again once that one has finished)")


def take(conn: psycopg.Connection, mode: str, command: str) -> None:
    """Take the lock on ``conn`` (session level, until it closes), or refuse with exit 7."""
    fn = "pg_try_advisory_lock_shared" if mode == "shared" else "pg_try_advisory_lock"
    if not conn.execute(f"SELECT pg_catalog.{fn}(%s::pg_catalog.int8)", (KEY,)).fetchone()[0]:
        raise refusal(conn, command)


def require(conn: psycopg.Connection, command: str) -> None:
    """For a writer's own target session (migrate, schema, copy, post-data): the exclusive
    lock, unless this process already holds it (taken by the CLI, or by a cutover). Taken
    here, it ends with ``conn``."""
    if not holds("exclusive"):
        take(conn, "exclusive", command)


@contextmanager
def hold(settings, mode: str | None, command: str) -> Iterator[None]:
    """The command's lock for the length of the block (nothing when ``mode`` is None or
    this process holds it already)."""
    global _held
    if mode is None or holds("shared" if mode == "shared" else "exclusive"):
        yield
        return
    conn = _lock_session(settings, mode, command)
    if conn is None:
        yield
        return
    _held = _Held("shared" if mode == "shared" else "exclusive", command, conn)
    try:
        yield
    finally:
        _held = None
        conn.close()        # the session-level lock ends with its session


def _lock_session(settings, mode: str, command: str) -> psycopg.Connection | None:
    from migrator.engine.db import connect, require_superuser, require_target_version   # db imports settings only

    try:
        conn = connect(settings.target, application_name=APP_PREFIX + command)
    except DatabaseError as exc:
        if mode == "exclusive-if-up":
            from migrator import console
            console.say(f"  note: the target cannot be reached ({exc.problem}); running without its lock")
            return None
        raise
    try:
        require_superuser(conn, settings.target)
        require_target_version(conn, settings.target)
        take(conn, "shared" if mode == "shared" else "exclusive", command)
    except BaseException:
        conn.close()
        raise
    return conn
