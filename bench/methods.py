"""The methods under test. Each one gets a fresh Supabase stand-in as target
(its data directory on a fresh anonymous volume) and moves the same two
sources; its wall time runs from the tool's container start to its exit.

- migrate: `consolidate migrate --jobs J --split-mb S` (schema, data, indexes,
  constraints, sequences, ANALYZE), the working tree's package mounted into the
  migrator image and run through bench/probe.py for the phase breakdown;
  then `consolidate verify` on the same target, timed on its own.
- pgcopydb: `pgcopydb clone --table-jobs J --index-jobs J
  --split-tables-larger-than S` once per source database, each into its own
  fresh database on the target (1:1, no remap), times added up.
- pg_dump/pg_restore: `pg_dump -Fd -j J` then `pg_restore -j J` per source,
  into fresh databases, with the PostgreSQL 17 client of the migrator image.
- floor: every source table is first written (not timed) to a binary COPY
  file on the host disk that also holds the docker volumes; a fresh target
  gets that directory bind-mounted, bare tables of the same column types (no
  keys, no indexes), and the timed part is J sessions running COPY FROM those
  files, largest first: the target's own ingest of the same rows, with no
  network, no source and no client in the way.

Besides wall time, every method records the CPU seconds its containers used
(target, both sources, the tool's own container): on a shared, noisy machine
the work done is steadier than the wall time it took.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psycopg import sql

from bench import activity, dockerkit
from bench.dockerkit import ROOT, Server

MAPPING = """
[sources.n8n]
env_file = "env/n8n.env"
schema = "public"
target_schema = "n8n"

[sources.letta]
env_file = "env/letta.env"
schema = "letta"
target_schema = "letta_agents"
rules = [{ when = "has_vector_column", target_schema = "letta_embeddings" }]
"""
TARGET_SCHEMAS = ("n8n", "letta_agents", "letta_embeddings")


@dataclass
class Bench:
    run_id: str
    run_dir: Path
    images: dict
    pgcopydb_image: str
    sources: dict[str, Server]
    jobs: int
    split_mb: int
    dump_compress: str
    log: Callable[[str], None]
    targets: list[Server] = field(default_factory=list)

    def fresh_target(self, label: str) -> Server:
        started = time.monotonic()
        server = dockerkit.start_postgres(self.images["UNIFIED_IMAGE"], f"bench-{self.run_id}-{label}",
                                          user="supabase_admin", dbname="postgres", password=dockerkit.new_password())
        self.targets.append(server)
        self.log(f"  target {server.name} ready in {time.monotonic() - started:.1f} s")
        return server

    def drop_target(self, server: Server) -> None:
        server.remove()
        if server in self.targets:
            self.targets.remove(server)


def _cpu(servers: dict[str, Server]) -> dict[str, float]:
    return {name: dockerkit.cpu_seconds(s.id) or 0.0 for name, s in servers.items()}


class Measure:
    """CPU seconds of the servers and the target's activity profile around one method."""

    def __init__(self, bench: Bench, target: Server):
        self.servers = {"target": target, **{f"source {k}": v for k, v in bench.sources.items()}}
        self.load = dockerkit.loadavg()
        self.before = _cpu(self.servers)
        self.sampler = activity.start(target.conninfo())

    def finish(self) -> dict:
        after = _cpu(self.servers)
        return {"activity": self.sampler.stop(), "loadavg_before": self.load,
                "server_cpu_s": {k: round(after[k] - self.before[k], 1) for k in after}}


def _client_fields(run: dockerkit.ClientRun) -> dict:
    return {"peak_rss_bytes": run.peak_rss_bytes, "max_usage_bytes": run.max_usage_bytes,
            "client_cpu_s": round(run.cpu_seconds, 1) if run.cpu_seconds is not None else None}


def _check(run: dockerkit.ClientRun, what: str) -> None:
    if run.exit_code != 0:
        tail = "\n".join(line for _, line in run.lines[-25:])
        raise RuntimeError(f"{what} failed (exit {run.exit_code}):\n{tail}")


# --- our engine ------------------------------------------------------------------

def write_config(bench: Bench, target: Server, directory: Path) -> Path:
    (directory / "env").mkdir(parents=True, exist_ok=True)
    (directory / "env/target.env").write_text(target.env_text())
    for name, server in bench.sources.items():
        (directory / f"env/{name}.env").write_text(server.env_text())
    (directory / "consolidation.toml").write_text(
        '[target]\nname = "unified"\nenv_file = "env/target.env"\n' + MAPPING)
    return directory


def migrator_dir() -> Path:
    """The engine package mounted into the migrator image: the working tree's, or
    BENCH_MIGRATOR (say, an older commit's migrator/, to measure before and after)."""
    return Path(os.environ.get("BENCH_MIGRATOR") or ROOT / "migrator").resolve()


