"""[apps.*] in consolidation.toml and the app env files (no docker)."""

from pathlib import Path

import pytest

from migrator.apps.n8n import admin_file as n8n_admin_file
from migrator.config.settings import load_settings
from migrator.errors import ConfigError
from migrator.redact import MASK, redact

DB = "POSTGRES_HOST=db\nPOSTGRES_DB=app\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=db-secret-1\n"


def config(tmp_path: Path, apps: str) -> Path:
    (tmp_path / "env").mkdir(exist_ok=True)
    (tmp_path / "env/db.env").write_text(DB)
    path = tmp_path / "consolidation.toml"
    path.write_text('[target]\nenv_file = "env/db.env"\n[sources.app]\nenv_file = "env/db.env"\n' + apps)
    return path


def test_no_apps_table_is_fine(tmp_path):
    assert load_settings(config(tmp_path, "")).apps == {}


def test_apps_parsed_paths_resolved_env_read_on_demand(tmp_path, monkeypatch):
    monkeypatch.delenv("CONSOLIDATION_N8N_URL", raising=False)
    cfg = config(tmp_path, '[apps.n8n]\nurl = "http://n8n:5678/"\nenv_file = "env/n8n.env"\n'
                           'admin_file = "env/admin.env"\n[apps.letta]\nurl = "http://letta:8283"\n'
                           'env_file = "env/letta.env"\nembedding_endpoint = "http://e:8000/v1"\n')
    settings = load_settings(cfg)  # the app env files do not exist yet: not needed to load
    n8n, letta = settings.app("n8n"), settings.app("letta")
    assert n8n.url == "http://n8n:5678" and n8n.env_file == tmp_path / "env/n8n.env"
    assert n8n_admin_file(n8n) == tmp_path / "env/admin.env"
    assert n8n_admin_file(letta) == tmp_path / "env/n8n-admin.env"  # default: beside the env file
    assert letta.options["embedding_endpoint"] == "http://e:8000/v1"
    with pytest.raises(ConfigError, match="n8n.env: env file not found"):
        n8n.env()
    (tmp_path / "env/letta.env").write_text("LETTA_PG_URI=postgresql://letta:uri-secret-42@db:5432/letta\n")
    assert letta.env()["LETTA_PG_URI"].endswith("@db:5432/letta")
    assert redact("x uri-secret-42 y") == f"x {MASK} y"
    with pytest.raises(ConfigError, match=r"no \[apps.rag\]"):
        settings.app("rag")


def test_url_override_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSOLIDATION_N8N_URL", "http://127.0.0.1:55678")
    cfg = config(tmp_path, '[apps.n8n]\nurl = "http://n8n:5678"\nenv_file = "env/n8n.env"\n')
    assert load_settings(cfg).app("n8n").url == "http://127.0.0.1:55678"


def test_app_table_needs_url_and_env_file(tmp_path):
    with pytest.raises(ConfigError, match=r"\[apps.n8n\] needs url and env_file"):
        load_settings(config(tmp_path, '[apps.n8n]\nurl = "http://n8n:5678"\n'))
