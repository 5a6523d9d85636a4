"""roles: per-application roles, schema isolation and the RAG schemas.

Applies the numbered SQL files under ``sql/`` to the unified instance (as
supabase_admin) in ONE transaction, all or nothing: the registry of apps, their
login roles, their schemas, the isolation guard (event trigger), the read-only
admin role, the privilege policy, the RAG model. Then hands every object in an
app schema over to its app role and sets the roles' passwords from
env/app-roles.env (never logged). It compares a catalog snapshot taken before
and after, prints what changed ("no change" on a second run) and the access
matrix, and writes reports/roles.json. ``--dry-run`` does all of it and rolls back.

The same SQL files apply by hand with psql (``--print-psql`` prints the
command); this module substitutes the psql variables itself (migrator.config.psqlvars).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from migrator import console
from migrator.config import argtypes
from migrator.config.psqlvars import SqlVariableError, substitute
from migrator.config.rolesconfig import RolesConfig, load_passwords, load_pooler_password
from migrator.config.settings import Settings
from migrator.engine import access, toolschemas
from migrator.engine.db import connect
from migrator.engine.files import sha256_of
from migrator.engine.ownership import hand_over_schema
from migrator.errors import ConfigError, DatabaseError
from migrator.redact import redact, register_secret

COMMAND = "roles"
LOCK = "exclusive"  # changes roles, grants and passwords on the target (migrator/engine/runlock.py)
NEEDS = {"passwords"}  # checked before any connection (migrator/config/validation.py)
HELP = "create the per-app roles and schemas, isolate them, print the access matrix"

LOCK_KEY = 0x726F6C65  # "role": one roles run at a time per instance

def variables(cfg: RolesConfig) -> dict[str, str]:
    """The psql variables the SQL files use (the same names for `psql -v`)."""
    values = {"vector_dimension": str(cfg.vector_dimension), "api_schemas": ",".join(cfg.api_schemas),
              "pooler_role": cfg.pooler_role}
    for spec in cfg.roles:
        values.update({f"{spec.app}_role": spec.name, f"{spec.app}_connection_limit": str(spec.connection_limit),
                       f"{spec.app}_statement_timeout": spec.statement_timeout})
    return values


def sql_files(sql_dir: Path) -> list[Path]:
    files = sorted(sql_dir.glob("[0-9][0-9]-*.sql"))
    if not files:
        raise ConfigError(f"{sql_dir}: no numbered SQL files (NN-name.sql) found; set [roles] sql_dir, "
                          "or mount ./sql next to the config file")
    return files


def psql_command(cfg: RolesConfig, settings: Settings | None = None) -> str:
    """The psql invocation that applies sql/ by hand, equivalent to `consolidate roles` minus passwords."""
    target = settings.target if settings else None
    conn = ["-h", target.host, "-p", str(target.port), "-U", target.user, "-d", target.dbname] if target else []
    args = ["psql", "-X", *conn, "-v", "ON_ERROR_STOP=1", "--single-transaction"]
    for name, value in variables(cfg).items():
        args += ["-v", f"{name}={value}"]
    for path in sql_files(cfg.sql_dir):
        args += ["-f", str(path)]
    return " ".join(shlex.quote(a) for a in args)


def password_matches(stored: str | None, password: str, role: str) -> bool:
    """Does the stored verifier (SCRAM-SHA-256 or md5) accept ``password``? (ASCII passwords:
    PostgreSQL's SASLprep leaves them unchanged.) Lets a rerun leave unchanged passwords alone."""
    if not stored:
        return False
    if stored.startswith("md5"):
        return hmac.compare_digest(stored, "md5" + hashlib.md5((password + role).encode()).hexdigest())
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored)
    if not match:
        return False
    iterations, salt, stored_key = int(match[1]), base64.b64decode(match[2]), base64.b64decode(match[3])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def set_passwords(conn: psycopg.Connection, cfg: RolesConfig, passwords: dict[str, str]) -> dict[str, str]:
    """role -> "set" | "unchanged". The password is hashed here (as psql's \\password does), so
    only a SCRAM verifier reaches the server: utility statements take no bind parameters,
    and the plaintext must not land in server logs or pg_stat_statements."""
    result = {}
    logins = [(spec.name, passwords.get(spec.app)) for spec in cfg.roles]
    pooler_password = load_pooler_password(cfg)      # None: no env/pooler.env, the role keeps no password
    if pooler_password is not None:
        logins.append((cfg.pooler_role, pooler_password))
    for name, password in logins:
        if password is None:   # optional (rolesconfig.OPTIONAL_PASSWORDS) and absent from the env file
            result[name] = "absent"
            continue
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,)).fetchone()[0]
        if password_matches(stored, password, name):
            result[name] = "unchanged"
            continue
        verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
        register_secret(verifier)
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(verifier)))
        result[name] = "set"
    return result


