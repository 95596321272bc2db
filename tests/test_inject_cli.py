"""`drill inject-bug`, `reveal`, `bugs`, `explain`; and every catalogued bug's mutant, run with numpy."""
import ast
import difflib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import verdicts
from grader import catalog
from grader.catalog import mutants as bug_code
from grader.catalog import stubgen
from grader.cli import main

EXERCISE = catalog.exercise("mlp_backprop")
BUGS = catalog.bugs("mlp_backprop")
REFERENCE = EXERCISE.solution_path.read_text(encoding="utf-8")

# What each bug of the catalogue does to the reference, written by hand: the one line of
# the reference it changes, and that line afterwards (None: the line is gone).
BUG_EDITS = {
    "missing-relu": ("a1 = np.maximum(z1, 0.0)", "a1 = z1"),
    "missing-bias": ("z1 = x @ W1 + b1", "z1 = x @ W1"),
    "unstable-softmax": ("shifted = z2 - z2.max(axis=1, keepdims=True)", "shifted = z2"),
    "softmax-wrong-axis": ("probs = exp / exp.sum(axis=1, keepdims=True)", "probs = exp / exp.sum(axis=0, keepdims=True)"),
    "loss-sum": ("loss = -np.log(probs[np.arange(N), y]).mean()", "loss = -np.log(probs[np.arange(N), y]).sum()"),
    "missing-n": ("dz2 /= N", None),
    "onehot-off-by-one": ("dz2[np.arange(N), y] -= 1.0", "dz2[np.arange(N), y - 1] -= 1.0"),
    "onehot-sign": ("dz2[np.arange(N), y] -= 1.0", "dz2[np.arange(N), y] += 1.0"),
    "inplace-probs": ("dz2 = probs.copy()", "dz2 = probs"),
    "bad-transpose": ("dW2 = a1.T @ dz2", "dW2 = dz2.T @ a1"),
    "db2-wrong-axis": ("db2 = dz2.sum(axis=0)", "db2 = dz2.sum(axis=1)"),
    "da1-missing-transpose": ("da1 = dz2 @ W2.T", "da1 = dz2 @ W2"),
    "relu-ge": ("dz1 = da1 * (z1 > 0)", "dz1 = da1 * (z1 >= 0)"),
    "relu-mask-flipped": ("dz1 = da1 * (z1 > 0)", "dz1 = da1 * (z1 < 0)"),
    "dw1-transposed": ("dW1 = x.T @ dz1", "dW1 = dz1.T @ x"),
    "db1-mean": ("db1 = dz1.sum(axis=0)", "db1 = dz1.mean(axis=0)"),
    "step-ascent": ('new_params = {k: params[k] - lr * grads["d" + k] for k in params}',
                    'new_params = {k: params[k] + lr * grads["d" + k] for k in params}'),
    "step-no-lr": ('new_params = {k: params[k] - lr * grads["d" + k] for k in params}',
                   'new_params = {k: params[k] - grads["d" + k] for k in params}'),
    "softmax-global-max": ("shifted = z2 - z2.max(axis=1, keepdims=True)", "shifted = z2 - z2.max(keepdims=True)"),
    "loss-mean-over-classes": ("loss = -np.log(probs[np.arange(N), y]).mean()",
                               "loss = -(np.log(probs[np.arange(N), y]).mean() / z2.shape[1])"),
    "dw2-missing-transpose": ("dW2 = a1.T @ dz2", "dW2 = a1 @ dz2"),
    "dw2-from-z1": ("dW2 = a1.T @ dz2", "dW2 = z1.T @ dz2"),
    "db2-no-axis": ("db2 = dz2.sum(axis=0)", "db2 = dz2.sum()"),
    "db2-mean": ("db2 = dz2.sum(axis=0)", "db2 = dz2.mean(axis=0)"),
    "relu-mask-missing": ("dz1 = da1 * (z1 > 0)", "dz1 = da1"),
    "inplace-relu-mask": ("dz1 = da1 * (z1 > 0)", "dz1 = da1; dz1 *= (z1 > 0)"),
    "dw1-from-da1": ("dW1 = x.T @ dz1", "dW1 = x.T @ da1"),
    "db1-no-axis": ("db1 = dz1.sum(axis=0)", "db1 = dz1.sum()"),
}


