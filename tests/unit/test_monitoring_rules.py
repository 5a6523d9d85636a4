"""The alert rules and Prometheus' config are valid, and every alert has a unit test that
fires it and one that keeps it quiet (`promtool check rules`, `promtool test rules`, run in
OPS_IMAGE, the image the prometheus service runs)."""

import re
import subprocess

import pytest
import yaml

from tests.support import ROOT

MONITORING = ROOT / "compose/monitoring"
RULES = MONITORING / "rules/consolidation.rules.yml"
RULE_TESTS = MONITORING / "rules/consolidation.rules.test.yml"


def alerts() -> list[str]:
    return [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def promtool(images, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{MONITORING}:/m:ro",
                           "-w", "/m/rules", "--entrypoint", "promtool", images["OPS_IMAGE"], *args],
                          capture_output=True, text=True, timeout=120)


def test_the_issue_s_alerts_exist():
    assert set(alerts()) == {"PostgresExporterDown", "BackupTooOld", "ArchivingFailing", "RoleNearConnectionLimit",
                             "InstanceNearMaxConnections", "LongIdleInTransaction", "XidAgeHigh",
                             "ReplicationSlotHoldingWal", "SchemaGrowingFast"}


def test_every_alert_has_a_firing_and_a_quiet_case():
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fires, quiet = set(), set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == set(alerts()) and quiet == set(alerts())


def test_every_alert_is_documented():
    doc = (ROOT / "docs/monitoring.md").read_text()
    missing = [a for a in alerts() if not re.search(rf"`{a}`", doc)]
    assert missing == []


@pytest.mark.integration
def test_promtool_checks_and_unit_tests_pass(images):
    checked = promtool(images, "check", "rules", "consolidation.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout
    tested = promtool(images, "test", "rules", "consolidation.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool(images, "check", "config", "--syntax-only", "/m/prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.mark.integration
def test_promtool_would_catch_a_broken_rule(images, tmp_path):
    # The test can fail: a threshold changed without its unit test is caught.
    broken = RULES.read_text().replace("> 300", "> 3000")
    assert broken != RULES.read_text()
    (tmp_path / "consolidation.rules.yml").write_text(broken)
    (tmp_path / "consolidation.rules.test.yml").write_text(RULE_TESTS.read_text())
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/r:ro", "-w", "/r",
                             "--entrypoint", "promtool", images["OPS_IMAGE"], "test", "rules",
                             "consolidation.rules.test.yml"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "LongIdleInTransaction" in result.stdout + result.stderr
