"""seed: realistic data in n8n and Letta, created through their own APIs.

n8n: owner account, API key, credentials, workflows (two active webhook
workflows, nightly-report and manual workflows), executions (calls of the
intake webhook). Letta: shared blocks, custom tools, agents with memory blocks,
tools and tags, archival passages (embedded by the configured endpoint), a
core-memory edit, a source with an uploaded file attached to agents.

Never SQL into the apps' tables. Idempotent: an app that already holds seeded
data is left alone. The amount scales with --scale (or $SEED_SCALE): 1 is
small (CI), 100 a benchmark-sized set.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rich.table import Table

from migrator import console
from migrator.apps import registry
from migrator.config import argtypes
from migrator.config.settings import Settings
from migrator.errors import ConfigError

COMMAND = "seed"
LOCK = None  # talks to the apps, not to the target (migrator/engine/runlock.py)
NEEDS = {"app_env"}  # checked before any connection (migrator/config/validation.py)
HELP = "create realistic data in the apps (n8n, Letta) through their own APIs (rehearsal)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=argtypes.whole(1, 1000), default=int(os.environ.get("SEED_SCALE", "1") or 1),
                        help="how much data: 1 is small (default: $SEED_SCALE or 1)")
    parser.add_argument("--app", action="append", choices=tuple(registry.known()),
                        help="only this app (repeatable; default: every app configured)")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    if args.scale < 1:
        raise ConfigError("--scale must be at least 1")
    console.step("seed", f"create data through the apps' APIs (scale {args.scale})")
    results = {}
    for name in registry.selected(settings, args.app):
        app = settings.app(name)
        app.env()  # registers the app's secrets for redaction; fails early if the file is missing
        start = time.monotonic()
        counts = registry.get(name).seed(app, args.scale, console.say)
        results[name] = {"seconds": round(time.monotonic() - start, 1), **counts}
    table = Table(title="Seed")
    for col in ("app", "created", "seconds"):
        table.add_column(col)
    for name, r in results.items():
        created = "already seeded" if r.get("skipped") else ", ".join(
            f"{k} {v}" for k, v in r.items() if k not in ("seconds", "skipped"))
        table.add_row(name, created, f"{r['seconds']:.1f}")
    console.print_table(table)
    console.write_json(reports_dir / "seed.json", {"scale": args.scale, "apps": results})
    return 0
