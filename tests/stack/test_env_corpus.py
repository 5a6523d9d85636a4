"""One reading of env files: what docker compose hands the container, what the
migrator reads, and what it reads after a rewrite are the same value, for every
form an operator's file may take; rollback gets the exact original bytes back;
what compose would read depending on its shell is refused in one line."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from migrator.config import envfile
from migrator.errors import ConfigError
from tests.support import project_images

pytestmark = pytest.mark.integration

# name -> file bytes; the key under test is always P.
CORPUS = {
    "crlf": b"A=one\r\nP=crlf-pw\r\nZ=two\r\n",
    "no_final_newline": b"A=one\nP=last-line",
    "export": b"export P=exported-pw\n",
    "single_quotes": b"P='Pa$x#1 \"q\" \\n'\n",
    "double_quotes": b'P="Pa\\$x#1 \\"q\\" \\\\ back"\n',
    "comment_after": b"P=plain-pw # the old server\n",
    "hash_inside": b"P=pa#ss\n",
    "equals_inside": b"P=a=b=c\n",
    "spaces_inside": b"P='with spaces inside'\n",
    "spaced_unquoted": b"P = spaced value  \n",
    "duplicate_keys": b"P=first\nA=1\nP=second\n",
    "bom": b"\xef\xbb\xbfP=bom-pw\n",
    "comments_blank": b"# comment\n\n   # indented comment\nP=after-comments\n",
    "dollar_dollar": b"P=dollar$$sign\n",
    "backslash_unquoted": b"P=back\\slash\n",
    "old_hash_tail": b'P="old #tail"\n',
    "tab_escape": b'P="a\\tb"\n',
}
# What a rewrite writes: every character that quoting could get wrong.
NEW_VALUE = "n3w $x #y \"q\" 'z' \\ =end"
NEW_PLAIN = "plain-new_pw.1"
REFUSED = {
    "unquoted_variable": (b"P=Pa$x#1\n", "replaces by a variable"),
    "braced_variable": (b'P="${HOME}/x"\n', "replaces by a variable"),
    "unclosed_quote": (b"P='open\n", "not closed"),
    "spans_lines": (b'P="line one\nline two"\n', "not closed"),
    "garbage": (b"this is not a binding\n", "cannot parse"),
}

COMPOSE = """services:
{services}"""
SERVICE = """  {name}:
    image: {image}
    entrypoint: ["sleep", "infinity"]
    env_file: ./{name}.env
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("envcorpus")
    name = "consolidation-env-" + secrets.token_hex(3)
    image = project_images()["LETTA_DB_IMAGE"]
    (tmp / "docker-compose.yml").write_text(COMPOSE.format(
        services="".join(SERVICE.format(name=case.replace("_", "-"), image=image) for case in CORPUS)))

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "compose", "-p", name, *args], cwd=tmp, capture_output=True, text=True,
                              timeout=300)
    yield tmp, compose
    compose("down", "-t", "0")


def env_file(tmp: Path, case: str) -> Path:
    return tmp / f"{case.replace('_', '-')}.env"


def container_values(compose) -> dict[str, str]:
    """P as each running container's PID 1 sees it."""
    out = {}
    for case in CORPUS:
        raw = compose("exec", "-T", case.replace("_", "-"), "cat", "/proc/1/environ").stdout
        env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        out[case] = env.get("P")
    return out


def test_compose_the_migrator_and_the_rewriter_read_the_same_value(project):
    tmp, compose = project
    for case, data in CORPUS.items():
        env_file(tmp, case).write_bytes(data)
    up = compose("up", "-d")
    assert up.returncode == 0, up.stderr
    seen_by_compose = container_values(compose)
    seen_by_migrator = {case: envfile.read(env_file(tmp, case))["P"] for case in CORPUS}
    assert seen_by_migrator == seen_by_compose
    assert seen_by_migrator["double_quotes"] == 'Pa$x#1 "q" \\ back'
    assert seen_by_migrator["old_hash_tail"] == "old #tail" and seen_by_migrator["duplicate_keys"] == "second"

    # Rewrite every file (a tricky value, and a plain one where the file had it unquoted).
    backups = {}
    for case in CORPUS:
        new = NEW_PLAIN if case in ("export", "comment_after") else NEW_VALUE
        result = envfile.rewrite(env_file(tmp, case), {"P": new}, stamp="20260101T000000Z")
        backups[case] = result.backup
        assert envfile.read(env_file(tmp, case))["P"] == new, case
    up = compose("up", "-d", "--force-recreate")
    assert up.returncode == 0, up.stderr
    after = container_values(compose)
    for case in CORPUS:
        expected = NEW_PLAIN if case in ("export", "comment_after") else NEW_VALUE
        assert after[case] == expected, case
        assert backups[case].read_bytes() == CORPUS[case], case          # the exact original bytes
    text = env_file(tmp, "crlf").read_bytes()
    assert text.startswith(b"A=one\r\nP=") and text.endswith(b"\r\nZ=two\r\n")
    assert env_file(tmp, "bom").read_bytes().startswith(b"\xef\xbb\xbf")
    assert b"#tail" not in env_file(tmp, "old_hash_tail").read_bytes()   # nothing of the old secret left
    assert env_file(tmp, "comment_after").read_bytes() == b"P=plain-new_pw.1 # the old server\n"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_compose_reads_differently_is_refused_in_one_line(tmp_path, case):
    data, message = REFUSED[case]
    path = tmp_path / "app.env"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=message) as refused:
        envfile.read(path)
    assert "\n" not in str(refused.value) and str(path) in str(refused.value)
    with pytest.raises(ConfigError):
        envfile.rewrite(path, {"P": "x"})
    assert path.read_bytes() == data
