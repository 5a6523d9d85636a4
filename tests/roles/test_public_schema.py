"""Supabase's `public` after `consolidate roles` (issue 27): PUBLIC loses USAGE there
(sql/30-schemas.sql), so a role an administrator creates later reads nothing in
`public` until granted USAGE, with the exact statement the docs and the roles
summary give; and a retired loader keeps nothing on `public`."""

from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql

from migrator.config.settings import DatabaseSettings
from migrator.engine import loader
from migrator.steps import roles
from tests.support import ROOT
from tests.support.rolestack import allowed, fresh_stack

pytestmark = pytest.mark.integration

LATER_ROLE = "studio_reader"


@pytest.fixture
def stack(images):
    stack = fresh_stack(images, apply=False)
    yield stack
    stack.server.container.stop()


def public_grantees(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END"
        " FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public'").fetchall()}


def test_a_role_created_later_needs_the_documented_grant(stack):
    stack.apply()
    with stack.admin() as conn:
        conn.autocommit = True
        assert "PUBLIC" not in public_grantees(conn)
        conn.execute("CREATE TABLE public.notes (id int); INSERT INTO public.notes VALUES (1)")
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(LATER_ROLE)))
        conn.execute(sql.SQL("GRANT SELECT ON public.notes TO {}").format(sql.Identifier(LATER_ROLE)))
        assert not allowed(conn, LATER_ROLE, "SELECT * FROM public.notes")     # permission denied for schema
        conn.execute(roles.public_usage_grant(LATER_ROLE))
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(LATER_ROLE)))
            assert conn.execute("SELECT id FROM public.notes").fetchall() == [(1,)]


def test_the_statement_is_where_an_administrator_looks():
    statement = roles.public_usage_grant("<role>")
    assert statement in (ROOT / "docs/roles.md").read_text()
    assert statement in (ROOT / "docs/studio.md").read_text()
    assert statement in roles.PUBLIC_NOTE


def test_a_retired_loader_keeps_nothing_on_public(stack):
    s = stack.server
    target = DatabaseSettings("unified", "target", s.host, s.port, s.dbname, s.user, s.password)
    settings, mapping = target, SimpleNamespace(name="n8n")     # loader takes the target's login
    with stack.admin() as admin:
        admin.autocommit = True
        loader.ensure(admin, settings, mapping)            # exists when `roles` first runs, as after a migrate
    stack.apply()
    role = loader.name_of(mapping)
    with stack.admin() as admin:
        admin.autocommit = True
        assert role in public_grantees(admin)              # 30-schemas.sql made PUBLIC's USAGE explicit
        loader.retire(admin, settings, mapping)
        assert role not in public_grantees(admin)
        assert not admin.execute("SELECT has_schema_privilege(%s, 'public', 'USAGE')"
                                 " OR has_schema_privilege(%s, 'public', 'CREATE')", (role, role)).fetchone()[0]
