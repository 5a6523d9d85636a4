"""tests/support/leaks.py, the stack tests' secret collector: it finds the secrets of the
env directory it is given (not the checkout's), also inside URIs and in files the tool
writes, and it fails on a planted one without printing it (no docker)."""

from __future__ import annotations

import pytest

from tests.support import env_values, fresh_env_dir
from tests.support.leaks import assert_no_leak, leaks, report_texts, stack_secrets


def test_collects_every_generated_secret_of_the_given_env_dir(tmp_path):
    env_dir = fresh_env_dir(tmp_path / "env")
    found = stack_secrets(env_dir)
    unified = env_values(env_dir / "unified.env")["POSTGRES_PASSWORD"]
    letta_db = env_values(env_dir / "letta-db.env")["POSTGRES_PASSWORD"]
    assert found[unified] == "unified.env:POSTGRES_PASSWORD"
    assert letta_db in found and letta_db in env_values(env_dir / "letta.env")["LETTA_PG_URI"]
    assert env_values(env_dir / "n8n.env")["N8N_ENCRYPTION_KEY"] in found
    assert len(found) >= 10
    # Nothing that is not a secret: hosts, users, ports, flags.
    assert not {"letta-db", "postgres", "5432", "n8n_restore", "supabase_admin"} & set(found)


def test_another_env_dir_has_other_secrets(tmp_path):
    """What the old test did: the checkout's values (or any other stack's) are not this stack's."""
    ours = stack_secrets(fresh_env_dir(tmp_path / "ours"))
    theirs = stack_secrets(fresh_env_dir(tmp_path / "theirs"))
    assert not set(ours) & set(theirs)


def test_finds_files_the_tool_writes_and_uri_passwords(tmp_path):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "n8n-admin.env").write_text("N8N_OWNER_EMAIL=owner@example.com\nN8N_OWNER_PASSWORD=Owner-pw-123456\n"
                                           "N8N_API_KEY=key-abcdefghijkl\n")
    (env_dir / "letta.env").write_text("LETTA_PG_URI=postgresql://letta:rewritten-pw-9876@unified:5432/postgres\n"
                                       "DATA_SOURCE_URI=unified:5432/postgres?sslmode=disable\n")
    found = stack_secrets(env_dir, tmp_path / "missing.env")
    assert set(found) == {"Owner-pw-123456", "key-abcdefghijkl", "rewritten-pw-9876"}


def test_a_planted_secret_fails_and_the_message_does_not_show_it(tmp_path):
    env_dir = fresh_env_dir(tmp_path / "env")
    found = stack_secrets(env_dir)
    secret = env_values(env_dir / "n8n-db.env")["POSTGRES_PASSWORD"]
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/cutover.md").write_text(f"connected with {secret}\n")
    texts = {**report_texts(tmp_path / "reports"), "output #0": "all fine"}
    assert leaks(texts, found) == [f"{tmp_path / 'reports/cutover.md'} holds n8n-db.env:POSTGRES_PASSWORD"]
    with pytest.raises(AssertionError) as err:
        assert_no_leak([f"ERROR: password {secret} refused"], found)
    assert "output #0 holds n8n-db.env:POSTGRES_PASSWORD" in str(err.value)
    assert secret not in str(err.value)
    assert_no_leak(["nothing here"], found)

