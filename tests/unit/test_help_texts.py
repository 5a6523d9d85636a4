"""Every subcommand's --help shows its module docstring as written (issue 27: the
paragraphs of restore-instance ran together), in lines that fit a terminal."""

import pytest

from migrator import cli

WIDTH = 100


@pytest.mark.parametrize("module", cli.STEP_MODULES, ids=lambda m: m.COMMAND)
def test_help_keeps_the_docstring_as_written(module, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    with pytest.raises(SystemExit):
        cli._parser().parse_args([module.COMMAND, "--help"])
    shown = capsys.readouterr().out
    doc = (module.__doc__ or "").strip("\n")
    assert doc, f"{module.COMMAND}: no module docstring to show"
    assert doc in shown
    assert [line for line in doc.splitlines() if len(line) > WIDTH] == []
