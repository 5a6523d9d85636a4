"""A routine's search_path is a list split by PostgreSQL's grammar (pglast), not by
commas: quoted elements stay whole, and only the moved schema's own element is replaced."""

from __future__ import annotations

from migrator import routines
from migrator.mapping import Rule, SourceMapping

LETTA = SourceMapping("letta", None, "letta", "letta_agents",
                      rules=(Rule("has_vector_column", "letta_embeddings"),))
N8N = SourceMapping("n8n", None, "public", "n8n")


def test_quoted_elements_stay_whole():
    assert routines.parse_list('"$user", "letta, public", letta') == ["$user", "letta, public", "letta"]


def test_the_moved_schema_becomes_every_target_schema_and_extensions_where_pgvector_lived():
    assert routines.rewrite_list(["$user", "letta", "pg_temp"], LETTA, True) == \
        ["$user", "letta_agents", "letta_embeddings", "extensions", "pg_temp"]
    assert routines.rewrite_list(["public"], N8N, False) == ["n8n"]
    # A schema whose name only contains the moved one, or a quoted look-alike, is kept.
    assert routines.rewrite_list(["letta_old", "letta, public"], LETTA, True) is None


def test_what_is_not_a_plain_list_is_left_alone():
    assert routines.parse_list("letta; DROP TABLE x") is None
    assert routines.parse_list('""') is None
    assert routines.normalized("letta; DROP TABLE x", LETTA, True) == "letta; DROP TABLE x"


def test_verify_compares_the_source_as_rewritten_and_quotes_as_the_server_does():
    assert routines.normalized('"$user", letta', LETTA, True) == \
        '"$user", letta_agents, letta_embeddings, extensions'
    assert routines.normalized('"$user",letta_agents, letta_embeddings, extensions') == \
        '"$user", letta_agents, letta_embeddings, extensions'
