#!/usr/bin/env python3
"""make env: create env/*.env from env/*.env.example on first run.

Each `__GENERATE__` placeholder becomes a fresh random password. Existing .env
files are never touched (they may hold the passwords of live databases). Files
are written with mode 0600 and are git-ignored. Standard library only: this
runs before any virtualenv exists.
"""

import os
import secrets
import sys
from pathlib import Path

ENV_DIR = Path(sys.argv[1] if len(sys.argv) > 1 else "env")


def main() -> int:
    for example in sorted(ENV_DIR.glob("*.env.example")):
        target = example.with_name(example.name.removesuffix(".example"))
        if target.exists():
            continue
        text = example.read_text(encoding="utf-8")
        while "__GENERATE__" in text:
            text = text.replace("__GENERATE__", secrets.token_urlsafe(24), 1)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"[env] created {target} (random passwords, mode 0600)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
