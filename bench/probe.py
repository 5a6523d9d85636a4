"""Run `consolidate` with timers around the engine's phases (bench only).

Executed inside the migrator image instead of its `consolidate` entry point:
    python /bench/probe.py OUT.json -- --config ... migrate --jobs 2
It wraps, by name and only where they exist, the step functions of the
working tree's package (schema / copy / post-data and their parts, every
pg_dump / pg_restore call) and writes what it measured to OUT.json; the
migrator's own code is not changed and its exit code is passed through. A
renamed function simply drops out of the breakdown.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
import time

STARTED = time.monotonic()
events: list[dict] = []


def _source_of(args: tuple) -> str | None:
    for arg in args:
        name = getattr(arg, "name", None)
        if name is not None and hasattr(arg, "target_schema"):
            return name
    return None


def wrap(module, attr: str, label: str) -> None:
    func = getattr(module, attr, None)
    if func is None or getattr(func, "_bench_wrapped", False):
        return

    @functools.wraps(func)
    def timed(*args, **kwargs):
        begin = time.monotonic()
        try:
            return func(*args, **kwargs)
        finally:
            end = time.monotonic()
            what = label
            if label == "pgtools.run":
                what = f"{args[0] if args else '?'} {kwargs.get('what', '')}".strip()
            events.append({"label": what, "function": f"{module.__name__}.{attr}", "source": _source_of(args),
                           "start": round(begin - STARTED, 3), "seconds": round(end - begin, 3)})
    timed._bench_wrapped = True
    setattr(module, attr, timed)


def install() -> None:
    from migrator.engine import pgtools
    from migrator.engine import predata, space
    from migrator.steps import copy, migrate, post_data

    wrap(migrate, "run", "migrate")
    wrap(migrate, "hand_over", "migrate.hand_over")
    wrap(migrate, "wait_for_tables", "migrate.wait_for_tables")
    wrap(space, "check", "space.check")
    for attr in ("check", "run", "remap_in_scratch", "install_extensions", "restore_pre_data",
                 "drop_our_schemas"):
        wrap(predata, attr, f"schema.{attr}")
    for attr in ("run", "_copy_all", "read_sequences"):
        wrap(copy, attr, f"copy.{attr}")
    for attr in ("run", "clear_post_data", "set_sequences", "refresh_matviews", "analyze", "build_table"):
        wrap(post_data, attr, f"post_data.{attr}")
    wrap(pgtools, "run", "pgtools.run")


def main() -> int:
    out = sys.argv[1]
    argv = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else sys.argv[2:]

    def dump() -> None:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"total": round(time.monotonic() - STARTED, 3), "events": events}, f, indent=1)
    atexit.register(dump)
    install()
    from migrator.cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
