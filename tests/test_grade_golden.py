"""Golden reports for the mlp_backprop fixture attempts, and the verdicts they must have.

Every fixture is held by two independent assertions:

- VERDICTS below, written by hand: the checks it must fail, the bugs the diagnosis must
  name and its error kind. It is the real test. It is never regenerated; a change of
  behaviour changes it by hand, in the commit that makes the change.
- tests/golden/mlp_backprop/NAME.json: what a user reads of its report, pinned where it is
  stable on every machine: check names, verdicts, statuses, points, the score, bug ids,
  severities, the error kind, and the wording of every message.

What a golden pins, and how (see `pinned` and `assert_matches`):

- Text exactly, but numbers inside it as numbers: integers (sizes, counts, lines, shapes)
  exactly; decimals within one unit of the last digit printed (a value on a rounding
  boundary prints either way); decimals below NOISE only as being below it (the
  finite-difference error of a right attempt is float rounding: 4.4e-09 on one CPU, 7.0e-09
  on another).
- Other floats within FLOAT_RTOL: numpy picks its SIMD kernels by CPU, so the final loss of
  a training run that converges differs in its last digits from machine to machine.
- Nothing of a training run that fails the convergence check after it got going: such a
  run diverges or follows a wrong gradient, and is chaotic (a wrong dW1 ends at accuracy
  0.59 on one CPU and 0.74 on another). Its `convergence` numbers are not kept, and its
  message is kept with NUMBER_MASK in place of each number: the wording is pinned, the
  values are not. (A run that stops at iteration 0, on a crash or a blank, is not chaotic.)

When a golden may be regenerated: only after a deliberate change of what users read (the
wording of a message, the rubric's points, the probe sizes that messages name), with

    DRILL_UPDATE_GOLDEN=1 python -m pytest tests/test_grade_golden.py

then reading the diff of tests/golden/ line by line and committing it with the change that
caused it. Never to make a red test green: a golden that differs for any other reason has
found a change in behaviour, or a number that should not be pinned (fix `pinned` then, not
the golden). Only a golden that no longer matches is rewritten, and only for a report
whose verdict agrees with VERDICTS.

CI keeps the goldens free of pinned floats: `.ci/run` runs this file a second time with
NPY_DISABLE_CPU_FEATURES set, so that numpy takes other kernels and a float pinned to its
last digit fails there.
"""
import json
import math
import os
import re
from pathlib import Path

import pytest

import verdicts
from grader import catalog
from grader.catalog import stubgen

EXERCISE = catalog.exercise("mlp_backprop")
FIXTURES = verdicts.FIXTURES / EXERCISE.id
GOLDEN = Path(__file__).parent / "golden" / "mlp_backprop"
ALL_LINKS = verdicts.gradient_links(EXERCISE)
EVERY_CHECK = [c.name for c in EXERCISE.checks]
POINTS = {c.name: c.points for c in EXERCISE.checks}

# A number inside text: not part of a name (dz2, W2T) nor of another number.
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
NUMBER_MASK = "#"  # a number of a chaotic run, in a golden message
NOT_PINNED = "not pinned: the convergence check failed"
NOISE = 1e-6  # decimals this small in a message are float rounding (checks judge at FD_TOL = 1e-4 and above)
FLOAT_RTOL = 1e-6

