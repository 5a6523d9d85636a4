"""Routine bodies are read by PostgreSQL's own lexer and parser (pglast): only references
qualified with the moved schema are rewritten, each to where its object lands; comments,
strings and look-alikes stay; what cannot be proven is listed, never guessed."""

from __future__ import annotations

from pathlib import Path

import pglast
import pytest

from migrator.config.mapping import SourceMapping, load_mappings
from migrator.config.settings import load_settings
from migrator.engine import bodies
from migrator.engine.bodies import Header, Placement
from migrator.errors import ConfigError, ConsolidationError

# Letta's split: agents -> letta_agents, passages (vector) and their enum -> letta_embeddings,
# pgvector (kept in letta on the source) -> extensions.
LETTA = Placement(
    "letta", "letta_agents",
    relations={"agents": "letta_agents", "passages": "letta_embeddings", "agent_view": "letta_agents"},
    types={"agents": "letta_agents", "passages": "letta_embeddings", "kind": "letta_embeddings",
           "vector": "extensions"},
    functions={"helper": frozenset({"letta_agents"}), "l2_distance": frozenset({"extensions"}),
               "twice": frozenset({"letta_agents", "extensions"})},
    operators={"<->": frozenset({"extensions"})}, collations={"natural": frozenset({"letta_agents"})})
# n8n's public -> n8n, nothing else: any name lands in n8n.
N8N = Placement("public", "n8n", relations={"t": "n8n"}, single="n8n")
PLPGSQL = Header("f", False, "integer")


def rewrite(body: str, placement: Placement = LETTA, language: str = "sql", header: Header | None = None):
    header = header or PLPGSQL
    messages = bodies.raise_messages(pglast.parse_plpgsql(header.create(body))) if language == "plpgsql" else ()
    return bodies.analyze("f()", "f", language, body, placement, header, messages)


def test_each_reference_goes_where_its_object_lands():
    plan = rewrite("SELECT a.name, letta.helper(1), 'x'::letta.kind, p.embedding OPERATOR(letta.<->) '[1]'::letta.vector,"
                   " letta.agents.id FROM letta.agents a JOIN \"letta\".passages p ON p.agent_id = a.id"
                   " ORDER BY a.name COLLATE letta.natural")
    assert plan.unchecked == ()
    assert plan.rewritten == (
        "SELECT a.name, letta_agents.helper(1), 'x'::letta_embeddings.kind, p.embedding OPERATOR(extensions.<->) "
        "'[1]'::extensions.vector, letta_agents.agents.id FROM letta_agents.agents a JOIN letta_embeddings.passages p"
        " ON p.agent_id = a.id ORDER BY a.name COLLATE letta_agents.natural")
    assert [r.describe() for r in plan.rewrites][:2] == [
        "line 1: letta.helper -> letta_agents.helper (function)", "line 1: letta.kind -> letta_embeddings.kind (type)"]
    assert '"letta".passages -> letta_embeddings.passages (relation)' in plan.rewrites[-2].describe()


def test_comments_strings_and_look_alikes_are_not_references():
    body = ("-- reads letta.agents\nSELECT letta.id, letta_old.agents.x, x.letta, /* letta.agents */ 1\n"
            "FROM agents letta, letta_old.agents")
    plan = rewrite(body)
    assert plan.rewrites == () and plan.unchecked == () and plan.rewritten is None


def test_offsets_hold_after_non_ascii_text():
    body = "SELECT 'é€ 😀' AS x, letta.helper(2) -- ça\n  FROM letta.agents"
    plan = rewrite(body)
    assert plan.rewritten == "SELECT 'é€ 😀' AS x, letta_agents.helper(2) -- ça\n  FROM letta_agents.agents"
    assert [r.line for r in plan.rewrites] == [1, 2]


def test_plpgsql_statements_and_expressions_are_rewritten_and_messages_kept():
    body = """
DECLARE
  n int := letta.helper(1);
  r record;
BEGIN
  SELECT * INTO r FROM letta.agents WHERE id = 'x';
  IF (SELECT count(*) FROM letta.passages) > 0 THEN
    PERFORM letta.helper(2);
  END IF;
  FOR r IN SELECT * FROM letta.passages LOOP
    n := n + letta.helper(3);
  END LOOP;
  RAISE NOTICE 'done with letta.agents: %', n;
  RETURN n;
END
"""
    plan = rewrite(body, language="plpgsql")
    assert plan.unchecked == ()
    assert [r.describe() for r in plan.rewrites] == [
        "line 3: letta.helper -> letta_agents.helper (function)",
        "line 6: letta.agents -> letta_agents.agents (relation)",
        "line 7: letta.passages -> letta_embeddings.passages (relation)",
        "line 8: letta.helper -> letta_agents.helper (function)",
        "line 10: letta.passages -> letta_embeddings.passages (relation)",
        "line 11: letta.helper -> letta_agents.helper (function)"]
    assert "RAISE NOTICE 'done with letta.agents: %', n;" in plan.rewritten
    assert "SELECT * INTO r FROM letta_agents.agents WHERE" in plan.rewritten


