"""The mutation operators: one table of (operator, selector, source, expected mutant) rows."""
import ast
import functools
import os
import re

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from grader import catalog
from grader.catalog import mutants as bug_code
from grader.catalog import mutate, paths, stubgen


def fn(*body: str, name: str = "f") -> str:
    """A function called name whose body is the given lines."""
    return f"def {name}():\n" + "".join(f"    {line}\n" for line in body)


# (operator, (function, target, occurrence), source, expected mutant)
ROWS = [
    ("drop-division", ("f", "dz2", 0), fn("dz2 = (probs - onehot) / N"), fn("dz2 = (probs - onehot)")),
    ("drop-division", ("f", "dz2", 0), fn("dz2 = probs.copy()", "dz2 /= N", "return dz2"),
     fn("dz2 = probs.copy()", "return dz2")),
    ("drop-division", ("f", "dz2", 0), fn("dz2 = p; dz2 /= N"), fn("dz2 = p; pass")),
    ("drop-division", ("f", "d", 0), "def f():\n    if a:\n        d /= N\n    return d\n",
     "def f():\n    if a:\n        pass\n    return d\n"),
    ("drop-division", ("f", "y", 0), fn("y = 1 + a / b * c"), fn("y = 1 + a * c")),
    ("drop-transpose", ("f", "dW2", 0), fn("dW2 = a1.T @ dz2"), fn("dW2 = a1 @ dz2")),
    ("drop-transpose", ("f", "g", 0), fn("g = (a + b).T @ c"), fn("g = (a + b) @ c")),
    ("misplace-transpose", ("f", "dW2", 0), fn("dW2 = a1.T @ dz2"), fn("dW2 = dz2.T @ a1")),
    ("misplace-transpose", ("f", "da1", 0), fn("da1 = dz2 @ W2.T"), fn("da1 = W2 @ dz2.T")),
    ("misplace-transpose", ("f", "g", 0), fn("g = x.T @ (a - b)"), fn("g = (a - b).T @ x")),
    ("swap-matmul", ("f", "z", 0), fn("z = a @ b"), fn("z = b @ a")),
    ("swap-matmul", ("f", "z", 0), fn("z = a @ (b + c)"), fn("z = (b + c) @ a")),
    ("swap-matmul", ("f", "z", 0), fn("z = a @ b @ c"), fn("z = c @ (a @ b)")),
    ("swap-matmul", ("f", "z", 1), fn("z = a @ b @ c"), fn("z = b @ a @ c")),
    ("change-axis", ("f", "db2", 0), fn("db2 = dz2.sum(axis=0)"), fn("db2 = dz2.sum(axis=1)")),
    ("change-axis", ("f", "p", 0), fn("p = e / e.sum(axis=1, keepdims=True)"),
     fn("p = e / e.sum(axis=0, keepdims=True)")),
    ("change-axis", ("f", "p", 0), fn("p = e.max(axis=-1)"), fn("p = e.max(axis=0)")),
    ("gt-to-ge", ("f", "dz1", 0), fn("dz1 = da1 * (z1 > 0)"), fn("dz1 = da1 * (z1 >= 0)")),
    ("gt-to-ge", ("f", "m", 0), fn("m = z>0"), fn("m = z>=0")),
    ("flip-comparison", ("f", "dz1", 0), fn("dz1 = da1 * (z1 > 0)"), fn("dz1 = da1 * (z1 < 0)")),
    ("flip-comparison", ("f", "m", 0), fn("m = z >= 0"), fn("m = z <= 0")),
    ("drop-copy", ("f", "dz2", 0), fn("dz2 = probs.copy()"), fn("dz2 = probs")),
    ("drop-copy", ("f", "dz2", 0), fn("dz2 = np.copy(probs)"), fn("dz2 = probs")),
    ("flip-sign", ("f", "d", 0), fn("d = p - onehot"), fn("d = p + onehot")),
    ("flip-sign", ("f", "d", 0), fn("d[np.arange(N), y] -= 1.0"), fn("d[np.arange(N), y] += 1.0")),
    ("flip-sign", ("f", "new", 0), fn('new = {k: p[k] - lr * g["d" + k] for k in p}'),
     fn('new = {k: p[k] + lr * g["d" + k] for k in p}')),
    ("flip-sign", ("f", "new", 1), fn('new = {k: p[k] - lr * g["d" + k] for k in p}'),
     fn('new = {k: p[k] - lr * g["d" - k] for k in p}')),
    ("shift-index", ("f", "d", 0), fn("d[np.arange(N), y] -= 1.0"), fn("d[np.arange(N), y - 1] -= 1.0")),
    ("shift-index", ("f", "oh", 0), fn("oh = np.eye(C)[y]"), fn("oh = np.eye(C)[y - 1]")),
    ("drop-term", ("f", "z1", 0), fn("z1 = x @ W1 + b1"), fn("z1 = x @ W1")),
    ("drop-subtracted", ("f", "dS", 0), fn("dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))"),
     fn("dS = A * (dA)")),
    ("drop-subtracted", ("f", "d", 1), fn("d = a - b - c"), fn("d = a - c")),
    ("mean-to-sum", ("f", "loss", 0), fn("loss = -np.log(p).mean()"), fn("loss = -np.log(p).sum()")),
    ("mean-to-sum", ("f", "loss", 0), fn("loss = np.mean(l)"), fn("loss = np.sum(l)")),
    ("sum-to-mean", ("f", "db1", 0), fn("db1 = dz1.sum(axis=0)"), fn("db1 = dz1.mean(axis=0)")),
    ("drop-max-shift", ("f", "s", 0), fn("s = z2 - z2.max(axis=1, keepdims=True)"), fn("s = z2")),
    ("drop-max-shift", ("f", "s", 0), fn("s = np.exp(z - np.max(z))"), fn("s = np.exp(z)")),
    ("drop-factor", ("f", "w", 0), fn("w = w0 - lr * g"), fn("w = w0 - g")),
    ("drop-call", ("f", "a1", 0), fn("a1 = np.maximum(z1, 0.0)"), fn("a1 = z1")),
    ("drop-call", ("f", "a", 0), fn("a = np.maximum(z + b, 0) * 2"), fn("a = (z + b) * 2")),
    ("divisor-minus-one", ("f", "var", 0), fn("var = ((z - mu) ** 2).sum(axis=0) / N"),
     fn("var = ((z - mu) ** 2).sum(axis=0) / (N - 1)")),
    ("divisor-minus-one", ("f", "m", 0), fn("m = s / (2 * n)"), fn("m = s / ((2 * n) - 1)")),
    ("drop-axis", ("f", "db2", 0), fn("db2 = dz2.sum(axis=0)"), fn("db2 = dz2.sum()")),
    ("drop-axis", ("f", "s", 0), fn("s = z2 - z2.max(axis=1, keepdims=True)"), fn("s = z2 - z2.max(keepdims=True)")),
    ("drop-axis", ("f", "s", 0), fn("s = np.sum(z, axis=1)"), fn("s = np.sum(z)")),
    ("drop-axis", ("f", "s", 0), fn("s = np.sum(z, keepdims=True, axis=1)"), fn("s = np.sum(z, keepdims=True)")),
    ("drop-mask", ("f", "dz1", 0), fn("dz1 = da1 * (z1 > 0)"), fn("dz1 = da1")),
    ("drop-mask", ("f", "dz1", 0), fn("dz1 = (z1 > 0).astype(float) * da1"), fn("dz1 = da1")),
    ("alias-inplace", ("f", "dz1", 0), fn("dz1 = da1 * (z1 > 0)"), fn("dz1 = da1; dz1 *= (z1 > 0)")),
    ("alias-inplace", ("f", "d", 0), fn("d = p - (a + b)"), fn("d = p; d -= (a + b)")),
    ("swap-operand", ("g", "w", 1), "def g(a, b):\n    c = a\n    w = b @ c\n",
     "def g(a, b):\n    c = a\n    w = c @ c\n"),
    ("swap-operand", ("g", "w", 3), "def g(a, b):\n    c = a\n    w = b @ c\n",
     "def g(a, b):\n    c = a\n    w = b @ b\n"),
    ("z1-for-a1", ("f", "dW2", 0), fn("dW2 = a1.T @ dz2"), fn("dW2 = z1.T @ dz2")),
    ("da1-for-dz1", ("f", "dW1", 0), fn("dW1 = x.T @ dz1"), fn("dW1 = x.T @ da1")),
    ("h-for-a1", ("f", "dW2", 0), fn("dW2 = a1.T @ dz2"), fn("dW2 = h.T @ dz2")),
    ("mean-over-columns", ("f", "loss", 0), "def f(z2, y):\n    loss = -np.log(p).mean()\n",
     "def f(z2, y):\n    loss = -(np.log(p).mean() / z2.shape[1])\n"),
    ("mean-over-columns", ("f", "loss", 0), "def f(z, y):\n    loss = 2 ** np.mean(l)\n",
     "def f(z, y):\n    loss = 2 ** (np.mean(l) / z.shape[1])\n"),
    # formatting, comments, other statements and multi-byte text stay as they were
    ("drop-division", ("f", "d", 0), fn("s = 'é→'  # ü", "d = ('é' , (a-b)/N)  # 注释", "d = 1"),
     fn("s = 'é→'  # ü", "d = ('é' , (a-b))  # 注释", "d = 1")),
    ("gt-to-ge", ("g", "m", 0), "def g():\r\n    m = (\r\n        z  >  0  # kink\r\n    )\r\n",
     "def g():\r\n    m = (\r\n        z  >=  0  # kink\r\n    )\r\n"),
    # the selector: the named function only, the target's statements only, in source order
    ("drop-transpose", ("f", "b", 0), fn("a = x.T", "b = y.T"), fn("a = x.T", "b = y")),
    ("drop-transpose", ("g", "a", 0), fn("a = x.T") + fn("a = y.T", name="g"), fn("a = x.T") + fn("a = y", name="g")),
    ("drop-transpose", ("f", "a", 1), fn("a = x.T", "b = y.T", "a = a + z.T"), fn("a = x.T", "b = y.T", "a = a + z")),
]


