"""The package's layers: every import points down the path of an attempt, and nothing cycles.

    cli  ->  practice, course  ->  judge  ->  run, catalog  ->  settings, files

A module may import its own subpackage and the layers below it; practice and course are
peers that never import each other; run (the attempt's process) and catalog (the data)
know nothing of each other. Imports inside functions count as much as those at the top:
a lazy import may save start-up time, never hide a cycle.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "grader"
LEAVES = {"settings", "files", "__init__"}
MAY_IMPORT = {  # subpackage -> the parts of grader it may import, besides itself
    "catalog": LEAVES,
    "run": LEAVES,
    "judge": LEAVES | {"catalog", "run"},
    "practice": LEAVES | {"catalog", "run", "judge"},
    "course": LEAVES | {"catalog", "run", "judge"},
    "cli": LEAVES | {"catalog", "run", "judge", "practice", "course"},
}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_data" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(name: str, path: Path) -> set[str]:
    """Every grader module path's code imports, resolved to absolute names."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m == "grader" or m.startswith("grader.")}


KNOWN = dict(modules())


def real(module: str) -> str | None:
    """The grader module an imported name is (a name imported from a module is that module)."""
    while module and module not in KNOWN:
        module = module.rpartition(".")[0]
    return module or None


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_imports_point_down(name):
    mine = part(name)
    allowed = MAY_IMPORT.get(mine, set())  # a leaf imports nothing of the grader
    wrong = sorted(m for m in (real(i) for i in imports(name, KNOWN[name]))
                   if m and part(m) != mine and part(m) not in allowed)
    assert not wrong, f"{name} ({mine}) may not import {wrong}"


def test_no_import_cycle():
    graph = {n: {real(i) for i in imports(n, p)} - {None, n} for n, p in KNOWN.items()}
    for n in graph:  # a package's __init__ is imported with each of its modules: not an edge back
        graph[n] = {m for m in graph[n] if not n.startswith(m + ".")}
    seen, stack = {}, []

    def visit(n):
        seen[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if seen.get(m) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in seen:
                visit(m)
        seen[n] = "done"
        stack.pop()

    for n in sorted(graph):
        if n not in seen:
            visit(n)


def test_every_subpackage_says_what_it_owns_and_may_import():
    for sub in MAY_IMPORT:
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Owns" in doc and "May import" in doc, f"grader/{sub}/__init__.py"


def test_click_only_in_the_cli():
    users = sorted(n for n, p in KNOWN.items() if part(n) != "cli"
                   and any(m == "click" or m.startswith("click.") for m in _all_imports(p)))
    assert not users, f"only grader.cli may use Click: {users}"


def _all_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            out.add(node.module or "")
    return out
