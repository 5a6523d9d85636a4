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


# The modules that share the session's real-app stack (tests/support/appstack.py), in the
# order they run: the rehearsal only reads and seeds through the apps; pooling cuts over
# and rolls back (the next module gets a fresh unified instance); cutover plants hostile
# objects in the legacy databases and so consumes the stack; app backups decommissions
# its (own, new) stack. A module added to the list runs before the consumers.
SHARED_APP_STACK = ("test_rehearsal_apps.py", "test_pooling.py", "test_cutover.py", "test_app_backups_real_apps.py")


def order_shared_stack(items: list[pytest.Item]) -> None:
    """The SHARED_APP_STACK modules' tests moved together, in that order, to where the first of
    them was collected; every other test keeps its place (pytest sorts the same in place)."""
    rank = {name: i for i, name in enumerate(SHARED_APP_STACK)}
    shared = [item for item in items if item.path.name in rank]
    if not shared:
        return
    first = next(i for i, item in enumerate(items) if item.path.name in rank)
    ordered = sorted(shared, key=lambda item: rank[item.path.name])     # stable: in-module order kept
    rest = [item for item in items if item.path.name not in rank]
    items[:] = rest[:first] + ordered + rest[first:]
