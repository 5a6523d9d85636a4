"""status: one screen for an operator without Grafana.

Per application: its schemas' size, connections used against its role's limit,
its share of statement time over the last interval, its schemas' last vacuum.
Instance-wide: connections against max_connections, the last successful backup
and its age, WAL archiving, and the alerts firing in Prometheus.

Sizes, connections, vacuum, backups and archiving come from the target itself
(catalog and statistics only, read-only session, pinned search_path). The time
share and the alerts come from Prometheus when it answers (`--prometheus`,
default $CONSOLIDATION_PROMETHEUS_URL or http://prometheus:9090, the compose
service); otherwise the time share is computed since pg_stat_statements was last
reset, and the screen says that Prometheus was not reachable. `--json` prints
the same as JSON for machines. Changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql
from rich.table import Table

from migrator import argtypes, console
from migrator.db import connect
from migrator.errors import ConfigError, DatabaseError
from migrator.settings import Settings

COMMAND = "status"
LOCK = None  # monitoring: it must run whatever else runs (migrator/runlock.py)
HELP = "per app: size, connections vs limit, query time share, last vacuum; backups and alerts"
DEFAULT_PROMETHEUS = "http://prometheus:9090"

APPS_SQL = """
SELECT r.app, r.role_name, r.connection_limit, coalesce(array_agg(s.schema_name::text ORDER BY s.search_order)
       FILTER (WHERE s.schema_name IS NOT NULL), '{}')
  FROM consolidation_admin.app_role r LEFT JOIN consolidation_admin.app_schema s USING (app)
 WHERE r.kind = 'app' GROUP BY r.app, r.role_name, r.connection_limit ORDER BY r.app
"""
SCHEMAS_SQL = """
SELECT n.nspname::text,
       coalesce((SELECT sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c
                  WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'p')), 0)::bigint,
       (SELECT max(greatest(t.last_vacuum, t.last_autovacuum)) FROM pg_catalog.pg_stat_all_tables t
         WHERE t.relid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid))
  FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%s)
"""
CONNECTIONS_SQL = """
SELECT r.rolname::text, r.rolconnlimit, count(a.pid)
  FROM pg_catalog.pg_roles r
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.usesysid = r.oid AND a.backend_type = 'client backend'
 WHERE r.rolname = ANY(%s) GROUP BY r.rolname, r.rolconnlimit
"""
INSTANCE_SQL = """
SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend'),
       pg_catalog.current_setting('max_connections')::int,
       a.archived_count, a.failed_count, a.last_archived_time, a.last_failed_time,
       pg_catalog.current_setting('archive_mode'),
       a.last_failed_time IS NOT NULL AND a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
  FROM pg_catalog.pg_stat_archiver a
"""
# The table, not the view _consolidation_ops.last_backup: this session expands no views.
BACKUP_SQL = """
SELECT kind, max(finished_at), extract(epoch FROM pg_catalog.now() - max(finished_at))::bigint
  FROM _consolidation_ops.backup_runs WHERE ok GROUP BY kind ORDER BY kind
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--prometheus", metavar="URL",
                        default=os.environ.get("CONSOLIDATION_PROMETHEUS_URL", DEFAULT_PROMETHEUS),
                        help="Prometheus for alerts and the time share (default: $CONSOLIDATION_PROMETHEUS_URL"
                             f" or {DEFAULT_PROMETHEUS})")
    parser.add_argument("--interval", metavar="S", type=argtypes.seconds, default=3600.0,
                        help="query time share over the last S seconds (Prometheus; default: %(default)s)")
    parser.add_argument("--wait", type=argtypes.seconds, default=None,
                        help="seconds to wait for the target if it is still starting (default: the global --wait)")


def _prometheus_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--prometheus: expected an http(s) URL, got {url!r}")
    return url.rstrip("/")