@dataclass
class ApplyResult:
    files: list[dict]
    changes: list[access.Change]
    passwords: dict[str, str]
    handed_over: dict[str, list[str]]
    matrix: access.Matrix
    own: dict[str, set[str]]
    warnings: list[str]
    dry_run: bool = False
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes) or "set" in self.passwords.values()


def _scripts(cfg: RolesConfig, conn: psycopg.Connection) -> list[tuple[Path, str]]:
    """Every file with its variables substituted, before anything touches the database."""
    values, scripts = variables(cfg), []
    for path in sql_files(cfg.sql_dir):
        try:
            scripts.append((path, substitute(path.read_text(encoding="utf-8"), values, conn)))
        except SqlVariableError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return scripts


def _run_file(conn: psycopg.Connection, path: Path, script: str, target: str) -> None:
    try:
        conn.execute(script)
    except psycopg.Error as exc:
        diag = exc.diag
        where = f" (line {script[:int(diag.statement_position) - 1].count(chr(10)) + 1})" \
            if diag.statement_position else ""
        context = f" [{diag.context.splitlines()[0]}]" if diag.context else ""
        problem = diag.message_primary or str(exc).splitlines()[0]
        raise DatabaseError(target, "target", redact(f"{path.name}{where}: {problem}{context}")) from None


