"""Summaries of the runs: medians, MB/s and ratios; rich tables for the terminal,
JSON and Markdown for reports/."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

METHODS = {   # key -> label, in table order
    "migrate": "consolidate migrate (--jobs J)",
    "verify": "consolidate verify (separately)",
    "pgcopydb": "pgcopydb clone (0.17, per source db)",
    "dump": "pg_dump -Fd -j J + pg_restore -j J",
    "floor": "floor: target COPY FROM local files",
}


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def summarize(runs: dict[str, list[dict]], source_bytes: int, jobs: int) -> list[dict]:
    rows = []
    for key, label in METHODS.items():
        results = runs.get(key) or []
        if not results:
            continue
        times = [r["seconds"] for r in results]
        rss = [r.get("peak_rss_bytes") for r in results if r.get("peak_rss_bytes")]
        cpu = [r.get("client_cpu_s") for r in results if r.get("client_cpu_s") is not None]
        total_cpu = [sum((r.get("server_cpu_s") or {}).values()) + (r.get("client_cpu_s") or 0) for r in results
                     if r.get("server_cpu_s")]
        median = _median(times)
        rows.append({"key": key, "method": label.replace("J", str(jobs)), "runs": len(times),
                     "seconds_median": median, "seconds_min": min(times), "seconds_max": max(times),
                     "seconds_all": times,
                     "mb_per_s": round(source_bytes / 1e6 / median, 1) if median else None,
                     "peak_rss_mb": round(max(rss) / 1e6, 1) if rss else None,
                     "client_cpu_s_median": _median(cpu), "all_cpu_s_median": _median(total_cpu)})
    by_key = {r["key"]: r for r in rows}
    for row in rows:
        for ref, field in (("floor", "x_floor"), ("pgcopydb", "x_pgcopydb")):
            base = by_key.get(ref, {}).get("seconds_median")
            row[field] = round(row["seconds_median"] / base, 2) if base and row["seconds_median"] else None
        # Runs of one round follow each other closely: their ratio is less exposed to drifting load.
        mine, ref = runs.get(row["key"]) or [], runs.get("pgcopydb") or []
        if row["key"] not in ("pgcopydb", "floor", "verify") and ref and len(mine) == len(ref):
            row["x_pgcopydb_paired"] = [round(a["seconds"] / b["seconds"], 2) for a, b in zip(mine, ref)]
        # Best of the runs: on a shared machine other load only ever adds time.
        best = by_key.get("pgcopydb", {}).get("seconds_min")
        row["x_pgcopydb_best"] = round(row["seconds_min"] / best, 2) if best else None
    return rows


def phase_medians(migrate_runs: list[dict]) -> dict[str, float]:
    keys = []
    for run in migrate_runs:
        for k in run.get("phases", {}):
            if k not in keys:
                keys.append(k)
    return {k: _median([run.get("phases", {}).get(k) for run in migrate_runs]) for k in keys}


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def methods_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col, justify in (("method", "left"), ("wall s (median)", "right"), ("min-max s", "right"),
                         ("MB/s", "right"), ("x floor", "right"), ("x pgcopydb", "right"),
                         ("peak RSS MB", "right"), ("tool CPU s", "right"), ("CPU s, all", "right")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(r["method"], _fmt(r["seconds_median"]), f"{r['seconds_min']:.1f}-{r['seconds_max']:.1f}",
                      _fmt(r["mb_per_s"]), _fmt(r["x_floor"], 2), _fmt(r["x_pgcopydb"], 2), _fmt(r["peak_rss_mb"]),
                      _fmt(r["client_cpu_s_median"]))
    return table


def phases_table(phases: dict[str, float], wall: float | None) -> Table:
    table = Table(title="consolidate migrate: where the time goes (median of runs)")
    table.add_column("phase")
    table.add_column("s", justify="right")
    table.add_column("% of wall", justify="right")
    for k, v in phases.items():
        table.add_row(k, _fmt(v, 2), _fmt(100 * v / wall if wall and v is not None else None, 0))
    return table


def queries_table(results: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in ("app", "query", "legacy ms (median)", "unified ms (median)", "ratio", "legacy p95", "unified p95"):
        table.add_column(col, justify="left" if col in ("app", "query") else "right")
    for q in results:
        table.add_row(q["app"], q["query"], _fmt(q["legacy"]["median_ms"], 3), _fmt(q["unified"]["median_ms"], 3),
                      _fmt(q["ratio"], 2), _fmt(q["legacy"]["p95_ms"], 3), _fmt(q["unified"]["p95_ms"], 3))
    return table


def resources_table(resources: dict) -> Table:
    table = Table(title="Unified instance vs the legacy instances")
    names = [k for k in resources["rows"][0] if k not in ("what", "legacy_sum", "unified", "ratio")]
    for col in ("what", *[f"legacy {n}" for n in names], "legacy sum", "unified", "unified / sum"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in resources["rows"]:
        table.add_row(r["what"], *[_fmt(r[n]) for n in names], _fmt(r["legacy_sum"]), _fmt(r["unified"]),
                      _fmt(r["ratio"], 2))
    return table


def print_all(console: Console, report: dict) -> None:
    size = report["data"]["source_table_bytes"] / 1e6
    console.print(methods_table(report["methods"], f"Moving {size:.0f} MB of table data "
                                                   f"(n8n + Letta), median of {report['settings']['reps']} run(s)"))
    wall = next((r["seconds_median"] for r in report["methods"] if r["key"] == "migrate"), None)
    if report.get("migrate_phases"):
        console.print(phases_table(report["migrate_phases"], wall))
    for key, title in (("queries_after_migrate", "App queries: unified (after migrate + ANALYZE) vs legacy"),
                       ("queries_after_vacuum", "App queries: unified after VACUUM (ANALYZE) vs legacy")):
        if report.get(key):
            console.print(queries_table(report[key], title))
    if report.get("resources"):
        console.print(resources_table(report["resources"]))


def _md_table(headers: list[str], rows: list[list], left: int = 1) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines


def markdown(report: dict) -> str:
    d, s = report["data"], report["settings"]
    lines = [f"# Benchmark ({report['started_at']})", "",
             f"Data: {d['source_table_bytes'] / 1e6:.0f} MB of table data (heap + TOAST) in "
             f"{d['tables']} tables, {d['source_index_bytes'] / 1e6:.0f} MB of indexes; largest table "
             f"{d['largest_table']} ({d['largest_table_bytes'] / 1e6:.0f} MB). Jobs {s['jobs']}, split at "
             f"{s['split_mb']} MB, {s['reps']} run(s) per method (median). Host: {report['host']['cpus']} CPUs, "
             f"load at start {report['host']['loadavg_start']}, other containers running: "
             f"{len(report['host']['other_containers_at_start'])}.", ""]
    lines += _md_table(["method", "wall s (median)", "min-max s", "MB/s", "x floor", "x pgcopydb", "peak RSS MB",
                        "tool CPU s", "CPU s, all"],
                       [[r["method"], r["seconds_median"], f"{r['seconds_min']:.1f}-{r['seconds_max']:.1f}", r["mb_per_s"],
                         _fmt(r["x_floor"], 2), _fmt(r["x_pgcopydb"], 2), r["peak_rss_mb"], r["client_cpu_s_median"],
                         r["all_cpu_s_median"]] for r in report["methods"]])
    lines += ["", "Wall time: tool container start to exit (floor: the COPY statements). MB/s: source table bytes"
              " (heap + TOAST, both sources) / wall time. Peak RSS: the tool's container (cgroup total_rss, no page"
              " cache). Tool CPU: that container; CPU, all: target + both sources + tool."]
    paired = [f"{r['method']}: {r['x_pgcopydb_paired']}" for r in report["methods"] if r.get("x_pgcopydb_paired")]
    if paired:
        lines += ["", "Ratio to pgcopydb within each round (runs of a round follow each other): " + "; ".join(paired)]
    best = [f"{r['method']} {r['seconds_min']:.1f} s (x{r['x_pgcopydb_best']})" for r in report["methods"]
            if r.get("x_pgcopydb_best") is not None]
    if best:
        lines += ["", "Best run of each (least disturbed by other load on the machine), ratio to pgcopydb's best: "
                  + "; ".join(best)]
    if report.get("migrate_phases"):
        wall = next((r["seconds_median"] for r in report["methods"] if r["key"] == "migrate"), None)
        lines += ["", "## consolidate migrate: phases (median)", ""]
        lines += _md_table(["phase", "s", "% of wall"],
                           [[("&nbsp;&nbsp;" + k[2:]) if k.startswith("  ") else k, v,
                             round(100 * v / wall) if wall and v is not None else None]
                            for k, v in report["migrate_phases"].items()])
    if report.get("server_activity"):
        lines += ["", "## Target server activity (sampled pg_stat_activity, median run)", ""]
        classes = sorted({c for a in report["server_activity"].values() for c in a.get("classes", {})})
        rows = []
        for key, act in report["server_activity"].items():
            rows.append([key, act.get("avg_active_sessions")] +
                        [f"{act['classes'][c]['wall_s']} / {act['classes'][c]['session_s']} / "
                         f"{act['classes'][c]['max_parallel']}" if c in act.get("classes", {}) else "-"
                         for c in classes])
        lines += ["Per class: wall seconds with at least one session / session-seconds / most at once.", ""]
        lines += _md_table(["method", "avg active sessions", *classes], rows)
    for key, title in (("queries_after_migrate", "App queries: unified after migrate (+ANALYZE) vs legacy"),
                       ("queries_after_vacuum", "App queries: unified after VACUUM (ANALYZE) vs legacy")):
        if report.get(key):
            lines += ["", f"## {title}", ""]
            lines += _md_table(["app", "query", "legacy ms", "unified ms", "ratio", "legacy p95", "unified p95"],
                               [[q["app"], q["query"], _fmt(q["legacy"]["median_ms"], 2),
                                 _fmt(q["unified"]["median_ms"], 2), _fmt(q["ratio"], 2), _fmt(q["legacy"]["p95_ms"], 2),
                                 _fmt(q["unified"]["p95_ms"], 2)] for q in report[key]], left=2)
    if report.get("resources"):
        rows = report["resources"]["rows"]
        names = [k for k in rows[0] if k not in ("what", "legacy_sum", "unified", "ratio")]
        lines += ["", "## Unified instance vs the legacy instances", ""]
        lines += _md_table(["", *[f"legacy {n}" for n in names], "legacy sum", "unified", "unified / sum"],
                           [[r["what"], *[r[n] for n in names], r["legacy_sum"], r["unified"], _fmt(r["ratio"], 2)]
                            for r in rows])
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "bench.json", out_dir / "bench.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path
