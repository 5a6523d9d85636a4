"""The roles step's pure logic: [roles] validation, variables, the psql command,
password verifiers, snapshot diffs and isolation warnings. No database."""

import base64
import hashlib
import hmac
import importlib.util
import os
import shlex
from pathlib import Path

import pytest

from tests.support import ROOT

from migrator.config.rolesconfig import RolesConfig, load_passwords, parse_config
from migrator.engine import access
from migrator.errors import ConfigError
from migrator.redact import redact
from migrator.steps import roles
from migrator.steps.roles import password_matches, psql_command, variables

CONFIG = Path("/etc/consolidation/consolidation.toml")


def test_defaults_when_roles_table_is_absent():
    cfg = parse_config({}, CONFIG)
    assert [(r.app, r.name, r.connection_limit, r.statement_timeout) for r in cfg.roles] == [
        ("n8n", "n8n", 20, "5min"), ("letta", "letta", 40, "5min"), ("rag", "rag", 20, "2min"),
        ("readonly", "consolidation_readonly", 5, "1min"), ("monitoring", "consolidation_monitor", 3, "30s")]
    assert cfg.vector_dimension == 1536 and cfg.api_schemas == ()
    assert cfg.env_file == Path("/etc/consolidation/env/app-roles.env")
    assert cfg.sql_dir == ROOT / "sql"          # no sql/ beside that config: the one shipped with the package


def test_sql_dir_beside_the_config_wins(tmp_path):
    (tmp_path / "sql").mkdir()
    assert parse_config({}, tmp_path / "c.toml").sql_dir == tmp_path / "sql"
    assert parse_config({"sql_dir": "/opt/x"}, tmp_path / "c.toml").sql_dir == Path("/opt/x")


def test_the_shipped_config_states_the_defaults():
    import tomllib
    raw = tomllib.loads((ROOT / "consolidation.toml").read_text())["roles"]
    assert parse_config(raw, ROOT / "consolidation.toml") == parse_config({}, ROOT / "consolidation.toml")


def test_overrides_and_a_new_application():
    cfg = parse_config({"vector_dimension": 768, "api_schemas": ["rag_documents"],
                        "n8n": {"name": "n8n_app", "connection_limit": 7},
                        "wiki": {"statement_timeout": 30000}}, CONFIG)
    assert cfg.role("n8n").name == "n8n_app" and cfg.role("n8n").connection_limit == 7
    assert cfg.role("n8n").statement_timeout == "5min"        # untouched default
    assert cfg.role("wiki").name == "wiki" and cfg.role("wiki").statement_timeout == "30000"
    values = variables(cfg)
    assert values["n8n_role"] == "n8n_app" and values["wiki_role"] == "wiki"
    assert values["wiki_connection_limit"] == "10"
    assert values["vector_dimension"] == "768" and values["api_schemas"] == "rag_documents"