def registered(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(schema, owner role) of every application schema in the registry."""
    return conn.execute("SELECT s.schema_name::text, r.role_name::text FROM consolidation_admin.app_schema s"
                        " JOIN consolidation_admin.app_role r USING (app) ORDER BY 1").fetchall()


def apply(conn: psycopg.Connection, cfg: RolesConfig, passwords: dict[str, str], *,
          dry_run: bool = False, target: str = "unified") -> ApplyResult:
    """Apply sql/, hand schemas over, set passwords: one transaction, all or nothing.

    :raises ConfigError: a SQL file uses a variable that is not defined.
    :raises DatabaseError: the server refused a statement (nothing was changed).
    :raises DatabaseError: also when another roles run holds the lock.
    """
    scripts = _scripts(cfg, conn)
    with conn.transaction() as tx:
        if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            raise DatabaseError(target, "target", "another `consolidate roles` is running against it")
        conn.execute("SET LOCAL lock_timeout = '30s'")  # never queue for long behind a busy app
        # Pinned whatever the caller's session had: names resolve in pg_catalog only, and the
        # snapshots before and after deparse types the same way (sql/ pins it too).
        conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
        # sql/ creates the tool's schemas IF NOT EXISTS: one that someone else made first
        # (with what a superuser would then call or write) is refused, never adopted.
        toolschemas.require_trusted(conn)
        before = access.snapshot(conn)
        for path, script in scripts:
            _run_file(conn, path, script, target)
        handed = {schema: hand_over_schema(conn, schema, role) for schema, role in registered(conn)}
        pw = set_passwords(conn, cfg, passwords)
        changes = access.diff(before, access.snapshot(conn))
        result = _result(conn, cfg, scripts, changes, pw, handed, dry_run)
        if dry_run:
            raise psycopg.Rollback(tx)
    return result


def _result(conn, cfg, scripts, changes, pw, handed, dry_run) -> ApplyResult:
    own: dict[str, set[str]] = {}
    for schema, role in registered(conn):
        own.setdefault(role, set()).add(schema)
    readers = {s.name for s in cfg.roles if s.app == "readonly"}
    shown = [s.name for s in cfg.roles] + ["postgres", *access.API_ROLES]
    m = access.matrix(conn, shown)
    files = [{"file": p.name, "sha256": sha256_of(p)} for p, _ in scripts]
    return ApplyResult(files=files, changes=changes, passwords=pw, handed_over={k: v for k, v in handed.items() if v},
                       matrix=m, own=own, warnings=access.isolation_warnings(m, own, readers, set(cfg.api_schemas)),
                       dry_run=dry_run, variables=variables(cfg))


def public_usage_grant(role: str) -> str:
    """What an administrator runs for a role created after `roles` that must read in `public`."""
    return f"GRANT USAGE ON SCHEMA public TO {role};"


# Said in the summary, in reports/roles.md, docs/roles.md and docs/studio.md: stock Supabase
# lets every role use `public`; after `roles` PUBLIC has no USAGE there (sql/30-schemas.sql).
PUBLIC_NOTE = ("PUBLIC has no USAGE on schema public after `roles` (sql/30-schemas.sql): a role created later "
               "(in Studio, say) gets 'permission denied for schema public' even with SELECT on a table there; "
               f"grant it with: {public_usage_grant('<role>')}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=argtypes.seconds, default=None,
                        help="seconds to wait for the target if it is still starting (default: the global --wait)")
    parser.add_argument("--dry-run", action="store_true",
                        help="apply, report what would change, then roll everything back")
    parser.add_argument("--print-psql", action="store_true",
                        help="print the psql command that applies sql/ by hand, and exit")


def command(settings: Settings, args: argparse.Namespace, reports_dir: Path) -> int:
    cfg = RolesConfig.from_settings(settings)
    if args.print_psql:
        console.say(psql_command(cfg, settings), soft_wrap=True)
        return 0
    passwords = load_passwords(cfg)
    console.step(1, f"roles: apply {cfg.sql_dir.name}/ to {settings.target.name}"
                    + (" (dry run: rolled back)" if args.dry_run else ""))
    with connect(settings.target, args.wait) as conn:
        result = apply(conn, cfg, passwords, dry_run=args.dry_run, target=settings.target.name)
    report(result, reports_dir)
    return 0


def report(result: ApplyResult, reports_dir: Path | None) -> None:
    """A summary line of the changes (or "no change"), passwords set, the access matrix,
    warnings, the note on `public`; the full change list in reports/roles.json and roles.md."""
    if result.changes:
        where = " (the list: reports/roles.md)" if reports_dir is not None else ""
        console.say(access.summarize_changes(result.changes) + where)
    for role, state in result.passwords.items():
        if state == "set":
            console.say(f"password set for role {role}")
        elif state == "absent":
            console.warn("warning:", f"role {role} has no password in the roles env file; it cannot log in "
                         "until you add its <APP>_ROLE_PASSWORD and run `roles` again")
    if not result.changed:
        console.say("no change")
    console.step(2, "access matrix")
    console.print_table(access.render_matrix(result.matrix, result.own))
    for warning in result.warnings:
        console.warn("warning:", warning)
    console.say(PUBLIC_NOTE, soft_wrap=True)
    if reports_dir is not None:
        console.write_json(reports_dir / "roles.json", {
            "dry_run": result.dry_run, "changed": result.changed, "files": result.files,
            "variables": result.variables, "changes": [asdict(c) for c in result.changes],
            "passwords": result.passwords, "handed_over": result.handed_over,
            "matrix": access.matrix_json(result.matrix), "warnings": result.warnings, "note": PUBLIC_NOTE})
        (reports_dir / "roles.md").write_text("\n".join(markdown(result)) + "\n", encoding="utf-8")


def markdown(result: ApplyResult) -> list[str]:
    """reports/roles.md: what the screen summarises, in full."""
    lines = ["# roles" + (" (dry run: rolled back)" if result.dry_run else ""), "",
             access.summarize_changes(result.changes) if result.changes else "No change.", "",
             f"Note: {PUBLIC_NOTE}", ""]
    lines += ["## Passwords", ""] + [f"- {role}: {state}" for role, state in result.passwords.items()] + [""]
    if result.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    if result.changes:
        lines += access.changes_markdown(result.changes)
    return lines
