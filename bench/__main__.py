"""python -m bench {data,run,clean} (see bench/__init__.py; `make bench-data`, `make bench`)."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from bench import datagen, dockerkit, methods, queries, report, resources
from bench.dockerkit import ROOT

console = Console(highlight=False, width=int(os.environ.get("COLUMNS", "160")))
ALL_METHODS = ("migrate", "pgcopydb", "dump", "floor")


def log(message: str) -> None:
    console.print(f"[{time.strftime('%H:%M:%S')}] {message}", markup=False)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgG]?)[bB]?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 20MB, 1GB)")
    factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    value = int(float(match.group(1)) * factor)
    if value < 5_000_000:
        raise argparse.ArgumentTypeError("SIZE must be at least 5MB")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="generate (or reuse) the legacy databases of this size")
    data.add_argument("--size", type=parse_size, default=parse_size("1GB"),
                      help="total table data over both sources (default 1GB)")
    data.add_argument("--profile", choices=datagen.PROFILES, default="apps",
                      help="apps: the n8n/Letta shapes (default); vector: nine tenths in vector(4096) tables")
    run = sub.add_parser("run", help="the benchmark (generates the data first if needed)")
    run.add_argument("--size", type=parse_size, default=parse_size("1GB"))
    run.add_argument("--profile", choices=datagen.PROFILES, default="apps", help="the data set (see `data`)")
    run.add_argument("--reps", type=int, default=3, help="runs per method; the median is reported (default 3)")
    run.add_argument("--jobs", type=int, default=2, help="parallelism of every tool (default 2)")
    run.add_argument("--split-mb", type=int, default=None,
                     help="split tables larger than this, for migrate and pgcopydb alike"
                          " (default: a quarter of the largest table's heap)")
    run.add_argument("--dump-compress", default="0", help="pg_dump -Z (default 0: no compression)")
    run.add_argument("--methods", default=",".join(ALL_METHODS),
                     help=f"comma-separated subset of {','.join(ALL_METHODS)} (verify runs with migrate;"
                          " the app comparison needs migrate)")
    run.add_argument("--query-runs", type=int, default=200, help="timed runs per app query and side (default 200)")
    run.add_argument("--no-queries", action="store_true", help="skip app queries and the resource comparison")
    run.add_argument("--out", type=Path, default=ROOT / "reports", help="where bench.json / bench.md go")
    run.add_argument("--keep-work", action="store_true", help="keep the work directory (configs, tool logs)")
    again = sub.add_parser("report", help="recompute the summary of an existing bench.json and print it")
    again.add_argument("--out", type=Path, default=ROOT / "reports", help="where bench.json / bench.md are")
    sub.add_parser("clean", help="remove every benchmark container and data volume")
    return p


def pgcopydb_image() -> str:
    proc = subprocess.run(["bash", str(ROOT / "scripts/images.sh"), "pgcopydb"], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"FAILED: building the pgcopydb image: {proc.stderr.strip()[-1000:]}")
    return proc.stdout.strip().splitlines()[-1]


def check_images(images: dict) -> None:
    for key in ("UNIFIED_IMAGE", "N8N_DB_IMAGE", "LETTA_DB_IMAGE", "MIGRATOR_IMAGE"):
        try:
            dockerkit.client().images.get(images[key])
        except Exception:
            raise SystemExit(f"FAILED: image {images[key]} ({key}) not found: run `make images` first")


def cleanup(run_id: str | None = None) -> None:
    """Remove our containers (all of them, or those of one run)."""
    for container in dockerkit.bench_containers():
        if run_id is None or container.name.startswith(f"bench-{run_id}-"):
            try:
                container.remove(force=True, v=True)
            except Exception:
                pass


def warm_sources(sources: dict) -> None:
    """Read every data file once so that the first method does not pay for a cold OS cache."""
    for server in sources.values():
        server.exec(["sh", "-c", f"find {dockerkit.PGDATA}/base -type f -exec cat {{}} + >/dev/null"])


def command_data(args) -> int:
    images = dockerkit.project_images()
    check_images(images)
    run_id = "data" + secrets.token_hex(2)
    try:
        sources = datagen.ensure_sources(args.size, images, run_id, log, args.profile)
        for db, server in sources.items():
            inv = datagen.source_inventory(server, datagen.SOURCES_SPEC[db]["schema"])
            log(f"{db}: {len(inv)} tables, {sum(t['table_bytes'] for t in inv) / 1e6:.0f} MB of table data, "
                f"{sum(t['index_bytes'] for t in inv) / 1e6:.0f} MB of indexes (volume kept for `make bench`)")
    finally:
        cleanup(run_id)
    return 0


def rotation(rep: int, reps: int, wanted: list[str]) -> list[str]:
    """Method order of one round, rotated so that no tool always follows the same one;
    the last round ends with migrate, whose target then serves the app comparison."""
    base = [m for m in ("migrate", "pgcopydb", "dump", "floor") if m in wanted]
    if not base:
        return []
    k = rep % len(base)
    order = base[k:] + base[:k]
    if rep == reps - 1 and "migrate" in order:
        order.remove("migrate")
        order.append("migrate")
    return order


def _terminate(*_) -> None:
    raise KeyboardInterrupt


def command_run(args) -> int:
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(wanted) - set(ALL_METHODS)
    if unknown:
        raise SystemExit(f"FAILED: unknown method(s) {', '.join(sorted(unknown))}")
    images = dockerkit.project_images()
    check_images(images)
    copydb = pgcopydb_image() if "pgcopydb" in wanted else ""
    run_id = dt.datetime.now().strftime("%H%M%S") + secrets.token_hex(2)
    used = {k: v for k, v in images.items() if k in ("UNIFIED_IMAGE", "MIGRATOR_IMAGE")}
    if copydb:
        used["PGCOPYDB_IMAGE"] = copydb
    pinned = dockerkit.pin_images(used, run_id)
    work = Path(os.environ.get("BENCH_WORKDIR", "/var/tmp/consolidation-bench")) / run_id
    work.mkdir(parents=True, exist_ok=True)
    others = dockerkit.other_running_containers()
    host = {"cpus": os.cpu_count(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": platform.release(), "docker": dockerkit.client().version().get("Version"),
            "loadavg_start": dockerkit.loadavg(), "other_containers_at_start": others}
    if others:
        log(f"note: {len(others)} other container(s) running on this machine share its CPUs: "
            f"{', '.join(others[:8])}{' ...' if len(others) > 8 else ''}")
    signal.signal(signal.SIGTERM, _terminate)
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    ok = False
    try:
        log(f"run {run_id}: sources of {args.size / 1e6:.0f} MB, profile {args.profile}"
            " (generated once, kept in docker volumes)")
        sources = datagen.ensure_sources(args.size, images, run_id, log, args.profile)
        inventory = {db: datagen.source_inventory(s, datagen.SOURCES_SPEC[db]["schema"]) for db, s in sources.items()}
        tables = [dict(t, source=db) for db, inv in inventory.items() for t in inv]
        source_bytes = sum(t["table_bytes"] for t in tables)
        largest = max(tables, key=lambda t: t["table_bytes"])
        largest_heap = max(tables, key=lambda t: t["heap_pages"])
        split_mb = args.split_mb or max(1, math.ceil(largest_heap["heap_pages"] * 8192 / 4 / 2**20))
        log(f"data: {source_bytes / 1e6:.0f} MB of table data in {len(tables)} tables; largest "
            f"{largest['source']}.{largest['table']} {largest['table_bytes'] / 1e6:.0f} MB; split at {split_mb} MB")
        warm_sources(sources)
        bench = methods.Bench(run_id, work, {**images, **pinned}, pinned.get("PGCOPYDB_IMAGE", ""), sources,
                              args.jobs, split_mb, args.dump_compress, log)
        runs: dict[str, list[dict]] = {k: [] for k in report.METHODS}
        extra: dict = {}
        floor_files = []
        if "floor" in wanted:
            log("floor: writing every source table to binary COPY files on the host disk (not timed)")
            floor_files = methods.export_floor_files(bench)
        final_target = None
        try:
            for rep in range(args.reps):
                for method in rotation(rep, args.reps, wanted):
                    log(f"round {rep + 1}/{args.reps}: {method} (load {dockerkit.loadavg()})")
                    if method == "pgcopydb":
                        runs["pgcopydb"].append(methods.run_pgcopydb(bench, rep + 1))
                    elif method == "dump":
                        runs["dump"].append(methods.run_dump_restore(bench, rep + 1))
                    elif method == "floor":
                        runs["floor"].append(methods.run_floor(bench, rep + 1, floor_files))
                    elif method == "migrate":
                        result, verify, target = methods.run_migrate(bench, rep + 1)
                        runs["migrate"].append(result)
                        runs["verify"].append(verify)
                        if rep == args.reps - 1:
                            final_target = target      # serves the app comparison
                        else:
                            bench.drop_target(target)
            if final_target is not None and not args.no_queries:
                extra = app_comparison(bench, final_target, args)
        finally:
            if final_target is not None:
                bench.drop_target(final_target)
            shutil.rmtree(work / "floor", ignore_errors=True)
        rows = report.summarize(runs, source_bytes, args.jobs)
        full = {
            "bench_version": 1, "started_at": started_at, "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
            "host": {**host, "loadavg_end": dockerkit.loadavg()},
            "settings": {"size_requested_bytes": args.size, "profile": args.profile,
                         "migrator": str(methods.migrator_dir()), "reps": args.reps, "jobs": args.jobs, "split_mb": split_mb,
                         "dump_compress": args.dump_compress, "methods": wanted, "query_runs": args.query_runs,
                         "images": {k: v for k, v in images.items() if k.endswith("IMAGE")}, "pgcopydb_image": copydb,
                         "data_recipe": datagen.RECIPE},
            "data": {"source_table_bytes": source_bytes,
                     "source_index_bytes": sum(t["index_bytes"] for t in tables), "tables": len(tables),
                     "largest_table": f"{largest['source']}.{largest['table']}",
                     "largest_table_bytes": largest["table_bytes"],
                     "per_source_table_bytes": {db: sum(t["table_bytes"] for t in inv) for db, inv in inventory.items()},
                     "top_tables": sorted(tables, key=lambda t: -t["table_bytes"])[:12]},
            "methods": rows,
            "migrate_phases": report.phase_medians(runs["migrate"]),
            "server_activity": median_activity(runs),
            **extra,
            "runs": runs,
        }
        json_path, md_path = report.write(full, args.out)
        console.print()
        report.print_all(console, full)
        log(f"wrote {json_path} and {md_path}")
        ok = True
        return 0
    except KeyboardInterrupt:
        log("interrupted: removing this run's containers")
        return 130
    finally:
        cleanup(run_id)
        dockerkit.unpin_images(pinned)
        if ok and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        elif not ok:
            log(f"work directory kept for inspection: {work}")


def median_activity(runs: dict[str, list[dict]]) -> dict:
    """The activity profile of each method's median run."""
    out = {}
    for key, results in runs.items():
        with_activity = [r for r in results if r.get("activity")]
        if not with_activity:
            continue
        ordered = sorted(with_activity, key=lambda r: r["seconds"])
        out[key] = ordered[len(ordered) // 2]["activity"]
    return out


def app_comparison(bench: methods.Bench, target, args) -> dict:
    log("app queries: legacy vs unified (after migrate + ANALYZE)")
    pools = queries.parameter_pools(bench.sources)
    after_migrate = queries.compare(bench.sources, target, pools, runs=args.query_runs,
                                    warmup=max(5, args.query_runs // 10))
    seconds = queries.vacuum_unified(target, methods.TARGET_SCHEMAS)
    log(f"app queries: again after VACUUM (ANALYZE) of the migrated schemas ({seconds:.1f} s)")
    after_vacuum = queries.compare(bench.sources, target, pools, runs=args.query_runs,
                                   warmup=max(5, args.query_runs // 10))
    log("resources: restart each instance (time to ready/healthy), docker stats memory")
    res = resources.compare(bench.sources, target, pools, log)
    return {"queries_after_migrate": after_migrate, "queries_after_vacuum": after_vacuum,
            "vacuum_seconds": round(seconds, 2), "resources": res}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "data":
        return command_data(args)
    if args.command == "run":
        return command_run(args)
    if args.command == "report":
        import json
        full = json.loads((args.out / "bench.json").read_text())
        full["methods"] = report.summarize(full["runs"], full["data"]["source_table_bytes"], full["settings"]["jobs"])
        full["migrate_phases"] = report.phase_medians(full["runs"]["migrate"])
        report.write(full, args.out)
        report.print_all(console, full)
        return 0
    if args.command == "clean":
        cleanup()
        for volume in dockerkit.bench_volumes():
            log(f"removing volume {volume.name}")
            volume.remove(force=True)
        for image in dockerkit.client().images.list():   # tags a killed run left pinned
            for tag in image.tags:
                if tag.startswith("consolidation-bench/"):
                    dockerkit.client().images.remove(tag, noprune=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
