"""Every input checked before the window: configuration, options, the target login's
rights and the client tools are refused up front, in one line, with their exit code,
and nothing is written on the target before every refusal has passed."""

from __future__ import annotations

import time

import pytest

from migrator import console
from migrator.redact import register_secret
from tests.support import PgServer, run_cli, run_migrator, write_stack_config

pytestmark = pytest.mark.integration

MAPPING = '[sources.n8n]\nschema = "public"\ntarget_schema = "n8n"\n'


@pytest.fixture
def target(target_db):
    """Each test's target: a database of its own on the session's unified server (conftest)."""
    return target_db


def one_line(result, code: int, text: str) -> None:
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.startswith("FAILED:") and result.stderr.strip().count("\n") == 0, result.stderr
    assert text in result.stderr, result.stderr


def untouched(target) -> None:
    with target.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', '_consolidation')"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_loader%'"
                            ).fetchone()[0] == 0


@pytest.mark.parametrize("extra, message", [
    ('[roles.n8n]\nconection_limit = 5\n', "[roles.n8n]: unknown key conection_limit"),
    ('[role]\nx = 1\n', "unknown section [role]"),
    ('[cutover]\napp_db_port = "five"\n', "[cutover] app_db_port: expected a int"),
    ('[compose]\nprojekt = "x"\n', "[compose]: unknown key projekt"),
])
def test_a_typo_anywhere_in_the_config_stops_migrate_before_it_connects(tmp_path, target, n8n_db_server,
                                                                         extra, message):
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, MAPPING + extra)
    one_line(run_cli("--config", str(config / "consolidation.toml"), "migrate"), 2, message)
    untouched(target)


def test_an_invalid_name_regex_is_a_configuration_error(tmp_path, target, n8n_db_server):
    mapping = MAPPING + 'rules = [{ when = "name:(unclosed", target_schema = "n8n_other" }]\n'
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, mapping)
    one_line(run_cli("--config", str(config / "consolidation.toml"), "migrate"), 2, "invalid regex in 'name:(unclosed'")


def test_missing_app_role_passwords_stop_cutover_before_the_window(tmp_path, target, n8n_db_server):
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, MAPPING)
    one_line(run_cli("--config", str(config / "consolidation.toml"), "cutover"), 2, "app-roles.env: env file not found")
    untouched(target)


@pytest.mark.parametrize("option", [["--jobs", "0"], ["--jobs", "-1"], ["--split-mb", "0"], ["--index-jobs", "x"]])
def test_bad_numbers_are_refused_by_the_parser(tmp_path, target, n8n_db_server, option):
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, MAPPING)
    one_line(run_cli("--config", str(config / "consolidation.toml"), "migrate", *option), 2, option[0])
    untouched(target)


def test_a_target_login_without_superuser_rights_is_refused_before_any_write(tmp_path, target, n8n_db_server):
    with target.connect() as conn:
        conn.execute("CREATE ROLE weak LOGIN PASSWORD 'weak-pw-123' CREATEDB")
    weak = PgServer(target.container, target.host, target.port, "weak", "weak-pw-123", target.dbname)
    config = write_stack_config(tmp_path, weak, {"n8n": n8n_db_server}, MAPPING)
    one_line(run_migrator(config, "migrate"), 4, "user 'weak' is not a superuser")
    untouched(target)


def test_an_old_pg_dump_is_refused_before_any_write(tmp_path, target, n8n_db_server):
    """The host's PostgreSQL 15 client against a PostgreSQL 17 target (the migrator image has 17)."""
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, MAPPING)
    result = run_cli("--config", str(config / "consolidation.toml"), "migrate")
    one_line(result, 2, "cannot dump PostgreSQL 17")
    untouched(target)


def test_the_global_wait_is_not_overridden_by_the_command(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env/x.env").write_text("POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=1\nPOSTGRES_DB=x\n"
                                        "POSTGRES_USER=x\nPOSTGRES_PASSWORD=x-password\n")
    (tmp_path / "consolidation.toml").write_text('[target]\nenv_file = "env/x.env"\n'
                                                 '[sources.x]\nenv_file = "env/x.env"\n')
    started = time.monotonic()
    result = run_cli("--config", str(tmp_path / "consolidation.toml"), "--wait", "1", "preflight")
    assert result.returncode in (3, 4) and time.monotonic() - started < 30, result.stderr


def test_object_names_are_printed_not_read_as_markup(tmp_path, source_db, target):
    source = source_db      # PostgreSQL 15: a database of its own on the session's source server
    with source.connect() as conn:
        conn.execute('CREATE TABLE "[/x]" (id int PRIMARY KEY); INSERT INTO "[/x]" VALUES (1);'
                     'CREATE TABLE "[bold]b" (id int)')
    config = write_stack_config(tmp_path, target, {"n8n": source}, MAPPING)
    result = run_migrator(config, "migrate")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    verify = run_migrator(config, "verify")
    assert verify.returncode == 0, verify.stderr
    with target.connect() as conn:
        assert conn.execute('SELECT count(*) FROM n8n."[/x]"').fetchone()[0] == 1


def test_a_schema_holding_only_a_collation_is_not_taken_for_empty(tmp_path, target, n8n_db_server):
    with target.connect() as conn:
        conn.execute('CREATE SCHEMA n8n; CREATE COLLATION n8n.mine FROM "C"')
    config = write_stack_config(tmp_path, target, {"n8n": n8n_db_server}, MAPPING)
    one_line(run_migrator(config, "migrate"), 4, "schema 'n8n' already exists and holds 1 objects")


def test_step_banners_are_redacted(capsys):
    register_secret("banner-secret-123")
    console.step(1, "connecting with banner-secret-123 [/oops]")
    out = capsys.readouterr().out
    assert "banner-secret-123" not in out and "[/oops]" in out
