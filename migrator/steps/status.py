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
reset. While an online run copies (docs/online.md), a table per source: its phase,
the tables' sync states, the replication lag in bytes and seconds. The alerts (firing,
and pending: waiting out their `for:`) are "none" only when every alerting rule was
read and evaluated cleanly; whenever they could not be read completely, the screen
says "alerts unknown" and why (read_alerts). `--json` prints the same as JSON for
machines. Changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql
from rich.table import Table

from migrator import console
from migrator.config import argtypes
from migrator.config.mapping import load_mappings
from migrator.config.settings import Settings
from migrator.engine import replication, toolschemas
from migrator.engine.db import connect
from migrator.errors import ConfigError, DatabaseError

COMMAND = "status"
LOCK = None  # monitoring: it must run whatever else runs (migrator/engine/runlock.py)
HELP = "per app: size, connections vs limit, query time share, last vacuum; backups and alerts"
DEFAULT_PROMETHEUS = "http://prometheus:9090"
ALERTS_TIMEOUT = 5          # seconds; beyond it the alerts are unknown, never "none"
STALE_GRACE = 30            # seconds beyond 3 evaluation intervals before a rule group counts as stalled

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

    alerts = read_alerts(prometheus) if prometheus else _unknown(None, False, "not configured")
    shares, share_source = None, None
    if alerts["reachable"]:                    # an unreachable Prometheus is not asked twice
        try:
            shares = _prometheus_shares(prometheus, interval)
            share_source = f"prometheus, last {interval:g} s"
        except (requests.RequestException, ValueError, KeyError):
            pass
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


def _unknown(source: str | None, reachable: bool, error: str, firing: list | None = None) -> dict:
    return {"source": source, "reachable": reachable, "known": False, "error": error,
            "firing": firing, "pending": None}


def read_alerts(prometheus: str) -> dict:
    """Every alerting rule's state from /api/v1/rules, or why it is unknown.

    `known` is true only when Prometheus answered in full and every alerting rule has been
    evaluated without error in its group's last few intervals: only then is an empty
    `firing` list "no alert firing". Otherwise `known` is false, `error` says why, and
    `firing` holds what could be read (None if nothing), never to be read as "none".
    /api/v1/rules rather than /api/v1/alerts: the same alerts, plus each rule's health
    and last evaluation, without which a rule that failed or never ran looks quiet."""
    try:
        response = requests.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=ALERTS_TIMEOUT)
    except requests.Timeout:
        return _unknown(prometheus, False, f"did not answer within {ALERTS_TIMEOUT} s")
    except requests.ConnectionError as exc:
        return _unknown(prometheus, False, f"not reachable ({type(exc).__name__})")
    except requests.RequestException as exc:       # e.g. the body cut short: part of an answer is no answer
        return _unknown(prometheus, True, f"answer broken off ({type(exc).__name__})")
    try:
        if response.status_code != 200:
            return _unknown(prometheus, True, f"answered HTTP {response.status_code}")
        body = response.json()
        if body.get("status") != "success":
            return _unknown(prometheus, True, f"answered {body.get('status')!r}: {body.get('error', '')}"[:300])
        return _rule_states(prometheus, body["data"]["groups"], _server_time(response))
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError) as exc:
        return _unknown(prometheus, True, f"answer not understood ({type(exc).__name__}: {exc})"[:300])


def _server_time(response: requests.Response) -> datetime:
    """Prometheus' own clock (its Date header), so a skewed local clock reads no rule as stale."""
    date = response.headers.get("Date")
    return parsedate_to_datetime(date) if date else datetime.now(timezone.utc)


