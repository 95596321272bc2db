"""Golden reports for the fixture attempts, and the verdicts they must have.

The verdict table below is the real test: which checks each fixture fails. The golden
JSON files guard the wording; regenerate them after a deliberate change with
`DRILL_UPDATE_GOLDEN=1 python -m pytest tests/test_grade_golden.py`.
"""
import json
import os
from pathlib import Path

import pytest

import verdicts
from grader import catalog
from grader.catalog import stubgen
from grader.judge.grade import grade

EXERCISE = catalog.exercise("mlp_backprop")
FIXTURES = verdicts.FIXTURES / EXERCISE.id
GOLDEN = Path(__file__).parent / "golden" / "mlp_backprop"
ALL_LINKS = ["dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1"]
EVERY_CHECK = ["forward", "loss", *ALL_LINKS, "step", "finite-difference", "convergence", "purity", "stability"]

# fixture -> (the checks it must fail, the error kind or None); "stub" is the shipped stub

VERDICTS = {
    "correct_reference.py": ([], None),
    "correct_einsum.py": ([], None),
    "correct_loops.py": ([], None),
    "correct_functional.py": ([], None),
    "relu_ge.py": ([], None),
    "relu_ge_cached_mask.py": ([], None),
    "wrong_missing_n.py": (["dz2", "finite-difference", "convergence"], None),
    "wrong_onehot.py": (["dz2", "finite-difference", "convergence"], None),
    "wrong_dW2_transpose.py": (["dW2", "finite-difference", "convergence"], None),
    "wrong_db2_axis.py": (["db2", "finite-difference", "convergence"], None),
    "wrong_da1_no_transpose.py": (["da1", "dz1", "finite-difference", "convergence"], None),
    "crash_da1_shape.py": (["da1", "finite-difference", "convergence"], None),
    "wrong_dz1_mask.py": (["dz1", "finite-difference", "convergence"], None),
    "wrong_dW1_missing_x.py": (["dW1", "finite-difference", "convergence"], None),
    "wrong_db1_mean.py": (["db1", "finite-difference"], None),
    "wrong_step_sign.py": (["step", "convergence"], None),
    "wrong_forward_bias.py": (["forward", "finite-difference"], None),
    "wrong_loss_sum.py": (["loss", "finite-difference"], None),
    "inplace_probs.py": (["purity"], None),
    "unstable_softmax.py": (["stability"], None),
    "unstable_mean_shift.py": (["stability"], None),
    "wrong_step_by_position.py": (["step", "convergence"], None),
    "impure_params_key.py": (["purity", "convergence"], None),
    "partial_links.py": (["db2", "dz1", "finite-difference", "convergence"], None),
    "partial_then_wrong.py": (["db2", "dz1", "dW1", "finite-difference", "convergence"], None),
    "partial_grads_dict.py": (["dz1", "finite-difference", "convergence"], None),
    "partial_blocks.py": (["db2", "dz1", "finite-difference", "convergence"], None),
    "partial_return_literal.py": (["dW1", "finite-difference", "convergence"], None),
    "partial_no_backward.py": ([*ALL_LINKS, "finite-difference", "convergence", "purity"], None),
    "stub": (EVERY_CHECK, None),
    "broken_syntax.py": (EVERY_CHECK, "syntax"),
    "broken_empty.py": (EVERY_CHECK, "missing-function"),
    "broken_missing_function.py": ([c for c in EVERY_CHECK if c != "forward"], "missing-function"),
}


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    return verdicts.grade_fixtures(EXERCISE, sorted(VERDICTS), tmp_path_factory.mktemp(EXERCISE.id))


def test_every_fixture_has_a_verdict():
    assert verdicts.fixture_names(EXERCISE) == sorted(n for n in VERDICTS if n.endswith(".py"))


def test_the_reference_fixture_is_the_shipped_solution():
    # other tests use it as a real file; it must never drift from the solution it copies
    solution = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    assert (FIXTURES / "correct_reference.py").read_text(encoding="utf-8") == solution


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(reports, name):
    failing, error_kind = VERDICTS[name]
    report = reports[name]
    got = [c.name for c in report.checks if not c.passed]
    assert got == [c for c in EVERY_CHECK if c in failing], report.to_json()
    assert (report.error or {}).get("kind") == error_kind
    assert report.passed == (not failing and error_kind is None)
    expected_score = sum(c.max_points for c in report.checks if c.name not in failing)
    assert report.score == expected_score


def _normalised(report) -> dict:
    data = report.to_dict()
    data.pop("file")
    data.pop("elapsed_seconds")
    data.pop("isolation")  # the machine's, not the attempt's: namespaces, uid or process
    if data.get("convergence"):
        data["convergence"].pop("seconds", None)
    return data


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_golden_report(reports, name):
    path = GOLDEN / (Path(name).stem + ".json")
    data = _normalised(reports[name])
    if os.environ.get("DRILL_UPDATE_GOLDEN"):
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no golden report {path}; run with DRILL_UPDATE_GOLDEN=1"
    assert data == json.loads(path.read_text())


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


@pytest.mark.skipif(not os.environ.get("DRILL_SLOW"), reason="about a minute; set DRILL_SLOW=1 to run")
def test_slow_triple_loop_attempt_passes_under_the_default_limits():
    report = grade(verdicts.FIXTURES / "slow" / "triple_loops.py")
    assert report.passed, report.to_json()


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