# fixture -> (the checks it must fail, the bugs the diagnosis names, the error kind or None);
# "stub" is the shipped stub
VERDICTS = {
    "correct_reference.py": ([], [], None),
    "correct_einsum.py": ([], [], None),
    "correct_loops.py": ([], [], None),
    "correct_functional.py": ([], [], None),
    "relu_ge.py": ([], ["relu-ge"], None),
    "relu_ge_cached_mask.py": ([], ["relu-ge"], None),
    "wrong_missing_n.py": (["dz2", "finite-difference", "convergence"], ["missing-n"], None),
    "wrong_onehot.py": (["dz2", "finite-difference", "convergence"], ["onehot-off-by-one"], None),
    "wrong_dW2_transpose.py": (["dW2", "finite-difference", "convergence"], ["bad-transpose"], None),
    "wrong_db2_axis.py": (["db2", "finite-difference", "convergence"], ["db2-wrong-axis"], None),
    "wrong_da1_no_transpose.py": (["da1", "dz1", "finite-difference", "convergence"], [], None),
    "crash_da1_shape.py": (["da1", "finite-difference", "convergence"], ["da1-missing-transpose"], None),
    "wrong_dz1_mask.py": (["dz1", "finite-difference", "convergence"], ["relu-mask-flipped"], None),
    "wrong_dW1_missing_x.py": (["dW1", "finite-difference", "convergence"], ["dw1-from-da1"], None),
    "wrong_db1_mean.py": (["db1", "finite-difference"], ["db1-mean"], None),
    "wrong_step_sign.py": (["step", "convergence"], ["step-ascent"], None),
    "wrong_forward_bias.py": (["forward", "finite-difference"], ["missing-bias"], None),
    "wrong_loss_sum.py": (["loss", "finite-difference"], ["loss-sum"], None),
    "inplace_probs.py": (["purity"], ["inplace-probs"], None),
    "unstable_softmax.py": (["stability"], ["unstable-softmax"], None),
    "unstable_mean_shift.py": (["stability"], [], None),
    "wrong_step_by_position.py": (["step", "convergence"], [], None),
    "impure_params_key.py": (["purity", "convergence"], [], None),
    "partial_links.py": (["db2", "dz1", "finite-difference", "convergence"], [], None),
    "partial_then_wrong.py": (["db2", "dz1", "dW1", "finite-difference", "convergence"], [], None),
    "partial_grads_dict.py": (["dz1", "finite-difference", "convergence"], [], None),
    "partial_blocks.py": (["db2", "dz1", "finite-difference", "convergence"], [], None),
    "partial_unused_blank.py": (["dz2"], [], None),
    "partial_return_literal.py": (["dW1", "finite-difference", "convergence"], [], None),
    "partial_no_backward.py": ([*ALL_LINKS, "finite-difference", "convergence", "purity"], [], None),
    "stub": (EVERY_CHECK, [], None),
    "broken_syntax.py": (EVERY_CHECK, [], "syntax"),
    "broken_empty.py": (EVERY_CHECK, [], "missing-function"),
    "broken_missing_function.py": ([c for c in EVERY_CHECK if c != "forward"], [], "missing-function"),
}


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    return verdicts.grade_fixtures(EXERCISE, sorted(VERDICTS), tmp_path_factory.mktemp(EXERCISE.id))


def test_every_fixture_has_a_verdict():
    assert verdicts.fixture_names(EXERCISE) == sorted(n for n in VERDICTS if n.endswith(".py"))


def test_every_fixture_has_a_golden_and_every_golden_a_fixture():
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(Path(n).stem for n in VERDICTS)


def test_the_reference_fixture_is_the_shipped_solution():
    # other tests use it as a real file; it must never drift from the solution it copies
    solution = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    assert (FIXTURES / "correct_reference.py").read_text(encoding="utf-8") == solution


def assert_verdict(name: str, report) -> None:
    failing, bugs, error_kind = VERDICTS[name]
    got = [c.name for c in report.checks if not c.passed]
    assert [c.name for c in report.checks] == EVERY_CHECK
    assert got == [c for c in EVERY_CHECK if c in failing], report.to_json()
    assert [d.bug for d in report.diagnosis if d.bug] == bugs, report.to_json()
    assert (report.error or {}).get("kind") == error_kind
    assert report.passed == (not failing and error_kind is None)
    assert report.score == 100 - sum(POINTS[c] for c in failing)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(reports, name):
    assert_verdict(name, reports[name])


# ---------------------------------------------------------------- the goldens

def pinned(report) -> dict:
    """The report as its golden holds it: without what differs from run to run (the file's
    path, times) and without the values of a chaotic training run."""
    data = report.to_dict()
    data.pop("file")
    data.pop("elapsed_seconds")
    data.pop("isolation")  # the machine's, not the attempt's: namespaces, uid or process
    if data.get("convergence"):
        data["convergence"].pop("seconds", None)
    trained = next(c for c in data["checks"] if c["name"] == "convergence")
    if not trained["passed"] and report.convergence.get("iterations"):  # trained, and failed
        trained["message"] = NUMBER.sub(NUMBER_MASK, trained["message"])
        data["convergence"] = NOT_PINNED
    return data