def expected_mutant(bug_id: str) -> str:
    """The reference, without its markers, with the bug's edit of BUG_EDITS made by hand."""
    old, new = BUG_EDITS[bug_id]
    lines = [line for line, _ in verdicts.unmarked(REFERENCE)]
    (at,) = [i for i, line in enumerate(lines) if line.strip() == old]
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines[at:at + 1] = [] if new is None else [indent + new]
    return "\n".join(lines) + "\n"


def drill(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def state(folder):
    return json.loads((folder / ".drill" / "state.json").read_text(encoding="utf-8"))


# --- inject-bug ------------------------------------------------------------------------

def test_inject_a_named_bug(here):
    result = drill("inject-bug", "--bug", "missing-n")
    assert result.exit_code == 0, result.output
    written = here / "mlp_backprop_bug.py"
    assert written.read_text(encoding="utf-8") == expected_mutant("missing-n")
    assert "missing-n" in result.output and "drill grade mlp_backprop_bug.py" in result.output
    assert state(here)["injected"]["mlp_backprop_bug.py"]["bug"] == "missing-n"


def test_a_random_bug_is_hidden_until_revealed(here):
    result = drill("inject-bug", "--seed", "7", "--out", "sub/drill.py")
    assert result.exit_code == 0, result.output
    text = (here / "sub" / "drill.py").read_text(encoding="utf-8")
    recorded = state(here / "sub")["injected"]["drill.py"]
    bug = BUGS[recorded["bug"]]
    for secret in (bug.id, bug.title):
        assert secret not in result.output and secret not in text
    assert text == expected_mutant(bug.id)
    assert bug.severity == "error"  # a random pick is never a mere note

    revealed = drill("reveal", "sub/drill.py")
    assert revealed.exit_code == 0, revealed.output
    assert bug.id in revealed.output and bug.title in revealed.output


def test_reveal_defaults_to_the_latest_injected_file(here):
    assert drill("inject-bug", "--bug", "relu-ge", "--out", "one.py").exit_code == 0
    assert drill("inject-bug", "--bug", "db1-mean", "--out", "two.py").exit_code == 0
    result = drill("reveal")
    assert result.exit_code == 0, result.output
    assert "two.py has the bug db1-mean" in result.output


def test_the_seed_repeats_the_choice(here):
    picks = set()
    for name in ("a.py", "b.py"):
        assert drill("inject-bug", "--seed", "3", "--out", name).exit_code == 0
        picks.add(state(here)["injected"][name]["bug"])
    assert len(picks) == 1


def test_reveal_without_a_record_says_so(here):
    result = drill("reveal")
    assert result.exit_code == 2  # as every workspace command outside a workspace
    assert "no workspace here" in result.output
    (here / "x.py").write_text("x = 1\n", encoding="utf-8")
    (here / ".drill").mkdir()
    result = drill("reveal", "x.py")
    assert result.exit_code == 1 and "no bug was injected into" in result.output
    assert "Traceback" not in result.output


USER_ATTEMPT = '''import numpy as np


def forward(params, x):
    z1 = x.dot(params["W1"]) + params["b1"]
    a1 = z1 * (z1 > 0)
    return a1.dot(params["W2"]) + params["b2"], {"x": x, "z1": z1, "a1": a1}


def softmax_cross_entropy(z2, y):
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return float(-np.log(probs[np.arange(len(y)), y]).mean()), probs


def backward(params, cache, probs, y):
    N, C = probs.shape
    dz2 = (probs - np.eye(C)[y]) / N   # my way: subtract the one-hot rows
    dW2 = cache["a1"].T @ dz2
    db2 = dz2.sum(axis=0)
    dz1 = (dz2 @ params["W2"].T) * (cache["z1"] > 0)
    grads = {"dz2": dz2, "dW2": dW2, "db2": db2, "da1": dz2 @ params["W2"].T, "dz1": dz1}
    grads.update(dW1=cache["x"].T @ dz1, db1=dz1.sum(axis=0))
    return grads


def sgd_step(params, grads, lr):
    return {k: params[k] - lr * grads["d" + k] for k in params}
'''


def test_inject_into_your_own_attempt_when_the_pattern_fits(here):
    (here / "mine.py").write_text(USER_ATTEMPT, encoding="utf-8")
    result = drill("inject-bug", "--from", "mine.py", "--bug", "missing-n", "--out", "bugged.py")
    assert result.exit_code == 0, result.output
    expected = USER_ATTEMPT.replace("dz2 = (probs - np.eye(C)[y]) / N ", "dz2 = (probs - np.eye(C)[y]) ")
    assert (here / "bugged.py").read_text(encoding="utf-8") == expected
    assert (here / "mine.py").read_text(encoding="utf-8") == USER_ATTEMPT

    result = drill("inject-bug", "--from", "mine.py", "--seed", "1", "--out", "random.py")
    assert result.exit_code == 0, result.output
    chosen = state(here)["injected"]["random.py"]["bug"]
    assert chosen in {b.id for b in bug_code.fitting_bugs(USER_ATTEMPT, "mlp_backprop")}
    assert (here / "random.py").read_text(encoding="utf-8") != USER_ATTEMPT


def test_a_bug_that_does_not_fit_your_attempt_is_refused(here):
    (here / "mine.py").write_text(USER_ATTEMPT, encoding="utf-8")
    result = drill("inject-bug", "--from", "mine.py", "--bug", "inplace-probs")
    assert result.exit_code == 1
    assert "inplace-probs does not fit" in result.output
    assert "no copy (.copy() or np.copy) among the statements that compute dz2 in backward()" in result.output
    assert not (here / "mlp_backprop_bug.py").exists()


@pytest.mark.parametrize("content, message", [
    ("def backward(:\n", "is not valid Python"),
    ("x = 1\n", "none of the catalogued bugs of mlp_backprop fits this code"),
])
def test_an_attempt_that_is_broken_or_foreign_is_refused(here, content, message):
    (here / "mine.py").write_text(content, encoding="utf-8")
    result = drill("inject-bug", "--from", "mine.py")
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"


@pytest.mark.parametrize("style", ["correct_einsum.py", "correct_functional.py", "correct_loops.py"])
def test_inject_into_a_passing_attempt_of_any_style(here, style):
    source = (FIXTURES / style).read_text(encoding="utf-8")
    (here / "mine.py").write_text(source, encoding="utf-8")
    result = drill("inject-bug", "--from", "mine.py", "--seed", "0", "--out", "bugged.py")
    assert result.exit_code == 0, result.output
    assert (here / "bugged.py").read_text(encoding="utf-8") != source


def test_an_unfinished_attempt_is_refused(here):
    assert drill("start", "--links", "db1").exit_code == 0  # every link filled in but db1, a todo()
    result = drill("inject-bug", "--from", "mlp_backprop.py", "--bug", "missing-n")
    assert result.exit_code == 1, result.output
    assert "mlp_backprop.py does not pass yet" in result.output and "db1" in result.output
    assert not (here / "mlp_backprop_bug.py").exists() and "Traceback" not in result.output


def test_a_finished_attempt_that_fails_a_check_is_refused_naming_the_check(here):
    (here / "mine.py").write_text(USER_ATTEMPT.replace("db1=dz1.sum(axis=0)", "db1=dz1.mean(axis=0)"),
                                  encoding="utf-8")
    result = drill("inject-bug", "--from", "mine.py", "--bug", "missing-n")
    assert result.exit_code == 1, result.output
    assert "the check db1 fails" in result.output and not (here / "mlp_backprop_bug.py").exists()


@pytest.mark.parametrize("args", [("inject-bug", "--from", "nonexist.py"), ("reveal", "nonexist.py")])
def test_a_file_that_does_not_exist_is_a_usage_error(here, args):
    result = drill(*args)
    assert result.exit_code == 2, result.output
    assert "no such file" in result.output and "nonexist.py" in result.output


def test_a_note_named_with_bug_warns_that_grade_passes_it(here):
    result = drill("inject-bug", "--bug", "relu-ge")
    assert result.exit_code == 0, result.output
    assert "relu-ge is a note" in result.stderr and "`drill grade` passes" in result.stderr
    assert not drill("inject-bug", "--bug", "missing-n", "--out", "other.py").stderr


def test_after_reveal_grade_names_the_bug(here):
    assert drill("inject-bug", "--seed", "7").exit_code == 0
    bug = state(here)["injected"]["mlp_backprop_bug.py"]["bug"]
    before = drill("grade", "mlp_backprop_bug.py")
    assert before.exit_code == 1 and "`drill reveal` tells which it is" in before.output
    assert f"[{bug}]" not in before.output
    assert bug in drill("reveal").output
    after = drill("grade", "mlp_backprop_bug.py")
    assert after.exit_code == 1 and "drill reveal" not in after.output
    assert f"[{bug}]" in after.output
    spot = json.loads(drill("stats", "--json").stdout)["spot_the_bug"]
    assert spot["bugs"][bug]["tries"] == 1 and spot["bugs"][bug]["fixed"] == 0  # given up


def test_never_overwrites_without_force(here):
    target = here / "mlp_backprop_bug.py"
    target.write_text("my notes\n", encoding="utf-8")
    result = drill("inject-bug", "--bug", "missing-n")
    assert result.exit_code == 1 and "--force" in result.output
    assert target.read_text(encoding="utf-8") == "my notes\n"


def test_force_keeps_a_backup(here):
    target = here / "mlp_backprop_bug.py"
    target.write_text("my notes\n", encoding="utf-8")
    result = drill("inject-bug", "--bug", "missing-n", "--force")
    assert result.exit_code == 0, result.output
    (backup,) = (here / ".drill" / "backups").iterdir()
    assert backup.read_text(encoding="utf-8") == "my notes\n"
    assert str(backup.name) in result.output
    assert target.read_text(encoding="utf-8") == expected_mutant("missing-n")


@pytest.mark.parametrize("args, names", [
    (("inject-bug", "--bug", "nope"), "`drill bugs mlp_backprop` lists them all"),
    (("inject-bug", "--bug", "missing_n"), "did you mean missing-n or"),
    (("inject-bug", "cnn"), "mlp_backprop"),
    (("explain", "nope"), "`drill bugs` lists them all"),
    (("explain", "relu_ge"), "did you mean relu-ge or bn-relu-ge?"),
    (("bugs", "cnn"), "mlp_backprop"),
])
def test_unknown_names_are_usage_errors_saying_what_exists(here, args, names):
    result = drill(*args)
    assert result.exit_code == 2, result.output
    assert names in result.output and "Traceback" not in result.output


# --- bugs, explain, help ---------------------------------------------------------------

def test_bugs_lists_the_catalogue_one_line_each():
    result = drill("bugs", "mlp_backprop")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(BUGS)
    for line, bug in zip(lines, BUGS.values()):
        assert line.split()[:4] == [bug.id, bug.link, bug.severity, bug.caught_by]
        assert line.endswith(bug.title)
    everything = drill("bugs").output.splitlines()
    assert len(everything) == len(catalog.bugs())
    assert {line.split()[0] for line in everything} >= set(BUGS)


def test_explain_tells_what_where_and_how_to_spot_it():
    result = drill("explain", "missing-n")
    assert result.exit_code == 0, result.output
    bug = BUGS["missing-n"]
    flat = " ".join(result.output.split())
    for part in (bug.title, " ".join(bug.explanation.split()), " ".join(bug.hint.split()),
                 "caught by the check dz2", "Link: dz2"):
        assert part in flat


@pytest.mark.parametrize("name", ["inject-bug", "reveal", "bugs", "explain"])
def test_every_command_has_help_with_an_example(name):
    result = drill(name, "--help")
    assert result.exit_code == 0 and "Example" in result.output


# --- every catalogued bug, injected into the reference ----------------------------------

def test_every_bug_has_its_edit_written_down():
    assert sorted(BUG_EDITS) == sorted(BUGS)


@pytest.mark.parametrize("bug_id", list(BUGS))
def test_the_mutant_is_the_bugs_edit_of_the_reference(bug_id):
    assert bug_code.reference_mutant(BUGS[bug_id]) == expected_mutant(bug_id)


@pytest.mark.parametrize("bug_id", list(BUGS))
def test_the_mutant_changes_only_the_bugs_link(bug_id):
    bug = BUGS[bug_id]
    marked = bug_code.mutant(REFERENCE, bug)
    blank = next(m for m in stubgen.find_blanks(REFERENCE) if m.name == bug.link)
    old, new = REFERENCE.splitlines(), marked.splitlines()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            assert blank.start <= i1 and max(i2, i1 + 1) <= blank.end, (bug_id, old[i1:i2])
    assert marked != REFERENCE
    text = bug_code.reference_mutant(bug)
    ast.parse(text)
    assert "# drill" not in text


def load(path, text):
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"mutant_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LINKS = verdicts.gradient_links(EXERCISE)


def copied(d):
    return {k: np.array(v, copy=True) for k, v in d.items()}


def behaviour(module, seed=0):
    """What each check would look at, for the module, on inputs where N, D, H, C all differ."""
    from grader import settings

    rng = np.random.default_rng(seed)
    N, D, H, C = 11, 3, 5, 4
    params = {"W1": rng.normal(size=(D, H)), "b1": rng.normal(size=H),
              "W2": rng.normal(size=(H, C)), "b2": rng.normal(size=C)}
    x, y = rng.normal(size=(N, D)), rng.permutation(np.arange(N) % C)
    z1 = x @ params["W1"] + params["b1"]
    cache = {"x": x, "z1": z1, "a1": np.maximum(z1, 0.0)}
    z2 = cache["a1"] @ params["W2"] + params["b2"]
    probs = np.exp(z2 - z2.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    zeroed = copied(cache)
    zeroed["z1"][::2, ::2] = 0.0
    grads = {"d" + k: rng.normal(size=v.shape) for k, v in params.items()}
    seen = {}

    def run(name, call):
        try:
            with np.errstate(all="ignore"):
                seen[name] = call()
        except Exception as exc:  # a crash is a behaviour too
            seen[name] = type(exc).__name__

    run("forward", lambda: module.forward(copied(params), x.copy()))
    run("loss", lambda: module.softmax_cross_entropy(z2.copy(), y))
    run("backward", lambda: module.backward(copied(params), copied(cache), probs.copy(), y))
    for link in LINKS:
        seen[link] = seen["backward"][link] if isinstance(seen["backward"], dict) else seen["backward"]
    run("dz1-zeros", lambda: module.backward(copied(params), zeroed, probs.copy(), y)["dz1"])
    run("step", lambda: module.sgd_step(copied(params), copied(grads), 0.1))

    def purity():
        p, c, w, xs, zs = probs.copy(), copied(cache), copied(params), x.copy(), z2.copy()
        module.backward(w, c, p, y)
        module.forward(w, xs)
        module.softmax_cross_entropy(zs, y)
        return p, c, w, xs, zs

    run("purity", purity)
    run("stability", lambda: (module.softmax_cross_entropy(z2 + settings.STABILITY_SHIFT, y),
                              module.softmax_cross_entropy(rows_apart(z2), y)))
    return seen


def rows_apart(z):
    """Every other row STABILITY_ROWS_APART above the rows between (the stability check's case)."""
    out = z.copy()
    from grader import settings

    out[1::2] += settings.STABILITY_ROWS_APART
    return out


def same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a) == np.isfinite(b))) and bool(
        np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=False))


@pytest.fixture(scope="module")
def reference_behaviour(tmp_path_factory):
    return behaviour(load(tmp_path_factory.mktemp("ref") / "reference.py", stubgen.strip_markers(REFERENCE)))


@pytest.mark.parametrize("bug_id", list(BUGS))
def test_the_mutant_behaves_differently_where_its_check_looks(bug_id, tmp_path, reference_behaviour):
    bug = BUGS[bug_id]
    seen = behaviour(load(tmp_path / f"{bug_id.replace('-', '_')}.py", bug_code.reference_mutant(bug)))
    differs = {k for k in seen if not same(reference_behaviour[k], seen[k])}
    if bug.severity == "note":  # differs only at exact zeros, where the check probes
        assert differs == {"dz1-zeros"}, differs
        return
    assert bug.caught_by in differs, (differs, seen.get(bug.caught_by))
    # no check earlier in the report order sees it (a crash in backward spoils every link)
    order = [c.name for c in EXERCISE.checks]
    earlier = set(order[:order.index(bug.caught_by)]) & set(seen)
    if isinstance(seen["backward"], str):
        earlier -= set(LINKS)
    assert not differs & earlier, differs