def migrator_run(bench: Bench, config_dir: Path, args: list[str], name: str, probe: bool) -> dockerkit.ClientRun:
    binds = {str(config_dir): "/work", str(migrator_dir()): "/src/migrator:ro", str(ROOT / "bench"): "/bench:ro"}
    if probe:
        entrypoint = ["/opt/migrator/bin/python", "/bench/probe.py"]
        command = [f"/work/{name}.probe.json", "--", "--config", "/work/consolidation.toml", *args]
    else:
        entrypoint, command = None, ["--config", "/work/consolidation.toml", *args]
    return dockerkit.run_client(bench.images["MIGRATOR_IMAGE"], command, name=f"bench-{bench.run_id}-{name}",
                                entrypoint=entrypoint, binds=binds, env={"COLUMNS": "200"}, workdir="/work",
                                log_file=config_dir / f"{name}.log")


def phases_from_probe(probe: dict, wall: float) -> dict[str, float]:
    """Where the migrate wall time went, from the probe's timers (seconds)."""
    events = probe.get("events", [])

    def total(pred) -> float:
        return sum(e["seconds"] for e in events if pred(e))

    def fn(name: str):
        return lambda e: e["function"].endswith(name)

    run = next((e for e in events if e["function"].endswith("migrate.run")), None)
    schema = total(fn("schema.run"))
    copy = total(fn("copy.run"))
    post = total(fn("post_data.run"))
    restore_post = total(lambda e: e["label"].startswith("pg_restore post-data"))
    analyze = total(fn("post_data.analyze"))
    sequences = total(fn("post_data.set_sequences"))
    matviews = total(fn("post_data.refresh_matviews"))
    ownership = total(fn("migrate.hand_over"))
    wait_tables = total(fn("migrate.wait_for_tables"))
    first_schema = min((e["start"] for e in events if e["function"].endswith("schema.run")), default=None)
    checks = (first_schema - run["start"]) if run and first_schema is not None else 0.0
    phases = {
        "startup (container, Python, connect)": wall - (run["seconds"] if run else probe.get("total", wall)),
        "checks (refusals, disk space)": checks,
        "schema (pg_dump, scratch remap, pre-data)": schema,
        "  of which pg_dump --schema-only": total(lambda e: e["label"].startswith("pg_dump --schema-only")),
        "  of which scratch restore + dump": total(lambda e: e["label"] in ("pg_restore into scratch",
                                                                             "pg_dump of the remapped scratch database")),
        "  of which pre-data restore": total(lambda e: e["label"].startswith("pg_restore pre-data")),
        "copy (COPY source -> target)": copy,
        "  alongside: per-table indexes + ANALYZE (sum over tables; overlaps the copy, not in the total)":
            total(fn("post_data.build_table")),
        "post-data: waiting for per-table builds after the last row": wait_tables,
        "post-data: final pass (FKs, triggers, rest; pg_restore)": restore_post,
        "post-data: sequences + matviews": sequences + matviews,
        "post-data: ANALYZE (what was not done per table)": analyze,
        "post-data: rest (TOC listing, journal)": post - restore_post - analyze - sequences - matviews,
        "ownership hand-over": ownership,
    }
    accounted = phases["startup (container, Python, connect)"] + checks + schema + copy + wait_tables + post + ownership
    phases["other (journal, between steps)"] = wall - accounted
    return {k: round(v, 2) for k, v in phases.items()}


def copy_units(target: Server) -> list[dict]:
    with target.connect() as conn:
        rows = conn.execute("SELECT source, schema_name, table_name, chunk, rows, bytes, seconds"
                            " FROM _consolidation.units ORDER BY seconds DESC").fetchall()
    return [{"source": r[0], "table": f"{r[1]}.{r[2]}", "chunk": r[3], "rows": r[4], "bytes": r[5],
             "seconds": round(r[6] or 0, 2)} for r in rows]


