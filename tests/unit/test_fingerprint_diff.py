"""The application fingerprint's comparison: field by field, readable (no docker)."""

import json

import pytest

from migrator.apps import fingerprint_diff as fp
from migrator.errors import ConfigError

BASE = {"format": 1, "meta": {"taken_at": "2026-11-25T10:00:00+00:00", "apps": {"n8n": {"database": "old"}}},
        "apps": {"n8n": {"workflows": {"w1": {"name": "a", "active": True, "versionId": "v1"},
                                       "w2": {"name": "b", "active": False, "versionId": "v2"}},
                         "executions": {"w1": {"success": 4}},
                         "webhook": {"status": 200, "body": {"answer": "ready"}}},
                 "letta": {"tools": ["a", "b"], "search": {"results": ["x", "y"]}}}}


def copy():
    return json.loads(json.dumps(BASE))


def test_equal_fingerprints_have_no_difference_even_if_meta_differs():
    other = copy()
    other["meta"] = {"taken_at": "later", "apps": {"n8n": {"database": "unified, schema n8n"}}}
    assert fp.compare(BASE, other) == []


def test_changed_added_removed_are_reported_with_paths():
    other = copy()
    other["apps"]["n8n"]["workflows"]["w1"]["active"] = False
    del other["apps"]["n8n"]["workflows"]["w2"]
    other["apps"]["n8n"]["workflows"]["w3"] = {"name": "c"}
    other["apps"]["n8n"]["executions"]["w1"]["success"] = 5
    diffs = {d.path: d for d in fp.compare(BASE, other)}
    assert set(diffs) == {"n8n.workflows.w1.active", "n8n.workflows.w2", "n8n.workflows.w3",
                          "n8n.executions.w1.success"}
    assert diffs["n8n.workflows.w1.active"].kind == "changed"
    assert (diffs["n8n.workflows.w1.active"].before, diffs["n8n.workflows.w1.active"].after) == (True, False)
    assert diffs["n8n.workflows.w2"].kind == "removed"
    assert diffs["n8n.workflows.w3"].kind == "added"
    lines = fp.render_diff(fp.compare(BASE, other))
    assert "~ n8n.executions.w1.success: 4 -> 5" in lines
    assert "- n8n.workflows.w2: " + json.dumps({"active": False, "name": "b", "versionId": "v2"}, sort_keys=True) \
        in lines
    assert '+ n8n.workflows.w3: {"name": "c"}' in lines


def test_lists_compare_by_position_and_length():
    other = copy()
    other["apps"]["letta"]["search"]["results"] = ["y", "x", "z"]
    other["apps"]["letta"]["tools"] = ["a"]
    diffs = [d.as_dict() for d in fp.compare(BASE, other)]
    assert {"path": "letta.search.results[0]", "kind": "changed", "before": "x", "after": "y"} in diffs
    assert {"path": "letta.search.results[2]", "kind": "added", "after": "z"} in diffs
    assert {"path": "letta.tools[1]", "kind": "removed", "before": "b"} in diffs


def test_type_change_is_a_difference():
    assert fp.diff({"a": 1}, {"a": 1.0}) != [] and fp.diff({"a": 1}, {"a": "1"}) != []
    assert fp.diff({"a": True}, {"a": 1}) != []


def test_keys_with_dots_are_quoted():
    diffs = fp.diff({"a.b": 1}, {"a.b": 2})
    assert diffs[0].path == '"a.b"'


def test_render_limits_long_output():
    before = {str(i): i for i in range(80)}
    after = {str(i): i + 1 for i in range(80)}
    lines = fp.render_diff(fp.diff(before, after), limit=10)
    assert len(lines) == 11 and lines[-1].startswith("... and 70 more")


def test_load_validates_label_and_file(tmp_path):
    with pytest.raises(ConfigError):
        fp.check_label("../etc/passwd")
    with pytest.raises(ConfigError, match="no saved fingerprint 'legacy'"):
        fp.load(tmp_path, "legacy")
    (tmp_path / "fingerprint-bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a fingerprint"):
        fp.load(tmp_path, "bad")
    (tmp_path / "fingerprint-good.json").write_text(json.dumps(BASE))
    assert fp.load(tmp_path, "good") == BASE
