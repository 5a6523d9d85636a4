"""scripts/context_files.py: the files an image's tag hashes are the files its build is sent
(the context minus .dockerignore), so what make venv, pytest or the Letta build leave in the
checkout cannot change the migrator's tag and force a rebuild (no docker)."""

import importlib.util
import os
import shutil

from docker.utils.build import exclude_paths

from tests.support import ROOT

spec = importlib.util.spec_from_file_location("context_files", ROOT / "scripts/context_files.py")
context_files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(context_files)

MIGRATOR_DOCKERFILE = "compose/images/migrator/Dockerfile"


def listed(context, dockerfile=None) -> set[str]:
    return {os.path.relpath(p, context) for p in context_files.context_files(str(context), dockerfile)}


def docker_sdk_sends(context, dockerfile: str) -> set[str]:
    """The regular files the docker SDK's own .dockerignore walk keeps (the reference)."""
    ignore = context / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()] if ignore.exists() else []
    patterns = [p for p in patterns if p and not p.startswith("#")]
    return {p for p in exclude_paths(str(context), patterns, dockerfile=dockerfile)
            if os.path.isfile(context / p) and not os.path.islink(context / p)}


def touch(root, *paths):
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def test_the_checkout_lists_what_the_docker_sdk_sends():
    assert listed(ROOT, str(ROOT / MIGRATOR_DOCKERFILE)) == docker_sdk_sends(ROOT, MIGRATOR_DOCKERFILE)


def test_leftovers_of_venv_tests_and_app_builds_are_not_hashed(tmp_path):
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    sent = ["migrator/cli.py", "sql/x.sql", "requirements/migrator.txt", MIGRATOR_DOCKERFILE,
            "compose/images/migrator/wheels/psycopg.whl", "pyproject.toml"]
    left = ["consolidation_migrator.egg-info/PKG-INFO", "migrator/__pycache__/cli.cpython-311.pyc",
            "compose/apps/letta/host-ca.crt", ".pytest_cache/v/cache/nodeids", "tests/unit/test_x.py",
            ".venv/bin/python", "env/n8n.env", "env/n8n.env.bak", "reports/cutover.json", ".env",
            "backups/n8n.dump", "bench/datagen.py"]
    touch(tmp_path, *sent, *left)
    assert listed(tmp_path) == {*sent, ".dockerignore"}


def test_patterns_follow_the_docker_cli_rules(tmp_path):
    (tmp_path / ".dockerignore").write_text(
        "# a comment\n*.log\n/rooted\ndata\n!data/keep.txt\n**/cache\na/**/b.txt\nsub/*/x\nDockerfile\n")
    touch(tmp_path, "app.log", "deep/app.log", "rooted", "deep/rooted", "data/one", "data/keep.txt",
          "cache/c", "x/y/cache/c", "a/b.txt", "a/m/n/b.txt", "sub/q/x", "sub/q/r/x", "Dockerfile", "ok.py")
    mine = listed(tmp_path, str(tmp_path / "Dockerfile"))
    assert mine == docker_sdk_sends(tmp_path, "Dockerfile")
    assert mine == {".dockerignore", "Dockerfile", "deep/app.log", "deep/rooted", "data/keep.txt",
                    "sub/q/r/x", "ok.py"}


def test_a_context_without_dockerignore_sends_everything(tmp_path):
    touch(tmp_path, "Dockerfile", "x/__pycache__/y.pyc")
    assert listed(tmp_path) == {"Dockerfile", "x/__pycache__/y.pyc"}
