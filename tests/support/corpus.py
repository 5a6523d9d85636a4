"""The corpus (tests/data/corpus.sql), shared by the engine test (tests/engine/test_corpus.py)
and the stack tests (tests/stack/test_cutover.py, tests/stack/test_backups.py): its parts,
how they are loaded, every call of its functions, and how results are compared.

The corpus has two parts, each run in its own database: `n8n` (schema public) and `letta`
(schema letta, Letta's layout). The stacks' legacy databases are the real ones: n8n's is
a plain PostgreSQL 15 without pgvector, so there the n8n part's pgvector block (between
`-- needs: vector` and `-- end needs: vector`) is left out, and so are the calls that use
it (NEEDS_VECTOR); the Letta part has pgvector (inside schema letta, as Letta installs it)
and is loaded whole, next to Letta's own tables (its names do not collide with them)."""

from __future__ import annotations

import re

import pglast
import psycopg

from tests.support import ROOT

CORPUS = ROOT / "tests/data/corpus.sql"

# What the corpus accepts by name, per source: Letta's routine with dynamic SQL.
ACCEPT = {"letta": 'accept_unchecked_routines = ["debug_counts(boolean)"]\n'}


def accepting(mapping: str) -> str:
    """A mapping (the stack's, or attacker.MAPPING) with the corpus's acceptances in its sources' tables."""
    for source, line in ACCEPT.items():
        header = f"[sources.{source}]\n"
        assert mapping.count(header) == 1, header
        mapping = mapping.replace(header, header + line)
    return mapping

SOURCE_SCHEMA = {"n8n": "public", "letta": "letta"}
TARGET_SCHEMA = {"n8n": "n8n", "letta": "letta_agents"}      # where each app's functions land

# Every function of the corpus, called the same way on both sides ({s}: the schema its
# functions live in). Each entry runs in a transaction that is rolled back.
CALLS = {
    "n8n": {
        "match_documents": ["SELECT * FROM {s}.match_documents('[1,2,3]', 0.5, 5)"],
        "match_documents_filtered": ["SELECT * FROM {s}.match_documents_filtered('[3,1,2]', 4, '{{\"lang\": \"en\"}}')"],
        "probe": ["SELECT {s}.probe(12), {s}.inner_probe()"],
        "slugify, word_count, summary": [
            "SELECT {s}.slugify('Hello, World 2'), {s}.word_count('a b  c'), {s}.summary('a long body of text')"],
        "natural_titles": ["SELECT {s}.natural_titles(12)"],
        "note_terms": ["SELECT {s}.note_terms('Running dogs ran')"],
        "current_tenant, tenant_exists": ["SELECT {s}.current_tenant(), {s}.tenant_exists('t1'), {s}.tenant_exists('t9')"],
        "the policy through functions, the view over them": ["SELECT * FROM {s}.note_overview ORDER BY id"],
        "touch_note (trigger notes_touch -> audit)": ["SELECT * FROM {s}.touch_note(4)"],
        "mood_histogram": ["SELECT * FROM {s}.mood_histogram()"],
        "valid_email": ["SELECT {s}.valid_email('a@b.example'), {s}.valid_email('not an email')"],
        "tenant_count": ["SELECT {s}.tenant_count()"],
        "events_in": ["SELECT {s}.events_in(2023), {s}.events_in(2024), {s}.events_in(2025), {s}.events_in(2026)"],
        "free_at": ["SELECT {s}.free_at('2025-03-01 10:00+00'), {s}.free_at('2025-03-01 13:00+00')"],
        "order_total": ["SELECT {s}.order_total(1), {s}.order_total(2)"],
        "refresh_document_words": ["CALL {s}.refresh_document_words()",
                                   "SELECT count(*), sum(words), min(slug) FROM {s}.document_words"],
    },
    "letta": {
        "recall": ["SELECT * FROM {s}.recall('agent-2', '[1,2,1]', 4)"],
        "passage_count": ["SELECT {s}.passage_count('agent-1')"],
        "agent_digest": ["SELECT * FROM {s}.agent_digest('agent-1')"],
        "nearest_agent": ["SELECT {s}.nearest_agent('[1,2,1]'), {s}.nearest_agent('[3,0,1]')"],
        "debug_counts": ["SELECT {s}.debug_counts(false)"],
    },
}
# Functions called through another: trigger functions fire, helpers are called inside.
CALLED_THROUGH = {"notes_touch": "touch_note", "audit": "touch_note", "current_tenant": "note_overview"}
# The n8n calls that use the pgvector block: left out where it is.
NEEDS_VECTOR = {"match_documents", "match_documents_filtered", "probe", "natural_titles", "refresh_document_words"}
VECTOR_BLOCK = re.compile(r"^-- needs: vector$.*?^-- end needs: vector$", re.MULTILINE | re.DOTALL)


def parts(vector: bool = True) -> dict[str, str]:
    """database -> its part of the corpus; without pgvector's block where ``vector`` is false."""
    split = re.split(r"^-- database: (\w+)$", CORPUS.read_text(), flags=re.MULTILINE)
    found = dict(zip(split[1::2], split[2::2]))
    return found if vector else {db: VECTOR_BLOCK.sub("", text) for db, text in found.items()}