def _unit(token: str) -> float:
    """One unit of the last digit a printed decimal shows: 0.01 for '0.71', 1e-10 for '4.4e-09'."""
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(got: str, want: str) -> bool:
    decimals = [t for t in (got, want) if any(c in t for c in ".e")]
    if not decimals:
        return int(got) == int(want)
    g, w = float(got), float(want)
    if abs(g) < NOISE and abs(w) < NOISE:
        return True
    # printed on either side of a rounding boundary: one unit of the finer print apart
    return abs(g - w) <= min(map(_unit, decimals)) * (1 + 1e-9)


def assert_matches(got, want, where: str = "report") -> None:
    """got agrees with the golden want: structure and text exactly, numbers as the module says."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {got} != {want}"
        for key in want:
            assert_matches(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_matches(g, w, f"{where}[{i}]")
    elif isinstance(want, str):
        assert isinstance(got, str), f"{where}: {got!r} != {want!r}"
        assert NUMBER.sub("#", got) == NUMBER.sub("#", want), f"{where}: {got!r} != {want!r}"
        pairs = zip(NUMBER.findall(got), NUMBER.findall(want))
        assert all(numbers_agree(g, w) for g, w in pairs), f"{where}: the numbers of {got!r} != {want!r}"
    elif isinstance(want, float) or (isinstance(got, float) and not isinstance(want, bool)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r} != {want!r}"
        assert math.isclose(got, want, rel_tol=FLOAT_RTOL), f"{where}: {got!r} != {want!r}"
    else:  # bool, int, None
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


def matches(data: dict, path: Path) -> bool:
    """A golden that still matches is left as it is: regenerating rewrites only what changed."""
    try:
        assert_matches(data, json.loads(path.read_text(encoding="utf-8")))
    except (AssertionError, OSError):
        return False
    return True


def rounded(data):
    """data with every float to 10 significant digits: a golden regenerated on another CPU
    then differs only where something a user reads has changed."""
    if isinstance(data, dict):
        return {k: rounded(v) for k, v in data.items()}
    if isinstance(data, list):
        return [rounded(v) for v in data]
    return float(f"{data:.10g}") if isinstance(data, float) else data


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_golden_report(reports, name):
    path = GOLDEN / (Path(name).stem + ".json")
    data = pinned(reports[name])
    if os.environ.get("DRILL_UPDATE_GOLDEN") and not matches(data, path):
        assert_verdict(name, reports[name])  # never a golden of a report that contradicts VERDICTS
        path.write_text(json.dumps(rounded(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert path.exists(), f"no golden report {path}; see this module's docstring"
    assert_matches(data, json.loads(path.read_text(encoding="utf-8")))


# The comparison itself: what it must accept (the same report on another CPU) and refuse.
SAME_ON_ANOTHER_CPU = [
    ("worst relative error 7.0e-09", "worst relative error 4.4e-09"),
    ("the loss went from 0.6024 to 0.0386", "the loss went from 0.6024 to 0.0385"),
    ("the largest difference is 0.7 at [2, 1]", "the largest difference is 0.71 at [2, 1]"),  # 0.70 and 0.71
    (0.038528482636964505, 0.03852848263696452),
]
DIFFERENT = [
    ("dz2 is 16 times the expected value (with N=16)", "dz2 is 15 times the expected value (with N=16)"),
    ("worst relative error 0.73", "worst relative error 0.71"),
    ("worst relative error 0.5", "worst relative error 1"),
    ("worst relative error 2e-06", "worst relative error 4.4e-09"),
    ("dz2 is 16 times the expected value", "dz2 is 16 times the expected values"),
    ("has shape (8, 2)", "has shape (2, 8)"),
    ("dW2 is wrong", "dW1 is wrong"),
    (0.0386, 0.0385),
    (1, True),
    ({"a": 1}, {"a": 1, "b": 2}),
]


@pytest.mark.parametrize("got, want", SAME_ON_ANOTHER_CPU)
def test_what_differs_between_cpus_matches_its_golden(got, want):
    assert_matches(got, want)


@pytest.mark.parametrize("got, want", DIFFERENT)
def test_a_change_users_would_see_does_not_match(got, want):
    with pytest.raises(AssertionError):
        assert_matches(got, want)


def test_a_chaotic_run_keeps_its_wording_without_its_numbers(reports):
    data = pinned(reports["wrong_dW1_missing_x.py"])
    message = next(c["message"] for c in data["checks"] if c["name"] == "convergence")
    assert message == "after # iterations the loss went from # to #; accuracy #, below the # needed"
    assert data["convergence"] == NOT_PINNED
    # a run that converges keeps its numbers, compared with the tolerances above
    assert pinned(reports["correct_reference.py"])["convergence"]["iterations"] == EXERCISE.train.iters


def test_messages_say_where_without_the_fix(reports):
    dz2 = next(c for c in reports["wrong_missing_n.py"].checks if c.name == "dz2")
    assert "factor of N" in dz2.message
    dw2 = next(c for c in reports["wrong_dW2_transpose.py"].checks if c.name == "dW2")
    assert "transpose" in dw2.message and "a1.T" not in dw2.message
    purity = next(c for c in reports["inplace_probs.py"].checks if c.name == "purity")
    assert "probs" in purity.message and "backward" in purity.message
    stability = verdicts.message(reports["unstable_mean_shift.py"], "stability")
    assert stability.startswith("with one logit per row 2000 above the others, probs is not finite (nan) in ")
    assert "added the key 'W2T'" in verdicts.message(reports["impure_params_key.py"], "purity")
    # a step that pairs parameters and gradients by position meets gradients in chain order
    assert "sgd_step raised ValueError" in verdicts.message(reports["wrong_step_by_position.py"], "step")
    partial = {c.name: c.message for c in reports["partial_links.py"].checks}
    assert partial["dz1"] == "dz1 is not written yet"
    assert partial["dW1"] == "right for every probe"  # judged with dz1's expected value in its place
    assert verdicts.message(reports["partial_then_wrong.py"], "dW1").startswith("dW1 is 2 times the expected value")


def test_relu_ge_is_a_note_not_a_failure(reports):
    # also when the mask is made in forward and kept in the cache: the zero probe runs
    # forward too, and backward gets that forward's cache
    for name in ("relu_ge.py", "relu_ge_cached_mask.py"):
        report = reports[name]
        assert report.passed
        assert any(d.severity == "note" and d.link == "dz1" and d.bug == "relu-ge" for d in report.diagnosis), name


def test_stub_scores_zero_without_grader_error(reports):
    report = reports["stub"]
    assert report.score == 0 and report.error is None
    assert all("not written yet" in c.message or "not finished" in c.message or "could not" in c.message
               for c in report.checks), report.to_json()


def test_status_tells_wrong_from_not_yet_written(reports):
    status = {c.name: c.status for c in reports["partial_links.py"].checks}
    assert status["dz2"] == "pass" and status["db2"] == "open" and status["dz1"] == "open"
    assert status["dW1"] == "pass" and status["finite-difference"] == "open"
    assert {c.name: c.status for c in reports["partial_then_wrong.py"].checks}["dW1"] == "fail"
    # a backward not begun: every link and purity open, not 'returned None'
    status = {c.name: c.status for c in reports["partial_no_backward.py"].checks}
    assert all(status[c] == "open" for c in [*ALL_LINKS, "purity"]), status
    assert verdicts.message(reports["partial_no_backward.py"], "dz2").startswith("backward is not finished")
    assert {c.name: c.status for c in reports["partial_return_literal.py"].checks}["dW1"] == "open"
    assert {c.status for c in reports["stub"].checks} == {"open"}
    crashed = {c.name: c.status for c in reports["crash_da1_shape.py"].checks}
    assert crashed["da1"] == "fail" and crashed["dz1"] == "pass"
    assert {c.name: c.status for c in reports["wrong_missing_n.py"].checks}["dz2"] == "fail"
    # todo in a dict filled key by key, and inside if and with blocks: only those links are open
    for name, todo in (("partial_grads_dict.py", ["dz1"]), ("partial_blocks.py", ["db2", "dz1"])):
        status = {c.name: c.status for c in reports[name].checks}
        assert all(status[link] == ("open" if link in todo else "pass") for link in ALL_LINKS), (name, status)
        assert verdicts.message(reports[name], "dz1") == "dz1 is not written yet"
