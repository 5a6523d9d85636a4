"""Online vs offline downtime at a given size, with a write load (`make bench-online`, docs/online.md).

Two sources started as docker-compose.yml starts them (wal_level=logical): an n8n-like
PostgreSQL 15 (executions, ~1 kB rows) and a Letta-like PostgreSQL 17 + pgvector
(passages with a vector(1536), ~6.5 kB rows), each filled server-side to half of SIZE.
A bounded write load (one insert and one update per tick on each source) runs the whole
time the apps would run.

- online: `online start` into a fresh Supabase stand-in, `online status --until-ready`,
  then the lag (bytes, seconds; the slot on each source, sampled every second) for
  --lag-window seconds under the load; `online cutover --stop-writers` (no [apps]: the
  move alone) hashes both sides with the load still on, then stops it through
  bench/stophook.py and re-hashes only what changed. The downtime is from the writers'
  stop to the command's end: beyond the apps' own stop and start; reports/online-cutover.json
  gives its steps.
- offline: into another fresh stand-in, the writers stopped: `migrate` then `verify`,
  the offline window's downtime beyond the apps' own stop and start.

Both include starting the migrator container (about a second). Prints a table and writes
reports/bench-online.json. Only containers labelled `consolidation.bench` are created, and
removed at the end.

    python -m bench.online --size-mb 200 --rate 20 --lag-window 20 [--skip-offline]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench import dockerkit
from bench.dockerkit import ROOT
from bench.stophook import StopHook

LOGICAL = ["-c", "wal_level=logical", "-c", "max_slot_wal_keep_size=4GB", "-c", "max_replication_slots=10",
           "-c", "max_wal_senders=10"]
MAPPING = """
[sources.n8n]
schema = "public"
target_schema = "n8n"

[sources.letta]
schema = "letta"
target_schema = "letta_agents"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""
N8N_SQL = ("CREATE TABLE public.execution_entity (id bigint PRIMARY KEY, workflow_id integer NOT NULL,"
           " status text NOT NULL, data text NOT NULL, started_at timestamptz NOT NULL DEFAULT now())")
N8N_FILL = ("INSERT INTO public.execution_entity (id, workflow_id, status, data) SELECT g, g %% 97, 'success',"
            " repeat(md5(g::text), 30) FROM generate_series(%s::bigint, %s::bigint) g")
LETTA_SQL = ("CREATE TABLE letta.archival_passages (id bigint PRIMARY KEY, agent text NOT NULL, body text NOT NULL,"
             " embedding letta.vector(1536) NOT NULL)")
LETTA_FILL = ("INSERT INTO letta.archival_passages SELECT g, 'agent-' || (g %% 50), repeat(md5(g::text), 8),"
              " (SELECT array_agg(random()::real) FROM generate_series(1, 1536) d WHERE d > g * 0)::letta.vector"
              " FROM generate_series(%s::bigint, %s::bigint) g")
TABLES = {"n8n": ("public.execution_entity", N8N_SQL, N8N_FILL, 20000),
          "letta": ("letta.archival_passages", LETTA_SQL, LETTA_FILL, 2000)}
WRITES = {"n8n": ("INSERT INTO public.execution_entity (id, workflow_id, status, data) VALUES (%s, 1, 'new', 'w')",
                  "UPDATE public.execution_entity SET status = 'error', data = data || 'u' WHERE id = %s"),
          "letta": ("INSERT INTO letta.archival_passages SELECT %s, 'agent-w', 'w', (SELECT array_agg(random()::real)"
                    " FROM generate_series(1, 1536))::letta.vector",
                    "UPDATE letta.archival_passages SET body = body || 'u' WHERE id = %s")}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fill(server: dockerkit.Server, source: str, size_bytes: float) -> int:
    table, ddl, batch_sql, batch = TABLES[source]
    with server.connect() as conn:
        conn.execute(ddl)
        rows = 0
        while conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0] < size_bytes:
            conn.execute(batch_sql, (rows + 1, rows + batch))
            rows += batch
        conn.execute(f"VACUUM ANALYZE {table}")
    return rows


