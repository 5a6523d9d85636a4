#!/usr/bin/env python3
"""The Grafana dashboard of the unified instance, as code.

    python3 scripts/dashboard.py > compose/monitoring/grafana/dashboards/consolidation.json

A script, not part of the migrator package: it only writes a file that Grafana
provisions (compose service `grafana`), so the migrator image need not carry it.
Standard library only. tests/unit/test_dashboard.py checks that the committed JSON
is this script's output; tests/stack/test_monitoring.py runs every panel's query
against a live Prometheus and fails on any that returns no series.

Variables: `app` (the app roles, i.e. the owners of app schemas) and `schema`
(the schemas of the selected apps). Metrics: compose/monitoring/queries.yaml.
"""

from __future__ import annotations

import json
import sys

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}   # provisioned with this uid
RATE = "$__rate_interval"
APP = 'usename=~"$app"'
SCHEMA = 'schema=~"$schema"'
# Roles and schemas that belong to Supabase or PostgreSQL, not to an application.
NOT_APPS = 'owner!~"supabase.*|postgres|pg_.*"'

_panels: list[dict] = []
_y = 0


def row(title: str) -> None:
    global _y
    _next_row()
    _panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y}, "id": len(_panels) + 1})
    _y += 1


def panel(title: str, *targets: tuple[str, str], unit: str = "short", kind: str = "timeseries",
          width: int = 8, description: str = "") -> None:
    """One panel; ``targets`` are (PromQL, legend) pairs. Panels fill rows of 24 columns."""
    global _y
    in_row = [p for p in _panels if p["type"] != "row" and p["gridPos"]["y"] == _y]
    x = sum(p["gridPos"]["w"] for p in in_row)
    if x + width > 24:
        _y += 8
        x = 0
    _panels.append({
        "id": len(_panels) + 1, "type": kind, "title": title, "description": description,
        "datasource": DATASOURCE, "gridPos": {"h": 8, "w": width, "x": x, "y": _y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [{"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    })


def _next_row() -> None:
    global _y
    if any(p["type"] != "row" and p["gridPos"]["y"] == _y for p in _panels):
        _y += 8


def build() -> dict:
    global _panels, _y
    _panels, _y = [], 0

    row("Per application")
    panel("Connections per app role vs its limit",
          (f"consolidation_role_connections{{{APP}}}", "{{usename}} connections"),
          (f"consolidation_role_connection_limit{{{APP}}}", "{{usename}} limit"),
          description="client connections of each app role against its CONNECTION LIMIT")
    panel("Query time share",
          (f"sum by (usename) (rate(consolidation_role_statements_exec_seconds_total{{{APP}}}[{RATE}]))"
           f" / scalar(sum(rate(consolidation_role_statements_exec_seconds_total[{RATE}])))", "{{usename}}"),
          unit="percentunit",
          description="each role's share of all statement execution time (pg_stat_statements, every statement)")
    panel("Statements per second",
          (f"rate(consolidation_role_statements_calls_total{{{APP}}}[{RATE}])", "{{usename}}"), unit="ops")
    _next_row()
    panel("Mean statement time",
          (f"consolidation_role_statements_mean_exec_seconds{{{APP}}}", "{{usename}}"), unit="s")
    panel("Temp I/O (sorts and hashes spilling to disk)",
          (f"rate(consolidation_role_statements_temp_blks_written_total{{{APP}}}[{RATE}]) * 8192", "{{usename}}"),
          unit="Bps")
    panel("Reads from outside shared buffers",
          (f"rate(consolidation_role_statements_shared_blks_read_total{{{APP}}}[{RATE}]) * 8192", "{{usename}}"),
          unit="Bps")
    _next_row()
    panel("Idle in transaction, oldest transaction",
          (f"consolidation_role_idle_in_transaction_max_seconds{{{APP}}}", "{{usename}} idle in tx"),
          (f"consolidation_role_transaction_max_seconds{{{APP}}}", "{{usename}} oldest tx"), unit="s")
    panel("Lock waits",
          (f"consolidation_role_lock_waits{{{APP}}}", "{{usename}} waiting"), unit="short")

    row("Per schema")
    panel("Schema size (tables + indexes + TOAST)",
          (f"consolidation_schema_size_bytes{{{SCHEMA}}}", "{{schema}}"), unit="bytes")
    panel("Schema growth over the last hour",
          (f"delta(consolidation_schema_size_bytes{{{SCHEMA}}}[1h])", "{{schema}}"), unit="bytes")
    panel("Live and dead rows",
          (f"consolidation_schema_activity_live_rows{{{SCHEMA}}}", "{{schema}} live"),
          (f"consolidation_schema_activity_dead_rows{{{SCHEMA}}}", "{{schema}} dead"))
    _next_row()
    panel("Since the last (auto)vacuum / analyze",
          (f"consolidation_schema_activity_last_vacuum_age_seconds{{{SCHEMA}}}", "{{schema}} vacuum"),
          (f"consolidation_schema_activity_last_analyze_age_seconds{{{SCHEMA}}}", "{{schema}} analyze"), unit="s")
    panel("Vacuums per hour",
          (f"rate(consolidation_schema_activity_vacuums_total{{{SCHEMA}}}[{RATE}]) * 3600", "{{schema}}"))
    panel("Sequence headroom (smallest left)",
          (f"consolidation_sequence_headroom_ratio{{{SCHEMA}}}", "{{schema}}"), unit="percentunit")
    _next_row()
    panel("pgvector index size",
          (f"consolidation_vector_index_size_bytes{{{SCHEMA}}}", "{{schema}}.{{index}} ({{method}})"), unit="bytes",
          width=12)
    panel("pgvector index scans",
          (f"rate(consolidation_vector_index_scans_total{{{SCHEMA}}}[{RATE}])", "{{schema}}.{{index}}"), unit="ops",
          width=12)

    row("Instance")
    panel("Connections vs max_connections",
          ("consolidation_instance_connections", "connections"),
          ("consolidation_instance_max_connections - consolidation_instance_reserved_connections", "usable"))
    panel("Transaction ID age (wraparound at 2.1e9)", ("consolidation_instance_xid_age", "xid age"))
    panel("WAL rate", (f"rate(consolidation_instance_wal_bytes_total[{RATE}])", "WAL"), unit="Bps")
    _next_row()
    panel("WAL held by replication slots", ("consolidation_instance_slot_wal_retained_max_bytes", "largest slot"),
          unit="bytes")
    panel("Exporter", ('pg_up{job="postgres"}', "pg_up"),
          ('scrape_duration_seconds{job="postgres"}', "scrape seconds"))
    panel("Alerts firing", ('count(ALERTS{alertstate="firing"}) or vector(0)', "firing"), kind="stat")

    row("Backups")
    panel("Since the last successful backup", ("consolidation_backup_age_seconds", "{{kind}}"), unit="s")
    panel("WAL archiving failing", ("consolidation_archiver_failing", "failing"), kind="stat")
    panel("WAL segments archived per hour",
          (f"rate(consolidation_archiver_archived_total[{RATE}]) * 3600", "archived"),
          (f"rate(consolidation_archiver_failed_total[{RATE}]) * 3600", "failed"))

    def variable(name: str, label: str, query: str) -> dict:
        return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
                "query": {"query": query, "refId": f"var-{name}"}, "definition": query,
                "multi": True, "includeAll": True, "current": {"text": "All", "value": "$__all"},
                "refresh": 2, "sort": 1}

    return {
        "uid": "consolidation-unified", "title": "Unified Postgres (consolidation)",
        "description": "Per-application view of the unified Supabase Postgres; generated by scripts/dashboard.py",
        "tags": ["postgres", "consolidation"], "timezone": "browser", "schemaVersion": 39, "version": 1,
        "editable": False, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            variable("app", "app", f"label_values(consolidation_schema_size_bytes{{{NOT_APPS}}}, owner)"),
            variable("schema", "schema", 'label_values(consolidation_schema_size_bytes{owner=~"$app"}, schema)'),
        ]},
        "panels": _panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
