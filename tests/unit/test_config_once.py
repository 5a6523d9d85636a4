"""consolidation.toml is read once into a frozen configuration (issue 27): each section
is parsed the first time it is asked for and kept; every accessor returns that one
object; nothing outside migrator/config/settings.py reads the TOML's raw tables; each command
declares what it needs beside its COMMAND."""

import ast
import dataclasses
from pathlib import Path

import pytest

from migrator import cli
from migrator.config.mapping import load_mappings
from migrator.config.rolesconfig import RolesConfig
from migrator.config.settings import Config, CutoverConfig, load_settings
from migrator.config.validation import KNOWN_NEEDS
from migrator.ops import pooler

PACKAGE = Path(__file__).resolve().parents[2] / "migrator"
ENV = "POSTGRES_HOST=db\nPOSTGRES_PORT=5433\nPOSTGRES_DB=app\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=pw-x\n"


def config(tmp_path: Path, extra: str = "") -> Config:
    (tmp_path / "env").mkdir()
    (tmp_path / "env/db.env").write_text(ENV)
    path = tmp_path / "consolidation.toml"
    path.write_text('[target]\nenv_file = "env/db.env"\n'
                    '[sources.n8n]\nenv_file = "env/db.env"\nschema = "public"\ntarget_schema = "n8n"\n' + extra)
    return load_settings(path)


def test_each_section_is_parsed_once_and_frozen(tmp_path):
    cfg = config(tmp_path, '[cutover]\napp_db_port = 6543\n[pooler]\nport = 7000\n')
    assert load_mappings(cfg) == load_mappings(cfg) and load_mappings(cfg)[0] is load_mappings(cfg)[0]
    assert RolesConfig.from_settings(cfg) is cfg.roles is RolesConfig.from_settings(cfg)
    assert pooler.from_settings(cfg) is cfg.pooler and cfg.pooler.port == 7000
    assert cfg.cutover == CutoverConfig(app_db_port=6543)
    for frozen in (cfg, cfg.roles, cfg.pooler, cfg.cutover, cfg.compose, cfg.mappings[0]):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, "x", 1)


def test_no_module_but_settings_reads_the_raw_tables():
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "raw":
                readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert readers == []


@pytest.mark.parametrize("module", cli.STEP_MODULES, ids=lambda m: m.COMMAND)
def test_needs_are_declared_with_known_words(module):
    assert set(getattr(module, "NEEDS", set())) <= KNOWN_NEEDS
