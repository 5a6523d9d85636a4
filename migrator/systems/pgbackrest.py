"""pgBackRest, run where it must run: in one-off containers of the unified instance's
own image (the same pgBackRest, the same postgres uid on the data directory), with
the live container's repository and configuration mounts (docker SDK).

``locate`` reads what the live ``unified`` container mounts; ``restore_into`` restores
the repository into a data volume (the live one, or a fresh scratch one) up to a
target; ``Scratch`` starts a restored copy on the compose network, for the drills
and for "one app as of a time". Nothing here runs SQL: callers connect with
``Scratch.database()`` and the migrator's pinned sessions (db.connect).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

from migrator.config.settings import DatabaseSettings, Settings
from migrator.engine.files import utc_stamp
from migrator.errors import BackupError
from migrator.redact import redact
from migrator.systems import services
from migrator.systems.services import DockerException, NotFound

STANZA = "unified"
DATA = "/var/lib/postgresql/data"
REPO = "/var/lib/pgbackrest"
CONF = "/etc/pgbackrest/pgbackrest.conf"
LABEL = "consolidation.scratch"        # every container and volume made here carries it


@dataclass(frozen=True)
class Target:
    """Where recovery stops: ``latest`` (end of the archived WAL), a time, an LSN, or a
    restore point's name; ``immediate`` stops as soon as the backup is consistent."""

    kind: str            # default | time | lsn | name | immediate
    value: str = ""
    # The timeline to follow: the live instance's current one. pgBackRest's default
    # ("latest") would follow a timeline abandoned by `restore-instance --undo`.
    timeline: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        if text in ("latest", "default"):
            return cls("default")
        if text == "immediate":
            return cls("immediate")
        for kind in ("lsn", "name", "time"):
            if text.startswith(kind + ":"):
                return cls(kind, text[len(kind) + 1:])
        if re.fullmatch(r"[0-9A-Fa-f]+/[0-9A-Fa-f]+", text):
            return cls("lsn", text)
        return cls("time", text)

    def options(self) -> list[str]:
        opts = [f"--type={self.kind}"]
        if self.kind in ("time", "lsn", "name"):
            opts += [f"--target={self.value}", "--target-action=promote"]
        if self.timeline and self.kind != "immediate":
            opts.append(f"--target-timeline={self.timeline}")
        return opts

    def describe(self) -> str:
        return "the end of the archived WAL" if self.kind == "default" else f"{self.kind} {self.value}".strip()


@dataclass(frozen=True)
class Instance:
    """The live unified container and what it mounts."""

    container_id: str
    image: str
    data_volume: str
    repo_volume: str
    conf_source: str      # the host path of pgbackrest.conf
    network: str
    project: str


def locate(settings: Settings) -> Instance:
    svc = services.target_service(settings)
    container = services.container_of(services.client(), svc)
    project, service = svc.project, svc.name
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    missing = [p for p in (DATA, REPO, CONF) if p not in mounts]
    if missing:
        raise BackupError(f"the '{service}' container does not mount {', '.join(missing)}: it predates backups "
                          "(recreate it with `docker compose up -d unified`, then `make backups`)")
    networks = list(container.attrs["NetworkSettings"]["Networks"])
    return Instance(container.id, container.attrs["Config"]["Image"], mounts[DATA]["Name"], mounts[REPO]["Name"],
                    mounts[CONF]["Source"], networks[0] if networks else "bridge", project)


def current_timeline(conn) -> str:
    return str(conn.execute("SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()").fetchone()[0])


def _mounts(inst: Instance, data_volume: str | None, *, data_mode: str = "rw", repo_mode: str = "ro") -> dict:
    mounts = {inst.repo_volume: {"bind": REPO, "mode": repo_mode}, inst.conf_source: {"bind": CONF, "mode": "ro"}}
    if data_volume:
        mounts[data_volume] = {"bind": DATA, "mode": data_mode}
    return mounts


def run_tool(inst: Instance, command: list[str], *, data_volume: str | None = None, user: str = "postgres",
             repo_mode: str = "ro", timeout: float = 3600) -> str:
    """Run ``command`` in a one-off container of the instance's image; its output, or BackupError."""
    c = services.client()
    container = c.containers.run(inst.image, command=command, entrypoint=[], user=user, detach=True,
                                 volumes=_mounts(inst, data_volume, repo_mode=repo_mode),
                                 labels={LABEL: "tool"}, network_mode="none")
    try:
        result = container.wait(timeout=timeout)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if result.get("StatusCode") != 0:
        last = [line for line in output.splitlines() if "ERROR" in line] or output.splitlines()[-1:] or ["no output"]
        raise BackupError(f"{command[0]} {command[1] if len(command) > 1 else ''} failed: {redact(last[-1].strip())}")
    return output


def info(inst: Instance) -> dict:
    """pgBackRest's own view of the stanza (backups, WAL range) as JSON."""
    out = run_tool(inst, ["pgbackrest", f"--stanza={STANZA}", "--output=json", "info"])
    stanzas = json.loads(out[out.index("["):])
    return stanzas[0] if stanzas else {}


def backups(inst: Instance) -> list[dict]:
    return info(inst).get("backup", [])


