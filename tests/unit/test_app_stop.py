"""How the window stops Letta (docs/cutover.md, "Stopping the writers"): its service runs
behind docker's init, so the SIGTERM uvicorn re-raises after its shutdown ends the process
at once; as PID 1 the kernel ignored it and the interpreter's teardown took ~3.5 s more.
The stop itself stays SIGTERM with docker's grace: nothing may end Letta before its
shutdown lines (tests/stack/test_cutover.py checks that on the real app)."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def test_letta_runs_behind_an_init():
    assert services()["letta"].get("init") is True


def test_the_apps_keep_sigterm_as_their_stop_signal():
    for name in ("n8n", "letta"):
        assert services()[name].get("stop_signal", "SIGTERM") == "SIGTERM", name
