"""Print the regular files `docker build` sends from a build context, NUL-separated, as
`find CONTEXT -type f -print0` would name them: every file the context's .dockerignore
does not exclude. scripts/images.sh hashes exactly these into an image's tag, so a file
the build never sees (a venv's *.egg-info, caches, compose/apps/letta/host-ca.crt for the
migrator's context) cannot change the tag and force a rebuild of a cached image.

The rules are the Docker CLI's (moby/patternmatcher, used by the legacy builder's context
walk): patterns are cleaned paths relative to the context, `*` and `?` never cross `/`,
`**` crosses any number of folders, a pattern that matches a folder excludes what is under
it, later `!` patterns re-include, the last matching pattern wins. The Dockerfile and the
.dockerignore are always sent. Standard library only: this runs before the venv exists.

usage: context_files.py CONTEXT [DOCKERFILE]
"""

from __future__ import annotations

import os
import posixpath
import re
import sys


def read_patterns(context: str) -> list[tuple[bool, re.Pattern]]:
    """(exclusion?, regex) per .dockerignore line, in order."""
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
            out.append((negate, compile_pattern(line)))
    return out


def compile_pattern(pattern: str) -> re.Pattern:
    """moby/patternmatcher's translation of one pattern into a regular expression."""
    regex, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                regex += ".*" if i == len(pattern) else "(.*/)?"
            else:
                regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch in ".+()|{}$":
            regex += "\\" + ch
        elif ch == "\\":
            if i < len(pattern):
                regex += "\\" + pattern[i]
                i += 1
            else:
                regex += "\\\\"
        else:
            regex += ch
    return re.compile(regex + "$", re.DOTALL)


def excluded(rel: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """MatchesOrParentMatches: the last pattern matching the path or one of its folders wins."""
    parts = rel.split("/")
    parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
    matched = False
    for negate, regex in patterns:
        if negate != matched:   # an exclusion only matters once excluded, and vice versa
            continue
        if regex.match(rel) or any(regex.match(p) for p in parents):
            matched = not negate
    return matched


def context_files(context: str, dockerfile: str | None = None) -> list[str]:
    patterns = read_patterns(context)
    always = {".dockerignore"}
    if dockerfile:
        rel = os.path.relpath(dockerfile, context)
        if not rel.startswith(".."):
            always.add(rel.replace(os.sep, "/"))
    files = []
    for folder, dirs, names in os.walk(context):
        dirs.sort()
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue   # find -type f: regular files (a link's target is hashed where it lives)
            rel = os.path.relpath(path, context).replace(os.sep, "/")
            if rel in always or not excluded(rel, patterns):
                files.append(path)
    return files


if __name__ == "__main__":
    names = context_files(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    sys.stdout.write("".join(name + "\0" for name in names))