def collect(conn: psycopg.Connection, prometheus: str | None, interval: float, target: str = "unified") -> dict:
    """Everything the screen shows, as plain data (the --json output)."""
    if conn.execute("SELECT pg_catalog.to_regclass('consolidation_admin.app_role')").fetchone()[0] is None:
        raise DatabaseError(target, "target", "no application registry; run `consolidate roles` first")
    apps = conn.execute(APPS_SQL).fetchall()
    schemas = {r[0]: r[1:] for r in conn.execute(SCHEMAS_SQL, ([s for a in apps for s in a[3]],))}
    connections = {r[0]: r[1:] for r in conn.execute(CONNECTIONS_SQL, ([a[1] for a in apps],))}
    (total_conn, max_conn, archived, failed, last_archived, last_failed, archive_mode,
     failing) = conn.execute(INSTANCE_SQL).fetchone()
    backups = []
    if conn.execute("SELECT pg_catalog.to_regclass('_consolidation_ops.backup_runs')").fetchone()[0]:
        backups = [{"kind": k, "finished_at": f.isoformat(), "age_seconds": a} for k, f, a in conn.execute(BACKUP_SQL)]

    alerts = {"source": prometheus, "reachable": False, "firing": []}
    shares, share_source = None, None
    if prometheus:
        try:
            alerts["firing"] = _firing(prometheus)
            alerts["reachable"] = True
            shares = _prometheus_shares(prometheus, interval)
            share_source = f"prometheus, last {interval:g} s"
        except (requests.RequestException, ValueError, KeyError) as exc:
            alerts["error"] = f"not reachable: {type(exc).__name__}"
    if shares is None:
        shares, share_source = _statement_shares(conn), "pg_stat_statements since its last reset"

    out_apps = []
    for app, role, limit, app_schemas in apps:
        rows = [{"schema": s, "size_bytes": schemas[s][0] if s in schemas else None,
                 "last_vacuum": schemas[s][1].isoformat() if s in schemas and schemas[s][1] else None}
                for s in app_schemas]
        vacuums = [r["last_vacuum"] for r in rows if r["last_vacuum"]]
        used = connections.get(role, (limit, 0))
        out_apps.append({
            "app": app, "role": role, "schemas": rows,
            "size_bytes": sum(r["size_bytes"] or 0 for r in rows),
            "connections": used[1], "connection_limit": used[0],
            "time_share": shares.get(role, 0.0),
            "last_vacuum": max(vacuums) if vacuums else None,
        })
    return {
        "apps": out_apps,
        "time_share_source": share_source,
        "instance": {
            "connections": total_conn, "max_connections": max_conn,
            "backups": backups,
            "backup_age_seconds": min((b["age_seconds"] for b in backups), default=None),
            "archiver": {"archive_mode": archive_mode, "archived": archived, "failed": failed, "failing": failing,
                         "last_archived": last_archived.isoformat() if last_archived else None,
                         "last_failed": last_failed.isoformat() if last_failed else None},
            "alerts": alerts,
        },
    }


def _firing(prometheus: str) -> list[dict]:
    response = requests.get(f"{prometheus}/api/v1/alerts", timeout=3)
    response.raise_for_status()
    return sorted(({"alert": a["labels"]["alertname"], "severity": a["labels"].get("severity", ""),
                    "summary": a.get("annotations", {}).get("summary", "")}
                   for a in response.json()["data"]["alerts"] if a["state"] == "firing"),
                  key=lambda a: (a["alert"], a["summary"]))


def _prometheus_shares(prometheus: str, interval: float) -> dict[str, float]:
    window = f"{max(int(interval), 60)}s"
    expr = (f"sum by (usename) (increase(consolidation_role_statements_exec_seconds_total[{window}]))"
            f" / scalar(sum(increase(consolidation_role_statements_exec_seconds_total[{window}])))")
    response = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result = response.json()["data"]["result"]
    if not result:
        raise ValueError("no statement metrics in Prometheus")
    return {r["metric"]["usename"]: _number(r["value"][1]) for r in result if "usename" in r["metric"]}


def _number(text: str) -> float:
    value = float(text)
    return 0.0 if value != value else value     # NaN (no statements at all in the window) -> 0


def _statement_shares(conn: psycopg.Connection) -> dict[str, float]:
    ext = conn.execute("SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
                       " ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'").fetchone()
    if ext is None:
        return {}
    rows = conn.execute(sql.SQL(
        "SELECT pg_catalog.pg_get_userbyid(userid), sum(total_exec_time) FROM {}.pg_stat_statements(false)"
        " GROUP BY userid").format(sql.Identifier(ext[0]))).fetchall()
    total = sum(float(t) for _, t in rows) or 1.0
    return {role: float(t) / total for role, t in rows}


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = int(seconds)
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h" if seconds >= 86400 else \
        f"{seconds // 3600}h {seconds % 3600 // 60}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60}s"


def render(data: dict) -> None:
    table = Table(title="applications", title_justify="left")
    for column in ("app", "schemas", "size", "connections / limit", "time share", "last vacuum"):
        table.add_column(column)
    for app in data["apps"]:
        table.add_row(app["app"], ", ".join(f"{s['schema']} {_size(s['size_bytes'])}" for s in app["schemas"]),
                      _size(app["size_bytes"]), f"{app['connections']} / {app['connection_limit']}",
                      f"{app['time_share'] * 100:.1f} %", app["last_vacuum"] or "never")
    console.print_table(table)
    console.say(f"time share: {data['time_share_source']}")
    inst = data["instance"]
    console.say(f"instance: {inst['connections']} / {inst['max_connections']} connections")
    backups = ", ".join(f"{b['kind']} {_age(b['age_seconds'])} ago" for b in inst["backups"]) or "none recorded"
    console.say(f"last successful backup: {backups}")
    arch = inst["archiver"]
    console.say(f"WAL archiving: mode {arch['archive_mode']}, {arch['archived']} archived, {arch['failed']} failed"
                + (" - FAILING" if arch["failing"] else ""))
    alerts = inst["alerts"]
    if not alerts["reachable"]:
        console.warn("alerts:", f"Prometheus at {alerts['source']} {alerts.get('error', 'not configured')};"
                     " alerts unknown")
    elif not alerts["firing"]:
        console.say("alerts firing: none")
    else:
        for alert in alerts["firing"]:
            console.warn(f"FIRING {alert['alert']} ({alert['severity']}):", alert["summary"], style="red")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    prometheus = _prometheus_url(args.prometheus) if args.prometheus else None
    with connect(settings.target, args.wait, read_only=True) as conn:
        data = collect(conn, prometheus, args.interval, settings.target.name)
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(data)
    return 0
