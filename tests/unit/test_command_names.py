"""`backup` was renamed `backup-sources` (it dumps the legacy databases before a
migration) so that it cannot be mistaken for `app-backup`; the old name still works."""

from migrator import cli
from migrator.steps import app_backup, app_restore, backup


def test_backup_sources_keeps_its_old_name_as_an_alias():
    parser = cli._parser()
    assert parser.parse_args(["backup"]).step is backup
    assert parser.parse_args(["backup-sources"]).step is backup
    assert parser.parse_args(["app-backup", "n8n", "letta"]).apps == ["n8n", "letta"]
    assert parser.parse_args(["app-restore", "n8n", "--force"]).step is app_restore
    assert app_backup in cli.STEP_MODULES


def test_the_alias_says_what_it_is(capsys, tmp_path):
    cli.main(["--config", str(tmp_path / "missing.toml"), "backup"])
    assert "`backup` is `backup-sources`" in capsys.readouterr().out