@pytest.mark.parametrize("raw, message", [
    ({"n8n": {"name": "postgres"}}, "[roles.n8n] name: 'postgres' is not allowed"),
    ({"n8n": {"name": "supabase_admin"}}, "is not allowed"),
    ({"n8n": {"name": "pg_monitor"}}, "is not allowed"),
    ({"n8n": {"name": "N8N"}}, "is not allowed"),
    ({"letta": {"name": "n8n"}}, "role name 'n8n' is used by both n8n and letta"),
    ({"rag": {"connection_limit": 0}}, "[roles.rag] connection_limit: expected an integer from 1 to 10000"),
    ({"rag": {"connection_limit": True}}, "connection_limit"),
    ({"rag": {"statement_timeout": "soon"}}, "[roles.rag] statement_timeout"),
    ({"rag": {"colour": "red"}}, "[roles.rag]: unknown key colour"),
    ({"vector_dimension": 4096}, "vector_dimension: expected an integer from 1 to 2000"),
    ({"api_schemas": "rag_documents"}, "api_schemas: expected a list"),
    ({"api_schemas": ["Bad Name"]}, "api_schemas"),
    ({"vectors": 3}, "unknown key vectors"),
    ({"Wiki": {}}, "application key must be lowercase"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, CONFIG)
    assert message in err.value.message and err.value.exit_code == 2


def test_psql_command_applies_every_file_in_order_with_every_variable():
    cfg = RolesConfig.defaults()
    args = shlex.split(psql_command(cfg))
    assert args[:5] == ["psql", "-X", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
    files = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
    assert [Path(f).name for f in files] == sorted(p.name for p in (ROOT / "sql").glob("[0-9][0-9]-*.sql"))
    given = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-v")
    assert {k: v for k, v in given.items() if k != "ON_ERROR_STOP"} == variables(cfg)


def _scram(password: str, salt: bytes = b"0123456789abcdef", iterations: int = 4096) -> str:
    """A verifier as PostgreSQL stores it (RFC 5802/7677), built independently here."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


def test_password_matches_scram_and_md5():
    stored = _scram("s3cret-pw")
    assert password_matches(stored, "s3cret-pw", "n8n")
    assert not password_matches(stored, "s3cret-pX", "n8n")
    md5 = "md5" + hashlib.md5(b"s3cret-pwn8n").hexdigest()
    assert password_matches(md5, "s3cret-pw", "n8n") and not password_matches(md5, "s3cret-pw", "letta")
    assert not password_matches(None, "x", "n8n") and not password_matches("garbage", "x", "n8n")


def test_passwords_come_from_the_env_file_and_are_redacted(tmp_path):
    env = tmp_path / "app-roles.env"
    env.write_text("N8N_ROLE_PASSWORD=pw-n8n-aaaaaaaa\nLETTA_ROLE_PASSWORD=pw-letta-bbbbbbbb\n"
                   "RAG_ROLE_PASSWORD=pw-rag-cccccccc\nREADONLY_ROLE_PASSWORD=pw-ro-dddddddd\n"
                   "MONITORING_ROLE_PASSWORD=pw-mon-eeeeeeee\n")
    cfg = RolesConfig(env_file=env)
    assert load_passwords(cfg)["letta"] == "pw-letta-bbbbbbbb"
    assert "pw-rag-cccccccc" not in redact("failed: pw-rag-cccccccc")
    env.write_text("N8N_ROLE_PASSWORD=pw-n8n-aaaaaaaa\nRAG_ROLE_PASSWORD=\n")
    with pytest.raises(ConfigError) as err:
        load_passwords(cfg)
    assert "LETTA_ROLE_PASSWORD, RAG_ROLE_PASSWORD, READONLY_ROLE_PASSWORD" in err.value.message
    # The monitoring role's password is optional (env files made before it existed).
    assert "MONITORING" not in err.value.message
    env.write_text("N8N_ROLE_PASSWORD=a\nLETTA_ROLE_PASSWORD=b\nRAG_ROLE_PASSWORD=c\nREADONLY_ROLE_PASSWORD=d\n")
    assert set(load_passwords(cfg)) == {"n8n", "letta", "rag", "readonly"}
    assert "pw-n8n" not in err.value.message


def test_make_env_generates_every_role_password(tmp_path):
    # scripts/init_env.py turns the example into a file with distinct random values.
    spec = importlib.util.spec_from_file_location("init_env", ROOT / "scripts/init_env.py")
    init_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(init_env)
    (tmp_path / "app-roles.env.example").write_text((ROOT / "env/app-roles.env.example").read_text())
    init_env.main(tmp_path)
    created = tmp_path / "app-roles.env"
    assert oct(os.stat(created).st_mode & 0o777) == "0o600"
    passwords = load_passwords(RolesConfig(env_file=created))
    assert set(passwords) == {"n8n", "letta", "rag", "readonly", "monitoring"}
    assert len(set(passwords.values())) == 5 and all(len(p) >= 24 for p in passwords.values())
    assignments = [line for line in created.read_text().splitlines() if line and not line.startswith("#")]
    assert len(assignments) == 5 and not any("__GENERATE" in line for line in assignments)


def test_diff_reports_added_removed_and_changed_fields():
    before = {("role", "n8n"): {"connection_limit": 20, "login": True}, ("schema", "old"): {"owner": "x"}}
    after = {("role", "n8n"): {"connection_limit": 30, "login": True}, ("schema", "new"): {"owner": "y"}}
    changes = access.diff(before, after)
    assert [(c.section, c.key, c.change) for c in changes] == [
        ("role", "n8n", "changed"), ("schema", "new", "added"), ("schema", "old", "removed")]
    assert changes[0].detail == "connection_limit: 20 -> 30"
    assert access.diff(after, dict(after)) == []


def cell(**kw):
    base = dict(owner=False, usage=False, create=False, tables=0, readable=0, writable=0)
    return access.Cell(**{**base, **kw})


def test_cell_labels():
    assert cell(owner=True).label() == "owner"
    assert cell().label() == "-"
    assert cell(usage=True).label() == "usage"
    assert cell(usage=True, tables=4, readable=4).label() == "read"
    assert cell(usage=True, tables=4, readable=2, writable=4, create=True).label() == "read 2/4, write, create"
    assert cell(tables=4, readable=4).label() == "-"          # table grants without USAGE reach nothing


def test_isolation_warnings_flag_exactly_the_forbidden_cells():
    own = {"n8n": {"n8n"}, "letta": {"letta_agents"}}
    m = {
        "n8n": {"n8n": cell(owner=True), "letta_agents": cell(), "extensions": cell(usage=True, tables=1, readable=1),
                "public": cell(usage=True)},
        "letta": {"n8n": cell(), "letta_agents": cell(owner=True), "extensions": cell(usage=True, create=True)},
        "ro": {"n8n": cell(usage=True, tables=1, readable=1), "auth": cell(usage=True),
               "letta_agents": cell(usage=True, tables=1, writable=1)},
        "anon": {"n8n": cell(usage=True), "letta_agents": cell(usage=True), "public": cell(usage=True)},
        "postgres": {"n8n": cell(), "consolidation_admin": cell(usage=True)},
    }
    warnings = access.isolation_warnings(m, own, {"ro"}, api_schemas={"letta_agents"})
    assert warnings == [
        "role n8n can reach another schema in schema public (usage)",
        "role letta can create or write in schema extensions (create)",
        "role ro can reach a non-application schema in schema auth (usage)",
        "role ro can create or write in schema letta_agents (write)",
        "role anon can reach an application schema in schema n8n (usage)",
        "role postgres can reach the registry in schema consolidation_admin (usage)",
    ]


def test_step_is_registered():
    from migrator.cli import STEP_MODULES
    assert roles in STEP_MODULES and roles.COMMAND == "roles"
