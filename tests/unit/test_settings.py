"""Configuration loading and secret redaction: pure logic, no databases."""

from pathlib import Path

import pytest

from migrator.config.settings import load_settings, read_env_file
from migrator.errors import ConfigError
from migrator.redact import MASK, redact, register_secret

GOOD = "POSTGRES_HOST=db\nPOSTGRES_PORT=5433\nPOSTGRES_DB=app\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=s3cret-value\n"


def write_config(tmp_path: Path, target_env: str = GOOD, source_env: str = GOOD) -> Path:
    (tmp_path / "env").mkdir()
    (tmp_path / "env/target.env").write_text(target_env)
    (tmp_path / "env/src.env").write_text(source_env)
    config = tmp_path / "consolidation.toml"
    config.write_text('[target]\nenv_file = "env/target.env"\n[sources.app]\nenv_file = "env/src.env"\n')
    return config


def test_loads_target_and_sources(tmp_path):
    settings = load_settings(write_config(tmp_path))
    assert settings.target.role == "target" and settings.target.port == 5433
    assert [s.name for s in settings.sources] == ["app"]
    assert settings.sources[0].dbname == "app"
    assert "s3cret-value" not in repr(settings.sources[0])


def test_missing_key_names_file_and_key(tmp_path):
    config = write_config(tmp_path, source_env=GOOD.replace("POSTGRES_PASSWORD=s3cret-value\n", ""))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert "src.env" in err.value.message and "POSTGRES_PASSWORD" in err.value.message
    assert err.value.exit_code == 2


def test_malformed_line_names_line_number(tmp_path):
    path = tmp_path / "bad.env"
    path.write_text("# comment\nPOSTGRES_HOST=db\nthis is not an assignment\n")
    with pytest.raises(ConfigError) as err:
        read_env_file(path)
    assert "bad.env:3" in err.value.message


def test_quoted_and_commented_values_parse(tmp_path):
    path = tmp_path / "ok.env"
    path.write_text('# c\n\nA="x y"\nexport B=\'z\'\nC=1 # trailing\n')
    assert read_env_file(path) == {"A": "x y", "B": "z", "C": "1"}


def test_bad_port(tmp_path):
    with pytest.raises(ConfigError, match="POSTGRES_PORT"):
        load_settings(write_config(tmp_path, target_env=GOOD.replace("5433", "54x")))


def test_missing_env_file(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "env/src.env").unlink()
    with pytest.raises(ConfigError, match="env file not found"):
        load_settings(config)


def test_invalid_toml(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[target\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(config)


def test_redact_masks_registered_secrets_and_uris():
    register_secret("hunter2-long-secret")
    text = "failed for hunter2-long-secret at postgresql://u:pa55@h/db password=abc"
    out = redact(text)
    assert "hunter2-long-secret" not in out and "pa55" not in out and "abc" not in out
    assert out.count(MASK) == 3
