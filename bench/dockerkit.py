"""Containers for the benchmark: PostgreSQL servers and one-shot client tools.

Everything is created with the label ``consolidation.bench`` (value: ``run`` for
containers, ``data`` for the source data volumes) and removed by id. Servers are
reached on their bridge IP (no docker-proxy in the data path); client tools run
with ``--network host`` so they reach the same IPs.

Client containers are watched while they run: peak RSS (cgroup memory.stat
``total_rss``, i.e. anonymous memory, without page cache; ``memory.max_usage``
is kept too, it includes the cache) and CPU seconds (cpuacct), sampled every
50 ms, plus a timestamp for every line the tool prints.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import psycopg
from docker.types import Mount

LABEL = "consolidation.bench"
PGDATA = "/var/lib/postgresql/data"
ROOT = Path(__file__).resolve().parent.parent

_client: docker.DockerClient | None = None


def client() -> docker.DockerClient:
    global _client
    if _client is None:
        _client = docker.from_env(timeout=600)
    return _client


def project_images() -> dict[str, str]:
    """Image names chosen by `make images` (./.env), else the compose defaults."""
    images = {
        "UNIFIED_IMAGE": "supabase/postgres:17.6.1.011",
        "N8N_DB_IMAGE": "postgres:15",
        "LETTA_DB_IMAGE": "pgvector/pgvector:0.8.0-pg17",
        "MIGRATOR_IMAGE": "consolidation/migrator:latest",
        "OPS_IMAGE": "consolidation/ops:latest",
        "IMAGES_MODE": "upstream",
    }
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key in images:
                images[key] = value.strip()
    return images


def pin_images(names: dict[str, str], run_id: str) -> dict[str, str]:
    """Tag every image this run uses with a tag of its own, so that another session
    removing or re-tagging the project's images mid-run cannot pull them from under
    it. Returns the same keys with the pinned names; `unpin_images` removes the tags."""
    pinned = {}
    for key, name in names.items():
        repo = f"consolidation-bench/{key.lower().replace('_', '-')}"
        client().images.get(name).tag(repo, tag=run_id)
        pinned[key] = f"{repo}:{run_id}"
    return pinned


def unpin_images(pinned: dict[str, str]) -> None:
    for name in pinned.values():
        try:
            client().images.remove(name, noprune=True)   # only our tag; the image stays under its own name
        except docker.errors.APIError:
            pass


def new_password() -> str:
    return "bench" + secrets.token_hex(12)


# --- cgroup readings --------------------------------------------------------

def _cgroup_file(kind: str, cid: str, name: str) -> Path | None:
    """cgroup v1 (docker's cgroupfs driver) first, then v2 (systemd driver)."""
    for base in (Path(f"/sys/fs/cgroup/{kind}/docker/{cid}"),
                 Path(f"/sys/fs/cgroup/{kind}/system.slice/docker-{cid}.scope"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"),
                 Path(f"/sys/fs/cgroup/docker/{cid}")):
        path = base / name
        if path.exists():
            return path
    return None


def memory_stat(cid: str) -> dict[str, int]:
    path = _cgroup_file("memory", cid, "memory.stat")
    if path is None:
        return {}
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}
    except (OSError, ValueError):
        return {}


def rss_bytes(cid: str) -> int | None:
    stat = memory_stat(cid)
    if "total_rss" in stat:
        return stat["total_rss"]
    if "anon" in stat:          # cgroup v2
        return stat["anon"]
    return None


def max_usage_bytes(cid: str) -> int | None:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        path = _cgroup_file("memory", cid, name)
        if path:
            try:
                return int(path.read_text())
            except (OSError, ValueError):
                return None
    return None


def cpu_seconds(cid: str) -> float | None:
    path = _cgroup_file("cpuacct", cid, "cpuacct.usage") or _cgroup_file("cpu,cpuacct", cid, "cpuacct.usage")
    if path:
        try:
            return int(path.read_text()) / 1e9
        except (OSError, ValueError):
            return None
    path = _cgroup_file("cpu", cid, "cpu.stat")
    if path:
        for line in path.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    return None


def docker_stats_memory(container) -> dict[str, int]:
    """Memory as `docker stats` shows it (usage minus inactive file cache), plus RSS."""
    stats = container.stats(stream=False)
    mem = stats.get("memory_stats", {})
    usage = mem.get("usage", 0)
    st = mem.get("stats", {})
    inactive = st.get("total_inactive_file", st.get("inactive_file", 0))
    return {"docker_stats_bytes": usage - inactive if inactive < usage else usage,
            "rss_bytes": st.get("total_rss", st.get("anon", 0)),
            "shmem_bytes": st.get("total_shmem", st.get("shmem", 0))}


# --- PostgreSQL servers -----------------------------------------------------

@dataclass
class Server:
    container: object
    name: str
    host: str
    user: str
    password: str
    dbname: str
    port: int = 5432

    @property
    def id(self) -> str:
        return self.container.id

    def conninfo(self, **overrides) -> dict:
        params = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                      dbname=self.dbname, connect_timeout=5)
        params.update(overrides)
        return params

    def connect(self, **overrides) -> psycopg.Connection:
        return psycopg.connect(**self.conninfo(**overrides), autocommit=True)

    def uri(self, dbname: str | None = None) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{dbname or self.dbname}"

    def env_text(self, dbname: str | None = None) -> str:
        return (f"POSTGRES_HOST={self.host}\nPOSTGRES_PORT={self.port}\nPOSTGRES_DB={dbname or self.dbname}\n"
                f"POSTGRES_USER={self.user}\nPOSTGRES_PASSWORD={self.password}\n")

    def exec(self, cmd: list[str], user: str = "postgres") -> str:
        code, out = self.container.exec_run(cmd, user=user)
        if code != 0:
            raise RuntimeError(f"{self.name}: {' '.join(cmd)} failed: {out.decode(errors='replace')[-500:]}")
        return out.decode(errors="replace")

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds until a TCP connection runs SELECT 1 (the init scripts run socket-only)."""
        started = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - started < timeout:
            try:
                with psycopg.connect(**self.conninfo(connect_timeout=2), autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return time.monotonic() - started
            except psycopg.Error as exc:
                last = exc
                self.container.reload()
                if self.container.status in ("exited", "dead"):
                    break
                time.sleep(0.02)
        logs = self.container.logs(tail=30).decode(errors="replace")
        raise RuntimeError(f"{self.name} did not become ready ({last}):\n{logs}")

    def refresh_ip(self) -> None:
        self.container.reload()
        self.host = self.container.attrs["NetworkSettings"]["IPAddress"]

    def remove(self) -> None:
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


HEALTHCHECK = {"test": ["CMD", "pg_isready", "-U", "postgres", "-h", "localhost"],
               "interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 120}


def start_postgres(image: str, name: str, *, user: str, dbname: str, password: str,
                   data_volume: str | None = None, init_sql: Path | None = None,
                   command: list[str] | None = None, binds: dict[str, str] | None = None) -> Server:
    """A PostgreSQL container with its data directory on a docker volume (a named one,
    or a fresh anonymous one removed with the container) and the compose healthcheck."""
    env = {"POSTGRES_PASSWORD": password, "POSTGRES_DB": dbname}
    if user != "supabase_admin":
        env["POSTGRES_USER"] = user
    mounts = [Mount(target=PGDATA, source=data_volume, type="volume")]
    if init_sql is not None:
        mounts.append(Mount(target="/docker-entrypoint-initdb.d/init.sql", source=str(init_sql), type="bind",
                            read_only=True))
    for host, path in (binds or {}).items():   # read-only
        mounts.append(Mount(target=path, source=host, type="bind", read_only=True))
    kwargs = {}
    if command:
        kwargs["command"] = command
    container = client().containers.run(image, detach=True, name=name, labels={LABEL: "run"}, environment=env,
                                        mounts=mounts, healthcheck=HEALTHCHECK, shm_size="256m", **kwargs)
    server = Server(container, name, "", user, password, dbname)
    server.refresh_ip()
    server.wait_ready()
    return server


# --- one-shot client tools ---------------------------------------------------

@dataclass
class ClientRun:
    exit_code: int
    seconds: float
    lines: list[tuple[float, str]] = field(default_factory=list)   # (seconds since start, line)
    peak_rss_bytes: int | None = None
    max_usage_bytes: int | None = None
    cpu_seconds: float | None = None

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


class _Watcher(threading.Thread):
    def __init__(self, cid: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.cid, self.interval = cid, interval
        self.stop = threading.Event()
        self.peak_rss = 0
        self.max_usage: int | None = None
        self.cpu: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            rss = rss_bytes(self.cid)
            if rss is not None:
                self.peak_rss = max(self.peak_rss, rss)
                self.max_usage = max_usage_bytes(self.cid) or self.max_usage
                self.cpu = cpu_seconds(self.cid) or self.cpu
            self.stop.wait(self.interval)


def run_client(image: str, command: list[str], *, name: str, entrypoint: list[str] | None = None,
               binds: dict[str, str] | None = None, env: dict[str, str] | None = None,
               anonymous_volumes: list[str] = (), workdir: str | None = None, log_file: Path | None = None,
               timeout: float = 7200) -> ClientRun:
    """Run a tool to completion; wall time is from `start` to the container's exit."""
    mounts = [Mount(target=path, source=None, type="volume") for path in anonymous_volumes]
    volumes = {}
    for host, cont in (binds or {}).items():   # "/path" or "/path:ro"
        path, _, mode = cont.partition(":")
        volumes[host] = {"bind": path, "mode": mode or "rw"}
    container = client().containers.create(image, command, name=name, entrypoint=entrypoint, labels={LABEL: "run"},
                                           environment=env or {}, network_mode="host", volumes=volumes,
                                           mounts=mounts, working_dir=workdir)
    watcher = _Watcher(container.id)
    lines: list[tuple[float, str]] = []
    try:
        watcher.start()
        started = time.monotonic()
        container.start()

        def follow() -> None:
            buffer = b""
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    lines.append((time.monotonic() - started, line.decode(errors="replace")))
            if buffer:
                lines.append((time.monotonic() - started, buffer.decode(errors="replace")))
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        result = container.wait(timeout=timeout)
        seconds = time.monotonic() - started
        follower.join(timeout=10)
        watcher.stop.set()
        watcher.join()
        run = ClientRun(result.get("StatusCode", -1), seconds, lines, watcher.peak_rss or None,
                        watcher.max_usage, watcher.cpu)
    finally:
        watcher.stop.set()
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("".join(f"[{t:8.2f}] {line}\n" for t, line in lines))
    return run


# --- data volumes (the generated sources) -----------------------------------

def find_volume(name: str):
    try:
        return client().volumes.get(name)
    except docker.errors.NotFound:
        return None


def create_volume(name: str, labels: dict[str, str]):
    return client().volumes.create(name, labels={LABEL: "data", **labels})


def bench_containers() -> list:
    return client().containers.list(all=True, filters={"label": f"{LABEL}=run"})


def bench_volumes() -> list:
    return client().volumes.list(filters={"label": f"{LABEL}=data"})


def other_running_containers() -> list[str]:
    """Names of running containers that are not ours: they share the 2 cores."""
    ours = {c.id for c in bench_containers()}
    return sorted(c.name for c in client().containers.list() if c.id not in ours)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
