"""Partial attempts: a link still left to do, or one that raises, scores nothing, and the
finished links are judged all the same, whatever the style it is written in; and none of
that machinery can be turned into points by an attempt that plays with it.

Each attempt is the reference mlp_backprop with its backward pass replaced by the text of a
case, so that only what the case is about differs.
"""
import textwrap

import pytest

import verdicts
from grader import catalog
from grader.catalog import stubgen
from grader.judge.grade import grade

EXERCISE = catalog.exercise("mlp_backprop")
LINKS = verdicts.gradient_links(EXERCISE)
BODY = """\
    x, z1, a1 = cache["x"], cache["z1"], cache["a1"]
    N = probs.shape[0]
    dz2 = (probs - np.eye(probs.shape[1])[y]) / N
    dW2 = a1.T @ dz2
    db2 = dz2.sum(axis=0)
    {da1}
    dz1 = da1 * (z1 > 0)
    dW1 = x.T @ dz1
    db1 = dz1.sum(axis=0)
    return {{"dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dz1": dz1, "dW1": dW1, "db1": db1}}
"""
DA1 = 'da1 = dz2 @ params["W2"].T'
TODO = 'raise NotImplementedError("da1: later")'


def attempt(tmp_path, backward: str, name: str = "attempt.py", prelude: str = ""):
    """The reference with `def backward...` (and anything it needs) replaced by backward."""
    source = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    start = source.index("def backward(")
    end = source.index("def sgd_step(")
    path = tmp_path / name
    path.write_text(source[:start] + textwrap.dedent(prelude) + textwrap.dedent(backward) + "\n\n" + source[end:],
                    encoding="utf-8")
    return path


def statuses(report) -> dict:
    return {c.name: c.status for c in report.checks}


def plain(da1: str = DA1) -> str:
    return "def backward(params, cache, probs, y):\n" + BODY.format(da1=da1)


@pytest.mark.parametrize("style, backward, prelude", [
    ("a raise naming the link", plain(TODO), ""),
    ("a closure", "backward = _make(2.0)\n",
     "def _make(two):\n    def backward(params, cache, probs, y):\n"
     + textwrap.indent(BODY.format(da1=TODO), "    ") + "    return backward\n\n\n"),
    ("a decorated function", "@_logged\n" + plain(TODO),  # a decorator that keeps the original, as most do
     "import functools\n\n\ndef _logged(fn):\n    @functools.wraps(fn)\n"
     "    def inner(*args):\n        return fn(*args)\n    return inner\n\n\n"),
])
def test_links_after_a_todo_are_judged_in_every_style(tmp_path, style, backward, prelude):
    report = grade(attempt(tmp_path, backward, prelude=prelude))
    s = statuses(report)
    assert s["da1"] == "open", (style, report.to_json())
    assert all(s[link] == "pass" for link in LINKS if link != "da1"), (style, s)


def test_a_todo_raised_in_a_loop_over_a_ready_array_leaves_that_array_open(tmp_path):
    backward = plain(DA1).replace(
        "    dz1 = da1 * (z1 > 0)\n",
        "    dz1 = da1.copy()\n    for i in range(N):\n        raise NotImplementedError(\"dz1: row by row, later\")\n")
    s = statuses(grade(attempt(tmp_path, backward)))
    assert s["dz1"] == "open" and s["dW1"] == "pass" and s["db1"] == "pass", s


def test_a_call_that_fails_only_the_first_time_is_judged_by_that_failure(tmp_path):
    # run again statement by statement, it would not fail: the first failure stands
    backward = plain(DA1).replace("    N = probs.shape[0]\n",
                                  "    N = probs.shape[0]\n    _calls.append(1)\n"
                                  "    if len(_calls) == 1:\n        raise ValueError(\"first call\")\n")
    report = grade(attempt(tmp_path, backward, prelude="_calls = []\n\n\n"))
    assert not report.passed
    assert "first call" in next(c.message for c in report.checks if c.name == "dz2")