def _rule_states(prometheus: str, groups: list, now: datetime) -> dict:
    firing, pending, problems = [], [], []
    rules = 0
    for group in groups:
        stale = _stale(group, now)
        for rule in group["rules"]:
            if rule.get("type", "alerting") != "alerting":
                continue
            rules += 1
            if rule["health"] != "ok":
                problems.append(f"rule {rule['name']}: " + (f"last evaluation failed: {rule.get('lastError', '')}"
                                if rule["health"] == "err" else "not evaluated yet"))
            for alert in rule.get("alerts") or []:
                if alert["state"] in ("firing", "pending"):
                    (firing if alert["state"] == "firing" else pending).append(_alert(alert))
        if stale:
            problems.append(f"group {group['name']}: {stale}")
    if not rules:
        problems.append("no alerting rules loaded")
    firing.sort(key=itemgetter("alert", "summary"))
    pending.sort(key=itemgetter("alert", "summary"))
    if problems:
        out = _unknown(prometheus, True, "; ".join(problems)[:500], firing)
        out["pending"] = pending
        return out
    return {"source": prometheus, "reachable": True, "known": True, "firing": firing, "pending": pending}


def _stale(group: dict, now: datetime) -> str | None:
    """Why a group's alert states are out of date, if they are: its last evaluation is more than
    a few intervals old (Prometheus' rule evaluation stalled or far behind)."""
    interval = float(group.get("interval") or 0)
    last = datetime.fromisoformat(group["lastEvaluation"].replace("Z", "+00:00"))
    if last.year < 2000:                       # Go's zero time: never evaluated
        return "not evaluated yet"
    age = (now - last).total_seconds()
    if age > 3 * interval + STALE_GRACE:
        return f"last evaluated {age:.0f} s ago (interval {interval:g} s)"
    return None


def _alert(alert: dict) -> dict:
    labels = alert["labels"]
    return {"alert": labels["alertname"], "severity": labels.get("severity", ""),
            "summary": (alert.get("annotations") or {}).get("summary", ""), "active_since": alert.get("activeAt")}


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
    _render_alerts(inst["alerts"])


def _render_alerts(alerts: dict) -> None:
    """Never "none" unless every alerting rule was read: an operator in an incident must not be told all is quiet."""
    if not alerts["known"]:
        where = f"Prometheus at {alerts['source']} " if alerts["source"] else "Prometheus "
        console.warn("alerts:", f"{where}{alerts['error']}; alerts unknown", style="red")
    elif not alerts["firing"]:
        console.say("alerts firing: none")
    for alert in alerts["firing"] or []:
        console.warn(f"FIRING {alert['alert']} ({alert['severity']}):", alert["summary"], style="red")
    for alert in alerts["pending"] or []:
        console.warn(f"pending {alert['alert']} ({alert['severity']}) since {alert['active_since']}:",
                     alert["summary"])


def online_phase(settings: Settings, conn: psycopg.Connection) -> list[dict]:
    """Per source of an online run not cut over yet: its phase, the tables' sync states,
    the lag in bytes and seconds (migrator/steps/online.py; catalog and statistics only)."""
    if conn.execute("SELECT pg_catalog.to_regclass(%s)", (replication.STATE,)).fetchone()[0] is None:
        return []
    rows = []
    for mapping in load_mappings(settings):
        found = replication.state(conn, mapping)
        if found and found["phase"] != "done":
            rows.append(replication.source_status(conn, mapping))
    return rows


def _registry_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT pg_catalog.to_regclass('consolidation_admin.app_role')").fetchone()[0] is not None


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    prometheus = _prometheus_url(args.prometheus) if args.prometheus else None
    with connect(settings.target, args.wait, read_only=True) as conn:
        toolschemas.require_trusted(conn, name=settings.target.name)   # it reads the registry and backup runs
        copying = online_phase(settings, conn)
        if copying and not _registry_exists(conn):      # before the cutover: the online phase is all there is
            data = {"apps": None, "online": copying}
        else:
            data = {**collect(conn, prometheus, args.interval, settings.target.name), "online": copying}
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return 0
    if data["apps"] is None:
        console.say("applications: none registered yet (`consolidate roles` runs at the cutover)")
    else:
        render(data)
    if copying:
        console.print_table(replication.render_status(copying))
    return 0
