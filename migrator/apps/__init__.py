"""Clients for the stack's applications (n8n, Letta), used through their own
REST APIs only, never through SQL into their tables: seeding realistic data
(`consolidate seed`) and an application-level fingerprint of what each app
lists (`consolidate fingerprint`), the proof that nothing was lost."""

from migrator.errors import ConsolidationError


class AppError(ConsolidationError):
    """An application cannot be used (not reachable, not healthy, refused a call).
    Exit code 6. The message names the app and the call, never a secret."""

    exit_code = 6

    def __init__(self, app: str, problem: str):
        self.app, self.problem = app, problem
        super().__init__(f"app '{app}': {problem}")