def test_inputs_changed_by_the_first_call_of_a_partial_attempt_fail_purity(tmp_path):
    # pure when run again with the partial machinery in its globals, not the first time
    backward = plain(TODO).replace("    N = probs.shape[0]\n",
                                   "    N = probs.shape[0]\n    if \"__drill_value__\" not in globals():\n"
                                   "        probs *= 1.0001\n")
    s = statuses(grade(attempt(tmp_path, backward)))
    assert s["purity"] == "fail" and s["dz1"] == "pass", s


def test_what_a_partial_attempt_is_sent_in_place_of_its_blank_links_is_worth_nothing(tmp_path, monkeypatch):
    # It raises in every link, keeps what it is sent in their place (keyed by the inputs) in a
    # folder that outlives the grade, and returns that the next time: the stand-ins are new
    # random values each grade, never the expected ones. At the level "process": behind the
    # kernel's walls (uid, namespaces) no folder of the attempt's outlives the grade, so the
    # attack could not even keep its store; the stand-ins must be worthless without that help.
    monkeypatch.setenv("DRILL_ISOLATION", "process")
    store = tmp_path / "store"
    prelude = f'''
        import hashlib, os
        STORE = {str(store)!r}


        def _look(key, link):
            path = os.path.join(STORE, key + link + ".npy")
            if os.path.exists(path):
                return np.load(path)
            raise RuntimeError("no idea")


        '''
    backward = '''
        def backward(params, cache, probs, y):
            key = hashlib.sha1(np.ascontiguousarray(probs).tobytes()).hexdigest()
            dz2 = _look(key, "dz2")
            dW2 = _look(key, "dW2")
            db2 = _look(key, "db2")
            da1 = _look(key, "da1")
            dz1 = _look(key, "dz1")
            dW1 = _look(key, "dW1")
            db1 = _look(key, "db1")
            grads = {"dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dz1": dz1, "dW1": dW1, "db1": db1}
            os.makedirs(STORE, exist_ok=True)
            for link, value in grads.items():
                np.save(os.path.join(STORE, key + link + ".npy"), value)
            grads["extra"] = dz2 * 1.0  # computed from a blank link: asks for the second run
            return grads
        '''
    path = attempt(tmp_path, backward, prelude=prelude)
    first, second = grade(path), grade(path)
    assert any(store.iterdir()), "the attempt kept nothing: the case does not test what it says"
    for report in (first, second):
        assert all(statuses(report)[link] != "pass" for link in LINKS), report.to_json()
    assert second.score == first.score


def test_rebinding_the_partial_machinery_from_inside_the_attempt_is_cheating(tmp_path):
    # during the rerun the machinery's helpers sit in the attempt's globals, and through them
    # partial.py's own names: changing one is tampering with the grader, like the worker's
    backward = plain(TODO).replace("    N = probs.shape[0]\n", '''    N = probs.shape[0]
    helper = globals().get("__drill_blank_for__")
    if helper is not None:
        helper.__globals__["Blank"] = dict
''')
    report = grade(attempt(tmp_path, backward))
    assert report.error and report.error["kind"] == "cheating", report.to_json()
    assert report.score == 0


def test_zeros_in_place_of_every_gradient_earn_nothing(tmp_path):
    # given an all-zero upstream, almost any formula gives zero: links judged on it earn nothing
    backward = '''
        def backward(params, cache, probs, y):
            shapes = {"dz2": probs.shape, "dW2": params["W2"].shape, "db2": params["b2"].shape,
                      "da1": cache["a1"].shape, "dz1": cache["z1"].shape, "dW1": params["W1"].shape,
                      "db1": params["b1"].shape}
            return {link: np.zeros(shape) for link, shape in shapes.items()}
        '''
    report = grade(attempt(tmp_path, backward))
    s = statuses(report)
    assert s["dz2"] == "fail" and all(s[link] != "pass" for link in LINKS), s
    assert "all zeros" in next(c.message for c in report.checks if c.name == "dW2")
    assert report.score == sum(c.max_points for c in report.checks
                               if c.name in ("forward", "loss", "step", "purity", "stability"))


