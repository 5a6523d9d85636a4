"""Which commands may run together (migrator/engine/runlock.py, docs/engine.md's table), and
names the mapping refuses before any connection: pure logic, no databases."""

from __future__ import annotations

import re

import pytest

from migrator import cli
from migrator.config.mapping import load_mappings
from migrator.config.settings import load_settings
from migrator.engine import runlock
from migrator.errors import ConfigError
from tests.support import ROOT

ENV = "POSTGRES_HOST=db\nPOSTGRES_DB=app\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=pw\n"


def test_every_command_declares_its_lock_and_the_docs_table_says_the_same():
    declared = {m.COMMAND: m.LOCK for m in cli.STEP_MODULES}
    assert all(mode in runlock.MODES for mode in declared.values())
    table = {}
    for line in (ROOT / "docs/engine.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 5 or not cells[1].startswith("`") or cells[2].split()[0] not in ("exclusive", "shared", "none"):
            continue
        mode = {"none": None, "shared": "shared"}.get(cells[2].split()[0],
                                                      "exclusive-if-up" if " when " in cells[2] else "exclusive")
        for command in re.findall(r"`([a-z-]+)`", cells[1]):
            table[command] = mode
    assert table == declared


def test_writers_and_loader_users_are_exclusive():
    """Writers exclude everyone; so does every command that uses a loader (ensuring one resets
    its password). Readers (verify, app-backup) read through throwaway readers of their own."""
    declared = {m.COMMAND: m.LOCK for m in cli.STEP_MODULES}
    for command in ("migrate", "schema", "copy", "post-data", "app-restore", "decommission", "roles"):
        assert declared[command] == "exclusive", command
    for module in cli.STEP_MODULES:
        if "loader." in open(module.__file__, encoding="utf-8").read():
            assert module.LOCK in ("exclusive", "exclusive-if-up"), module.COMMAND


def mapping_error(tmp_path, source_toml: str) -> ConfigError:
    (tmp_path / "env").mkdir()
    (tmp_path / "env/t.env").write_text(ENV)
    (tmp_path / "env/s.env").write_text(ENV)
    config = tmp_path / "consolidation.toml"
    config.write_text('[target]\nenv_file = "env/t.env"\n[sources.n8n]\nenv_file = "env/s.env"\n' + source_toml)
    with pytest.raises(ConfigError) as err:
        load_mappings(load_settings(config))
    assert err.value.exit_code == 2 and "\n" not in err.value.message
    return err.value


@pytest.mark.parametrize("toml", ['schema = "public"\ntarget_schema = "pg_n8n"\n',
                                  'schema = "public"\ntarget_schema = "n8n"\nowner = "pg_n8n_app"\n',
                                  'schema = "public"\ntarget_schema = "n8n"\n'
                                  'rules = [{ when = "has_vector_column", target_schema = "pg_vec" }]\n'])
def test_reserved_pg_names_are_refused(tmp_path, toml):
    assert "is reserved (names starting with pg_ are PostgreSQL's own)" in mapping_error(tmp_path, toml).message


def test_a_name_over_63_bytes_says_so(tmp_path):
    name = "n" * 70
    err = mapping_error(tmp_path, f'schema = "public"\ntarget_schema = "{name}"\n')
    assert f"'{name}' is 70 bytes long; PostgreSQL names are at most 63 bytes" in err.message
    (tmp_path / "ok").mkdir()
    ok = tmp_path / "ok"
    (ok / "env").mkdir()
    for f in ("t", "s"):
        (ok / f"env/{f}.env").write_text(ENV)
    (ok / "c.toml").write_text('[target]\nenv_file = "env/t.env"\n[sources.n8n]\nenv_file = "env/s.env"\n'
                               f'schema = "public"\ntarget_schema = "{"n" * 63}"\n')
    assert load_mappings(load_settings(ok / "c.toml"))[0].target_schema == "n" * 63
