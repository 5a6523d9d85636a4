#!/usr/bin/env python3
"""Print, per compose service, the seconds from container start to its first
passing healthcheck (from `docker inspect`). Standard library only."""

import json
import subprocess
import sys
from datetime import datetime


def parse(ts: str) -> datetime:
    # Docker prints nanoseconds; Python takes microseconds.
    head, _, frac = ts.rstrip("Z").partition(".")
    frac = (frac.split("+")[0].split("-")[0] + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{frac}")


def main(services: list[str]) -> int:
    for service in services:
        cid = subprocess.run(["docker", "compose", "ps", "-q", service], capture_output=True, text=True).stdout.strip()
        if not cid:
            print(f"[up] {service}: not running")
            continue
        state = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True).stdout)[0]["State"]
        started = parse(state["StartedAt"])
        healthy = [parse(h["End"]) for h in state.get("Health", {}).get("Log", []) if h.get("ExitCode") == 0]
        if not healthy:
            print(f"[up] {service}: {state.get('Health', {}).get('Status', 'no healthcheck')}")
            continue
        # The log keeps the last 5 probes; if the first pass fell out of it, say so.
        first = min(healthy)
        note = "" if len(state["Health"]["Log"]) < 5 or state["Health"].get("FailingStreak", 0) else " (or less)"
        print(f"[up] {service}: healthy {(first - started).total_seconds():.1f} s after start{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
