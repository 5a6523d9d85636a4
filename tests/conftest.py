"""Fixtures for every test: real PostgreSQL servers in containers (tests/support),
removed when the session ends."""

from __future__ import annotations

import pytest

from tests.support import ROOT, project_images, start_postgres  # noqa: F401
from tests.support.appstack import AppStacks
from tests.support.collection import mark_by_folder, order_shared_stack


def pytest_collection_modifyitems(config, items):
    """Markers by folder: `-m unit|engine|roles|stack`; the modules sharing the real-app stack
    run together in a sound order (docs/tests.md)."""
    mark_by_folder(items)
    order_shared_stack(items)


@pytest.fixture(scope="session")
def app_stacks(tmp_path_factory):
    """The real-app stacks the stack tests share (tests/support/appstack.py)."""
    stacks = AppStacks(tmp_path_factory)
    yield stacks
    stacks.close()


@pytest.fixture(scope="session", autouse=True)
def remove_leftover_containers():
    """Whatever a failing test left running is removed when the session ends."""
    yield
    import docker
    from testcontainers.core.labels import SESSION_ID

    for container in docker.from_env().containers.list(
            all=True, filters={"label": f"org.testcontainers.session-id={SESSION_ID}"}):
        container.remove(force=True)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    return project_images()


@pytest.fixture(scope="session")
def unified_server(images):
    """A fresh unified (Supabase) instance, shared by the session's read-only tests."""
    server = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    yield server
    server.container.stop()


@pytest.fixture
def target(images):
    """A fresh unified (Supabase) instance for one test that writes to it."""
    server = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    yield server
    server.container.stop()


@pytest.fixture(scope="session")
def n8n_db_server(images):
    server = start_postgres(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    yield server
    server.container.stop()


@pytest.fixture(scope="session")
def letta_db_server(images):
    server = start_postgres(images["LETTA_DB_IMAGE"], user="letta", dbname="letta",
                            volumes=[(str(ROOT / "compose/letta-db/init.sql"), "/docker-entrypoint-initdb.d/init.sql")])
    yield server
    server.container.stop()
