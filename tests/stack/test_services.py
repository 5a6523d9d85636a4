"""Recreating a compose service's container with a rewritten env file: the new
values are what the process runs with, and everything else (ports, volumes,
network alias, compose labels) is as compose made it."""

import os
import secrets
import shutil
import subprocess

import pytest

from migrator.systems import services
from tests.support import ROOT, project_images

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path):
    name = "consolidation-svc-" + secrets.token_hex(3)
    shutil.copy(ROOT / "tests/data/services-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / "app.env").write_text("DB_HOST=old-db\nKEEP=same\nGONE=soon\n")
    env = {**os.environ, "TEST_IMAGE": project_images()["LETTA_DB_IMAGE"]}

    def compose(*args):
        return subprocess.run(["docker", "compose", "-p", name, *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    up = compose("up", "-d", "--wait")
    assert up.returncode == 0, up.stderr
    yield name, compose
    compose("down", "-v")


def test_recreate_applies_new_env_and_keeps_the_rest(project):
    name, compose = project
    c = services.client()
    svc = services.Service(name, "app")
    before = services.container_of(c, svc)
    before.exec_run(["sh", "-c", "echo kept > /data/marker"])
    port_before = before.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
    assert services.process_env(c, svc)["DB_HOST"] == "old-db"

    services.recreate(c, svc, {"DB_HOST": "unified", "NEW": "1"}, removed={"GONE"})
    services.start(c, svc)
    assert services.wait_healthy(c, svc, timeout=30) >= 0
    env = services.process_env(c, svc)
    assert env["DB_HOST"] == "unified" and env["NEW"] == "1" and env["KEEP"] == "same" and "GONE" not in env
    after = services.container_of(c, svc)
    assert after.id != before.id
    assert after.exec_run(["cat", "/data/marker"]).output.strip() == b"kept"
    assert after.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostIp"] == "127.0.0.1"
    assert after.labels["com.docker.compose.service"] == "app"
    peer = services.container_of(c, services.Service(name, "peer"))
    assert peer.exec_run(["getent", "hosts", "app"]).exit_code == 0
    assert len(c.containers.list(all=True, filters={"label": f"com.docker.compose.project={name}"})) == 2
    assert port_before  # published before; after recreate docker may pick a new ephemeral port
    ps = compose("ps", "--format", "{{.Service}} {{.State}}")
    assert "app running" in ps.stdout


def test_missing_service_is_a_clear_error(project):
    name, _ = project
    with pytest.raises(services.ServiceError, match="service 'ghost' of compose project"):
        services.container_of(services.client(), services.Service(name, "ghost"))


def test_a_recreate_killed_half_way_leaves_exactly_one_container(project):
    """Killed after renaming the old container (before its successor exists), or after
    creating the successor (before removing the old one): the next call settles it."""
    name, _ = project
    c = services.client()
    svc = services.Service(name, "app")
    original = services.container_of(c, svc)
    canonical = original.name
    original.stop(timeout=10)
    original.rename(f"{canonical}{services.REPLACED}1")          # killed right after the rename
    assert services.container_of(c, svc).id == original.id
    assert services.container_of(c, svc).name == canonical

    services.recreate(c, svc, {"DB_HOST": "unified"}, removed=set())
    successor = services.container_of(c, svc)
    # Killed after creating the successor, before removing the old one: simulate that old one.
    stale = c.containers.create(original.attrs["Config"]["Image"], command=["true"],
                                labels=dict(successor.labels), name=f"{canonical}{services.REPLACED}2")
    assert services.container_of(c, svc).id == successor.id
    labelled = c.containers.list(all=True, filters={"label": [f"com.docker.compose.project={name}",
                                                              "com.docker.compose.service=app"]})
    assert [x.id for x in labelled] == [successor.id]
    assert stale.id not in {x.id for x in c.containers.list(all=True)}


def test_a_start_is_seen_when_its_check_passes_not_at_dockers_next_check():
    """Docker would not run this check for an hour: the wait runs the container's own
    check itself, and judges by its exit code (failing: waited on, then timed out)."""
    c = services.client()
    name = "consolidation-health-" + secrets.token_hex(3)
    container = c.containers.run(
        project_images()["LETTA_DB_IMAGE"], entrypoint=["sleep", "300"], detach=True, name=name,
        labels={"com.docker.compose.project": name, "com.docker.compose.service": "app"},
        healthcheck={"test": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 3600 * 10**9,
                     "timeout": 5 * 10**9, "retries": 1})
    try:
        svc = services.Service(name, "app")
        with pytest.raises(services.ServiceError, match=r"did not become healthy within 3 s \(timeout\)"):
            services.wait_healthy(c, svc, timeout=3)
        container.exec_run(["touch", "/tmp/ready"])
        assert services.wait_healthy(c, svc, timeout=30) < 10
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "starting"     # docker has not checked yet
    finally:
        container.remove(force=True)