class Load:
    """One insert and one update per tick on each source until stopped (bounded by --max-seconds)."""

    def __init__(self, sources: dict[str, dockerkit.Server], first_ids: dict[str, int], rate: float,
                 max_seconds: float):
        self.stop_event, self.count = threading.Event(), {name: 0 for name in sources}
        self.threads = [threading.Thread(target=self.run, args=(name, server, first_ids[name], rate, max_seconds),
                                         daemon=True) for name, server in sources.items()]
        for thread in self.threads:
            thread.start()

    def run(self, name: str, server: dockerkit.Server, next_id: int, rate: float, max_seconds: float) -> None:
        insert, update = WRITES[name]
        deadline = time.monotonic() + max_seconds
        with server.connect() as conn:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                next_id += 1
                conn.execute(insert, (next_id,))
                conn.execute(update, (1 + next_id * 7919 % (next_id - 1),))
                self.count[name] += 1
                self.stop_event.wait(1 / rate)

    def stop(self) -> dict[str, int]:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)
        return self.count


def migrator(config_dir: Path, *args: str) -> tuple[float, str]:
    image = dockerkit.project_images()["MIGRATOR_IMAGE"]
    started = time.monotonic()
    result = subprocess.run(["docker", "run", "--rm", "--network", "host", "-e", "COLUMNS=200",
                             "--label", f"{dockerkit.LABEL}=run", "-v", f"{config_dir}:/work", "-w", "/work",
                             "-v", f"{ROOT / 'migrator'}:/src/migrator:ro", image,
                             "--config", "/work/consolidation.toml", *args], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"consolidate {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds, result.stdout


def write_config(directory: Path, target: dockerkit.Server, sources: dict[str, dockerkit.Server]) -> Path:
    (directory / "env").mkdir(parents=True, exist_ok=True)
    (directory / "env/target.env").write_text(target.env_text())
    text = '[target]\nname = "unified"\nenv_file = "env/target.env"\n' + MAPPING
    for name, server in sources.items():
        (directory / f"env/{name}.env").write_text(server.env_text())
        text = text.replace(f"[sources.{name}]\n", f'[sources.{name}]\nenv_file = "env/{name}.env"\n')
    (directory / "consolidation.toml").write_text(text)
    return directory


def lag(sources: dict[str, dockerkit.Server]) -> dict[str, tuple[int, float | None]]:
    found = {}
    for name, server in sources.items():
        with server.connect() as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,"
                " (SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_stat_replication r"
                "   WHERE r.pid = s.active_pid)"
                " FROM pg_replication_slots s WHERE s.slot_name = %s", (f"consolidation_{name}",)).fetchone()
        found[name] = (int(row[0]), row[1]) if row else (0, None)
    return found


def run_online(work: Path, images: dict, sources: dict, ids: dict, args, run_id: str) -> dict:
    target = dockerkit.start_postgres(images["UNIFIED_IMAGE"], f"consolidation-bench-online-{run_id}-t1",
                                      user="supabase_admin", dbname="postgres", password=dockerkit.new_password())
    try:
        config = write_config(work / "online", target, sources)
        load = Load(sources, ids, args.rate, args.max_seconds)
        start_s, _ = migrator(config, "online", "start")
        log(f"online start {start_s:.1f} s")
        ready_s, _ = migrator(config, "online", "status", "--until-ready", "3600")
        log(f"initial copy ready {start_s + ready_s:.1f} s after the start")
        samples = []
        until = time.monotonic() + args.lag_window
        while time.monotonic() < until:
            samples.append(lag(sources))
            time.sleep(1)
        # The load runs on while both sides are hashed; the cutover stops it through the hook
        # and hashes again only what changed: the downtime starts when the writers stop.
        hook = StopHook(config, load.stop, seconds=args.max_seconds)
        cut_s, _ = migrator(config, "online", "cutover", "--stop-writers", hook.command)
        ended = time.monotonic()
        hook.close()
        counts, downtime = hook.result, ended - hook.asked_at
        steps = json.loads((config / "reports/online-cutover.json").read_text())
        for name in ids:
            ids[name] += counts[name]
        lag_bytes = [b for s in samples for b, _ in s.values()]
        lag_seconds = [t for s in samples for _, t in s.values() if t is not None]
        return {"start_seconds": round(start_s, 2), "initial_copy_seconds": round(start_s + ready_s, 2),
                "writes_per_source": counts, "lag_samples": len(samples),
                "lag_bytes_max": max(lag_bytes, default=0), "lag_bytes_median": statistics.median(lag_bytes or [0]),
                "lag_seconds_max": max(lag_seconds, default=None),
                "downtime_seconds": round(downtime, 2), "cutover_command_seconds": round(cut_s, 2),
                "cutover_steps": steps["steps"], "rows_compared": steps["rows_compared"],
                "checksums_before_window": steps["checksums_before_window"],
                "hashed_in_window": steps["hashed_in_window"]}
    finally:
        target.remove()


