"""The Grafana dashboard is what scripts/dashboard.py generates, and every panel asks for
metrics that compose/monitoring/queries.yaml (or the exporter/Prometheus) defines.
Whether each panel returns data is tests/stack/test_monitoring.py's job (live Prometheus)."""

import importlib.util
import json
import re

import yaml

from tests.support import ROOT

JSON = ROOT / "compose/monitoring/grafana/dashboards/consolidation.json"


def generator():
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "scripts/dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defined_metrics() -> set[str]:
    queries = yaml.safe_load((ROOT / "compose/monitoring/queries.yaml").read_text())
    names = set()
    for prefix, query in queries.items():
        for metric in query["metrics"]:
            (column, spec), = metric.items()
            if spec["usage"] != "LABEL":
                names.add(f"{prefix}_{column}")
    return names | {"pg_up", "scrape_duration_seconds", "ALERTS"}


def test_committed_json_is_the_generator_s_output():
    assert JSON.read_text() == generator().render(), "run: python3 scripts/dashboard.py > " + str(JSON.relative_to(ROOT))


def test_variables_and_panels_cover_the_issue():
    board = json.loads(JSON.read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["app", "schema"]
    titles = " | ".join(p["title"].lower() for p in board["panels"])
    for topic in ("connections", "query time share", "temp i/o", "growth", "vacuum", "lock",
                  "transaction id age", "wal rate", "backup", "archiving", "pgvector"):
        assert topic in titles, topic


def test_every_panel_queries_defined_metrics():
    board = json.loads(JSON.read_text())
    known = defined_metrics()
    functions = {"rate", "sum", "by", "scalar", "delta", "count", "or", "vector", "max", "min"}
    for p in board["panels"]:
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        for target in p["targets"]:
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|by \([^)]*\)", "", target["expr"])
            used = {w for w in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr)} - functions
            assert used <= known, (p["title"], used - known)
