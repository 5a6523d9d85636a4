"""The README stays what a newcomer needs, and true: every command, the exit codes
as errors.py defines them, links that resolve."""

import re

from migrator.cli import STEP_MODULES
from migrator.errors import exit_code_table
from tests.support import ROOT

README = (ROOT / "README.md").read_text()


def test_every_command_is_in_the_readme():
    listed = set(re.findall(r"^\| `([a-z-]+)` \|", README, re.MULTILINE))
    assert {m.COMMAND for m in STEP_MODULES} <= listed


def test_exit_codes_are_errors_py_table():
    assert exit_code_table() in README


def test_links_resolve_and_it_stays_short():
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        assert (ROOT / link).exists(), link
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name}: {link}"
    assert len(README.splitlines()) <= 200
