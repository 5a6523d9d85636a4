"""The superuser matrix covers every command the CLI has (tests/support/attacker.py):
a command added to migrator.cli.STEP_MODULES without an entry fails here, and so does
an entry whose test does not exist or does not look for the attacker's evidence."""

from __future__ import annotations

import ast
import re

from migrator import cli
from tests.support import ROOT
from tests.support.attacker import MATRIX

# What opening a database session takes: a command that imports none of these opens none.
DATABASE_MODULES = {"psycopg", "migrator.engine.db", "migrator.engine.loader", "migrator.engine.checksums", "migrator.engine.journal",
                    "migrator.ops.appdump", "migrator.engine.pgtools", "migrator.systems.pgbackrest"}


def _imports(module) -> set[str]:
    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_every_cli_command_has_an_entry():
    commands = {m.COMMAND for m in cli.STEP_MODULES}
    assert commands - set(MATRIX) == set(), "commands without an attacker case"
    assert set(MATRIX) - commands == set(), "matrix entries for commands the CLI no longer has"


def test_each_entry_runs_its_command_under_attack_or_opens_no_database():
    for module in cli.STEP_MODULES:
        case = MATRIX[module.COMMAND]
        if case.no_database:
            assert not (_imports(module) & DATABASE_MODULES), f"{module.COMMAND} opens database sessions"
            continue
        path, _, name = case.test.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        body = re.search(rf"^def {name}\(.*?(?=^def |^@|\Z)", source, re.S | re.M)
        assert body, f"{case.test} does not exist"
        assert "evidence(" in body.group(0), f"{case.test} never checks the attacker's evidence"
        assert f'"{module.COMMAND}"' in body.group(0), f"{case.test} never runs {module.COMMAND}"
