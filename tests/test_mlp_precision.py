"""mlp_backprop: no false pass, no free points, and a diagnosis that is true of the attempt (issue 15).

The fixtures live in tests/fixtures/mlp_backprop/precision/, each an attempt in a style of
its own; the table says which checks each must fail and which bugs the diagnosis names.
"""
import pytest

import verdicts
from grader import catalog
from grader.judge.grade import grade

EXERCISE = catalog.exercise("mlp_backprop")
EXERCISE_LINKS = ["dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1"]
FOLDER = verdicts.FIXTURES / EXERCISE.id / "precision"

# file -> (the checks it must fail, the bugs the diagnosis must name)
VERDICTS = {
    "unstable_global_max.py": (["stability"], ["softmax-global-max"]),
    "wrong_dz2_divides_later.py": (["dz2"], ["missing-n"]),
    "wrong_inplace_relu_mask.py": (["da1"], ["inplace-relu-mask"]),
    "correct_log_guard.py": ([], []),
    "wrong_loss_matrix.py": (["loss", "finite-difference", "convergence"], []),
    "wrong_db1_from_da1.py": (["db1", "finite-difference"], []),
    "wrong_db1_scalar_mean.py": (["db1", "finite-difference"], []),
    "wrong_sum_everywhere.py": (["loss", "dz2", "convergence"], ["loss-sum", "missing-n"]),
}
# Attempts whose links cannot all be judged (their failures are open, not wrong): the checks
# each must fail, and its score.
UNJUDGED = {
    "tiny_constant_links.py": ([*EXERCISE_LINKS, "finite-difference", "convergence"], 28),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    names = [f"precision/{n}" for n in [*VERDICTS, *UNJUDGED]]
    graded = verdicts.grade_fixtures(EXERCISE, names, tmp_path_factory.mktemp("precision"))
    return {n.removeprefix("precision/"): r for n, r in graded.items()}


def test_every_fixture_has_a_verdict():
    assert sorted(p.name for p in FOLDER.glob("*.py")) == sorted([*VERDICTS, *UNJUDGED])


@pytest.mark.parametrize("name", list(VERDICTS))
def test_verdict(reports, name):
    failing, bugs = VERDICTS[name]
    verdicts.assert_verdict(EXERCISE, name, reports[name], failing, bugs)


def test_a_global_max_shift_fails_stability_on_rows_far_apart(reports):
    message = verdicts.message(reports["unstable_global_max.py"], "stability")
    assert message.startswith("with every other row of logits 800 above the rows between")
    assert "loss is nan, not a finite number" in message


@pytest.mark.parametrize("name", list(UNJUDGED))
def test_unjudged_links_earn_nothing(reports, name):
    failing, score = UNJUDGED[name]
    report = reports[name]
    assert [c.name for c in report.checks if not c.passed] == [c.name for c in EXERCISE.checks if c.name in failing]
    assert report.score == score


def test_links_judged_only_on_inputs_of_the_true_scale(reports):
    report = reports["tiny_constant_links.py"]
    for link in EXERCISE_LINKS[1:]:
        assert "of its true size, too small to tell" in verdicts.message(report, link)
        assert next(c for c in report.checks if c.name == link).status == "open"
    # and nothing is diagnosed from links that could not be judged
    assert [d.bug for d in report.diagnosis] == []


def test_missing_n_claims_nothing_it_did_not_observe(reports):
    # dz2 is N times too large, but the division is made further down: the later links and
    # training are right, and the diagnosis does not say otherwise
    report = reports["wrong_dz2_divides_later.py"]
    message = next(d.message for d in report.diagnosis if d.bug == "missing-n")
    assert "overshoot" not in message and "every gradient below" not in message
    assert "unless the division by N is made further down the chain" in message


def test_an_in_place_relu_mask_is_reported_as_da1_overwritten(reports):
    message = verdicts.message(reports["wrong_inplace_relu_mask.py"], "da1")
    assert "only where z1 < 0" in message
    assert "it holds exactly the values of your dz1" in message
    assert "changed in place" in message


def test_a_guard_inside_the_log_passes_with_a_note_that_says_so(reports):
    loss = next(c for c in reports["correct_log_guard.py"].checks if c.name == "loss")
    assert loss.passed and loss.notes == [
        "loss is that of -log(probs + 1e-07): a guard inside the log, which moves the loss a little from "
        "the exact cross-entropy; within what a loss needs, so it passes"]


def test_a_loss_that_hands_backward_an_np_matrix_fails_loss_and_says_where(reports):
    # its numbers are right, but the wire says it was an np.matrix: the loss check names it,
    # and the checks that chain the functions (where backward meets the matrix) point there
    report = reports["wrong_loss_matrix.py"]
    assert verdicts.message(report, "loss").startswith(
        "softmax_cross_entropy returns probs as an np.matrix, not a plain numpy array")
    for check in ("finite-difference", "convergence"):
        assert verdicts.message(report, check).endswith(
            "; it may start where softmax_cross_entropy returns probs as an np.matrix (see loss)")
    assert next(c for c in report.checks if c.name == "stability").passed  # stable, only not an array


@pytest.mark.parametrize("old, new, check, said", [
    ("    return a1 @ params[\"W2\"] + params[\"b2\"], {",
     "    return np.asmatrix(a1 @ params[\"W2\"] + params[\"b2\"]), {", "forward", "forward returns z2 as"),
    ("\"dW2\": cache[\"a1\"].T @ dz2,", "\"dW2\": np.asmatrix(cache[\"a1\"].T @ dz2),", "dW2",
     "backward returns dW2 as"),
])
def test_an_np_matrix_out_of_forward_or_a_link_fails_that_check(tmp_path, old, new, check, said):
    source = (FOLDER / "wrong_loss_matrix.py").read_text(encoding="utf-8")
    source = source.replace("    z = np.matrix(z2 - z2.max(axis=1, keepdims=True))\n",
                            "    z = z2 - z2.max(axis=1, keepdims=True)\n")
    source = source.replace("e / e.sum(axis=1)", "e / e.sum(axis=1, keepdims=True)")
    assert old in source
    path = tmp_path / "attempt.py"
    path.write_text(source.replace(old, new), encoding="utf-8")
    report = grade(path, EXERCISE.id)
    failing = [c.name for c in report.checks if not c.passed]
    assert check in failing and "loss" not in failing, report.to_json()
    assert verdicts.message(report, check).startswith(f"{said} an np.matrix, not a plain numpy array")


def test_a_mistake_outside_the_catalogue_is_described_by_its_edit(reports):
    report = reports["wrong_db1_from_da1.py"]
    (d,) = report.diagnosis
    assert (d.bug, d.link, d.severity) == (None, "db1", "error")
    assert d.message.startswith("db1 behaves as if `dz1` were `da1` in its formula")


def test_two_diagnoses_of_one_attempt_do_not_contradict_each_other(reports):
    # the summed loss and its own gradient: each diagnosis says what it saw, nothing about the other
    loss_sum, missing_n = (d.message for d in reports["wrong_sum_everywhere.py"].diagnosis)
    assert "gradient of the mean" not in loss_sum and "backward" not in loss_sum
    assert "The exercise's loss is a mean over the batch" in missing_n


def test_two_slips_in_one_link_are_found_as_a_pair_of_edits(reports):
    # an exact pair of edits is preferred to a catalogued bug that only has the same wrong shape
    (d,) = reports["wrong_db1_scalar_mean.py"].diagnosis
    assert d.bug is None and d.link == "db1"
    assert d.message.startswith("db1 behaves as if `sum` were `mean` and `axis=0` were left out in its formula")
