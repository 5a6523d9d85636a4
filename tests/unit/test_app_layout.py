"""The applications' layout has one home, migrator/apps/layout.py (issue 27): the SQL
registry that `consolidate roles` installs must say the same, and the role-name rule
is one rule for app roles and the pooler's auth role."""

import re
from pathlib import Path

import pytest

from migrator.apps import layout
from migrator.config import rolesconfig
from migrator.errors import ConfigError
from migrator.ops import pooler

SQL = Path(__file__).resolve().parents[2] / "sql" / "10-apps.sql"


def sql_values(table: str) -> str:
    text = SQL.read_text(encoding="utf-8")
    return text[text.index(f"INSERT INTO consolidation_admin.{table}"):].split("ON CONFLICT", 1)[0]


def test_the_sql_schema_registry_is_the_layout():
    rows = re.findall(r"\('(\w+)',\s*'(\w+)',\s*(\d+)\)", sql_values("app_schema"))
    assert sorted((s, a, int(n)) for s, a, n in rows) == sorted(layout.SCHEMAS)


def test_every_app_of_the_layout_has_a_role_row_and_a_default_login():
    apps = set(re.findall(r"\('(\w+)',\s*:'\w+_role'", sql_values("app_role")))
    assert {a for _, a, _ in layout.SCHEMAS} == set(layout.LOGINS) <= apps
    assert {r.app: (r.name, r.connection_limit, r.statement_timeout)
            for r in rolesconfig.DEFAULT_ROLES if r.app in layout.LOGINS} == layout.LOGINS
    assert pooler.DEFAULT_MODES == layout.POOL_MODES


@pytest.mark.parametrize("name", ["postgres", "pgbouncer", "authenticator", "pg_monitor", "supabase_admin", "Bad"])
def test_one_role_name_rule_for_app_roles_and_the_pooler(tmp_path, name):
    with pytest.raises(ConfigError, match="not allowed"):
        rolesconfig.parse_config({"n8n": {"name": name}}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="not allowed"):
        pooler.parse({"auth_role": name}, tmp_path / "c.toml")