def run_offline(work: Path, images: dict, sources: dict, run_id: str) -> dict:
    target = dockerkit.start_postgres(images["UNIFIED_IMAGE"], f"consolidation-bench-online-{run_id}-t2",
                                      user="supabase_admin", dbname="postgres", password=dockerkit.new_password())
    try:
        config = write_config(work / "offline", target, sources)
        migrate_s, _ = migrator(config, "migrate")
        verify_s, _ = migrator(config, "verify")
        return {"migrate_seconds": round(migrate_s, 2), "verify_seconds": round(verify_s, 2),
                "downtime_seconds": round(migrate_s + verify_s, 2)}
    finally:
        target.remove()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.online", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="both sources together (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=20, help="write ticks per second per source")
    parser.add_argument("--lag-window", type=float, default=20, help="seconds of lag sampling under the load")
    parser.add_argument("--skip-offline", action="store_true", help="measure the online mode only")
    parser.add_argument("--max-seconds", type=float, default=3600, help="the write load stops by itself after")
    args = parser.parse_args()
    images, run_id = dockerkit.project_images(), secrets.token_hex(3)
    sources: dict[str, dockerkit.Server] = {}
    try:
        sources["n8n"] = dockerkit.start_postgres(images["N8N_DB_IMAGE"], f"consolidation-bench-online-{run_id}-n8n",
                                                  user="n8n", dbname="n8n", password=dockerkit.new_password(),
                                                  command=LOGICAL)
        sources["letta"] = dockerkit.start_postgres(
            images["LETTA_DB_IMAGE"], f"consolidation-bench-online-{run_id}-letta", user="letta", dbname="letta",
            password=dockerkit.new_password(), command=LOGICAL, init_sql=ROOT / "compose/letta-db/init.sql")
        started = time.monotonic()
        ids = {name: fill(server, name, args.size_mb * 1e6 / 2) for name, server in sources.items()}
        log(f"sources filled to {args.size_mb} MB in {time.monotonic() - started:.0f} s ({ids})")
        with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
            online = run_online(Path(tmp), images, sources, ids, args, run_id)
            offline = None if args.skip_offline else run_offline(Path(tmp), images, sources, run_id)
    finally:
        for server in sources.values():
            server.remove()
    result = {"size_mb": args.size_mb, "rate_per_source": args.rate, "online": online, "offline": offline,
              "loadavg": dockerkit.loadavg()}
    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    (out / "bench-online.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsize {args.size_mb} MB, {args.rate:g} writes/s per source")
    if offline:
        print(f"  offline downtime (migrate + verify):   {offline['downtime_seconds']:8.1f} s "
              f"(migrate {offline['migrate_seconds']:.1f}, verify {offline['verify_seconds']:.1f})")
    print(f"  online downtime (online cutover):      {online['downtime_seconds']:8.1f} s  "
          + ", ".join(f"{k} {v:.1f}" for k, v in online["cutover_steps"].items()))
    print(f"  online initial copy (apps running):    {online['initial_copy_seconds']:8.1f} s")
    before, inside = online["checksums_before_window"], online["hashed_in_window"]
    print(f"  checksums before the window:           {before['seconds']:8.1f} s ({before['rows']:,} rows, load on); "
          f"inside: {inside['changed']:,} changed keys, {inside['whole']:,} rows of {len(inside['whole_tables'])} "
          "tables hashed whole")
    print(f"  lag under load: max {online['lag_bytes_max']:,} B, median {online['lag_bytes_median']:,} B, "
          f"max {online['lag_seconds_max']} s ({online['lag_samples']} samples)")


if __name__ == "__main__":
    main()
