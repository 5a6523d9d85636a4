"""`make bench` at CI size (bench/): the command runs end to end and its JSON
has every method with positive times. Benchmarks are not pass/fail: nothing
here asserts on a timing or a ratio."""

from __future__ import annotations

import json
import subprocess
import sys

import docker
import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration


def test_bench_runs_at_tiny_size(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--size", "20MB", "--reps", "1",
                           "--query-runs", "5", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800, env=None)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.md").read_text().startswith("# Benchmark")

    methods = {m["key"]: m for m in report["methods"]}
    assert set(methods) == {"migrate", "verify", "pgcopydb", "dump", "floor"}
    for key, m in methods.items():
        assert m["runs"] == 1, key
        assert m["seconds_median"] > 0 and m["mb_per_s"] > 0, key
    assert methods["migrate"]["x_floor"] > 0 and methods["migrate"]["x_pgcopydb"] > 0
    assert report["data"]["source_table_bytes"] > 15_000_000
    assert report["migrate_phases"]["copy (COPY source -> target)"] > 0

    for key in ("queries_after_migrate", "queries_after_vacuum"):
        assert len(report[key]) == 6
        for q in report[key]:
            assert q["legacy"]["median_ms"] > 0 and q["unified"]["median_ms"] > 0, q["query"]
    rows = {r["what"]: r for r in report["resources"]["rows"]}
    assert rows["start to ready (s)"]["unified"] > 0

    # The run removed every container it started (the data volumes stay as a cache).
    leftover = docker.from_env().containers.list(all=True, filters={"label": "consolidation.bench=run"})
    assert [c.name for c in leftover if c.name.startswith("bench-")] == []
