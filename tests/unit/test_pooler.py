"""Pool sizes derived from the roles' limits, and the committed pgbouncer.ini (no docker)."""

import tomllib
from pathlib import Path

import pytest

from migrator.config.rolesconfig import RolesConfig, parse_config
from migrator.config.settings import load_settings
from migrator.config.validation import validate
from migrator.errors import ConfigError
from migrator.ops import pooler
from migrator.steps import cutover
from tests.support import ROOT


def roles(toml: str = "") -> RolesConfig:
    return parse_config(tomllib.loads(toml).get("roles", {}), Path("c.toml"))


def test_defaults_fit_under_max_connections_with_room_for_supabase():
    pools = {p.app: p for p in pooler.pools(pooler.PoolerConfig(), RolesConfig())}
    assert set(pools) == {"n8n", "letta", "rag"}   # not the read-only or monitoring roles: they connect directly
    assert {a: (p.mode, p.pool_size) for a, p in pools.items()} == \
        {"n8n": ("transaction", 17), "letta": ("session", 35), "rag": ("transaction", 17)}
    # 100 max_connections - 20 for Supabase - 5 read-only - 3 monitoring - 2 auth role = 70
    assert sum(p.pool_size for p in pools.values()) <= 70


def test_pools_are_the_limits_when_they_fit():
    cfg = pooler.PoolerConfig(max_connections=200)
    assert [(p.role, p.pool_size) for p in pooler.pools(cfg, RolesConfig())] == [("n8n", 20), ("letta", 40), ("rag", 20)]


@pytest.mark.parametrize("max_connections", [33, 50, 73, 90, 100, 150, 500])
@pytest.mark.parametrize("limits", [(20, 40, 20), (1, 1, 1), (5, 200, 7), (100, 100, 100)])
def test_never_above_a_role_limit_nor_the_budget(max_connections, limits):
    rc = roles("\n".join(f"[roles.{a}]\nconnection_limit = {n}" for a, n in zip(("n8n", "letta", "rag"), limits)))
    cfg = pooler.PoolerConfig(max_connections=max_connections)
    budget = max_connections - cfg.reserved_connections - 5 - 3 - pooler.AUTH_ROLE_LIMIT
    pools = pooler.pools(cfg, rc)
    assert all(1 <= p.pool_size <= p.connection_limit for p in pools)
    assert sum(p.pool_size for p in pools) <= budget


def test_a_budget_without_room_is_refused():
    with pytest.raises(ConfigError, match="leaves 1 connections for 3 app pools"):
        pooler.pools(pooler.PoolerConfig(max_connections=31), RolesConfig())


@pytest.mark.parametrize("raw, message", [
    ({"pool_size": 3}, "unknown key pool_size"),
    ({"pool_modes": {"letta": "statement"}}, "expected one of session, transaction"),
    ({"port": True}, "expected a int"),
    ({"port": 70000}, "TCP port"),
    ({"auth_role": "postgres"}, "not allowed"),
    ({"auth_role": "pgbouncer"}, "not allowed"),
])
def test_bad_pooler_tables(raw, message):
    with pytest.raises(ConfigError, match=message):
        pooler.parse(raw, Path("c.toml"))


def test_the_committed_ini_is_what_consolidation_toml_renders():
    raw = tomllib.loads((ROOT / "consolidation.toml").read_text())
    cfg = pooler.parse(raw.get("pooler", {}), ROOT / "consolidation.toml")
    text = pooler.render(cfg, parse_config(raw.get("roles", {}), ROOT / "consolidation.toml"))
    assert (ROOT / "compose/pgbouncer/pgbouncer.ini").read_text() == text, \
        "run `consolidate pooler --write compose/pgbouncer/pgbouncer.ini`"
    assert "n8n = pool_mode=transaction pool_size=17 max_user_connections=17" in text
    assert "letta = pool_mode=session pool_size=35 max_user_connections=35" in text
    assert "auth_query = SELECT usename, passwd FROM consolidation_pooler.user_lookup($1)" in text
    settings = [line for line in text.splitlines() if line and not line.startswith(";")]
    assert not [line for line in settings if "password" in line.lower()]     # no secret in the file


def settings_with(tmp_path: Path, cutover_table: str):
    (tmp_path / "env").mkdir(parents=True)
    (tmp_path / "env/db.env").write_text("POSTGRES_HOST=unified\nPOSTGRES_PORT=5432\nPOSTGRES_DB=postgres\n"
                                         "POSTGRES_USER=supabase_admin\nPOSTGRES_PASSWORD=x-secret-1\n")
    path = tmp_path / "consolidation.toml"
    path.write_text('[target]\nenv_file = "env/db.env"\n[sources.n8n]\nenv_file = "env/db.env"\nschema = "public"\n'
                    'target_schema = "n8n"\nowner = "n8n"\n' + cutover_table)
    return load_settings(path)


def test_via_pooler_routes_the_apps_to_pgbouncer(tmp_path):
    direct = settings_with(tmp_path / "a", "")
    pooled = settings_with(tmp_path / "b", "[cutover]\nvia_pooler = true\n")
    for s in (direct, pooled):
        validate(s, "rollback")
    login = cutover.db_login(direct, "n8n", {"n8n": "pw"}, RolesConfig())
    assert (login.host, login.port, login.user) == ("unified", "5432", "n8n")
    login = cutover.db_login(pooled, "n8n", {"n8n": "pw"}, RolesConfig())
    assert (login.host, login.port, login.dbname, login.user, login.schema) == \
        ("pgbouncer", "6432", "postgres", "n8n", "n8n")


def test_via_pooler_must_be_a_boolean(tmp_path):
    with pytest.raises(ConfigError, match="via_pooler: expected a bool"):
        validate(settings_with(tmp_path, '[cutover]\nvia_pooler = "yes"\n'), "rollback")


def test_pooler_env_examples_share_only_the_stats_password(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("init_env", ROOT / "scripts/init_env.py")
    init_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(init_env)
    for name in ("pooler", "pooler-exporter", "app-roles"):
        (tmp_path / f"{name}.env.example").write_text((ROOT / f"env/{name}.env.example").read_text())
    init_env.main(tmp_path)
    from tests.support import env_values
    pooler_env, exporter, app_roles = (env_values(tmp_path / f"{n}.env") for n in ("pooler", "pooler-exporter",
                                                                                  "app-roles"))
    assert exporter == {"PGPASSWORD": pooler_env["POOLER_STATS_PASSWORD"]}       # nothing else reaches the exporter
    assert pooler_env["POOLER_AUTH_PASSWORD"] != pooler_env["POOLER_STATS_PASSWORD"]
    assert not set(pooler_env.values()) & set(app_roles.values())              # no app password in the pooler's file
