"""batchnorm_mlp: the reference, the stub, fixture attempts in other styles, and every command on it."""

import numpy as np

import verdicts
from conftest import load_reference, trained_accuracies
from grader import catalog

EXERCISE = catalog.exercise("batchnorm_mlp")
EVERY_CHECK = [c.name for c in EXERCISE.checks]
REFERENCE_MIN_ACCURACY = 0.95  # on every seed, against the check's 0.90: never flaky

# file -> (the checks it must fail, the bugs the diagnosis must name)
VERDICTS = {
    "reference": ([], []),
    "stub": (EVERY_CHECK, []),
    "correct_compact.py": ([], []),
    "correct_loops.py": ([], []),
    "wrong_dz1_no_mean.py": (["dz1", "finite-difference"], ["bn-dz1-no-mean-terms"]),
    "wrong_stats_constant.py": (["dz1", "finite-difference"], []),
    "wrong_dgamma_no_xhat.py": (["dgamma", "finite-difference"], ["bn-dgamma-missing-xhat"]),
    "wrong_unbiased_var.py": (["forward", "finite-difference"], ["bn-unbiased-variance"]),
    "wrong_no_eps.py": (["forward"], ["bn-missing-eps"]),
    "wrong_dxhat_double.py": (["dxhat", "finite-difference"], []),
    "unstable_global_max.py": (["stability"], ["bn-softmax-global-max"]),
    "wrong_backward_no_eps.py": (["dz1", "finite-difference"], []),
}


reports, test_every_fixture_has_a_verdict, test_verdict = verdicts.suite(EXERCISE, VERDICTS)


def test_messages_say_what_and_where(reports):
    # 2 is D in the first probe but not in the others: no size is blamed for it
    assert verdicts.message(reports["wrong_dxhat_double.py"], "dxhat").startswith("dxhat is 2 times the expected value (with")
    assert verdicts.message(reports["wrong_unbiased_var.py"], "forward").startswith("cache['var'] is 1.09091 times")
    assert verdicts.message(reports["wrong_no_eps.py"], "forward").startswith("cache['inv_std'] is wrong")
    assert "dW1 disagrees with central differences" in verdicts.message(reports["wrong_dz1_no_mean.py"], "finite-difference")
    assert "z1 is not written yet" in verdicts.message(reports["stub"], "forward")
    assert verdicts.message(reports["reference"], "finite-difference").startswith("analytic gradients agree")


def test_a_wrong_dz1_leaves_dW1_and_db1_judged_on_their_own_inputs(reports):
    report = reports["wrong_stats_constant.py"]
    assert {c.name: c.passed for c in report.checks}["dW1"] and {c.name: c.passed for c in report.checks}["db1"]


def test_the_bugs_cover_the_chain():
    assert {b.link for b in catalog.bugs(EXERCISE.id).values()} >= {"var", "inv_std", "dgamma", "dz1"}


def test_reference_learns_xor_on_20_seeds():
    accuracies = trained_accuracies(EXERCISE, range(20))
    low = {seed: acc for seed, acc in accuracies.items() if acc < REFERENCE_MIN_ACCURACY}
    assert not low, f"accuracy below {REFERENCE_MIN_ACCURACY} after {EXERCISE.train.iters} iterations, by seed: {low}"


def test_db1_is_zero_and_the_columns_of_dz1_sum_to_zero():
    ref = load_reference(EXERCISE)
    rng = np.random.default_rng(5)
    params = ref.init_params(D=3, H=4, C=5, seed=5)
    x, y = rng.normal(size=(7, 3)), rng.integers(0, 5, size=7)
    z2, cache = ref.forward(params, x)
    grads = ref.backward(params, cache, ref.softmax_cross_entropy(z2, y)[1], y)
    assert np.allclose(cache["xhat"].mean(axis=0), 0) and np.allclose(cache["xhat"].var(axis=0), 1, atol=1e-3)
    assert np.abs(grads["db1"]).max() < 1e-15


def test_the_finite_difference_probe_has_the_quiet_unit_too(reports):
    # forward right, backward without eps: its gradients disagree with its own loss there
    message = verdicts.message(reports["wrong_backward_no_eps.py"], "finite-difference")
    assert "dW1 disagrees with central differences" in message
    worst = float(message.split("worst relative error ")[1].split(",")[0])
    assert worst > 1e-2
