"""Rewriting app env files: untouched lines stay byte for byte, secrets masked."""

import stat

import pytest

from migrator.config.envfile import masked_diff, render, rewrite, values
from migrator.errors import ConfigError

ORIGINAL = (
    "# n8n settings\n"
    "\n"
    "DB_TYPE=postgresdb\n"
    "export DB_POSTGRESDB_HOST=n8n-db   # the old server\n"
    "DB_POSTGRESDB_PASSWORD='old-secret-pw'\n"
    'N8N_ENCRYPTION_KEY="keep me exactly"\n'
    "UNRELATED = spaced value\n"
    "DB_POSTGRESDB_USER=postgres"          # no newline at the end
)


def test_changes_only_the_named_keys():
    after = render(ORIGINAL, {"DB_POSTGRESDB_HOST": "unified", "DB_POSTGRESDB_PASSWORD": "new-pw",
                              "DB_POSTGRESDB_USER": "n8n", "DB_POSTGRESDB_SCHEMA": "n8n"})
    assert after == (
        "# n8n settings\n"
        "\n"
        "DB_TYPE=postgresdb\n"
        "export DB_POSTGRESDB_HOST=unified   # the old server\n"
        "DB_POSTGRESDB_PASSWORD='new-pw'\n"
        'N8N_ENCRYPTION_KEY="keep me exactly"\n'
        "UNRELATED = spaced value\n"
        "DB_POSTGRESDB_USER=n8n\n"
        "DB_POSTGRESDB_SCHEMA=n8n\n")


def test_values_needing_quotes_are_quoted_so_compose_reads_them_back():
    after = render("A=1\n", {"A": 'has space#and"quote$'})
    assert after == "A='has space#and\"quote$'\n"
    assert values(after) == {"A": 'has space#and"quote$'}
    both = render('A="x"\n', {"A": "it's $HOME"})              # a double-quoted key stays double-quoted
    assert both == 'A="it\'s \\$HOME"\n' and values(both) == {"A": "it's $HOME"}


def test_remove_and_crlf_kept():
    text = "KEEP=1\r\nLETTA_PG_HOST=x\r\nLETTA_PG_URI=postgresql://a:b@c/d\r\n"
    after = render(text, {"LETTA_PG_URI": "postgresql://u:p@unified:5432/postgres"}, remove=("LETTA_PG_HOST",))
    assert after == "KEEP=1\r\nLETTA_PG_URI=postgresql://u:p@unified:5432/postgres\r\n"


def test_rewrite_keeps_backup_and_mode(tmp_path):
    path = tmp_path / "n8n.env"
    path.write_text(ORIGINAL)
    result = rewrite(path, {"DB_POSTGRESDB_HOST": "unified"}, stamp="20260101T000000Z")
    assert result.backup.read_text() == ORIGINAL
    assert result.backup.name == "n8n.env.20260101T000000Z.bak"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "DB_POSTGRESDB_HOST=unified" in path.read_text()
    again = rewrite(path, {"DB_POSTGRESDB_HOST": "unified"})
    assert not again.changed and again.backup is None


def test_masked_diff_hides_secrets():
    after = render(ORIGINAL, {"DB_POSTGRESDB_PASSWORD": "brand-new-secret", "DB_POSTGRESDB_HOST": "unified"})
    diff = masked_diff("n8n.env", ORIGINAL, after)
    assert "old-secret-pw" not in diff and "brand-new-secret" not in diff
    assert "+export DB_POSTGRESDB_HOST=unified" in diff


def test_malformed_file_is_refused(tmp_path):
    path = tmp_path / "bad.env"
    path.write_text("GOOD=1\nthis is not valid\n")
    with pytest.raises(ConfigError):
        rewrite(path, {"GOOD": "2"})
    assert path.read_text() == "GOOD=1\nthis is not valid\n"
