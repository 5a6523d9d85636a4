"""Backups of the unified instance (pgBackRest): point-in-time recovery, the restore
drill, a corrupted repository, broken archiving, and a live restore with its way back.

One compose project of the test's own: the corpus (tests/support/corpus.py) loaded into
the legacy databases and migrated, the unified instance with `consolidate roles` applied
(the five app schemas), a few tables per app, `make backups`' set-up
(scripts/backups_on.sh) and the scheduler's first full backup. After the restore drill
and a scratch restore, every corpus function answers on the restored copy, as the app
logs in, what it answered on the legacy database. The migrator runs where
an operator runs it (`docker compose run migrator ...`, with the docker socket)."""

from __future__ import annotations

import json
import time

import docker
import pytest

from migrator.engine import checksums
from tests.support import attacker, corpus, env_values, wait_for_server_clock, wait_until
from tests.support.composeproject import ComposeProject

pytestmark = pytest.mark.integration

TABLES = """
CREATE TABLE n8n.workflow (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO n8n.workflow SELECT g, 'workflow ' || g FROM generate_series(1, 2000) g;
CREATE TABLE letta_agents.agents (id int PRIMARY KEY, state jsonb);
INSERT INTO letta_agents.agents SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 300) g;
CREATE TABLE letta_embeddings.passages (id int PRIMARY KEY, agent int, body text);
INSERT INTO letta_embeddings.passages SELECT g, g % 300 + 1, repeat('x', g % 50) FROM generate_series(1, 3000) g;
CREATE TABLE rag_documents.marks (id int PRIMARY KEY, label text NOT NULL);
ALTER TABLE n8n.workflow OWNER TO n8n;
ALTER TABLE letta_agents.agents OWNER TO letta;
ALTER TABLE letta_embeddings.passages OWNER TO letta;
ALTER TABLE rag_documents.marks OWNER TO rag;
"""


def backups_setup(p: ComposeProject) -> None:
    """What `make backups` does (scripts/backups_on.sh), in this project."""
    setup = p.compose("run", "--rm", "-T", "backups", "setup")
    if setup.returncode == 10:
        assert p.compose("restart", "unified").returncode == 0
        assert p.compose("up", "-d", "--wait", "unified").returncode == 0
        setup = p.compose("run", "--rm", "-T", "backups", "setup")
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]


def last_runs(p: ComposeProject) -> list[tuple]:
    with p.db() as conn:
        return conn.execute("SELECT kind, ok, finished_at, error FROM _consolidation_ops.backup_runs ORDER BY id").fetchall()


def wait_for(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout, what, interval=1)


def switch_and_archive(p: ComposeProject) -> None:
    with p.db() as conn:
        wal = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        wait_for(lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") >= wal,
                 120, f"{wal} archived")


def app_checksums(p: ComposeProject, port: int | None = None) -> dict:
    with p.db(port=port) as conn:
        return checksums.table_checksums(conn, checksums.app_schemas(conn))


def newest_report(p: ComposeProject, prefix: str) -> dict:
    return json.loads(sorted(p.reports.glob(f"{prefix}-*.json"))[-1].read_text())


