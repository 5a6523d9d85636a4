"""tests/support/collection.py: the shared real-app stack's modules run together, in the
order that keeps the stack sound; every other test keeps its place (no docker)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.support.collection import SHARED_APP_STACK, order_shared_stack


def item(module: str, name: str):
    return SimpleNamespace(path=Path("/repo/tests/stack") / module, name=name)


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
