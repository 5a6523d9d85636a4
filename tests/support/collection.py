"""How the suite is collected: a marker per folder (so slow groups can be selected,
docs/tests.md), and the modules that share one real-app stack run one after the other
in the order that keeps the stack sound (tests/support/appstack.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/<folder>/ -> marker (declared in pyproject.toml).
FOLDER_MARKERS = {"unit": "unit", "engine": "engine", "roles": "roles", "stack": "stack"}


def mark_by_folder(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.path)).parent.name
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
