"""`consolidate roles` as an operator runs it: output, report, exit codes, no
secrets; --dry-run and failures change nothing; the psql path by hand ends in
the same state."""

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from migrator.steps.roles import sql_files
from tests.support import PgServer, ROOT, run_cli
from tests.support.rolestack import fresh_stack, sql_dir_with

pytestmark = pytest.mark.integration



def write_config(tmp_path: Path, server: PgServer, passwords: dict[str, str], sql_dir: Path | None = None) -> Path:
    """consolidation.toml + env files for one unified server (the source is never contacted by `roles`)."""
    env = tmp_path / "env"
    env.mkdir(exist_ok=True)
    (env / "unified.env").write_text(server.env_text())
    (env / "app-roles.env").write_text("".join(f"{app.upper()}_ROLE_PASSWORD={pw}\n" for app, pw in passwords.items()))
    config = tmp_path / "consolidation.toml"
    config.write_text(f'[target]\nenv_file = "env/unified.env"\n[sources.n8n]\nenv_file = "env/unified.env"\n'
                      f'[roles]\nsql_dir = "{sql_dir or ROOT / "sql"}"\n')
    return config


def variables_in(command: str) -> dict[str, str]:
    args = shlex.split(command.replace("\\\n", " "), comments=True)
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-v" and i + 1 < len(args))


def roles_cli(config: Path, *args: str):
    return run_cli("--config", str(config), "roles", "--wait", "5", *args)


def no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def fresh(images):
    stack = fresh_stack(images, apply=False)
    yield stack
    stack.server.container.stop()


def catalog_state(stack) -> tuple:
    with stack.admin() as conn:
        return (conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('n8n', 'letta', 'rag')").fetchone()[0],
                conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('n8n', 'consolidation_admin')"
                             ).fetchone()[0],
                conn.execute("SELECT count(*) FROM pg_event_trigger").fetchone()[0],
                conn.execute("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'").fetchone()[0])


def test_first_run_reports_changes_second_run_no_change(fresh, tmp_path):
    config = write_config(tmp_path, fresh.server, fresh.passwords)
    secrets = [*fresh.passwords.values(), fresh.server.password]

    first = roles_cli(config)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((tmp_path / "reports/roles.json").read_text())
    assert "STEP 1: roles" in first.stdout and "Access matrix" in first.stdout
    assert "password set for role n8n" in first.stdout and "no change" not in first.stdout
    assert report["changed"] is True and set(report["passwords"].values()) == {"set"}
    assert [f["file"] for f in report["files"]] == [p.name for p in sql_files(ROOT / "sql")]
    assert any(c["section"] == "role" and c["key"] == "n8n" and c["change"] == "added" for c in report["changes"])
    assert report["matrix"]["letta"]["letta_embeddings"]["label"] == "owner"
    assert report["matrix"]["letta"]["n8n"]["label"] == "-" and report["warnings"] == []
    no_secret_in(first.stdout + first.stderr + json.dumps(report), *secrets)

    second = roles_cli(config)
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads((tmp_path / "reports/roles.json").read_text())
    assert "no change" in second.stdout and "Changes (" not in second.stdout
    assert report["changed"] is False and report["changes"] == []
    assert set(report["passwords"].values()) == {"unchanged"}
    no_secret_in(second.stdout + second.stderr + json.dumps(report), *secrets)

    # The passwords really work, and the apps get the documented search_path.
    with fresh.login("letta") as conn:
        assert conn.execute("SHOW search_path").fetchone()[0] == "letta_agents, letta_embeddings, extensions"


def test_dry_run_and_failures_change_nothing(fresh, tmp_path):
    untouched = catalog_state(fresh)
    config = write_config(tmp_path, fresh.server, fresh.passwords)
    dry = roles_cli(config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "Changes (" in dry.stdout
    assert json.loads((tmp_path / "reports/roles.json").read_text())["dry_run"] is True
    assert catalog_state(fresh) == untouched

    # A server-side failure in the last file: exit 4, one line naming file and line, nothing applied.
    broken = sql_dir_with(tmp_path, {"99-broken.sql": "-- a comment\nSELECT 1;\nCREATE TABLE n8n.t (x int,);\n"})
    config = write_config(tmp_path, fresh.server, fresh.passwords, broken)
    result = roles_cli(config)
    assert result.returncode == 4, result.stdout + result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
    assert failed == ["FAILED: target database 'unified': 99-broken.sql (line 3): syntax error at or near \")\""]
    assert "Traceback" not in result.stderr
    assert catalog_state(fresh) == untouched

    # An undefined variable is a configuration error, found before connecting.
    (broken / "99-broken.sql").write_text("SELECT :'nope';\n")
    result = roles_cli(config)
    assert result.returncode == 2
    assert result.stderr.strip() == f"FAILED: {broken}/99-broken.sql: variable 'nope' is not defined"

    # A missing password: exit 2, names the key, no value.
    (tmp_path / "env/app-roles.env").write_text(f"N8N_ROLE_PASSWORD={fresh.passwords['n8n']}\n")
    result = roles_cli(config)
    assert result.returncode == 2 and "missing or empty key LETTA_ROLE_PASSWORD" in result.stderr
    no_secret_in(result.stdout + result.stderr, *fresh.passwords.values())
    assert catalog_state(fresh) == untouched


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs the psql client")
def test_psql_by_hand_ends_in_the_same_state(fresh, tmp_path):
    # --print-psql and docs/roles.md give the same variables; its command is the one run.
    config = write_config(tmp_path, fresh.server, fresh.passwords)
    printed = roles_cli(config, "--print-psql")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(f"psql -X -h {fresh.server.host} -p {fresh.server.port} -U supabase_admin"
                                     " -d postgres -v ON_ERROR_STOP=1 --single-transaction")
    readme = (ROOT / "docs/roles.md").read_text()
    block = readme[readme.index("```bash\n", readme.index("**Applying `sql/` by hand**")) + 8:]
    command = block[:block.index("```")].replace("HOST", fresh.server.host).replace("PORT", str(fresh.server.port))
    assert variables_in(command) == variables_in(printed.stdout)
    by_hand = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PGPASSWORD": fresh.server.password})
    assert by_hand.returncode == 0, by_hand.stderr
    # Then the migrator: the only differences are the passwords psql does not set.
    result = fresh.apply()
    assert {(c.section, c.detail) for c in result.changes} == {("role", "has_password: false -> true")}
    assert sorted(c.key for c in result.changes) == sorted(s.name for s in fresh.cfg.roles)
    assert result.warnings == []
