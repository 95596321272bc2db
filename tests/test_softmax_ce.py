"""softmax_ce: the reference, the stub, fixture attempts in other styles, and every command on it."""

import numpy as np
import pytest

import verdicts
from conftest import load_reference
from grader import catalog

EXERCISE = catalog.exercise("softmax_ce")
EVERY_CHECK = [c.name for c in EXERCISE.checks]

# file -> (the checks it must fail, the bugs the diagnosis must name)
VERDICTS = {
    "reference": ([], []),
    "stub": (EVERY_CHECK, []),
    "correct_logsumexp.py": ([], []),
    "correct_loops.py": ([], []),
    "wrong_missing_n.py": (["dz", "finite-difference"], ["ce-missing-n"]),
    "wrong_normalise_axis.py": (["softmax", "finite-difference"], ["ce-normalise-wrong-axis"]),
    "wrong_loss_sum.py": (["loss", "finite-difference"], ["ce-loss-sum"]),
    "unstable.py": (["stability"], ["ce-no-max-shift"]),
    "unstable_min_shift.py": (["stability"], []),
    "wrong_dz_stale_probs.py": (["dz"], []),
    "inplace_probs.py": (["purity"], ["ce-inplace-probs"]),
    "unstable_global_max.py": (["stability"], ["ce-global-max"]),
    "correct_log_guard.py": ([], []),
}


reports, test_every_fixture_has_a_verdict, test_verdict = verdicts.suite(EXERCISE, VERDICTS)


def test_messages_say_what_and_where(reports):
    assert "a factor of N = 8" in verdicts.message(reports["wrong_missing_n.py"], "dz")
    assert "a factor of N = 8" in verdicts.message(reports["wrong_loss_sum.py"], "loss")
    assert "NaN or infinite" in verdicts.message(reports["unstable.py"], "stability")
    assert "changed its input probs" in verdicts.message(reports["inplace_probs.py"], "purity")
    assert "dz disagrees with central differences" in verdicts.message(reports["wrong_missing_n.py"], "finite-difference")
    assert "shift is not written yet" in verdicts.message(reports["stub"], "softmax")


def test_a_wrong_softmax_leaves_the_loss_judged_on_its_own_probs(reports):
    # the columns of these probs sum to 1; the loss of exactly these probs is still right
    assert verdicts.message(reports["wrong_normalise_axis.py"], "loss").startswith("right for every probe")


def test_the_bugs_cover_the_chain():
    assert {b.caught_by for b in catalog.bugs(EXERCISE.id).values()} >= {"softmax", "loss", "dz", "stability", "purity"}


def test_the_reference_runs_as_a_script_would():
    ref = load_reference(EXERCISE)
    z, y = ref.make_logits(N=7, C=4, seed=3)
    assert ref.gradient_check(z, y) < 1e-4
    loss, probs = ref.softmax_cross_entropy(z, y)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert ref.softmax_cross_entropy(z + 1000.0, y)[0] == pytest.approx(loss, rel=1e-9)
    fitted = ref.descend(z, y, log_every=0)
    assert ref.softmax_cross_entropy(fitted, y)[0] < 0.1 * loss


def test_a_guard_inside_the_log_passes_with_a_note(reports):
    loss = next(c for c in reports["correct_log_guard.py"].checks if c.name == "loss")
    assert loss.passed and loss.notes == [
        "loss is that of -log(probs + 1e-07): a guard inside the log, which moves the loss a little from "
        "the exact cross-entropy; within what a loss needs, so it passes"]
