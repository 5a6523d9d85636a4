"""The `consolidate` command line. It only parses options; each subcommand
calls one step module. Operator errors print one `FAILED: ...` line and exit
with the code of their class (see migrator.errors); --debug shows tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from migrator import __version__, console
from migrator.config import argtypes
from migrator.config.settings import load_settings
from migrator.config.validation import validate
from migrator.engine import db, runlock
from migrator.errors import ConsolidationError
from migrator.ops import cutover_state
from migrator.ops import pooler  # PgBouncer pools and pgbouncer.ini
from migrator.redact import redact
from migrator.steps import assess, backup, copy, migrate, post_data, preflight, schema, verify
from migrator.steps import fingerprint, seed  # the apps: rehearsal data and proof
from migrator.steps import roles  # per-app roles, schema isolation, RAG schemas
from migrator.steps import cutover, rollback  # the maintenance window and its way back
from migrator.steps import restore_instance, restore_drill  # the unified instance's backups (pgBackRest)
from migrator.steps import app_backup, app_restore  # per-application backups of the unified instance
from migrator.steps import decommission  # retire the legacy databases
from migrator.steps import status  # day two: one screen per app (docs/monitoring.md)
from migrator.steps import online  # copy while the apps run, short cutover (docs/online.md)

# Every subcommand is a step module exposing COMMAND, HELP, add_arguments(parser)
# and command(settings, args, reports_dir). Add a step by adding it here.
STEP_MODULES = [preflight, assess, backup, schema, copy, post_data, migrate, verify, seed, fingerprint, roles, cutover, rollback,
                restore_instance, restore_drill, app_backup, app_restore, decommission, status, pooler, online]


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line and exit 2, like every other refusal."""

    def error(self, message: str) -> None:
        console.fail(f"{self.prog}: {message} (see --help)")
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="consolidate",
        description="Move a stack's PostgreSQL databases into one Supabase Postgres, one schema per app.")
    parser.add_argument("--config", type=Path,
                        default=Path(os.environ.get("CONSOLIDATION_CONFIG", "consolidation.toml")),
                        help="mapping file naming the target and the sources (default: %(default)s)")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="where JSON/Markdown reports go (default: reports/ beside the config)")
    parser.add_argument("--wait", dest="global_wait", metavar="S", type=argtypes.seconds, default=60.0,
                        help="seconds to wait for a database that is still starting (default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for module in STEP_MODULES:
        # ALIASES: old names that still work (`backup` is `backup-sources`); main() says so.
        # Each module's docstring is its --help text, paragraphs and option lists as written.
        step_parser = sub.add_parser(module.COMMAND, help=module.HELP, description=module.__doc__,
                                     aliases=list(getattr(module, "ALIASES", ())),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(step_parser)
        step_parser.set_defaults(step=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    # psycopg logs follow-up noise ("error ignored terminating <Copy>") after the error we
    # report ourselves; the operator gets one line.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    logging.getLogger("psycopg").propagate = False
    args = _parser().parse_args(argv)
    db.DEFAULT_WAIT_SECONDS = args.global_wait
    if args.command != args.step.COMMAND:
        console.say(f"note: `{args.command}` is `{args.step.COMMAND}` (the old name still works)")
    try:
        settings = load_settings(args.config)
        # every section, and what the command declares it NEEDS, before any connection
        validate(settings, args.step.COMMAND, getattr(args.step, "NEEDS", ()))
        reports_dir = args.reports_dir or settings.config_file.parent / "reports"
        # Out of order for the lifecycle (docs/cutover.md): refused from the files alone,
        # before any connection, so it says so even when the target is down.
        cutover_state.require(settings, args.step.COMMAND)
        # Readers together, writers alone: refused with exit 7, naming the holder, before any write.
        with runlock.hold(settings, args.step.LOCK, args.step.COMMAND):
            return args.step.command(settings, args, reports_dir) or 0
    except ConsolidationError as exc:
        if not getattr(exc, "already_printed", False):
            console.fail(exc.message)
        if args.debug:
            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        console.fail("interrupted")
        return 130
    except Exception as exc:  # a bug: say so in one line, traceback only on request
        console.fail(f"internal error: {type(exc).__name__}: {redact(str(exc))} (rerun with --debug)")
        if args.debug:
            sys.stderr.write(redact(traceback.format_exc()))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
