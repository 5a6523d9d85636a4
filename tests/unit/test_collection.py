"""tests/support/collection.py: the shared real-app stack's modules run together, in the
order that keeps the stack sound; every other test keeps its place (no docker)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.support.collection import SHARED_APP_STACK, SHARED_UNIT, WorkUnitScheduling, longest_first, order_shared_stack


def item(module: str, name: str, folder: str = "stack"):
    return SimpleNamespace(path=Path("/repo/tests") / folder / module, name=name)


def test_shared_modules_run_together_in_their_order_and_the_rest_keeps_its_place():
    items = [item("test_a.py", "1"), item("test_app_backups_real_apps.py", "decommission"),
             item("test_backups.py", "pitr"), item("test_cutover.py", "kill"), item("test_cutover.py", "full"),
             item("test_pooling.py", "auth"), item("test_rehearsal_apps.py", "seed"), item("test_z.py", "2")]
    order_shared_stack(items)
    assert [(i.path.name, i.name) for i in items] == [
        ("test_a.py", "1"), ("test_rehearsal_apps.py", "seed"), ("test_pooling.py", "auth"),
        ("test_cutover.py", "kill"), ("test_cutover.py", "full"), ("test_app_backups_real_apps.py", "decommission"),
        ("test_backups.py", "pitr"), ("test_z.py", "2")]


def test_the_consumers_come_last():
    assert SHARED_APP_STACK[-2:] == ("test_cutover.py", "test_app_backups_real_apps.py")


def test_nothing_shared_nothing_moved():
    items = [item("test_b.py", "1"), item("test_a.py", "2")]
    order_shared_stack(items)
    assert [i.name for i in items] == ["1", "2"]


def test_on_workers_the_shared_stack_is_one_unit_and_every_other_module_its_own():
    split = WorkUnitScheduling._split_scope
    assert {split(None, f"tests/stack/{m}::t[x]") for m in SHARED_APP_STACK} == {SHARED_UNIT}
    assert split(None, "tests/stack/test_backups.py::test_pitr") == "tests/stack/test_backups.py"
    assert split(None, "tests/engine/test_online.py::test_w[a::b]") == "tests/engine/test_online.py"


def test_on_workers_the_longest_units_come_first_and_in_module_order_within():
    items = [item("test_a.py", "1", "unit"), item("test_m.py", "2", "engine"), item("test_cutover.py", "3"),
             item("test_b.py", "4", "roles"), item("test_online_apps.py", "5"), item("test_m.py", "6", "engine"),
             item("test_rehearsal_apps.py", "7")]
    order_shared_stack(items)
    longest_first(items)
    assert [i.name for i in items] == ["7", "3", "5", "2", "6", "4", "1"]
