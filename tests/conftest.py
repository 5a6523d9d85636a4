"""Fixtures for every test: real PostgreSQL servers in containers (tests/support),
removed when the session ends."""

from __future__ import annotations

import pytest

from tests.support import ROOT, project_images, start_postgres  # noqa: F401
from tests.support.appstack import AppStacks
from tests.support.collection import WorkUnitScheduling, longest_first, mark_by_folder, order_shared_stack
from tests.support.sharedcluster import SharedCluster


def pytest_collection_modifyitems(config, items):
    """Markers by folder: `-m unit|engine|roles|stack`; the modules sharing the real-app stack
    run together in a sound order; on an xdist worker, the longest first (docs/tests.md)."""
    mark_by_folder(items)
    order_shared_stack(items)
    if hasattr(config, "workerinput"):
        longest_first(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test`'s workers get a module, or the shared real-app stack's modules, at a time."""
    return WorkUnitScheduling(config, log)


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
def target_server(images):
    """A fresh unified (Supabase) instance of its own for one test: for tests that need the
    server itself (restart it, kill its sessions cluster-wide, own all of it)."""
    server = start_postgres(images["UNIFIED_IMAGE"], user="supabase_admin", dbname="postgres")
    yield server
    server.container.stop()


@pytest.fixture
def target(target_server):
    """A test's target where its module does not choose (target_db below is cheaper)."""
    return target_server


@pytest.fixture(scope="session")
def unified_cluster(images):
    """One unified server for the session, handing out a database per test (target_db)."""
    cluster = SharedCluster(images["UNIFIED_IMAGE"])
    yield cluster
    cluster.close()


@pytest.fixture
def target_db(unified_cluster):
    """A fresh unified (Supabase) database of its own on the session's shared server: what a
    fresh instance shows inside one database; anything a test changes cluster-wide is undone
    after it, or the server is replaced (tests/support/sharedcluster.py). Modules whose tests
    fit in one database use it as their `target`."""
    db = unified_cluster.database()
    yield db
    unified_cluster.release(db)


@pytest.fixture(scope="session")
def source_cluster(images):
    """One PostgreSQL 15 source server for the session, a database per test (source_db)."""
    cluster = SharedCluster(images["N8N_DB_IMAGE"], user="n8n", dbname="n8n_restore")
    yield cluster
    cluster.close()


@pytest.fixture
def source_db(source_cluster):
    """A fresh, empty PostgreSQL 15 database of its own (its superuser `n8n`) on the session's
    shared source server, as a fresh n8n-db container shows one; reset like target_db."""
    db = source_cluster.database()
    yield db
    source_cluster.release(db)


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