def require_backups(inst: Instance) -> list[dict]:
    """The repository's backups, oldest first; BackupError when there is none yet."""
    found = backups(inst)
    if not found:
        raise BackupError("the repository holds no backup yet: `docker compose run --rm backups backup full`")
    return found


def new_volume(prefix: str) -> str:
    name = f"{prefix}-{utc_stamp().lower()}-{secrets.token_hex(2)}"
    services.client().volumes.create(name, labels={LABEL: prefix})
    return name


def restore_into(inst: Instance, volume: str, target: Target, *, scratch: bool) -> str:
    """Restore the repository into ``volume`` up to ``target``. A scratch copy gets
    archive_mode off (it must never push WAL into the live repository); the live volume
    keeps archiving, on the new timeline recovery starts."""
    # A fresh volume's root belongs to root: hand it to postgres first (the image's uid).
    run_tool(inst, ["sh", "-c", f"chown postgres:postgres {DATA} && chmod 700 {DATA}"], data_volume=volume,
             user="root")
    options = ["--delta"] + (["--archive-mode=off"] if scratch else []) + target.options()
    return run_tool(inst, ["pgbackrest", f"--stanza={STANZA}", *options, "restore"], data_volume=volume)


class Scratch:
    """A restored copy running on the compose network: no published port unless asked,
    the repository read-only (recovery reads WAL from it), never the live data volume."""

    def __init__(self, inst: Instance, volume: str, target_db: DatabaseSettings, publish: bool = False):
        self.inst, self.volume, self.target_db = inst, volume, target_db
        self.name = f"{inst.project}-scratch-{secrets.token_hex(3)}"
        c = services.client()
        self.container = c.containers.run(
            inst.image, name=self.name, detach=True, network=inst.network,
            volumes=_mounts(inst, volume), labels={LABEL: "instance"},
            ports={"5432/tcp": ("127.0.0.1", None)} if publish else None)

    def database(self) -> DatabaseSettings:
        return replace(self.target_db, name=f"{self.target_db.name} (restored copy)", host=self.name, port=5432)

    def host_port(self) -> int | None:
        self.container.reload()
        bound = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get("5432/tcp")
        return int(bound[0]["HostPort"]) if bound else None

    def wait_promoted(self, timeout: float = 600) -> float:
        """Seconds until recovery has reached its target and the copy accepts writes."""
        started = time.monotonic()
        probe = ["psql", "-X", "-A", "-t", "-h", "/var/run/postgresql", "-U", self.target_db.user, "-d",
                 self.target_db.dbname, "-c", "SELECT pg_catalog.pg_is_in_recovery()"]
        while time.monotonic() - started < timeout:
            self.container.reload()
            if self.container.status != "running":
                tail = self.container.logs(tail=5).decode(errors="replace").strip().splitlines()
                raise BackupError(f"the restored copy stopped during recovery: {redact(tail[-1] if tail else '?')}")
            code, out = self.container.exec_run(probe, user="postgres")
            if code == 0 and out.strip() == b"f":
                return time.monotonic() - started
            time.sleep(1)
        raise BackupError(f"the restored copy did not finish recovery within {timeout:.0f} s")

    def exec(self, command: list[str]) -> tuple[int, str]:
        code, out = self.container.exec_run(command, user="postgres")
        return code, out.decode(errors="replace")

    def remove(self) -> None:
        try:
            self.container.remove(force=True)
        except (NotFound, DockerException):
            pass
        remove_volume(self.volume)


def remove_volume(name: str) -> None:
    try:
        services.client().volumes.get(name).remove(force=True)
    except (NotFound, DockerException):
        pass


@contextmanager
def restored_copy(inst: Instance, target: Target, target_db: DatabaseSettings, *, prefix: str,
                  publish: bool = False, keep: bool = False):
    """Yield ``(scratch, timings)``: the repository restored up to ``target`` into a fresh
    volume and started, promoted. Removed (container and volume) on the way out unless ``keep``."""
    volume = new_volume(f"{inst.project}-{prefix}")
    scratch = None
    try:
        t0 = time.monotonic()
        restore_into(inst, volume, target, scratch=True)
        restore_s = time.monotonic() - t0
        scratch = Scratch(inst, volume, target_db, publish=publish)
        recovery_s = scratch.wait_promoted()
        yield scratch, {"restore_seconds": round(restore_s, 1), "recovery_seconds": round(recovery_s, 1)}
    finally:
        if scratch is None:
            remove_volume(volume)
        elif not keep:
            scratch.remove()


def copy_volume(inst: Instance, source: str, dest: str) -> None:
    """A byte-for-byte copy of a data volume (owners, modes), for the way back."""
    c = services.client()
    # The destination is emptied first: cp into a used data directory would merge the two.
    script = "find /to -mindepth 1 -delete && cp -a /from/. /to/"
    container = c.containers.run(inst.image, command=["sh", "-c", script], entrypoint=[], user="root",
                                 detach=True, network_mode="none", labels={LABEL: "copy"},
                                 volumes={source: {"bind": "/from", "mode": "ro"}, dest: {"bind": "/to", "mode": "rw"}})
    try:
        code = container.wait(timeout=3600).get("StatusCode")
    finally:
        container.remove(force=True)
    if code != 0:
        raise BackupError(f"copying volume {source} to {dest} failed (exit {code})")
