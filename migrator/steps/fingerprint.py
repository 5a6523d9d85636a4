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
from pathlib import Path

from migrator import console
from migrator.apps import fingerprint_diff as fp
from migrator.apps import registry
from migrator.apps.fingerprints import require_equal, save, summary_table, take  # noqa: F401 (cutover)
from migrator.config.settings import Settings
from migrator.errors import VerificationError

COMMAND = "fingerprint"
LOCK = None  # reads the apps, not the target (migrator/engine/runlock.py)
NEEDS = {"app_env"}  # checked before any connection (migrator/config/validation.py)
HELP = "list what n8n and Letta hold through their APIs; save it or compare with a saved one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", metavar="LABEL", help="also keep it as reports/fingerprint-LABEL.json")
    parser.add_argument("--compare", metavar="LABEL",
                        help="compare with reports/fingerprint-LABEL.json; exit 5 on any difference")
    parser.add_argument("--app", action="append", choices=tuple(registry.known()),
                        help="only this app (repeatable; default: every app configured)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    apps = registry.selected(settings, args.app)
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
