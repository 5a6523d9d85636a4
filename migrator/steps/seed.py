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

from migrator import argtypes, console
from migrator.apps import letta, n8n
from migrator.errors import ConfigError
from migrator.settings import AppSettings, Settings

COMMAND = "seed"
HELP = "create realistic data in n8n and Letta through their own APIs (rehearsal)"
APPS = ("n8n", "letta")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=argtypes.whole(1, 1000), default=int(os.environ.get("SEED_SCALE", "1") or 1),
                        help="how much data: 1 is small (default: $SEED_SCALE or 1)")
    parser.add_argument("--app", action="append", choices=APPS,
                        help="only this app (repeatable; default: every app configured)")


def n8n_admin_file(app: AppSettings) -> Path:
    """Where the n8n owner login and API key live: [apps.n8n] admin_file, else
    n8n-admin.env beside the app's env file."""
    return app.path("admin_file") or app.env_file.parent / "n8n-admin.env"


def selected_apps(settings: Settings, chosen: list[str] | None) -> list[str]:
    names = chosen or [a for a in APPS if a in settings.apps]
    if not names:
        raise ConfigError(f"{settings.config_file}: no [apps.n8n] or [apps.letta] table")
    for name in names:
        settings.app(name)
    return names


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    if args.scale < 1:
        raise ConfigError("--scale must be at least 1")
    console.step("seed", f"create data through the apps' APIs (scale {args.scale})")
    results = {}
    for name in selected_apps(settings, args.app):
        app = settings.app(name)
        app.env()  # registers the app's secrets for redaction; fails early if the file is missing
        start = time.monotonic()
        if name == "n8n":
            counts = n8n.seed(app.url, n8n_admin_file(app), args.scale, log=console.say)
        else:
            endpoint = app.options.get("embedding_endpoint", "http://embeddings:8000/v1")
            counts = letta.seed(letta.LettaClient(app.url), args.scale, endpoint, log=console.say)
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
