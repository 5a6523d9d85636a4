"""Operator-facing errors. Each carries an exit code and prints as one line.

Exit codes (documented in the README):
  0 success
  1 unexpected internal error (a bug: rerun with --debug for the traceback)
  2 configuration or usage error (env file, mapping file, command line)
  3 a source database is unusable (unreachable, auth, missing database, ...)
  4 the target (unified) database is unusable or refuses the change
  5 verification found a difference
  6 an application (n8n, Letta) or its container is unreachable, unhealthy or refuses a call
  7 another migrator is already running against the target (try again when it has finished)
"""

from __future__ import annotations


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


class VerificationError(ConsolidationError):
    exit_code = 5


class MigratorBusy(ConsolidationError):
    """Another migrator holds the target's lock: nothing is wrong, nothing was changed."""

    exit_code = 7
