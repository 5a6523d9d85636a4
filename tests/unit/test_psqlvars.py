"""psql-style variable substitution: pure logic, no database.

The expected outputs are what psql itself produces for the same input (psql
substitutes only outside quotes, dollar bodies and comments)."""

import pytest

from migrator.config.psqlvars import SqlVariableError, referenced, substitute

VARS = {"role": "n8n", "name": "O'Brien", "odd": 'we"ird role', "dim": "1536"}


@pytest.mark.parametrize("source, expected", [
    ("ALTER ROLE :\"role\" SET x = :'dim';", "ALTER ROLE \"n8n\" SET x = '1536';"),
    ("SELECT :'name'", "SELECT 'O''Brien'"),
    ("GRANT x TO :\"odd\"", "GRANT x TO \"we\"\"ird role\""),
    ("SELECT ':''name'''", "SELECT ':''name'''"),                        # inside a literal
    ("SELECT \":'name'\"", "SELECT \":'name'\""),                        # inside a quoted identifier
    ("DO $$ BEGIN PERFORM :'name'; END $$", "DO $$ BEGIN PERFORM :'name'; END $$"),
    ("DO $f$ x := $$ :'name' $$; $f$", "DO $f$ x := $$ :'name' $$; $f$"),  # tags must match
    ("-- :'name'\nSELECT 1", "-- :'name'\nSELECT 1"),
    ("/* :'name' /* nested :'name' */ still :'name' */ :'role'", "/* :'name' /* nested :'name' */ still :'name' */ 'n8n'"),
    ("SELECT x::text, :'role'::name", "SELECT x::text, 'n8n'::name"),
    ("SELECT E'it\\'s :''role''', :'role'", "SELECT E'it\\'s :''role''', 'n8n'"),
    ("SELECT $1, a$b, arr[1:2]", "SELECT $1, a$b, arr[1:2]"),           # positional param, $ in a word, slice
    ("SELECT a:'role'", "SELECT a'n8n'"),                                 # psql substitutes right after a word too
])
def test_substitutes_like_psql(source, expected):
    assert substitute(source, VARS) == expected


def test_backslash_literal_is_quoted_safely():
    # psycopg uses the E'' form for backslashes: the server reads back the exact value.
    out = substitute("SELECT :'v'", {"v": "a\\b'c"})
    assert out == "SELECT  E'a\\\\b''c'"


def test_unknown_variable_is_an_error():
    with pytest.raises(SqlVariableError, match="variable 'missing' is not defined"):
        substitute("SELECT :'missing'", VARS)


def test_raw_form_of_a_known_variable_is_refused():
    with pytest.raises(SqlVariableError, match="used unquoted"):
        substitute("ALTER ROLE x CONNECTION LIMIT :dim", VARS)


@pytest.mark.parametrize("source", ["SELECT 'open", 'SELECT "open', "DO $x$ never closed", "/* open"])
def test_unterminated_quotes_are_errors(source):
    with pytest.raises(SqlVariableError, match="unterminated"):
        substitute(source, VARS)


def test_referenced_lists_quoted_uses_only():
    text = "SELECT :'a', :\"b\", ':''c''' $$ :'d' $$ -- :'e'\n"
    assert referenced(text) == {"a", "b"}


def test_every_sql_file_substitutes_with_the_default_variables():
    # The shipped files must lex cleanly and use only variables the migrator defines.
    from migrator.config.rolesconfig import RolesConfig
    from migrator.steps.roles import sql_files, variables
    cfg = RolesConfig.defaults()
    values = variables(cfg)
    for path in sql_files(cfg.sql_dir):
        text = path.read_text(encoding="utf-8")
        assert referenced(text) <= set(values), path.name
        assert not referenced(substitute(text, values)), path.name  # nothing left unsubstituted
