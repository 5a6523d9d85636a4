"""Operator-facing errors: one exception tree, one exit-code table.

Every error the operator can act on is a ConsolidationError: it prints as one
line (`FAILED: ...`, never a secret) and exits with its class's code. The
table below is the only list of codes; the README's table is its output
(`python -m migrator.errors`), and a test keeps the two equal.
"""

from __future__ import annotations

EXIT_CODES = {
    0: "success",
    1: "internal error (a bug; rerun with `--debug`)",
    2: "configuration or usage: a config section, env file, option or client tool is wrong (nothing was changed)",
    3: "a source database is unusable (wrong password, unknown host, missing database, gone mid-copy)",
    4: "the target is unusable or refused (same causes, no pgvector, not a superuser, disk nearly full)",
    5: "verification found a difference",
    6: "an application (n8n, Letta) or its container is unreachable, unhealthy or refuses a call",
    7: "another migrator command holds the target (the message names it; nothing was changed; run again later)",
    8: "a backup, restore or restore drill failed (pgBackRest, its repository, or the restored copy)",
}


def exit_code_table() -> str:
    """The README's exit-code table, from EXIT_CODES."""
    return "\n".join(["| code | meaning |", "|---|---|"] + [f"| {c} | {m} |" for c, m in EXIT_CODES.items()])


class ConsolidationError(Exception):
    """Base class: a problem the operator can act on. Message is one line, no secrets."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(ConsolidationError):
    exit_code = 2


class DatabaseError(ConsolidationError):
    """A database cannot be used; ``role`` says whether it is a source or the target."""

    def __init__(self, name: str, role: str, problem: str):
        self.name, self.role, self.problem = name, role, problem
        self.exit_code = 4 if role == "target" else 3
        super().__init__(f"{role} database '{name}': {problem}")


class RollbackRefused(ConsolidationError):
    """The way back needs a legacy database that is unreachable, lacks the app's schema or
    was decommissioned: refused before anything was touched."""

    exit_code = 3


class VerificationError(ConsolidationError):
    exit_code = 5


class BackupError(ConsolidationError):
    """pgBackRest, its repository or a restored copy failed; the message says which step."""

    exit_code = 8


class MigratorBusy(ConsolidationError):
    """Another migrator holds the target's lock: nothing is wrong, nothing was changed."""

    exit_code = 7


class AppStateError(ConsolidationError):
    """An application or its container is unreachable, unhealthy or refuses a call."""

    exit_code = 6


class ServiceError(AppStateError):
    """The app's container (docker engine, compose service) cannot be handled."""


class AppError(AppStateError):
    """An application's API refused or failed a call. The message names the app and the
    call, never a secret."""

    def __init__(self, app: str, problem: str):
        self.app, self.problem = app, problem
        super().__init__(f"app '{app}': {problem}")


class Reported(ConsolidationError):
    """A failure already printed in full (a table of problems): exits with its cause's
    code, without printing another line."""

    already_printed = True

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class StepFailed(ConsolidationError):
    """A composite command (cutover) stopped: its cause, and what was done about it."""

    def __init__(self, cause: ConsolidationError, outcome: str):
        super().__init__(f"cutover failed ({cause.message}); {outcome}")
        self.exit_code = cause.exit_code


if __name__ == "__main__":
    print(exit_code_table())
