"""Secrets a test stack really used, and where they leaked.

The secrets are read from the stack's own env directory (never the checkout's env/: a
stack under test runs on a fresh_env_dir of its own, so the checkout's values are ones it
never saw, and a test looking for those passes whatever is printed):

- every value `make env` generated: the committed example's `__GENERATE...__`
  placeholders located in the stack's file (also inside a URI: LETTA_PG_URI's password);
- every value of a secret-looking key in any *.env of that directory (the files the
  tool writes itself too: n8n-admin.env's login and API key, rewritten app env files);
  for a URI only its password.

A leak is reported by where it was found and whose value it is, never by the value:
an assertion message is test output too."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from tests.support import ROOT, env_values

PLACEHOLDER = re.compile(r"__GENERATE(?::[A-Za-z0-9_.-]+)?__")
SECRET_WORDS = ("PASSWORD", "PASS", "KEY", "COOKIE", "SECRET", "TOKEN", "URI")
MIN_LENGTH = 8          # shorter values ("admin", "5432") would match by chance


def _generated(template: str, actual: str) -> list[str]:
    """The parts of ``actual`` standing where ``template`` has placeholders ([] if the value
    no longer has the template's shape, e.g. an env file the cutover rewrote)."""
    parts = PLACEHOLDER.split(template)
    if len(parts) == 1:
        return []
    match = re.fullmatch("(.+?)".join(re.escape(p) for p in parts), actual)
    return list(match.groups()) if match else []


def _by_key(key: str, value: str) -> str | None:
    if not any(word in key.upper() for word in SECRET_WORDS):
        return None
    if "://" in value:
        return urlsplit(value).password
    return None if key.upper().endswith("URI") else value


def stack_secrets(env_dir: Path, *extra_files: Path) -> dict[str, str]:
    """secret value -> a name for it ("n8n.env:DB_POSTGRESDB_PASSWORD"), from ``env_dir``'s
    *.env files (and ``extra_files``, e.g. an n8n admin file kept elsewhere)."""
    found: dict[str, str] = {}
    for path in sorted(env_dir.glob("*.env")) + list(extra_files):
        if not path.exists():
            continue
        actual = env_values(path)
        example = ROOT / "env" / f"{path.name}.example"
        templates = env_values(example) if example.exists() else {}
        for key, value in actual.items():
            candidates = _generated(templates.get(key, ""), value) or [_by_key(key, value)]
            for secret in candidates:
                if secret and len(secret) >= MIN_LENGTH:
                    found.setdefault(secret, f"{path.name}:{key}")
    return found


def report_texts(*folders: Path) -> dict[str, str]:
    """Every file under the folders (reports, fingerprints, diffs, dumps' manifests) as text."""
    return {str(p): p.read_text(errors="replace") for folder in folders if folder.exists()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leaks(texts: dict[str, str] | Iterable[str], secrets_: dict[str, str]) -> list[str]:
    """"<where> holds <whose secret>" for every secret found in a text."""
    named = texts.items() if isinstance(texts, dict) else ((f"output #{i}", t) for i, t in enumerate(texts))
    return [f"{where} holds {name}" for where, text in named for secret, name in secrets_.items() if secret in text]


def assert_no_leak(texts: dict[str, str] | Iterable[str], secrets_: dict[str, str]) -> None:
    found = leaks(texts, secrets_)
    assert not found, "secrets leaked (values not shown): " + "; ".join(found)
