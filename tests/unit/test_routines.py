"""A routine's search_path is a list split by PostgreSQL's grammar (pglast), not by
commas: quoted elements stay whole, and only the moved schema's own element is replaced."""

from __future__ import annotations

from migrator.config.mapping import Rule, SourceMapping
from migrator.engine import routines

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


def test_a_quoted_list_is_the_same_list():
    assert routines.parse_list("'public', 'pg_temp'") == ["public", "pg_temp"]
    assert routines.rewrite_list(routines.parse_list("'public', pg_temp"), N8N, True) == ["n8n", "extensions", "pg_temp"]
    # One quoted string is one element (a schema named "public, pg_temp"): not the moved schema.
    assert routines.rewrite_list(routines.parse_list("'public, pg_temp'"), N8N, True) is None


def test_a_text_search_configuration_is_a_qualified_name():
    assert routines.parse_name("public.corpus_simple") == ["public", "corpus_simple"]
    assert routines.parse_name('"Public"."my config"') == ["Public", "my config"]
    assert routines.parse_name("english") == ["english"]
    assert routines.parse_name("public.x; DROP TABLE y") is None
    assert routines.render_name(["n8n", "my config"]) == 'n8n."my config"'
    rewrite = routines.SettingRewrite("public.f(text)", ("public", "corpus_simple"), ("n8n", "corpus_simple"),
                                      routines.TS_CONFIG)
    assert rewrite.describe() == \
        "public.f(text): SET default_text_search_config = 'public.corpus_simple' -> 'n8n.corpus_simple'"
    assert rewrite.value().as_string(None) == "'n8n.corpus_simple'"


def test_custom_settings_naming_the_schema_are_refused_in_one_line():
    assert routines.custom("app.home") and not routines.custom("work_mem")
    assert routines.names_schema("public", "public") and routines.names_schema("public.notes, x", "public")
    assert routines.names_schema('"public"', "public")
    assert not routines.names_schema("public_old", "public") and not routines.names_schema("n8n.public_x", "public")
    found = [routines.UncheckedSetting("public.f(text)", "app.home", "public"),
             routines.UncheckedSetting("public.g()", "app.home", "public.notes")]
    line = routines.refusal(N8N, found)
    assert line.startswith("public.f(text): SET app.home = 'public' names schema 'public', a custom setting")
    assert "(and 1 more: see `consolidate assess`)" in line and "\n" not in line