@pytest.mark.parametrize("operator, selector, source, expected", ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_operator(operator, selector, source, expected):
    function, target, occurrence = selector
    assert mutate.apply(source, operator, function, target, occurrence) == expected


def test_every_operator_has_a_row_and_an_example():
    assert {r[0] for r in ROWS} == set(mutate.OPERATORS)
    for op in mutate.OPERATORS.values():
        assert "->" in op.example, op.name


def _assigned(fn_node):
    """The names a function assigns to (plain names and the roots of x[...] targets)."""
    names = set()
    for node in ast.walk(fn_node):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            for t in getattr(node, "targets", None) or [node.target]:
                while isinstance(t, ast.Subscript):
                    t = t.value
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_untouched_lines_stay_byte_identical():
    """Every site of every operator in the reference: only the statement's own lines change."""
    source = (paths.solutions_dir() / "mlp_backprop.py").read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    src = mutate.Source(source)
    made = 0
    for fn_node in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for target in sorted(_assigned(fn_node)):
            stmts = mutate.statements(src, fn_node.name, target)
            allowed = {i for s in stmts for i in range(s.lineno - 1, s.end_lineno)}
            for operator in mutate.OPERATORS:
                for occurrence in range(len(mutate.sites(src, operator, fn_node.name, target))):
                    mutant = mutate.apply(src, operator, fn_node.name, target, occurrence)
                    ast.parse(mutant)
                    new = mutant.splitlines(keepends=True)
                    head = next(i for i, (a, b) in enumerate(zip(lines + [None], new + [None])) if a != b)
                    tail = next(i for i, (a, b) in enumerate(zip(lines[::-1] + [None], new[::-1] + [None]))
                                if a != b)
                    changed = set(range(head, len(lines) - tail))
                    assert changed <= allowed, (operator, fn_node.name, target, occurrence)
                    made += 1
    assert made > 40


@pytest.mark.parametrize("operator, function, target, message", [
    ("drop-division", "backward", "dz2", "no division among the statements that compute dz2 in backward()"),
    ("drop-copy", "backward", "dz2", "no copy (.copy() or np.copy) among the statements that compute dz2"),
    ("drop-transpose", "backward", "nothing", "no statement in backward() assigns nothing"),
    ("drop-transpose", "forward", "dz2", "there is no function forward()"),
])
def test_a_pattern_that_does_not_fit_says_so(operator, function, target, message):
    source = fn("dz2 = probs - onehot", "return dz2", name="backward")
    with pytest.raises(mutate.NoSiteError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        mutate.apply(source, operator, function, target)


def test_an_occurrence_past_the_last_site_says_how_many():
    with pytest.raises(mutate.NoSiteError, match="only 1 transpose"):
        mutate.apply(fn("a = x.T"), "drop-transpose", "f", "a", occurrence=1)


def test_unknown_operator_and_bad_source_are_mutation_errors():
    with pytest.raises(mutate.MutationError, match="no mutation operator 'nope'"):
        mutate.apply(fn("a = 1"), "nope", "f", "a")
    with pytest.raises(mutate.MutationError, match="is not valid Python"):
        mutate.apply("def f(:\n", "drop-term", "f", "a")
    with pytest.raises(mutate.NoSiteError):
        mutate.apply(fn("a = 1"), "drop-term", "f", "a")
    assert mutate.apply(fn("a = 1 + b"), "drop-term", "f", "a") == fn("a = 1")


# --- property: a user's own formatting never changes what a bug does, and always survives ------

def _code_lines(source: str) -> list[int]:
    """Indexes of the lines where a comment may go at the end: the last line of each simple
    statement (never inside a string, and never after a backslash continuation)."""
    tree = ast.parse(source)
    ends = {n.end_lineno - 1 for n in ast.walk(tree) if isinstance(n, ast.stmt) and not hasattr(n, "body")}
    lines = source.splitlines()
    return sorted(i for i in ends if not lines[i].rstrip().endswith("\\"))


@functools.lru_cache(maxsize=None)
def _reference_and_mutants(exercise: str) -> tuple[str, dict[str, str]]:
    source = stubgen.strip_markers(catalog.exercise(exercise).solution_path.read_text(encoding="utf-8"))
    return source, {bug.id: bug_code.mutant(source, bug) for bug in catalog.bugs(exercise).values()}


@hsettings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_every_bug_goes_into_restyled_code_exactly_as_into_the_reference(data):
    """Comments on any lines and comment lines between statements: every catalogued bug still
    fits, every added comment outside the edit stays, and removing them again gives exactly
    the reference's mutant."""
    exercise = data.draw(st.sampled_from(sorted(catalog.exercises())), label="exercise")
    source, mutants = _reference_and_mutants(exercise)
    lines = source.splitlines(keepends=True)
    ends = _code_lines(source)
    commented = data.draw(st.sets(st.sampled_from(ends), max_size=12), label="commented lines")
    spaced = data.draw(st.sets(st.sampled_from(ends), max_size=6), label="lines followed by a comment line")
    restyled = []
    for i, line in enumerate(lines):
        if i in commented:
            line = line.rstrip("\n") + f"  # mine {i} é\n"
        restyled.append(line)
        if i in spaced:
            indent = line[:len(line) - len(line.lstrip())]
            restyled.append(f"{indent}# my note after line {i}\n\n")
    restyled = "".join(restyled)

    def unstyle(text: str) -> str:
        text = re.sub(r"  # mine \d+ é\n", "\n", text)
        return re.sub(r"[ \t]*# my note after line \d+\n\n", "", text)

    assert unstyle(restyled) == source
    for bug in catalog.bugs(exercise).values():
        got = bug_code.mutant(restyled, bug)
        assert unstyle(got) == mutants[bug.id], bug.id
        # the edit is one span; every comment before or after it is still there
        head = len(os.path.commonprefix([restyled, got]))
        tail = len(os.path.commonprefix([restyled[::-1], got[::-1]]))
        for m in re.finditer(r"# (?:mine|my note after line) \d+", restyled):
            if m.end() <= head or m.start() >= len(restyled) - tail:
                assert m.group() in got, (bug.id, m.group())
