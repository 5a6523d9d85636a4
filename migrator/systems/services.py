"""The apps' containers: stopping, recreating and health-waiting them (docker SDK).

``stop_apps`` / ``restart_apps`` work on every app of the configuration (what
cutover and rollback call); the functions below them on one compose service.

`docker restart` keeps a container's environment from when it was created, so a
rewritten env file would not take effect. ``recreate`` does what compose does
on a config change: it creates a new container from the old one's full
configuration (image, command, mounts, ports, networks and aliases, labels,
healthcheck, restart policy) with the environment updated from the env file,
then removes the old one. The compose labels are kept, so `docker compose`
still owns the container afterwards.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import DockerException, NotFound  # noqa: F401 (pgbackrest catches them from here)
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from migrator.apps import registry
from migrator.errors import ServiceError


@dataclass(frozen=True)
class Service:
    project: str
    name: str


def client() -> docker.DockerClient:
    try:
        c = docker.from_env()
        c.ping()
        return c
    except DockerException as exc:
        raise ServiceError(f"cannot reach the docker engine ({type(exc).__name__}); "
                           "mount /var/run/docker.sock into the migrator") from None


REPLACED = "-replaced-"   # the name an old container carries while its successor is created


def container_of(c: docker.DockerClient, svc: Service):
    """The service's one container. What a killed ``recreate`` left is settled first: an old
    container still renamed (its successor was never created) gets its name back; one whose
    successor exists is removed. So there is always exactly one container per service."""
    found = c.containers.list(all=True, filters={"label": [f"com.docker.compose.project={svc.project}",
                                                           f"com.docker.compose.service={svc.name}"]})
    found = [x for x in found if x.labels.get("com.docker.compose.oneoff", "False") != "True"]
    current = [x for x in found if REPLACED not in x.name]
    replaced = sorted((x for x in found if REPLACED in x.name), key=lambda x: x.name)
    if not current and replaced:
        survivor = replaced.pop()                      # the newest old one: rename it back
        survivor.rename(survivor.name.split(REPLACED)[0])
        survivor.reload()
        current = [survivor]
    for leftover in replaced:
        leftover.remove(force=True)
    if not current:
        raise ServiceError(f"service '{svc.name}' of compose project '{svc.project}' has no container "
                           f"(start it once with `docker compose --profile apps up -d {svc.name}`)")
    return current[0]


def stop(c: docker.DockerClient, svc: Service, timeout: int = 30) -> None:
    container = container_of(c, svc)
    container.reload()
    if container.status == "running":
        container.stop(timeout=timeout)


def start(c: docker.DockerClient, svc: Service) -> None:
    container_of(c, svc).start()


def merged_env(current: list[str], updates: dict[str, str], removed: set[str]) -> list[str]:
    """The container's environment with the env file's keys replaced/added/removed."""
    out, seen = [], set()
    for item in current:
        key = item.split("=", 1)[0]
        if key in removed:
            continue
        if key in updates:
            out.append(f"{key}={updates[key]}")
            seen.add(key)
        else:
            out.append(item)
    out += [f"{k}={v}" for k, v in updates.items() if k not in seen]
    return out


def stale_keys(c: docker.DockerClient, svc: Service, file_values: dict[str, str], prefixes: tuple[str, ...]) -> set[str]:
    """Keys with one of ``prefixes`` that the container has but neither its image nor the env file
    does: left over from an earlier version of the env file (e.g. DB_POSTGRESDB_SCHEMA after a rollback)."""
    container = container_of(c, svc)
    image_keys = {e.split("=", 1)[0] for e in (c.images.get(container.attrs["Config"]["Image"]).attrs["Config"]
                                                .get("Env") or [])}
    have = {e.split("=", 1)[0] for e in container.attrs["Config"].get("Env") or []}
    return {k for k in have - image_keys - set(file_values) if k.startswith(prefixes)}


def recreate(c: docker.DockerClient, svc: Service, updates: dict[str, str], removed: set[str]) -> None:
    """Replace the service's container by one with the new environment (stopped state kept: not started)."""
    old = container_of(c, svc)
    old.reload()
    attrs = old.attrs
    cfg, host = attrs["Config"], attrs["HostConfig"]
    networks = attrs["NetworkSettings"]["Networks"]
    if old.status == "running":
        old.stop(timeout=30)
    name = attrs["Name"].lstrip("/")
    old.rename(f"{name}{REPLACED}{int(time.time())}")
    first, *others = list(networks.items()) or [(None, None)]

    def endpoint(net: dict) -> dict:
        aliases = [a for a in (net.get("Aliases") or []) if a not in (old.id[:12], old.id)]
        return c.api.create_endpoint_config(aliases=aliases or None)

    try:
        created = c.api.create_container(
            image=cfg["Image"], command=cfg.get("Cmd"), entrypoint=cfg.get("Entrypoint"),
            environment=merged_env(cfg.get("Env") or [], updates, removed), labels=cfg.get("Labels"),
            working_dir=cfg.get("WorkingDir") or None, user=cfg.get("User") or None,
            hostname=cfg.get("Hostname") if cfg.get("Hostname") != old.id[:12] else None,
            ports=list((cfg.get("ExposedPorts") or {}).keys()) or None,
            volumes=list((cfg.get("Volumes") or {}).keys()) or None, stop_signal=cfg.get("StopSignal"),
            healthcheck=cfg.get("Healthcheck"), host_config=host, name=name,
            networking_config=c.api.create_networking_config({first[0]: endpoint(first[1])}) if first[0] else None)
        for net_name, net in others:
            c.api.connect_container_to_network(created["Id"], net_name, aliases=endpoint(net).get("Aliases"))
    except DockerException:
        old.rename(name)          # put the old one back: nothing lost
        raise
    old.remove()