def has_vector(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector')").fetchone()[0]


def load(conn: psycopg.Connection, part: str) -> bool:
    """One part into the connected database (as its superuser), statement by statement as
    psql runs a file; with pgvector's block only where the server has pgvector. Returns
    whether the block was loaded. The part's `SET search_path` is reset afterwards: the
    connection may be used for more."""
    vector = has_vector(conn)
    for statement in pglast.split(parts(vector)[part]):
        conn.execute(statement)
    conn.execute("RESET search_path")
    return vector


def calls(app: str, vector: bool = True) -> dict[str, list[str]]:
    return {name: statements for name, statements in CALLS[app].items()
            if vector or app != "n8n" or name not in NEEDS_VECTOR}


def run_calls(conn: psycopg.Connection, app: str, schema: str, vector: bool = True) -> dict[str, list[tuple]]:
    """Every call of one app, each in a transaction rolled back afterwards."""
    conn.execute("SELECT set_config('app.tenant', 't1', false)")
    results = {}
    for name, statements in calls(app, vector).items():
        with conn.transaction(force_rollback=True):
            for statement in statements:
                cursor = conn.execute(statement.format(s=schema))
            results[name] = cursor.fetchall()
    return results


def call_as_corpus_app(conn: psycopg.Connection, app: str, vector: bool = True) -> dict[str, list[tuple]]:
    """On a source (a superuser connection): as `corpus_app`, a plain role (a superuser
    would skip row-level security)."""
    conn.execute("SET ROLE corpus_app")
    try:
        return run_calls(conn, app, SOURCE_SCHEMA[app], vector)
    finally:
        conn.execute("RESET ROLE")


def call_as_login(conninfo: dict, app: str, vector: bool = True) -> dict[str, list[tuple]]:
    """On a target, as the app logs in: its role, its password, its search_path."""
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return run_calls(conn, app, TARGET_SCHEMA[app], vector)


def differing(source: dict[str, dict], after: dict[str, dict], label: str) -> list[str]:
    """The calls whose results ``after`` differ from the ``source``'s, with both results;
    a call made on the source and missing after counts as differing."""
    return [f"{app}.{name}: source {source[app][name]} != {label} {after.get(app, {}).get(name)}"
            for app in source for name in source[app] if after.get(app, {}).get(name) != source[app][name]]


# --- in the compose stacks (tests/stack/) ---

# The stack's own mapping with the corpus's acceptances, mounted beside it: the migrator reads
# CONSOLIDATION_CONFIG, and every path in it stays relative to /app as in the stack's.
CONFIG_IN_CONTAINER = "/app/corpus.toml"


def stack_config(directory) -> list[str]:
    """Writes the stack's consolidation.toml with the corpus's acceptance into
    ``directory``; the `docker compose run` arguments that make the migrator use it."""
    path = directory / "corpus.toml"
    path.write_text(accepting((ROOT / "consolidation.toml").read_text()))
    return ["-v", f"{path}:{CONFIG_IN_CONTAINER}:ro", "-e", f"CONSOLIDATION_CONFIG={CONFIG_IN_CONTAINER}"]


class InStack:
    """The corpus loaded into a compose stack's legacy databases (``db``: service ->
    superuser connection), with what its functions returned there."""

    def __init__(self, db):
        self.db = db
        self.vector: dict[str, bool] = {}
        for app, service in (("n8n", "n8n-db"), ("letta", "letta-db")):
            with db(service) as conn:
                self.vector[app] = load(conn, app)
        self.source = self.call_sources()
        self.after: dict[str, dict] = {}

    def call_sources(self) -> dict[str, dict]:
        out = {}
        for app, service in (("n8n", "n8n-db"), ("letta", "letta-db")):
            with self.db(service) as conn:
                out[app] = call_as_corpus_app(conn, app, self.vector[app])
        return out

    def call_target(self, port: int, passwords: dict[str, str], dbname: str = "postgres") -> dict[str, dict]:
        """On a unified instance (live or a restored copy) published on ``port``, as the apps log in."""
        return {app: call_as_login({"host": "127.0.0.1", "port": port, "user": app, "dbname": dbname,
                                    "password": passwords[f"{app.upper()}_ROLE_PASSWORD"]}, app, self.vector[app])
                for app in ("n8n", "letta")}

    def differing(self, label: str) -> list[str]:
        assert label in self.after, f"{label}: the corpus was not called (did that test run?)"
        return differing(self.source, self.after[label], label)


def routine_settings(conn) -> dict[str, str]:
    """The moved routines' settings on the target (name -> 'key=value;...')."""
    return dict(conn.execute(
        "SELECT p.proname, array_to_string(p.proconfig, ';') FROM pg_proc p"
        " WHERE p.pronamespace IN ('n8n'::regnamespace, 'letta_agents'::regnamespace)"
        " AND p.proconfig IS NOT NULL").fetchall())