def remove_scratch(p: ComposeProject) -> None:
    c = docker.from_env()
    for container in c.containers.list(all=True, filters={"label": "consolidation.scratch"}):
        if container.name.startswith(p.name):
            container.remove(force=True)
    for volume in c.volumes.list(filters={"label": "consolidation.scratch"}):
        if volume.name.startswith(p.name):
            volume.remove(force=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    p = ComposeProject(tmp_path_factory.mktemp("backups"), "bkp", BACKUP_DIFF_EVERY="86400")
    try:
        up = p.compose("up", "-d", "--wait", "unified", "n8n-db", "letta-db")
        assert up.returncode == 0, up.stderr[-3000:]
        started = time.monotonic()
        p.run_args = corpus.stack_config(p.env_dir.parent)
        p.corpus = corpus.InStack(p.db)
        migrate = p.migrator("migrate")
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        p.timings = {"corpus load, calls and migrate": time.monotonic() - started}
        roles = p.migrator("roles")
        assert roles.returncode == 0, roles.stdout[-3000:] + roles.stderr[-3000:]
        with p.db() as conn:
            conn.execute(TABLES)
        backups_setup(p)
        assert p.compose("--profile", "backups", "up", "-d", "backups").returncode == 0
        wait_for(lambda: any(k == "full" and ok for k, ok, *_ in last_runs(p)), 300, "the scheduler's first full backup")
        yield p
    finally:
        remove_scratch(p)
        p.down("backups", "tools")


def test_scheduler_records_its_first_full_backup(stack):
    kind, ok, finished, error = last_runs(stack)[0]
    assert (kind, ok, error) == ("full", True, None)
    with stack.db() as conn:
        age = dict(conn.execute("SELECT kind, age_seconds FROM _consolidation_ops.last_backup").fetchall())
    assert 0 <= age["full"] < 600
    info = stack.compose("run", "--rm", "-T", "backups", "pgbackrest", "--output=json", "info")
    assert json.loads(info.stdout[info.stdout.index("["):])[0]["backup"][0]["type"] == "full"


def test_pitr_to_a_time_restores_a_and_not_b(stack):
    with stack.db() as conn:
        conn.execute("INSERT INTO rag_documents.marks VALUES (1, 'A')")
        at_a = app_checksums(stack)
        when = conn.execute("SELECT now()::text").fetchone()[0]
        wait_for_server_clock(conn, when)
        conn.execute("INSERT INTO rag_documents.marks VALUES (2, 'B'); UPDATE n8n.workflow SET name = 'B' WHERE id < 10")
    switch_and_archive(stack)
    result = stack.migrator("restore-instance", "--to", when, "--scratch", "--keep")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = newest_report(stack, "restore-scratch")
    try:
        with stack.db(port=report["port"]) as copy:
            assert copy.execute("SELECT array_agg(label ORDER BY id) FROM rag_documents.marks").fetchone()[0] == ["A"]
            assert copy.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            assert copy.execute("SHOW archive_mode").fetchone()[0] == "off"   # never pushes into the live repository
            assert copy.execute("SELECT count(*) FROM n8n.workflow WHERE name = 'B'").fetchone()[0] == 0
        assert app_checksums(stack, port=report["port"]) == at_a
        assert report["checksums"] == at_a                 # what the command itself reported
        assert app_checksums(stack) != at_a                # and the live instance still has B
    finally:
        remove_scratch(stack)


def test_drill_passes_and_a_flipped_byte_fails_verify_and_the_drill(stack):
    drill = stack.migrator("restore-drill")
    assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    report = newest_report(stack, "restore-drill")
    assert report["ok"] and report["differences"] == [] and report["amcheck_ok"]
    assert report["tables"] >= 4 and report["rows"] >= 5300
    assert stack.compose("run", "--rm", "-T", "backups", "verify").returncode == 0

    flip = ("f=$(ls /var/lib/pgbackrest/backup/unified/latest/bundle/1); "
            "printf '\\377' | dd of=$f bs=1 seek=4000 conv=notrunc 2>/dev/null")
    assert stack.compose("run", "--rm", "-T", "--user", "root", "--entrypoint", "sh", "backups", "-c", flip).returncode == 0
    verify = stack.compose("run", "--rm", "-T", "backups", "verify")
    assert verify.returncode == 1 and "checksum invalid: 1" in verify.stdout
    drill = stack.migrator("restore-drill")
    assert drill.returncode == 8, drill.stdout[-3000:]
    assert "Data corruption" in drill.stdout or "checksum" in drill.stdout
    # A new full backup makes the repository whole again for what follows.
    assert stack.compose("run", "--rm", "-T", "backups", "backup", "full").returncode == 0
    assert stack.migrator("restore-drill").returncode == 0


def test_broken_archiving_fails_check_and_the_recorded_age_grows(stack):
    with stack.db() as conn:
        before = conn.execute("SELECT max(finished_at) FROM _consolidation_ops.backup_runs WHERE ok").fetchone()[0]
        age0 = conn.execute("SELECT min(age_seconds) FROM _consolidation_ops.last_backup").fetchone()[0]
        # Still pgBackRest (its check and backup refuse any other command), but pushing
        # into a repository that is not there: the archiver fails on every segment.
        conn.execute("ALTER SYSTEM SET archive_command = "
                     "'pgbackrest --stanza=unified --repo1-path=/nonexistent --no-archive-async archive-push %p'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("INSERT INTO rag_documents.marks VALUES (100, 'a segment to archive')")
    short = ["-e", "PGBACKREST_ARCHIVE_TIMEOUT=5"]
    try:
        check = stack.compose("run", "--rm", "-T", *short, "backups", "pgbackrest", "check")
        assert check.returncode != 0 and "ERROR" in check.stdout
        failed = stack.compose("run", "--rm", "-T", *short, "backups", "backup", "diff")
        assert failed.returncode != 0
        kind, ok, _, error = last_runs(stack)[-1]
        assert (kind, ok) == ("diff", False) and error
        with stack.db() as conn:
            wait_for(lambda: conn.execute("SELECT failed_count > 0 FROM pg_stat_archiver").fetchone()[0], 90,
                     "the archiver to report a failure")
            after = conn.execute("SELECT max(finished_at) FROM _consolidation_ops.backup_runs WHERE ok").fetchone()[0]
            wait_for_server_clock(conn, conn.execute("SELECT now()::text").fetchone()[0])    # the age is in whole seconds
            age1 = conn.execute("SELECT min(age_seconds) FROM _consolidation_ops.last_backup").fetchone()[0]
        assert after == before and age1 > age0
    finally:
        with stack.db() as conn:
            conn.execute("ALTER SYSTEM RESET archive_command")
            conn.execute("SELECT pg_reload_conf()")
        backups_setup(stack)                                   # sets it again, checks archiving works
    assert stack.compose("run", "--rm", "-T", "backups", "pgbackrest", "check").returncode == 0


def test_live_restore_then_undo(stack):
    with stack.db() as conn:
        conn.execute("INSERT INTO rag_documents.marks VALUES (10, 'before')")
        when = conn.execute("SELECT now()::text").fetchone()[0]
        at_when = app_checksums(stack)
        wait_for_server_clock(conn, when)
        conn.execute("INSERT INTO rag_documents.marks VALUES (11, 'after'); DELETE FROM n8n.workflow WHERE id > 1000")
    latest = app_checksums(stack)
    switch_and_archive(stack)
    refused = stack.migrator("restore-instance", "--to", when)
    assert refused.returncode == 2 and "--scratch" in refused.stdout + refused.stderr   # neither --scratch nor --yes
    result = stack.migrator("restore-instance", "--to", when, "--yes")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert app_checksums(stack) == at_when
    report = newest_report(stack, "restore-live")
    undo = stack.migrator("restore-instance", "--undo", report["aside_volume"])
    assert undo.returncode == 0, undo.stdout[-3000:] + undo.stderr[-3000:]
    assert app_checksums(stack) == latest
    bogus = stack.migrator("restore-instance", "--undo", f"{stack.name}_unified-data")
    assert bogus.returncode == 2
    assert stack.compose("run", "--rm", "-T", "backups", "backup", "full").returncode == 0


def test_one_app_as_of_a_time_leaves_the_other_apps_untouched(stack):
    with stack.db() as conn:
        when = conn.execute("SELECT now()::text").fetchone()[0]
        n8n_then = {k: v for k, v in app_checksums(stack).items() if k.startswith("n8n.")}
        wait_for_server_clock(conn, when)
        conn.execute("DELETE FROM n8n.workflow WHERE id <= 500; UPDATE letta_agents.agents SET state = '{}' WHERE id < 50;"
                     " INSERT INTO rag_documents.marks VALUES (50, 'after')")
    others_now = {k: v for k, v in app_checksums(stack).items() if not k.startswith("n8n.")}
    switch_and_archive(stack)
    result = stack.migrator("app-restore", "n8n", "--as-of", when, "--force")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = app_checksums(stack)
    assert {k: v for k, v in after.items() if k.startswith("n8n.")} == n8n_then
    assert {k: v for k, v in after.items() if not k.startswith("n8n.") and "_replaced_" not in k} == others_now
    with stack.db() as conn:
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'n8n' AND tablename = 'workflow'"
                            ).fetchone()[0] == "n8n"
        assert conn.execute("SELECT count(*) FROM n8n.workflow WHERE id <= 500").fetchone()[0] == 500
    assert not [c for c in docker.from_env().containers.list(all=True, filters={"label": "consolidation.scratch"})
                if c.name.startswith(stack.name)]


def test_drill_and_pitr_copy_run_no_planted_code_as_superuser(stack):
    """The superuser matrix's day-two cases (tests/support/attacker.py): n8n plants every
    vector, a cast from its own table's row type to text among them (issue 22, finding 1:
    the drill's checksum called it as the superuser, an OS shell in the live container).
    The drill and a PITR scratch copy read every app table; nothing planted runs as a
    superuser in the live instance or in the restored copies."""
    with stack.db() as conn:
        conn.execute("SET ROLE n8n")
        conn.execute(attacker.app_vectors("n8n", "n8n", tag="n8n_"))
        conn.execute(attacker.APP_TABLE_CAST.format(schema="n8n", table="workflow", tag="n8n_"))
        conn.execute("RESET ROLE")
    live = docker.from_env().containers.list(filters={"label": [f"com.docker.compose.project={stack.name}",
                                                               "com.docker.compose.service=unified"]})[0]
    switch_and_archive(stack)
    try:
        drill = stack.migrator("restore-drill", "--keep")
        assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
        copy = newest_report(stack, "restore-drill")["kept"]
        with stack.db(port=copy["port"]) as conn:
            assert attacker.evidence(conn, docker.from_env().containers.get(copy["container"]),
                                     attacker.UNIFIED_SUPERUSERS) == []
        call_corpus(stack, "restore-drill", copy["port"])
        remove_scratch(stack)
        pitr = stack.migrator("restore-instance", "--to", "latest", "--scratch", "--keep")
        assert pitr.returncode == 0, pitr.stdout[-3000:] + pitr.stderr[-3000:]
        report = newest_report(stack, "restore-scratch")
        assert report["checksums"]["n8n.hooked_rows"][0] == 20
        call_corpus(stack, "restore-instance --scratch", report["port"])
        with stack.db(port=report["port"]) as conn:
            assert attacker.evidence(conn, docker.from_env().containers.get(report["container"]),
                                     attacker.UNIFIED_SUPERUSERS) == []
        with stack.db() as conn:
            assert attacker.evidence(conn, live, attacker.UNIFIED_SUPERUSERS) == []
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'consolidation_reader_%'"
                                ).fetchone()[0] == 0
    finally:
        remove_scratch(stack)


def call_corpus(stack: ComposeProject, label: str, port: int) -> None:
    """Every corpus function on a restored copy, as the app logs in (checked by the test below)."""
    started = time.monotonic()
    stack.corpus.after[label] = stack.corpus.call_target(port, env_values(stack.env_dir / "app-roles.env"))
    stack.timings[f"corpus after {label}"] = time.monotonic() - started


@pytest.mark.parametrize("label", ["restore-drill", "restore-instance --scratch"])
def test_corpus_answers_on_the_restored_copies_as_on_the_legacy_databases(stack, label):
    """The corpus, migrated into the instance, backed up and restored (the drill's copy
    and a point-in-time scratch copy, both kept by the test above): each function answers
    as on the legacy database."""
    assert stack.corpus.differing(label) == []
    assert len(stack.corpus.source["letta"]) == 5 and len(stack.corpus.source["n8n"]) >= 10
    print("corpus timings (s):", {k: round(v, 1) for k, v in stack.timings.items()})


def test_no_secret_in_any_output(stack):
    secret = stack.password()
    assert all(secret not in out for out in stack.outputs)
    assert all(secret not in f.read_text() for f in stack.reports.glob("*"))

