"""fingerprints: take an application fingerprint, save it, require it unchanged.

The library behind `consolidate fingerprint` (migrator/steps/fingerprint.py),
used by cutover (before the window, and as its smoke test) and by rollback, so
that neither imports the fingerprint step. Saving, loading and comparing the
JSON is migrator/apps/fingerprint_diff.py.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from migrator import console
from migrator.apps import fingerprint_diff as fp
from migrator.apps import registry
from migrator.config.settings import Settings
from migrator.errors import VerificationError


def take(settings: Settings, apps: list[str], label: str | None = None) -> dict:
    result = {"format": fp.FORMAT, "meta": {"label": label,
                                            "taken_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                            "apps": {}},
              "apps": {}}
    for name in apps:
        app = settings.app(name)
        start = time.monotonic()
        known = registry.get(name)
        database = known.database_of(app.env())       # where it points, no password: context, never compared
        result["apps"][name] = known.fingerprint(app)
        result["meta"]["apps"][name] = {"url": app.url, "database": database,
                                        "seconds": round(time.monotonic() - start, 1)}
    return result


def summary_table(data: dict) -> Table:
    table = Table(title="Application fingerprint", show_lines=True)
    for col in ("app", "what", "value"):
        table.add_column(col, overflow="fold")
    for name, content in data["apps"].items():
        rows = registry.get(name).summary(content)
        first = True
        for what, value in rows.items():
            table.add_row(name if first else "", escape(what), escape(str(value)))   # app data, not markup
            first = False
    return table


def save(settings: Settings, reports_dir: Path, label: str) -> None:
    data = take(settings, list(settings.apps), label=label)
    console.write_json(fp.path_for(reports_dir, label), data)
    console.print_table(summary_table(data))


def require_equal(settings: Settings, reports_dir: Path, label: str) -> None:
    """The apps list exactly what they listed when ``label`` was saved; exit 5 otherwise."""
    saved = fp.load(reports_dir, label)
    now = take(settings, list(settings.apps), label=None)
    differences = fp.compare({"apps": saved["apps"]}, now)
    console.write_json(reports_dir / f"fingerprint-diff-{label}.json",
                       {"equal": not differences, "differences": [d.as_dict() for d in differences]})
    if differences:
        for line in fp.render_diff(differences):
            console.say("  " + line)
        raise VerificationError(f"the apps' fingerprint differs from '{label}' in {len(differences)} field(s)")
    console.say(f"  fingerprint equal to '{label}'")
