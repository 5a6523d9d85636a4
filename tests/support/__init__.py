"""What the tests share: real PostgreSQL servers in containers (the project's own
images, as selected by `make images` in ./.env, never mocks), the CLI and the migrator
image run as an operator runs them, and config directories of the test's own."""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


# The reaper image (testcontainers/ryuk) cannot be pulled on machines without a
# registry; containers are removed by the fixtures instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.types.string import TextLoader  # noqa: E402
from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# The stack's two sources as consolidation.toml maps them (without env_file: write_stack_config adds it).
MAPPING = """
[sources.n8n]
schema = "public"
target_schema = "n8n"

[sources.letta]
schema = "letta"
target_schema = "letta_agents"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""

from bench.dockerkit import project_images  # noqa: E402  (one reading of ./.env for tests and bench)


def fresh_env_dir(path: Path) -> Path:
    """An env/ of the test's own: the committed examples with fresh random passwords, made
    the way `make env` makes the operator's. Tests never read or change the operator's env/
    (after `make rehearsal` it points the apps at the unified instance)."""
    path.mkdir(parents=True, exist_ok=True)
    for example in (ROOT / "env").glob("*.env.example"):
        shutil.copy(example, path / example.name)
    subprocess.run([sys.executable, str(ROOT / "scripts/init_env.py"), str(path)], check=True,
                   capture_output=True)
    return path


@dataclass
class PgServer:
    """A running PostgreSQL container reachable from the host."""

    container: DockerContainer
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def conninfo(self, **overrides: object) -> dict[str, object]:
        params: dict[str, object] = dict(host=self.host, port=self.port, user=self.user,
                                         password=self.password, dbname=self.dbname)
        params.update(overrides)
        return params

    def connect(self, **overrides: object) -> psycopg.Connection:
        return psycopg.connect(**self.conninfo(**overrides), autocommit=True)

    def env_text(self, **overrides: str) -> str:
        """An env file, as the migrator reads it, pointing at this server."""
        values = dict(POSTGRES_HOST=self.host, POSTGRES_PORT=str(self.port), POSTGRES_DB=self.dbname,
                      POSTGRES_USER=self.user, POSTGRES_PASSWORD=self.password)
        values.update(overrides)
        return "".join(f"{k}={v}\n" for k, v in values.items() if v is not None)


def start_postgres(image: str, *, user: str, dbname: str, volumes: list[tuple[str, str]] = (),
                   env: dict[str, str] | None = None, tmpfs: dict[str, str] | None = None,
                   command: str | None = None) -> PgServer:
    """``command``: the server's command line (e.g. "postgres -c wal_level=logical")."""
    password = "pw-" + secrets.token_hex(12)
    container = DockerContainer(image).with_exposed_ports(5432)
    if command:
        container.with_command(command)
    container.with_env("POSTGRES_PASSWORD", password)
    if user != "supabase_admin":
        container.with_env("POSTGRES_USER", user)
    container.with_env("POSTGRES_DB", dbname)
    for key, value in (env or {}).items():
        container.with_env(key, value)
    for host_path, container_path in volumes:
        container.with_volume_mapping(host_path, container_path, "ro")
    for path, options in (tmpfs or {}).items():   # options as docker takes them: "size=48m"
        container.with_tmpfs_mount(path, options)
    container.start()
    server = PgServer(container, container.get_container_host_ip(), int(container.get_exposed_port(5432)),
                      user, password, dbname)

    @retry(stop=stop_after_delay(90), wait=wait_fixed(0.5), reraise=True)
    def ready() -> None:
        with server.connect(connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        # The init scripts run on a socket-only server; TCP answers once they are done.
    try:
        ready()
    except Exception:
        logs = container.get_wrapped_container().logs(tail=30).decode(errors="replace")
        container.stop()
        raise RuntimeError(f"{image} did not become ready:\n{logs}")
    return server


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the `consolidate` CLI as an operator would (a separate process)."""
    return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "migrator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def migrator_command(config_dir: Path, *args: str, name: str | None = None) -> list[str]:
    """`consolidate` inside the migrator image (it carries the PostgreSQL 17 client
    that pg_dump/pg_restore need), with the working tree's package mounted over the
    image's copy so the code under test is the code in this checkout."""
    image = project_images()["MIGRATOR_IMAGE"]
    cmd = ["docker", "run", "--rm", "--network", "host", "-e", "COLUMNS=200",
           "-v", f"{config_dir}:/work", "-w", "/work", "-v", f"{ROOT / 'migrator'}:/src/migrator:ro"]
    if name:
        cmd += ["--name", name]
    return [*cmd, image, "--config", "/work/consolidation.toml", *args]


def run_migrator(config_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(migrator_command(config_dir, *args), capture_output=True, text=True, timeout=timeout)


def write_stack_config(config_dir: Path, target: PgServer, sources: dict[str, PgServer],
                       mapping_toml: str) -> Path:
    """A config dir (consolidation.toml + env files) pointing at the given servers.

    ``mapping_toml`` holds the [sources.<name>] tables without env_file lines;
    they are filled in here."""
    (config_dir / "env").mkdir(parents=True, exist_ok=True)
    (config_dir / "env/target.env").write_text(target.env_text())
    text = '[target]\nname = "unified"\nenv_file = "env/target.env"\n\n' + mapping_toml
    for name, server in sources.items():
        (config_dir / f"env/{name}.env").write_text(server.env_text())
        text = text.replace(f"[sources.{name}]\n", f'[sources.{name}]\nenv_file = "env/{name}.env"\n')
    (config_dir / "consolidation.toml").write_text(text)
    return config_dir


def table_rows(conn: psycopg.Connection, schema: str, table: str) -> collections.Counter:
    # Python's datetime has no BC dates or infinities: read those types as text,
    # with both sessions pinned to the same output settings.
    for name in ("timestamp", "timestamptz", "date", "tstzrange", "interval"):
        conn.adapters.register_loader(name, TextLoader)
    conn.execute("SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
    rows = conn.execute(sql.SQL("SELECT * FROM ONLY {}").format(sql.Identifier(schema, table))).fetchall()
    return collections.Counter(repr(r) for r in rows)


def leaf_tables(conn: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND relkind = 'r' ORDER BY 1", (schema,))]


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def wait_until(check, timeout: float, what: str, interval: float = 0.2, retry_on: tuple = ()):
    """``check()``'s first truthy value, asked every ``interval`` s (a condition, never a fixed
    sleep); ``retry_on``: exceptions that mean "not yet" (e.g. a server still starting)."""
    @retry(stop=stop_after_delay(timeout), wait=wait_fixed(interval), retry=retry_if_result(lambda v: not v))
    def ask():
        try:
            return check()
        except retry_on:
            return None
    try:
        return ask()
    except RetryError:
        raise AssertionError(f"not within {timeout:.0f} s: {what}") from None


def wait_for_server_clock(conn: psycopg.Connection, since: str, seconds: float = 1.0) -> None:
    """Until the server's clock is ``seconds`` past ``since`` (a timestamptz as text): what a
    point-in-time test needs between "as of" and the next change, measured by the server."""
    wait_until(lambda: conn.execute("SELECT clock_timestamp() >= %s::timestamptz + make_interval(secs => %s)",
                                    (since, seconds)).fetchone()[0], seconds + 30, f"the server clock past {since}",
               interval=0.05)


def wait_for_units(target, minimum: int, timeout: float) -> int:
    with target.connect() as conn:
        def units() -> int:
            count = conn.execute("SELECT count(*) FROM _consolidation.units").fetchone()[0]
            return count if count >= minimum else 0
        return wait_until(units, timeout, "the copy to start", interval=0.05,
                          retry_on=(psycopg.errors.UndefinedTable,))



APP_SERVICES = ("n8n", "letta", "embeddings")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_values(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def remove_compose_project(name: str) -> None:
    """Whatever a compose project left after `down` (which can fail, e.g. on a service whose
    dependency was removed by decommission): containers, then volumes and networks, by label."""
    import docker

    c = docker.from_env()
    label = {"label": f"com.docker.compose.project={name}"}
    for container in c.containers.list(all=True, filters=label):
        container.remove(force=True, v=True)
    for volume in c.volumes.list(filters=label):
        volume.remove(force=True)
    for network in c.networks.list(filters=label):
        network.remove()
