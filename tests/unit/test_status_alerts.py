"""`consolidate status` reads the alerts from Prometheus' /api/v1/rules, and says "none"
only when it read every alerting rule, each evaluated cleanly and recently; an answer
that is partial, late, an error, or not understood is "alerts unknown" (issue 29).

Prometheus here is a tiny HTTP server on 127.0.0.1 that answers what each case sets,
the way Prometheus 2.53 answers (the live one: tests/stack/test_monitoring.py)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from migrator.steps import status

SUMMARY = "WAL archiving is failing; PITR is falling behind and pg_wal is growing"
ZERO_TIME = "0001-01-01T00:00:00Z"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"        # nanoseconds, as Go prints them


def alert(name: str, state: str, active: datetime, severity: str = "critical") -> dict:
    return {"labels": {"alertname": name, "severity": severity, "cluster": "unified"},
            "annotations": {"summary": SUMMARY if name == "ArchivingFailing" else f"{name} summary"},
            "state": state, "activeAt": _iso(active), "value": "1e+00"}


def rule(name: str, alerts: list[dict] = (), health: str = "ok", last_error: str = "") -> dict:
    states = {a["state"] for a in alerts}
    return {"state": "firing" if "firing" in states else "pending" if states else "inactive",
            "name": name, "query": "vector(1)", "duration": 300, "keepFiringFor": 0,
            "labels": {"severity": "critical"}, "annotations": {}, "alerts": list(alerts),
            "health": health, "lastError": last_error, "evaluationTime": 0.001,
            "lastEvaluation": _iso(datetime.now(timezone.utc)) if health != "unknown" else ZERO_TIME,
            "type": "alerting"}


def groups(*rules: dict, last: datetime | None = None, interval: float = 15) -> dict:
    last_eval = ZERO_TIME if last is None and all(r["health"] == "unknown" for r in rules) \
        else _iso(last or datetime.now(timezone.utc))
    return {"status": "success", "data": {"groups": [
        {"name": "consolidation", "file": "/etc/prometheus/rules/consolidation.rules.yml", "rules": list(rules),
         "interval": interval, "limit": 0, "evaluationTime": 0.002, "lastEvaluation": last_eval}]}}


class FakePrometheus:
    """Answers GET /api/v1/rules with (status code, body bytes, delay, declared length)."""

    def __init__(self):
        self.answer = (200, b"{}", 0.0, None)
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):           # noqa: N802 (http.server's name)
                fake.paths.append(self.path)
                code, body, delay, length = fake.answer
                time.sleep(delay)
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(length if length is not None else len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass                # the client gave up (the timeout case)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answers(self, body, code: int = 200, delay: float = 0.0, length: int | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answer = (code, raw, delay, length)


@pytest.fixture
def prometheus():
    fake = FakePrometheus()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def screen(alerts: dict, capsys) -> str:
    status._render_alerts(alerts)
    return " ".join(capsys.readouterr().out.split())       # as one line, whatever the terminal's width


NOW = datetime.now(timezone.utc)
FIRING = alert("ArchivingFailing", "firing", NOW - timedelta(minutes=6))

# Each: what Prometheus answers, and the start of the error status must give.
UNKNOWN_CASES = {
    "a rule whose last evaluation failed (its alerts are not current)": (
        lambda: groups(rule("ArchivingFailing", [FIRING]),
                       rule("BackupTooOld", health="err", last_error="query timed out in expression evaluation")),
        {}, "rule BackupTooOld: last evaluation failed: query timed out"),
    "rules not evaluated yet (Prometheus just started)": (
        lambda: groups(rule("ArchivingFailing", health="unknown"), rule("BackupTooOld", health="unknown")),
        {}, "rule ArchivingFailing: not evaluated yet"),
    "no alerting rules loaded (rule files missing)": (
        lambda: {"status": "success", "data": {"groups": []}}, {}, "no alerting rules loaded"),
    "rule evaluation stalled for minutes": (
        lambda: groups(rule("ArchivingFailing"), last=datetime.now(timezone.utc) - timedelta(minutes=10)),
        {}, "group consolidation: last evaluated "),     # ~600 s ago, by Prometheus' clock
    "HTTP 503 (Prometheus starting or overloaded)": (
        lambda: b"Service Unavailable", {"code": 503}, "answered HTTP 503"),
    "an API error": (
        lambda: {"status": "error", "errorType": "internal", "error": "rule manager not ready"}, {},
        "answered 'error': rule manager not ready"),
    "a body cut short (connection closed mid-answer)": (
        lambda: json.dumps(groups(rule("ArchivingFailing", [FIRING]))).encode()[:120], {"length": 4000},
        "answer broken off (ChunkedEncodingError)"),
    "not JSON at all (a proxy's page)": (
        lambda: b"<html>502 Bad Gateway</html>", {}, "answer not understood"),
    "JSON without the groups": (
        lambda: {"status": "success", "data": {}}, {}, "answer not understood (KeyError"),
}


@pytest.mark.parametrize("case", UNKNOWN_CASES, ids=list(UNKNOWN_CASES))
def test_an_incomplete_answer_is_alerts_unknown_never_none(prometheus, case, capsys):
    body, options, error = UNKNOWN_CASES[case]
    prometheus.answers(body(), **options)
    alerts = status.read_alerts(prometheus.url)
    assert alerts["known"] is False
    assert alerts["error"].startswith(error), alerts["error"]
    out = screen(alerts, capsys)
    assert "alerts unknown" in out and "none" not in out
    assert prometheus.paths == ["/api/v1/rules?type=alert"]
    # What could be read is still shown: a firing alert is never hidden by another rule's error.
    if case.startswith("a rule whose"):
        assert [a["alert"] for a in alerts["firing"]] == ["ArchivingFailing"]
        assert "FIRING ArchivingFailing (critical): " + SUMMARY in out


def test_a_late_answer_is_alerts_unknown(prometheus, capsys, monkeypatch):
    monkeypatch.setattr(status, "ALERTS_TIMEOUT", 0.5)
    prometheus.answers(groups(rule("ArchivingFailing", [FIRING])), delay=2)
    alerts = status.read_alerts(prometheus.url)
    assert (alerts["known"], alerts["reachable"], alerts["firing"]) == (False, False, None)
    assert alerts["error"] == "did not answer within 0.5 s"
    out = screen(alerts, capsys)
    assert f"Prometheus at {prometheus.url} did not answer within 0.5 s; alerts unknown" in out
    assert "none" not in out


def test_nothing_listening_is_alerts_unknown(prometheus, capsys):
    url = prometheus.url
    prometheus.server.shutdown()
    prometheus.server.server_close()
    alerts = status.read_alerts(url)
    assert (alerts["known"], alerts["reachable"], alerts["error"]) == (False, False, "not reachable (ConnectionError)")
    assert "alerts unknown" in screen(alerts, capsys)


def test_a_firing_alert_is_shown_and_a_pending_one_with_its_start(prometheus, capsys):
    pending = alert("RoleNearConnectionLimit", "pending", NOW - timedelta(seconds=40), "warning")
    prometheus.answers(groups(rule("ArchivingFailing", [FIRING]), rule("RoleNearConnectionLimit", [pending]),
                              rule("BackupTooOld")))
    alerts = status.read_alerts(prometheus.url)
    assert alerts["known"] is True and "error" not in alerts
    assert alerts["firing"] == [{"alert": "ArchivingFailing", "severity": "critical", "summary": SUMMARY,
                                 "active_since": FIRING["activeAt"]}]
    assert [a["alert"] for a in alerts["pending"]] == ["RoleNearConnectionLimit"]
    out = screen(alerts, capsys)
    assert "FIRING ArchivingFailing (critical): " + SUMMARY in out
    assert f"pending RoleNearConnectionLimit (warning) since {pending['activeAt']}:" in out
    assert "none" not in out and "unknown" not in out


def test_none_only_when_every_rule_was_read_and_evaluated(prometheus, capsys):
    prometheus.answers(groups(rule("ArchivingFailing"), rule("BackupTooOld")))
    alerts = status.read_alerts(prometheus.url)
    assert (alerts["known"], alerts["firing"], alerts["pending"]) == (True, [], [])
    assert screen(alerts, capsys) == "alerts firing: none"


def test_staleness_is_judged_on_prometheus_clock_not_ours(prometheus):
    """Evaluated 10 min ago by our clock, but Prometheus' Date header says it is just as late:
    a skewed host clock must not turn a healthy Prometheus into "unknown" (nor the reverse)."""
    late = datetime.now(timezone.utc) - timedelta(minutes=10)
    prometheus.answers(groups(rule("ArchivingFailing"), last=late))
    server_date = format_datetime(late + timedelta(seconds=5), usegmt=True)
    handler = prometheus.server.RequestHandlerClass     # the stdlib server stamps Date: set its clock back
    handler.date_time_string = lambda self, timestamp=None: server_date
    alerts = status.read_alerts(prometheus.url)
    assert alerts["known"] is True, alerts.get("error")
