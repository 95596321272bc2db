"""grader.catalog.stubgen: the committed stub is what the generator makes from the reference, and nothing more."""
import ast
import re
import types

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from grader import catalog
from grader.catalog import stubgen
from grader.catalog import CatalogError

MARKER = re.compile(r"#\s*drill\b")


@pytest.fixture(scope="module")
def solution(exercise) -> str:
    return exercise.solution_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stub(exercise) -> str:
    return exercise.stub_path.read_text(encoding="utf-8")


def load(source: str, name: str = "stub") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def statements(tree: ast.AST) -> set[str]:
    return {ast.dump(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)}


def expressions(tree: ast.AST) -> set[str]:
    """Every expression of tree that is more than a bare name or constant."""
    return {ast.dump(node) for node in ast.walk(tree)
            if isinstance(node, ast.expr) and not isinstance(node, (ast.Name, ast.Constant, ast.Load, ast.Store))}


def blank_code(solution: str) -> dict[str, str]:
    """name -> the solution's code of each marked blank, dedented."""
    return {m.name: "".join(line.strip() + "\n" for line in m.code) for m in stubgen.find_blanks(solution)}


@pytest.mark.parametrize("exercise_id", sorted(catalog.exercises()))
def test_every_committed_stub_is_what_the_generator_makes(exercise_id):
    exercise = catalog.exercise(exercise_id)
    stub = exercise.stub_path.read_text(encoding="utf-8")
    assert stub == stubgen.stub_for(exercise), (
        f"{exercise.stub_path} is out of date with {exercise.solution_path}: "
        "run `python -m grader.catalog.stubgen` and commit the result")
    for blank in exercise.blanks:
        assert f'todo("{blank.name}", "{blank.shape}")' in stub, blank.name
    assert "# drill:" not in stub and "drill-begin" not in stub


def test_every_blank_is_a_todo_naming_its_link_and_shape(exercise, stub):
    for blank in exercise.blanks:
        assert f'todo("{blank.name}", "{blank.shape}")' in stub, blank.name
    calls = [node for node in ast.walk(ast.parse(stub))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "todo"]
    assert len(calls) == len(exercise.blanks)


def test_stub_has_no_markers(stub):
    assert not [line for line in stub.splitlines() if MARKER.search(line)]


def test_stub_has_no_formula_of_any_link(solution, stub):
    tree = ast.parse(stub)
    in_stub, exprs_in_stub = statements(tree), expressions(tree)
    for name, code in blank_code(solution).items():
        blank_tree = ast.parse(code)
        for node in ast.walk(blank_tree):
            if isinstance(node, ast.stmt):
                assert ast.dump(node) not in in_stub, f"{name}: the stub holds {ast.unparse(node)!r}"
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                value = node.value
                if not isinstance(value, (ast.Name, ast.Constant)):
                    assert ast.dump(value) not in exprs_in_stub, f"{name}: the stub holds {ast.unparse(value)!r}"


def first_blank_of_each_function(solution: str) -> dict[str, str]:
    marked = stubgen.find_blanks(solution)
    found = {}
    for node in ast.parse(solution).body:
        if isinstance(node, ast.FunctionDef):
            inside = [m.name for m in marked if node.lineno <= m.start + 1 <= node.end_lineno]
            if inside:
                found[node.name] = inside[0]
    return found


def test_each_function_of_the_stub_raises_naming_its_first_blank(exercise, reference, solution, stub):
    module = load(stub)
    first = first_blank_of_each_function(solution)
    assert sorted(first) == sorted(exercise.functions)
    params = reference.init_params(seed=0)
    x, y = reference.make_xor(n=10, seed=0)
    z2, cache = reference.forward(params, x)
    _, probs = reference.softmax_cross_entropy(z2, y)
    grads = reference.backward(params, cache, probs, y)
    args = {"forward": (params, x), "softmax_cross_entropy": (z2, y),
            "backward": (params, cache, probs, y), "sgd_step": (params, grads, 0.1)}
    assert set(args) == set(exercise.functions)
    for fn, blank_name in first.items():
        with pytest.raises(NotImplementedError) as info:
            getattr(module, fn)(*args[fn])
        message = str(info.value)
        assert message.startswith(f"{blank_name} "), f"{fn}: {message}"
        assert exercise.blank(blank_name).shape in message, f"{fn}: {message}"


@hsettings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_keep_leaves_exactly_the_others_blank(exercise, solution, data):
    names = [b.name for b in exercise.blanks]
    keep = frozenset(data.draw(st.sets(st.sampled_from(names)), label="keep"))
    stub = stubgen.generate(exercise, solution, keep=keep)
    compile(stub, "<stub>", "exec")
    assert not [line for line in stub.splitlines() if MARKER.search(line)]
    code = blank_code(solution)
    stripped = {line.strip() for line in stub.splitlines()}
    for name in names:
        if name in keep:
            assert f'todo("{name}"' not in stub, name
            assert all(line in stripped for line in code[name].splitlines()), f"{name} is not filled in"
        else:
            assert f'todo("{name}"' in stub, name
    assert ("def todo(" in stub) == (keep != frozenset(names))


def test_keeping_every_blank_gives_the_solution_without_markers(exercise, solution):
    whole = stubgen.generate(exercise, solution, keep=frozenset(b.name for b in exercise.blanks))
    body = ast.parse(whole).body[1:]  # past the module docstring
    assert ast.dump(ast.Module(body, [])) == ast.dump(ast.Module(ast.parse(solution).body[1:], []))


def test_strip_markers_leaves_the_code_identical(solution):
    stripped = stubgen.strip_markers(solution)
    assert ast.dump(ast.parse(stripped)) == ast.dump(ast.parse(solution))
    assert not [line for line in stripped.splitlines() if MARKER.search(line)]
    expected = [re.sub(r"\s*#\s*drill:\s*[\w-]+$", "", line) for line in solution.splitlines()
                if not re.match(r"\s*#\s*drill-(begin|end)\b", line)]
    assert stripped.splitlines() == expected


# Edits of the real solution that break its markers, and words the error must contain.
BAD_MARKERS = [
    ("begin-without-end", lambda s: "".join(s.rsplit("    # drill-end\n", 1)), "dz2 has no drill-end"),
    ("end-without-begin", lambda s: s.replace("    # drill-begin: loss\n", ""), "drill-end without drill-begin"),
    ("nested", lambda s: s.replace("    shifted =", "    # drill-begin: inner\n    shifted =", 1),
     "drill-begin inside the blank loss"),
    ("duplicate", lambda s: s.replace("return new_params\n", "return new_params  # drill: step\n"),
     "marked twice"),
    ("not-in-yaml", lambda s: s.replace("N = z2.shape[0]\n", "N = z2.shape[0]  # drill: count\n"),
     "'count', which is not in the exercise's blanks"),
    ("no-marker", lambda s: s.replace("  # drill: db1\n", "\n"), "no marker for the blanks ['db1']"),
]


@pytest.mark.parametrize("edit, words", [(edit, words) for _, edit, words in BAD_MARKERS],
                         ids=[case for case, _, _ in BAD_MARKERS])
def test_bad_markers_are_rejected(exercise, solution, edit, words):
    bad = edit(solution)
    assert bad != solution
    with pytest.raises(CatalogError, match=re.escape(words)):
        stubgen.generate(exercise, bad)
