"""How the suite is collected: a marker per folder (so slow groups can be selected,
docs/tests.md), the modules that share one real-app stack run one after the other
in the order that keeps the stack sound (tests/support/appstack.py), and, when pytest-xdist
runs the suite on several workers, what each worker is handed at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

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



# Under pytest-xdist (`make test` runs `-n 2 --dist loadscope`), a work unit is handed to one
# worker whole: the SHARED_APP_STACK modules are one unit (they pass one stack along, in
# order), every other module is a unit of its own (its module-scoped stack or servers start
# once, not once per worker). Units are handed out in collection order, and each worker
# sorts its collection the same way, longest first: the shared stack, the other stack
# modules, then engine, roles, unit, so both workers stay busy until the end (docs/tests.md).
# (xdist's own `loadgroup` marks do not work on pytest 9: it renames `item._nodeid`, which
# pytest 9 no longer reads; hence this scheduler, which groups by node id.)
SHARED_UNIT = "real-app-stack"
FOLDER_ORDER = ("stack", "engine", "roles", "unit")


def longest_first(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        folder = item.path.parent.name
        return (0 if item.path.name in SHARED_APP_STACK else 1,
                FOLDER_ORDER.index(folder) if folder in FOLDER_ORDER else len(FOLDER_ORDER))
    items.sort(key=rank)                    # stable: the shared stack's order and each module's kept


class WorkUnitScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with the work units above, in collection order."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return SHARED_UNIT if Path(module).name in SHARED_APP_STACK else module

    def schedule(self) -> None:
        self.config.option.loadscopereorder = False     # xdist would sort units by test count
        super().schedule()