@pytest.mark.parametrize(("body", "reason"), [
    ("BEGIN EXECUTE 'SELECT 1 FROM letta.agents'; RETURN 1; END",
     "the string 'SELECT 1 FROM letta.agents' names schema 'letta'"),
    ("BEGIN PERFORM set_config('search_path', 'letta, public', true); RETURN 1; END",
     "the string 'letta, public' sets search_path at run time"),
    ("BEGIN EXECUTE format('SELECT count(*) FROM %I.agents', 'letta'); RETURN 1; END",
     "the string 'letta' qualifies a name in format()'s SQL"),
    ("BEGIN RETURN (SELECT count(*) FROM information_schema.tables WHERE table_schema = 'letta'); END",
     "the string 'letta' is compared with the schema column table_schema"),
    ("BEGIN RETURN 'letta'::regnamespace::oid::int; END", "the string 'letta' is cast to regnamespace"),
    ("BEGIN RETURN nextval('letta.seq'::regclass); END", "the string 'letta.seq' names schema 'letta'"),
    ("BEGIN SET LOCAL search_path = letta; RETURN 1; END", "schema 'letta' named in a SET statement"),
    ("DECLARE a letta.agents%ROWTYPE; BEGIN RETURN 1; END", "letta. "),
    ("BEGIN DROP TABLE letta.agents; RETURN 1; END", "letta. in a DropStmt"),
    ("BEGIN RETURN letta.missing(1); END",
     "letta.missing (function): where it lands is ambiguous: schema 'letta' holds no function"),
    ("BEGIN RETURN letta.twice(1); END", "its overloads land in extensions, letta_agents"),
])
def test_what_cannot_be_proven_is_listed_not_guessed(body, reason):
    plan = rewrite(body, language="plpgsql")
    assert any(reason in u for u in plan.unchecked), plan.unchecked


def test_a_string_that_is_only_the_schema_s_name_elsewhere_is_data():
    """Letta's database is named like its schema: comparing current_database() with it,
    or storing it, is not a reference to the schema."""
    body = ("BEGIN IF current_database() = 'letta' THEN RETURN 1; END IF; RAISE NOTICE 'letta';"
            " EXECUTE format('ALTER ROLE %I SET work_mem = %L', 'letta', '64MB'); RETURN 0; END")
    plan = rewrite(body, language="plpgsql")
    assert plan.unchecked == () and plan.rewritten is None


def test_an_unsplit_schema_sends_any_name_to_its_one_target():
    plan = rewrite("SELECT * FROM public.t JOIN public.unknown u ON true", N8N)
    assert plan.rewritten == "SELECT * FROM n8n.t JOIN n8n.unknown u ON true" and plan.unchecked == ()
    assert [r.known for r in plan.rewrites] == [True, False]


def test_the_rewrite_is_proven_by_parsing_it_again():
    bodies._prove("SELECT 1 FROM letta.agents", "SELECT 1 FROM letta_agents.agents",
                  [bodies.Rewrite(1, "relation", "letta.agents", "letta_agents.agents", True, "letta_agents", "agents")],
                  "sql", None, "letta")
    with pytest.raises(ConsolidationError, match="differs from the original by more than its schema names"):
        bodies._prove("SELECT 1 FROM letta.agents", "SELECT 2 FROM letta_agents.agents",
                      [bodies.Rewrite(1, "relation", "letta.agents", "letta_agents.agents", True, "letta_agents",
                                      "agents")], "sql", None, "letta")


def test_the_definition_keeps_everything_but_its_body():
    definition = ("CREATE OR REPLACE PROCEDURE letta_agents.p()\n LANGUAGE sql\nAS $procedure$ REFRESH MATERIALIZED"
                  " VIEW letta.v $procedure$\n")
    assert bodies.replace_body(definition, " REFRESH MATERIALIZED VIEW letta.v ", " REFRESH MATERIALIZED VIEW x.v ") \
        == "CREATE OR REPLACE PROCEDURE letta_agents.p()\n LANGUAGE sql\nAS $function$ REFRESH MATERIALIZED VIEW x.v " \
           "$function$"


def test_accepted_routines_are_named_as_assess_prints_them():
    mapping = SourceMapping("letta", None, "letta", "letta_agents", accept_unchecked=("debug_counts( boolean )",))
    unchecked = bodies.BodyPlan("letta.debug_counts(boolean)", "debug_counts", "plpgsql", "...", unchecked=("x",))
    other = bodies.BodyPlan("letta.other(integer)", "other", "plpgsql", "...", unchecked=("y",))
    assert bodies.refused([unchecked, other], mapping) == [other]
    assert 'accept_unchecked_routines = ["other(integer)"]' in bodies.refusal(mapping, [other])


@pytest.mark.parametrize(("value", "message"), [
    ('"cleanup(integer)"', "must be a list of strings"),
    ('["cleanup"]', "'cleanup' is not a routine as `assess` names it"),
    ('[1]', "must be a list of strings"),
])
def test_accept_unchecked_routines_is_checked_with_the_configuration(tmp_path: Path, value, message):
    (tmp_path / "db.env").write_text("POSTGRES_HOST=h\nPOSTGRES_DB=d\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=p\n")
    (tmp_path / "consolidation.toml").write_text(
        '[target]\nenv_file = "db.env"\n[sources.letta]\nenv_file = "db.env"\nschema = "letta"\n'
        f'target_schema = "letta_agents"\naccept_unchecked_routines = {value}\n')
    with pytest.raises(ConfigError, match=message):
        load_mappings(load_settings(tmp_path / "consolidation.toml"))


def test_a_unicode_escaped_schema_name_is_not_guessed():
    plan = rewrite('SELECT * FROM U&"lett\\0061".agents')
    assert plan.rewritten is None and "a Unicode-escaped name is not read by the rewrite" in plan.unchecked[0]