@pytest.mark.parametrize("loss, passes", [(".mean()", True), (".sum()", False)])
def test_a_loss_written_after_a_softmax_left_to_do_is_judged(tmp_path, loss, passes):
    ex = catalog.exercise("softmax_ce")
    stub = stubgen.stub_for(ex)
    written = stub.replace('loss = todo("loss", "a float")', f"loss = -np.log(probs[np.arange(len(y)), y]){loss}")
    assert written != stub
    path = tmp_path / "attempt.py"
    path.write_text(written, encoding="utf-8")
    s = statuses(grade(path, "softmax_ce"))
    assert s["softmax"] == "open" and s["loss"] == ("pass" if passes else "fail"), s


def test_a_loss_left_to_do_leaves_stability_open_not_wrong(tmp_path):
    ex = catalog.exercise("softmax_ce")
    solution = stubgen.strip_markers(ex.solution_path.read_text(encoding="utf-8"))
    start = solution.index("def softmax_cross_entropy(")
    end = solution.index("def grad_logits(")
    body = ("def softmax_cross_entropy(z, y):\n    probs = softmax(z)\n"
            "    loss = _later()\n    return float(loss), probs\n\n\n"
            "def _later():\n    raise NotImplementedError(\"loss: later\")\n\n\n")
    path = tmp_path / "attempt.py"
    path.write_text(solution[:start] + body + solution[end:], encoding="utf-8")
    s = statuses(grade(path, "softmax_ce"))
    assert s["softmax"] == "pass" and s["loss"] == "open" and s["stability"] == "open", s


UNUSED_DZ2 = BODY.format(da1=DA1).replace(
    "    dz2 = (probs - np.eye(probs.shape[1])[y]) / N\n",
    "    dz2 = _later()\n    delta = (probs - np.eye(probs.shape[1])[y]) / N\n").replace(
    "a1.T @ dz2", "a1.T @ delta").replace("dz2.sum(", "delta.sum(").replace(
    "    {da1}\n".format(da1=DA1), "    da1 = delta @ params[\"W2\"].T\n")
LATER = "def _later():\n    raise NotImplementedError(\"dz2: later\")\n\n\n"


@pytest.mark.parametrize("returned", ['{"dz2": dz2, ', "{"])
def test_a_blank_nothing_uses_leaves_the_checks_whose_functions_run_judged(tmp_path, returned):
    # dW2, db2 and da1 from its own delta: the dz2 left to do is never used, with or without a key
    backward = "def backward(params, cache, probs, y):\n" + UNUSED_DZ2.replace('{"dz2": dz2, ', returned)
    assert "delta @" in backward
    report = grade(attempt(tmp_path, backward, prelude=LATER))
    s = statuses(report)
    assert s["dz2"] == ("open" if "dz2" in returned else "fail"), report.to_json()  # without its key: missing
    assert all(s[c] == "pass" for c in s if c != "dz2"), s
    assert report.score == 100 - next(c.max_points for c in report.checks if c.name == "dz2")


def test_a_blank_that_is_used_keeps_finite_differences_and_training_open(tmp_path):
    # dW1 from the dz1 left to do: the gradients those checks need are not written
    backward = plain(DA1).replace("    dz1 = da1 * (z1 > 0)\n", "    dz1 = _later()\n")
    s = statuses(grade(attempt(tmp_path, backward, prelude=LATER.replace("dz2", "dz1"))))
    assert s["dz1"] == "open" and s["finite-difference"] == "open" and s["convergence"] == "open", s


def test_a_blank_nothing_uses_next_to_a_statement_that_raises_gains_nothing(tmp_path):
    # the partial run would swallow the ValueError as well: the checks keep the first failure
    backward = ("def backward(params, cache, probs, y):\n"
                + UNUSED_DZ2.replace("    dW2 = a1.T @ delta\n",
                                     "    dW2 = a1.T @ delta\n    _unused = a1 @ delta\n"))
    s = statuses(grade(attempt(tmp_path, backward, prelude=LATER)))
    assert s["finite-difference"] == "open" and s["convergence"] == "open", s
