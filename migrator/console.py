"""Terminal output: STEP banners, tables and one-line failures, all redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrator.config.envfile import write_atomic
from migrator.redact import redact

console = Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one-line errors never wrap


def step(number: int | str, title: str) -> None:
    console.print(f"[bold]STEP {number}: {escape(redact(title))}[/bold]")


def say(message: str, **options) -> None:
    """One line (or block) of progress for people: redacted, and never read as markup, so an
    object named `[/x]` prints as itself instead of crashing the output."""
    console.print(redact(message), markup=False, **options)


def warn(label: str, message: str, style: str = "yellow") -> None:
    """``label`` styled, ``message`` (names, values) printed as it is."""
    console.print(f"[{style}]{escape(label)}[/{style}] {escape(redact(message))}")


def fail(message: str) -> None:
    err_console.print(f"FAILED: {redact(message)}", markup=False)


def print_table(table: Table) -> None:
    console.print(table)


def write_json(path: Path, data: object) -> Path:
    """Write a machine-readable report; secrets are redacted from the serialized text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = redact(json.dumps(data, indent=2, default=str, sort_keys=False))
    # A temporary file of its own: two commands writing the same report at once (two
    # verifies share the lock) must not rename each other's.
    write_atomic(path, text + "\n", mode=0o644)
    return path
