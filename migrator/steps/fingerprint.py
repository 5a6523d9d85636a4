"""fingerprint: what each app lists through its own API, saved and compared.

n8n: workflow ids, names, versionIds, active flags and node digests;
credential names and types; execution counts per workflow and status; users;
the probe webhook's answer. Letta: agent ids and names with their memory
blocks, tools, tags, sources, passage and message counts; blocks; tool names;
sources with files and passage counts; an archival-memory search result.

Always writes reports/fingerprint.json; --save LABEL also keeps it as
reports/fingerprint-LABEL.json; --compare LABEL compares field by field with a
saved one, prints a readable diff, writes reports/fingerprint-diff-LABEL.json
and exits 5 when anything differs. Read-only for the apps (the probe webhook's
workflow stores no executions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from urllib.parse import urlsplit

from rich.markup import escape
from rich.table import Table

from migrator import console
from migrator.apps import fingerprint as fp
from migrator.apps import letta, n8n
from migrator.errors import VerificationError
from migrator.settings import AppSettings, Settings
from migrator.steps.seed import APPS, n8n_admin_file, selected_apps

COMMAND = "fingerprint"
HELP = "list what n8n and Letta hold through their APIs; save it or compare with a saved one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", metavar="LABEL", help="also keep it as reports/fingerprint-LABEL.json")
    parser.add_argument("--compare", metavar="LABEL",
                        help="compare with reports/fingerprint-LABEL.json; exit 5 on any difference")
    parser.add_argument("--app", action="append", choices=APPS,
                        help="only this app (repeatable; default: every app configured)")


def database_of(app: AppSettings) -> str:
    """Where the app's env file points it (no password): context, never compared."""
    env = app.env()
    if app.name == "n8n":
        return (f"{env.get('DB_POSTGRESDB_USER', '?')}@{env.get('DB_POSTGRESDB_HOST', '?')}:"
                f"{env.get('DB_POSTGRESDB_PORT', '5432')}/{env.get('DB_POSTGRESDB_DATABASE', '?')}"
                f" schema {env.get('DB_POSTGRESDB_SCHEMA') or 'public'}")
    uri = env.get("LETTA_PG_URI")
    if uri:
        parts = urlsplit(uri)
        return f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"
    return f"{env.get('LETTA_PG_USER', '?')}@{env.get('LETTA_PG_HOST', '?')}/{env.get('LETTA_PG_DB', '?')}"


def take(settings: Settings, apps: list[str], label: str | None = None) -> dict:
    result = {"format": fp.FORMAT, "meta": {"label": label,
                                            "taken_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                            "apps": {}},
              "apps": {}}
    for name in apps:
        app = settings.app(name)
        start = time.monotonic()
        database = database_of(app)
        if name == "n8n":
            result["apps"][name] = n8n.fingerprint(app.url, n8n_admin_file(app))
        else:
            result["apps"][name] = letta.fingerprint(letta.LettaClient(app.url))
        result["meta"]["apps"][name] = {"url": app.url, "database": database,
                                        "seconds": round(time.monotonic() - start, 1)}
    return result


def summary_table(data: dict) -> Table:
    table = Table(title="Application fingerprint", show_lines=True)
    for col in ("app", "what", "value"):
        table.add_column(col, overflow="fold")
    for name, content in data["apps"].items():
        rows = (n8n.summary if name == "n8n" else letta.summary)(content)
        first = True
        for what, value in rows.items():
            table.add_row(name if first else "", escape(what), escape(str(value)))   # app data, not markup
            first = False
    return table


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    apps = selected_apps(settings, args.app)
    for label in (args.save, args.compare):
        if label:
            fp.check_label(label)  # before any call to the apps
    saved = fp.load(reports_dir, args.compare) if args.compare else None
    console.step("fingerprint", f"list what {' and '.join(apps)} hold through their APIs")
    data = take(settings, apps, label=args.save)
    console.print_table(summary_table(data))
    console.write_json(reports_dir / "fingerprint.json", data)
    if args.save:
        path = console.write_json(fp.path_for(reports_dir, args.save), data)
        console.say(f"saved as '{args.save}': {path}")
    if saved is None:
        return 0
    before = {"apps": {k: v for k, v in saved["apps"].items() if k in apps}}
    differences = fp.compare(before, data)
    report = {"compared_with": args.compare, "taken_at": data["meta"]["taken_at"],
              "saved_at": saved.get("meta", {}).get("taken_at"), "equal": not differences,
              "differences": [d.as_dict() for d in differences]}
    report_path = console.write_json(reports_dir / f"fingerprint-diff-{args.compare}.json", report)
    if not differences:
        console.say(f"fingerprint equal to '{args.compare}' "
                              f"(saved {report['saved_at']}): {', '.join(apps)}")
        return 0
    console.say(f"fingerprint differs from '{args.compare}' in {len(differences)} field(s):")
    for line in fp.render_diff(differences):
        console.say("  " + line)
    raise VerificationError(f"fingerprint differs from '{args.compare}' in {len(differences)} field(s) "
                            f"(report: {report_path})")
