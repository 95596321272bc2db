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


def private_uses(name: str, path: Path) -> list[str]:
    """The private names (`_x`, not dunders) of other grader modules that path's code reaches:
    imported by name (`from grader.judge.checks import _changed`) or read off an imported
    module (`checks._changed`). A private module imported by its own package's modules
    (probes/_classifier.py by probes/mlp_backprop.py) is that package's own business."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    private = lambda n: n.startswith("_") and not n.startswith("__")  # noqa: E731
    found, modules = [], {}  # modules: local name -> the grader module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("grader"):
            for a in node.names:
                whole = f"{node.module}.{a.name}"
                if whole in KNOWN:
                    modules[a.asname or a.name] = whole
                if private(a.name) and not (whole in KNOWN and node.module == package):
                    found.append(f"{whole} imported")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in KNOWN:
                    modules[a.asname] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and private(node.attr):
            owner = modules.get(node.value.id)
            if owner and owner != name and f"{owner}.{node.attr}" not in KNOWN:
                found.append(f"{owner}.{node.attr} (line {node.lineno})")
    return found


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_no_private_name_is_used_across_modules(name):
    used = private_uses(name, KNOWN[name])
    assert not used, f"{name} reaches private names of other modules: {used}; make them public where shared"


# --- no function over 60 lines or complexity 20 ------------------------------------------------

MAX_LINES, MAX_COMPLEXITY = 60, 20


def complexity(fn: ast.AST) -> int:
    """McCabe's count, as radon takes it: 1, plus one per branch, loop, handler, case,
    comprehension and its ifs, and per `and`/`or` beyond the first operand. A function
    nested inside counts on its own."""
    n, todo = 1, list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case)):
            n += 1
        elif isinstance(node, ast.BoolOp):
            n += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            n += 1 + len(node.ifs)
        todo.extend(ast.iter_child_nodes(node))
    return n


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_no_function_is_over_60_lines_or_complexity_20(name):
    big = []
    for node in ast.walk(ast.parse(KNOWN[name].read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines, branches = node.end_lineno - node.lineno + 1, complexity(node)
            if lines > MAX_LINES or branches > MAX_COMPLEXITY:
                big.append(f"{node.name} (line {node.lineno}: {lines} lines, complexity {branches})")
    assert not big, f"{name}: split along a real seam: {big}"
