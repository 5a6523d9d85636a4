#!/usr/bin/env python3
"""make env: create env/*.env from env/*.env.example on first run.

Placeholders in the examples:

- `__GENERATE__` becomes a fresh random value, a different one each time.
- `__GENERATE:<name>__` becomes one random value per <name>, the same in every
  file that uses it: a database's env file and the env file of the app that
  connects to it hold the same password (`__GENERATE:n8n_db_password__` in
  env/n8n-db.env and env/n8n.env). When some of the files already exist, the
  value is read back from them (at the key where the example has the
  placeholder), so a file created later still matches the live database.

Existing .env files are never touched (they may hold the passwords of live
databases). Files are written with mode 0600 and are git-ignored. Values are
URL-safe (letters, digits, '-', '_'), so they can sit inside a connection URI.
Standard library only: this runs before any virtualenv exists. Never prints a
value.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

FRESH = "__GENERATE__"
SHARED = re.compile(r"__GENERATE:([A-Za-z0-9_.-]+)__")
ANY_PLACEHOLDER = re.compile(r"__GENERATE(?::[A-Za-z0-9_.-]+)?__")


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def _assignments(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file (raw values, optional `export`, no quotes handling
    beyond stripping one matching pair)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def existing_shared_values(example_text: str, target_text: str) -> dict[str, str]:
    """The values an already generated file holds for the example's shared placeholders."""
    found: dict[str, str] = {}
    actual = _assignments(target_text)
    for key, template in _assignments(example_text).items():
        names = SHARED.findall(template)
        if not names or key not in actual:
            continue
        # The template with each placeholder as a capture group, everything else literal.
        pattern, pos = "", 0
        for match in ANY_PLACEHOLDER.finditer(template):
            pattern += re.escape(template[pos:match.start()])
            pattern += f"(?P<g{len(pattern)}>[^\\s]+?)" if match.group(0) != FRESH else "[^\\s]+?"
            pos = match.end()
        pattern += re.escape(template[pos:])
        hit = re.fullmatch(pattern, actual[key])
        if not hit:
            continue
        for name, value in zip(names, hit.groups()):
            found.setdefault(name, value)
    return found


def render(example_text: str, shared: dict[str, str]) -> str:
    text = SHARED.sub(lambda m: shared.setdefault(m.group(1), new_secret()), example_text)
    while FRESH in text:
        text = text.replace(FRESH, new_secret(), 1)
    return text


def main(env_dir: Path) -> int:
    examples = sorted(env_dir.glob("*.env.example"))
    shared: dict[str, str] = {}
    # Values of shared placeholders already in use, from the files that exist.
    for example in examples:
        target = example.with_name(example.name.removesuffix(".example"))
        if target.exists():
            for name, value in existing_shared_values(example.read_text(encoding="utf-8"),
                                                      target.read_text(encoding="utf-8")).items():
                if name in shared and shared[name] != value:
                    print(f"[env] warning: existing files disagree on the value of {name}; "
                          f"keeping the one in the first file (check {target})", file=sys.stderr)
                shared.setdefault(name, value)
    for example in examples:
        target = example.with_name(example.name.removesuffix(".example"))
        if target.exists():
            continue
        text = render(example.read_text(encoding="utf-8"), shared)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"[env] created {target} (random secrets, mode 0600)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "env")))
