"""Consolidate several PostgreSQL databases into one Supabase Postgres instance.

Layout: ``cli`` parses options only; each pipeline step lives in ``steps/<name>.py``;
``settings`` loads and validates configuration; ``db`` opens connections;
``errors`` holds the operator-facing exception tree and exit codes.
"""

__version__ = "0.1.0"
