"""The imports hold the layers (issue 27): libraries never import a step, steps import
steps only where one orchestrates others, and only migrator/systems/services.py talks to docker.

Walks every module of migrator/ with ast (no import runs), so a lazy import inside a
function counts the same as one at the top."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "migrator"

# cli.py parses and dispatches to every step; __main__ runs cli.
ENTRY_POINTS = {"migrator.cli", "migrator.__main__"}
# The steps that run other steps in order (the pipeline and the window); no other step
# imports a step: what two steps share lives in a library module.
ORCHESTRATORS = {"migrator.steps.migrate", "migrator.steps.cutover", "migrator.steps.online"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module named by an import in the file, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)   # `from pkg import module`
    return found


def modules() -> dict[str, set[str]]:
    return {module_name(p): imported(p) for p in sorted(PACKAGE.rglob("*.py"))}


def is_step(name: str) -> bool:
    return name.startswith("migrator.steps.") and name != "migrator.steps.__init__"


def test_the_walk_sees_the_arrows_it_must():
    graph = modules()
    assert "migrator.steps.verify" in graph["migrator.cli"]
    assert "migrator.steps.schema" in graph["migrator.steps.migrate"]


def test_no_library_imports_a_step():
    arrows = [f"{mod} -> {dep}" for mod, deps in modules().items()
              if not mod.startswith("migrator.steps") and mod not in ENTRY_POINTS
              for dep in deps if is_step(dep)]
    assert arrows == [], "move what they share into a library module: " + "; ".join(arrows)


def test_steps_import_steps_only_to_orchestrate():
    arrows = [f"{mod} -> {dep}" for mod, deps in modules().items()
              if is_step(mod) and mod not in ORCHESTRATORS
              for dep in deps if is_step(dep) and dep != mod]
    assert arrows == [], "sideways step imports: " + "; ".join(arrows)



def test_docker_only_through_services():
    users = sorted(mod for mod, deps in modules().items()
                   if mod != "migrator.systems.services" and any(d == "docker" or d.startswith("docker.") for d in deps))
    assert users == [], "docker SDK used outside migrator/systems/services.py: " + ", ".join(users)
