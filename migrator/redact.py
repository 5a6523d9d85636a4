"""Keep secrets out of every message, log line and report.

Every password loaded from configuration is registered here; ``redact`` replaces
it (and any password embedded in a URI) before text leaves the process.
"""

from __future__ import annotations

import re

_secrets: set[str] = set()
_URI_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]+)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
MASK = "********"


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    text = _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    text = _KV_PASSWORD.sub(rf"\g<1>{MASK}", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
