"""`online cutover` with [apps] is the offline window's own phases around the online move
(migrator/steps/online.py): the phases it reuses exist, keep their lifecycle records, and
neither migrate nor the full verify is among them."""

from __future__ import annotations

from migrator.steps import cutover, online


def test_the_reused_phases_are_the_offline_windows():
    offline = {p.title: p for p in cutover.PHASES}
    for title in online.REUSED:
        assert online.offline_phase(title) is offline[title]


def test_the_online_window_stops_moves_and_restarts_without_a_second_verify():
    phases = online.window_phases()
    titles = [p.title for p in phases]
    assert titles.index("online ready") < titles.index("stop writers") < titles.index("online cutover") \
        < titles.index("roles") < titles.index("start apps") < titles.index("smoke (fingerprint)")
    assert "migrate" not in titles and "verify" not in titles and "backup" not in titles
    records = [r for p in phases for r in (p.before, p.after) if r]
    assert records == ["apps-stopped", "migrated", "env-rewritten", "apps-started", "done"]


def test_the_checksums_come_before_the_stop_in_the_online_window():
    """Every row is hashed with the apps running; inside the window only what changed."""
    titles = [p.title for p in online.window_phases()]
    assert titles.index("online ready") < titles.index("online checksums") < titles.index("stop writers")