# How often docker's health status is read, and how often the check itself is run while
# the container starts: the health ends the downtime, so a coarse poll adds up to its own
# length to every window; a check costs CPU the starting app needs (n8n's ~0.5 s).
POLL_SECONDS = 0.25
CHECK_SECONDS = 1.0


def wait_healthy(c: docker.DockerClient, svc: Service, timeout: float) -> float:
    """Seconds until the service's healthcheck passes; raises after ``timeout``."""
    started = checked = time.monotonic()

    @retry(retry=retry_if_result(lambda status: status not in ("healthy", "exited", "dead")),
           stop=stop_after_delay(timeout), wait=wait_fixed(POLL_SECONDS), retry_error_callback=lambda state: "timeout")
    def status() -> str:
        nonlocal checked
        container = container_of(c, svc)
        container.reload()
        check = time.monotonic() - checked >= CHECK_SECONDS
        if check:
            checked = time.monotonic()
        return health_status(container, check)

    result = status()
    if result != "healthy":
        raise ServiceError(f"service '{svc.name}' did not become healthy within {timeout:.0f} s ({result})")
    return time.monotonic() - started


def health_status(container, check: bool = True) -> str:
    """docker's health status, or (``check``) "healthy" as soon as the container's own
    healthcheck passes when run now. Docker runs the check every `interval`, and an idle
    stack pays an exec per check (0.2-0.6 s of CPU for n8n's and Letta's); so the compose
    file checks every few seconds and whoever waits for a start runs the same check itself."""
    health = container.attrs["State"].get("Health")
    if not health or container.status != "running":
        return container.status
    if check and health["Status"] != "healthy" and check_passes(container):
        return "healthy"
    return health["Status"]


def check_passes(container) -> bool:
    """The container's configured healthcheck, run once now (bounded by its own timeout)."""
    check = container.attrs["Config"].get("Healthcheck") or {}
    test = check.get("Test") or []
    if test[:1] == ["CMD"]:
        argv = test[1:]
    elif test[:1] == ["CMD-SHELL"]:
        argv = ["/bin/sh", "-c", test[1]]
    else:
        return False
    outcome: list[int] = []

    def run() -> None:
        try:
            outcome.append(container.exec_run(argv).exit_code)
        except DockerException:     # stopped or removed meanwhile: not passing
            pass

    # A daemon thread: a check that hangs is given up on after its timeout, as docker does.
    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join((check.get("Timeout") or 30 * 10**9) / 10**9)
    return outcome == [0]


def process_env(c: docker.DockerClient, svc: Service) -> dict[str, str]:
    """The environment the app's PID 1 actually runs with (for Letta, docker's init in front of
    it, which hands that environment on unchanged)."""
    container = container_of(c, svc)
    raw = container.exec_run(["cat", "/proc/1/environ"]).output
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)