def run_migrate(bench: Bench, rep: int) -> tuple[dict, dict, Server]:
    """Returns (migrate result, verify result, target kept for the floor and the queries)."""
    target = bench.fresh_target(f"migrate-r{rep}")
    config = write_config(bench, target, bench.run_dir / f"migrate-r{rep}")
    measure = Measure(bench, target)
    run = migrator_run(bench, config, ["migrate", "--jobs", str(bench.jobs), "--split-mb", str(bench.split_mb)],
                       "migrate", probe=True)
    extra = measure.finish()
    _check(run, "consolidate migrate")
    probe_file = config / "migrate.probe.json"
    probe = json.loads(probe_file.read_text()) if probe_file.exists() else {}
    units = copy_units(target)
    result = {"seconds": round(run.seconds, 2), **_client_fields(run), **extra,
              "phases": phases_from_probe(probe, run.seconds), "probe_events": probe.get("events", []),
              "copy_units": units[:15], "copy_units_total": len(units)}
    bench.log(f"  migrate: {run.seconds:.1f} s")

    measure = Measure(bench, target)
    run = migrator_run(bench, config, ["verify"], "verify", probe=False)
    extra = measure.finish()
    _check(run, "consolidate verify")
    if "identical" not in run.output:
        raise RuntimeError("consolidate verify did not report 'identical':\n" + run.output[-2000:])
    verify = {"seconds": round(run.seconds, 2), **_client_fields(run), **extra}
    bench.log(f"  verify: {run.seconds:.1f} s")
    return result, verify, target


# --- pgcopydb ----------------------------------------------------------------------

def create_databases(target: Server, bench: Bench) -> None:
    with target.connect() as conn:
        for server in bench.sources.values():
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(server.dbname)))


def run_pgcopydb(bench: Bench, rep: int) -> dict:
    target = bench.fresh_target(f"pgcopydb-r{rep}")
    try:
        create_databases(target, bench)
        measure = Measure(bench, target)
        parts, runs = {}, []
        for name, source in bench.sources.items():
            run = dockerkit.run_client(
                bench.pgcopydb_image,
                ["clone", "--dir", "/tmp/pgcopydb", "--table-jobs", str(bench.jobs), "--index-jobs", str(bench.jobs),
                 "--split-tables-larger-than", f"{bench.split_mb}MB", "--no-owner", "--no-acl"],
                name=f"bench-{bench.run_id}-pgcopydb-{name}",
                env={"PGCOPYDB_SOURCE_PGURI": source.uri(), "PGCOPYDB_TARGET_PGURI": target.uri(source.dbname)},
                log_file=bench.run_dir / f"pgcopydb-r{rep}" / f"{name}.log")
            _check(run, f"pgcopydb clone of {name}")
            parts[name] = round(run.seconds, 2)
            runs.append(run)
        extra = measure.finish()
        seconds = sum(r.seconds for r in runs)
        bench.log(f"  pgcopydb: {seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in parts.items())})")
        return {"seconds": round(seconds, 2), "parts": parts, **extra,
                "peak_rss_bytes": max((r.peak_rss_bytes or 0) for r in runs) or None,
                "max_usage_bytes": max((r.max_usage_bytes or 0) for r in runs) or None,
                "client_cpu_s": round(sum(r.cpu_seconds or 0 for r in runs), 1),
                "pgcopydb_steps": dict(zip(bench.sources, (pgcopydb_summary(r) for r in runs)))}
    finally:
        bench.drop_target(target)


def pgcopydb_summary(run: dockerkit.ClientRun) -> list[str]:
    """pgcopydb's own end-of-run timing table (from the line with 'Step ... Duration')."""
    lines = [line for _, line in run.lines]
    for i, line in enumerate(lines):
        if re.search(r"\bStep\b.*\bConnection\b.*\bDuration\b", line):
            return [x.rstrip() for x in lines[i:i + 20] if x.strip()]
    return []


# --- pg_dump / pg_restore ---------------------------------------------------------

DUMP_SCRIPT = r"""
set -eu
mark() { echo "MARK $1"; }
for name in $NAMES; do
  eval "host=\$SRC_HOST_$name user=\$SRC_USER_$name db=\$SRC_DB_$name pw=\$SRC_PW_$name"
  mark "dump-$name"
  PGPASSWORD="$pw" pg_dump -h "$host" -U "$user" -d "$db" -Fd -j "$JOBS" -Z "$COMPRESS" -f "/dump/$name"
  mark "restore-$name"
  PGPASSWORD="$TGT_PW" pg_restore -h "$TGT_HOST" -U "$TGT_USER" -d "$db" -j "$JOBS" --no-owner --no-acl "/dump/$name"
done
mark end
"""


