"""`consolidate preflight` against real servers: the good case and every bad input.

Each bad input must give one `FAILED:` line naming the database and the problem,
a documented non-zero exit code, and never the password."""

from pathlib import Path

import pytest

from tests.support import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_config(tmp_path, unified_server, n8n_db_server, letta_db_server):
    """A config dir pointing at the three session servers; tests edit one env file."""
    (tmp_path / "env").mkdir()
    files = {"unified": unified_server, "n8n": n8n_db_server, "letta": letta_db_server}
    for name, server in files.items():
        (tmp_path / f"env/{name}.env").write_text(server.env_text())
    (tmp_path / "consolidation.toml").write_text(
        '[target]\nname = "unified"\nenv_file = "env/unified.env"\n'
        '[sources.n8n]\nenv_file = "env/n8n.env"\n[sources.letta]\nenv_file = "env/letta.env"\n')
    return tmp_path


def preflight(config_dir: Path, *extra: str):
    return run_cli("--config", str(config_dir / "consolidation.toml"), "preflight", "--wait", "3", *extra)


def passwords(*servers) -> list[str]:
    return [s.password for s in servers]


def test_prints_every_database(stack_config, unified_server, n8n_db_server, letta_db_server):
    result = preflight(stack_config)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("unified", "n8n", "letta", "17.", "15.", "0.8.0 in extensions", "0.8.0 in letta"):
        assert expected in out, expected
    report = (stack_config / "reports/preflight.json").read_text()
    assert '"server_version_num": 15' in report
    for pw in passwords(unified_server, n8n_db_server, letta_db_server):
        assert pw not in out + result.stderr + report


@pytest.mark.parametrize("name, override, exit_code, expected", [
    ("n8n", {"POSTGRES_PASSWORD": "wrong-password-123"}, 3, "source database 'n8n': authentication failed for user 'n8n'"),
    ("letta", {"POSTGRES_HOST": "no-such-host.invalid"}, 3, "source database 'letta': unknown host 'no-such-host.invalid'"),
    ("n8n", {"POSTGRES_DB": "missing_db"}, 3, "source database 'n8n': database 'missing_db' does not exist"),
    ("unified", {"POSTGRES_PORT": "1"}, 4, "target database 'unified': nothing listens on"),
    ("unified", {"POSTGRES_PASSWORD": "wrong-password-456"}, 4, "target database 'unified': authentication failed"),
])
def test_bad_connection_inputs(stack_config, unified_server, n8n_db_server, letta_db_server,
                               name, override, exit_code, expected):
    server = {"unified": unified_server, "n8n": n8n_db_server, "letta": letta_db_server}[name]
    (stack_config / f"env/{name}.env").write_text(server.env_text(**override))
    result = preflight(stack_config)
    assert result.returncode == exit_code, result.stdout + result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and expected in failed[0], result.stderr
    assert "Traceback" not in result.stderr
    everything = result.stdout + result.stderr
    for pw in passwords(unified_server, n8n_db_server, letta_db_server) + [override.get("POSTGRES_PASSWORD", "@@")]:
        assert pw not in everything


def test_missing_env_key(stack_config, n8n_db_server):
    (stack_config / "env/n8n.env").write_text(n8n_db_server.env_text(POSTGRES_USER=None))
    result = preflight(stack_config)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"FAILED: {stack_config}/env/n8n.env: missing or empty key POSTGRES_USER (database 'n8n')"]


def test_malformed_env_file(stack_config, letta_db_server):
    (stack_config / "env/letta.env").write_text(letta_db_server.env_text() + "oops no equals sign\n")
    result = preflight(stack_config)
    assert result.returncode == 2
    assert "letta.env:6: cannot parse this line" in result.stderr
    assert letta_db_server.password not in result.stdout + result.stderr


def test_target_without_pgvector_is_refused(stack_config, n8n_db_server):
    # The PostgreSQL 15 image has no pgvector: as a target it must be refused.
    (stack_config / "env/unified.env").write_text(n8n_db_server.env_text())
    result = preflight(stack_config)
    assert result.returncode == 4
    assert "pgvector is not available" in result.stderr