# --- every app of the configuration --------------------------------------------------

def compose_project(settings) -> str:
    return settings.compose.project or os.environ.get("COMPOSE_PROJECT_NAME") or "consolidation"


# Which compose service runs what: the one place that knows the names.
def app_service(settings, name: str) -> Service:
    """An app's service: ``[apps.<name>] service``, else the app's name (``n8n``, ``letta``)."""
    return Service(compose_project(settings), settings.apps[name].options.get("service", name))


def target_service(settings) -> Service:
    """The unified instance's service: ``[target] name`` (``unified``), which the compose file uses."""
    return Service(compose_project(settings), settings.target.name)


def source_service(settings, db) -> Service:
    """A legacy database's service: its host on the compose network (``n8n-db``, ``letta-db``)."""
    return Service(compose_project(settings), db.host)


def app_services(settings) -> dict[str, Service]:
    return {name: app_service(settings, name) for name in settings.apps}


def stop_running_apps(settings) -> list[Service]:
    """Stop every app container that exists and runs; the ones stopped, to start them again."""
    c, stopped = client(), []
    for svc in app_services(settings).values():
        try:
            container = container_of(c, svc)
        except ServiceError:
            continue
        container.reload()
        if container.status == "running":
            container.stop(timeout=30)
            stopped.append(svc)
    return stopped


def start_and_wait(svcs: list[Service], timeout: float = 600) -> None:
    """Start each service's container, then wait until every one is healthy."""
    c = client()
    for svc in svcs:
        start(c, svc)
    for svc in svcs:
        wait_healthy(c, svc, timeout)


def remove_service(svc: Service, delete_volumes: bool) -> list[str]:
    """Stop and remove the service's container; with ``delete_volumes`` its named volumes too
    (their names, when deleted). :raises ServiceError: no such container."""
    c = client()
    container = container_of(c, svc)
    volumes = [m["Name"] for m in container.attrs.get("Mounts", []) if m.get("Type") == "volume"]
    container.stop(timeout=30)
    container.remove()
    if not delete_volumes:
        return []
    for volume in volumes:
        c.volumes.get(volume).remove()
    return volumes


def require_service(svc: Service) -> None:
    """:raises ServiceError: no docker engine, or the service has no container."""
    container_of(client(), svc)


# --- containers and volumes by id or label (pgBackRest's instance and its copies) -----

def stop_container(container_id: str, timeout: int = 120) -> None:
    client().containers.get(container_id).stop(timeout=timeout)


def start_container(container_id: str) -> None:
    client().containers.get(container_id).start()


def labelled_volumes(label: str) -> list[str]:
    return [v.name for v in client().volumes.list(filters={"label": label})]


def stop_apps(settings) -> dict[str, float]:
    """Stop every app at once (each gets SIGTERM and its grace period in parallel, so the
    writers are down after the slowest one's shutdown, not the sum of all); returns the
    seconds each took."""
    c = client()
    services = app_services(settings)

    def timed_stop(svc: Service) -> float:
        started = time.monotonic()
        stop(c, svc)
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        futures = {name: pool.submit(timed_stop, svc) for name, svc in services.items()}
        return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class Restarted:
    """``healthy``: seconds from ``started_at`` (just before the first container was started,
    after all were recreated) until each app was healthy."""
    started_at: float
    healthy: dict[str, float]


def restart_apps(settings, timeout: float) -> Restarted:
    """Recreate every app's container from its env file as it is now, then start them all
    and wait until each is healthy (waited for in parallel: a slow one does not delay
    noticing a fast one)."""
    c = client()
    services = app_services(settings)

    def recreated(name: str, svc: Service) -> None:
        values = settings.apps[name].env()
        recreate(c, svc, values, removed=stale_keys(c, svc, values, registry.get(name).db_key_prefixes))

    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        for future in [pool.submit(recreated, name, svc) for name, svc in services.items()]:
            future.result()
        started_at = time.monotonic()
        for svc in services.values():
            start(c, svc)

        def healthy_after(svc: Service) -> float:
            wait_healthy(c, svc, timeout)
            return time.monotonic() - started_at

        futures = {name: pool.submit(healthy_after, svc) for name, svc in services.items()}
        return Restarted(started_at, {name: future.result() for name, future in futures.items()})
