"""A fourth application is one new module in migrator/apps/ plus configuration: the
steps (seed, fingerprint, cutover's env rewrite and container handling) find it
through the registry without any edit."""

from __future__ import annotations

import importlib

import pytest

import migrator.apps
from migrator.apps import registry
from migrator.config.envfile import render, values
from migrator.config.rolesconfig import RolesConfig
from migrator.config.settings import load_settings
from migrator.config.validation import validate
from migrator.steps import cutover, fingerprint

TOY = '''
"""A toy wiki, for the registry test: its database is one URL."""
from migrator.apps.registry import App


def env_updates(current, login):
    return {"WIKI_DB_URL": f"postgres://{login.user}:{login.password}@{login.host}:{login.port}/{login.dbname}"
                           f"?schema={login.schema}"}, ("WIKI_DB_HOST",)


APP = App(name="wiki", db_key_prefixes=("WIKI_DB_",), env_updates=env_updates,
          database_of=lambda env: env.get("WIKI_DB_HOST") or env.get("WIKI_DB_URL", "?").split("@")[-1],
          seed=lambda app, scale, log: {"pages": 3 * scale},
          fingerprint=lambda app: {"pages": ["home", "faq", "about"]},
          summary=lambda fp: {"pages": len(fp["pages"])})
'''


@pytest.fixture
def toy_app(tmp_path):
    folder = tmp_path / "more_apps"
    folder.mkdir()
    (folder / "wiki.py").write_text(TOY)
    migrator.apps.__path__.append(str(folder))        # as if wiki.py sat in migrator/apps/
    registry._REGISTRY.clear()
    importlib.invalidate_caches()
    yield
    migrator.apps.__path__.remove(str(folder))
    registry._REGISTRY.clear()


def config(tmp_path):
    (tmp_path / "env").mkdir()
    db = "POSTGRES_HOST=unified\nPOSTGRES_PORT=5432\nPOSTGRES_DB=postgres\nPOSTGRES_USER=u\nPOSTGRES_PASSWORD=pw-db-1\n"
    (tmp_path / "env/unified.env").write_text(db)
    (tmp_path / "env/wiki-db.env").write_text(db)
    (tmp_path / "env/wiki.env").write_text("# the wiki\nWIKI_DB_HOST=old-db\nWIKI_TITLE='My wiki'\n")
    (tmp_path / "env/app-roles.env").write_text("".join(f"{a}_ROLE_PASSWORD=pw-{a.lower()}-1\n"
                                                        for a in ("N8N", "LETTA", "RAG", "READONLY", "WIKI")))
    (tmp_path / "consolidation.toml").write_text(
        '[target]\nenv_file = "env/unified.env"\n'
        '[sources.wiki]\nenv_file = "env/wiki-db.env"\nschema = "public"\ntarget_schema = "wiki"\nowner = "wiki"\n'
        '[apps.wiki]\nurl = "http://wiki:3000"\nenv_file = "env/wiki.env"\n'
        '[roles.wiki]\nconnection_limit = 7\n')
    return load_settings(tmp_path / "consolidation.toml")


def test_a_fourth_app_is_one_module_plus_configuration(tmp_path, toy_app):
    settings = config(tmp_path)
    validate(settings, "cutover")                      # every section of the config is fine
    assert "wiki" in registry.known() and registry.selected(settings, None) == ["wiki"]

    cfg = RolesConfig.from_settings(settings)
    assert cfg.role("wiki").connection_limit == 7
    updates, removed = cutover.env_updates(settings, "wiki", settings.app("wiki").env(), {"wiki": "pw-wiki-1"}, cfg)
    assert updates == {"WIKI_DB_URL": "postgres://wiki:pw-wiki-1@unified:5432/postgres?schema=wiki"}
    rewritten = render((tmp_path / "env/wiki.env").read_text(), updates, removed)
    assert values(rewritten) == {"WIKI_TITLE": "My wiki", "WIKI_DB_URL": updates["WIKI_DB_URL"]}
    assert rewritten.startswith("# the wiki\nWIKI_TITLE='My wiki'\n")
    assert registry.get("wiki").db_key_prefixes == ("WIKI_DB_",)

    taken = fingerprint.take(settings, ["wiki"], label="t")
    assert taken["apps"]["wiki"] == {"pages": ["home", "faq", "about"]}
    assert taken["meta"]["apps"]["wiki"]["database"] == "old-db"
    assert registry.get("wiki").seed(settings.app("wiki"), 2, print) == {"pages": 6}


def test_an_app_without_a_module_is_a_configuration_error(tmp_path):
    from migrator.errors import ConfigError
    with pytest.raises(ConfigError, match="no application module for 'wiki'"):
        registry.get("wiki")