def run_dump_restore(bench: Bench, rep: int) -> dict:
    target = bench.fresh_target(f"dump-r{rep}")
    try:
        create_databases(target, bench)
        env = {"NAMES": " ".join(bench.sources), "JOBS": str(bench.jobs), "COMPRESS": bench.dump_compress,
               "TGT_HOST": target.host, "TGT_USER": target.user, "TGT_PW": target.password}
        for name, s in bench.sources.items():
            env.update({f"SRC_HOST_{name}": s.host, f"SRC_USER_{name}": s.user, f"SRC_DB_{name}": s.dbname,
                        f"SRC_PW_{name}": s.password})
        measure = Measure(bench, target)
        run = dockerkit.run_client(bench.images["MIGRATOR_IMAGE"], ["-c", DUMP_SCRIPT], entrypoint=["/bin/sh"],
                                   name=f"bench-{bench.run_id}-dump-restore", env=env, anonymous_volumes=["/dump"],
                                   log_file=bench.run_dir / f"dump-r{rep}.log")
        extra = measure.finish()
        _check(run, "pg_dump/pg_restore")
        marks = [(t, line.split()[1]) for t, line in run.lines if line.startswith("MARK ")]
        parts = {marks[i][1]: round(marks[i + 1][0] - marks[i][0], 2) for i in range(len(marks) - 1)}
        bench.log(f"  pg_dump/pg_restore: {run.seconds:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in parts.items())})")
        return {"seconds": round(run.seconds, 2), "parts": parts, **_client_fields(run), **extra}
    finally:
        bench.drop_target(target)


# --- the floor -----------------------------------------------------------------------

FLOOR_MOUNT = "/floor"

COLUMNS_SQL = """
SELECT a.attname, CASE WHEN t.typtype = 'e' THEN 'text'
                       WHEN t.typname = 'vector' THEN 'extensions.vector' || coalesce('(' || nullif(a.atttypmod, -1) || ')', '')
                       ELSE format_type(a.atttypid, a.atttypmod) END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""


def export_floor_files(bench: Bench) -> list[dict]:
    """Every source table as a binary COPY file under the run's work directory (not timed),
    with the column list to recreate it (enums as text, vector from `extensions`)."""
    directory = bench.run_dir / "floor"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    files = []
    for db, server in bench.sources.items():
        schema = {"n8n": "public", "letta": "letta"}[db]
        with server.connect() as conn:
            conn.execute("SET search_path = pg_catalog")
            tables = conn.execute("SELECT c.relname, pg_table_size(c.oid) FROM pg_class c JOIN pg_namespace n"
                                  " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                                  (schema,)).fetchall()
            for table, size in tables:
                ident = sql.Identifier(schema, table)
                columns = conn.execute(COLUMNS_SQL, (ident.as_string(conn),)).fetchall()
                path = directory / f"{db}.{table}.bin"
                cols = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
                with path.open("wb") as out, conn.cursor().copy(
                        sql.SQL("COPY (SELECT {} FROM ONLY {}) TO STDOUT (FORMAT binary)").format(cols, ident)) as copy:
                    for block in copy:
                        out.write(block)
                path.chmod(0o644)
                files.append({"name": f"{db}.{table}", "path": f"{FLOOR_MOUNT}/{path.name}", "bytes": int(size),
                              "columns": columns})
    return sorted(files, key=lambda f: -f["bytes"])


def run_floor(bench: Bench, rep: int, files: list[dict]) -> dict:
    """A fresh target, the files on the same disk bind-mounted into it, J sessions of
    COPY FROM into bare tables (no keys, no indexes), largest first."""
    started = time.monotonic()
    target = dockerkit.start_postgres(bench.images["UNIFIED_IMAGE"], f"bench-{bench.run_id}-floor-r{rep}",
                                      user="supabase_admin", dbname="postgres", password=dockerkit.new_password(),
                                      binds={str(bench.run_dir / "floor"): FLOOR_MOUNT})
    bench.targets.append(target)
    bench.log(f"  target {target.name} ready in {time.monotonic() - started:.1f} s")
    try:
        with target.connect() as conn:
            conn.execute("CREATE SCHEMA bench_floor")
            for f in files:
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier("bench_floor", f["name"]),
                    sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in f["columns"])))
        local = threading.local()
        sessions, lock = [], threading.Lock()
        per_table: dict[str, float] = {}

        def load(f: dict) -> None:
            if not hasattr(local, "conn"):
                local.conn = target.connect()
                with lock:
                    sessions.append(local.conn)
            begin = time.monotonic()
            local.conn.execute(sql.SQL("COPY {} FROM {} WITH (FORMAT binary)").format(
                sql.Identifier("bench_floor", f["name"]), sql.Literal(f["path"])))
            per_table[f["name"]] = round(time.monotonic() - begin, 2)

        measure = Measure(bench, target)
        begin = time.monotonic()
        with ThreadPoolExecutor(max_workers=bench.jobs) as pool:
            for future in [pool.submit(load, f) for f in files]:
                future.result()
        seconds = time.monotonic() - begin
        extra = measure.finish()
        for conn in sessions:
            conn.close()
        bench.log(f"  floor (COPY FROM local files, {bench.jobs} sessions): {seconds:.1f} s")
        slowest = dict(sorted(per_table.items(), key=lambda kv: -kv[1])[:8])
        return {"seconds": round(seconds, 2), "peak_rss_bytes": None, **extra, "slowest_tables": slowest}
    finally:
        bench.drop_target(target)
