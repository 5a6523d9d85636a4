"""The stack's applications: one module each (n8n.py, letta.py), used through their
own REST APIs only, never through SQL into their tables: seeding realistic data
(`consolidate seed`) and an application-level fingerprint of what each app lists
(`consolidate fingerprint`), the proof that nothing was lost. registry.py lists
them and is the only way the steps reach app-specific knowledge."""

from migrator.errors import AppError  # noqa: F401  (the apps' clients raise it)

__all__ = ["AppError"]
