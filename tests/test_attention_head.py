"""attention_head: the reference, the stub, fixture attempts in other styles, and every command on it."""

import numpy as np
import pytest

import verdicts
from conftest import load_reference
from grader import catalog
from grader.judge.probes import attention_head as probes

EXERCISE = catalog.exercise("attention_head")
EVERY_CHECK = [c.name for c in EXERCISE.checks]
REFERENCE_MAX_RATIO = 0.1  # final / starting loss on every seed, against the check's 0.2: never flaky

# file -> (the checks it must fail, the bugs the diagnosis must name)
VERDICTS = {
    "reference": ([], []),
    "stub": (EVERY_CHECK, []),
    "correct_einsum.py": ([], []),
    "correct_loops.py": ([], []),
    "wrong_dk_from_ds.py": (["dK", "finite-difference"], ["attn-dk-missing-transpose"]),
    "wrong_ds_diagonal.py": (["dS", "finite-difference"], ["attn-ds-missing-subtraction"]),
    "wrong_softmax_columns.py": (["weights", "finite-difference", "convergence"], ["attn-softmax-wrong-axis"]),
    "wrong_scores_transposed.py": (["scores", "finite-difference"], ["attn-scores-transposed"]),
    "wrong_no_scale_anywhere.py": (["scores", "dQ", "dK"],
                                   ["attn-missing-scale", "attn-dq-missing-scale", "attn-dk-missing-scale"]),
    "unstable_softmax.py": (["stability"], ["attn-softmax-no-max-shift"]),
    "unstable_global_max.py": (["stability"], ["attn-softmax-global-max"]),
}


reports, test_every_fixture_has_a_verdict, test_verdict = verdicts.suite(EXERCISE, VERDICTS)


def test_messages_say_what_and_where(reports):
    assert verdicts.message(reports["wrong_scores_transposed.py"], "scores").startswith(
        "S holds the expected values transposed: its entry [i, j] is the one expected at [j, i]")
    assert verdicts.message(reports["wrong_no_scale_anywhere.py"], "scores").startswith("S is 2 times the expected value")
    assert "dWk disagrees with central differences" in verdicts.message(reports["wrong_dk_from_ds.py"], "finite-difference")
    assert verdicts.message(reports["unstable_softmax.py"], "stability").startswith("with every score + 1000 (against your own result without it), ")
    assert verdicts.message(reports["stub"], "projections") == "Q is not written yet"
    assert verdicts.message(reports["stub"], "dS") == "dS is not written yet"
    assert verdicts.message(reports["reference"], "finite-difference").startswith("analytic gradients agree")
    assert verdicts.message(reports["reference"], "convergence").startswith(f"after {probes.TRAIN['iters']} steps the loss")


def test_links_are_judged_on_their_own_inputs(reports):
    """A wrong dK leaves dWk and dX right given it; a wrong S leaves A and O right given it."""
    passed = {name: {c.name: c.passed for c in r.checks} for name, r in reports.items()}
    assert passed["wrong_dk_from_ds.py"]["dWk"] and passed["wrong_dk_from_ds.py"]["dX"]
    assert passed["wrong_scores_transposed.py"]["weights"] and passed["wrong_scores_transposed.py"]["output"]
    assert all(passed["wrong_softmax_columns.py"][link] for link in probes.LINKS)


def test_the_bugs_cover_the_chain():
    assert {b.link for b in catalog.bugs(EXERCISE.id).values()} >= {"S", "A", "softmax", "dV", "dS", "dK"}


def test_the_description_states_the_convergence_run():
    """The run's numbers live in the probes; the YAML description tells them to the user."""
    text = " ".join(EXERCISE.description.split())
    t = probes.TRAIN
    assert f"lr {t['lr']:g}" in text and f"within {t['iters']} steps" in text
    assert f"falls below {t['fraction']:g} of its starting value" in text
    assert f"T={EXERCISE.sizes['T']} inputs" in text


def loss_ratio(ref, seed: int) -> float:
    """The convergence run of the probes on other seeds: final loss over starting loss."""
    s, t = EXERCISE.sizes, probes.TRAIN
    X, target = ref.make_teacher_task(s["T"], s["d_model"], s["d_k"], s["d_v"], seed=seed)
    params = ref.init_params(s["d_model"], s["d_k"], s["d_v"], seed=seed + t["student_offset"])
    start = ref.mse_loss(ref.forward(params, X)[0], target)
    params = ref.train(params, X, target, lr=t["lr"], iters=t["iters"], log_every=0)
    return ref.mse_loss(ref.forward(params, X)[0], target) / start


def test_reference_fits_the_teacher_on_20_seeds():
    ref = load_reference(EXERCISE)
    ratios = {seed: loss_ratio(ref, seed) for seed in range(20)}
    high = {seed: r for seed, r in ratios.items() if not r < REFERENCE_MAX_RATIO}
    assert not high, f"final/starting loss above {REFERENCE_MAX_RATIO} after {probes.TRAIN['iters']} steps: {high}"


@pytest.mark.parametrize("seed", range(5))
def test_reference_gradients_match_central_differences(seed):
    """Every gradient of the reference, dX included, against central differences, on sizes that all differ."""
    ref = load_reference(EXERCISE)
    rng = np.random.default_rng(seed)
    T, d_model, d_k, d_v = rng.permutation(np.arange(2, 9))[:4]
    params = ref.init_params(d_model, d_k, d_v, seed=seed)
    X, target = rng.normal(size=(T, d_model)), rng.normal(size=(T, d_v))
    O, cache = ref.forward(params, X)
    grads = ref.backward(params, cache, O, target)
    assert np.allclose(grads["dS"].sum(axis=1), 0.0)  # a softmax row ignores a shift of its scores
    inputs = {**params, "X": X}

    def loss(values):
        return ref.mse_loss(ref.forward({k: values[k] for k in params}, values["X"])[0], target)

    for name, value in inputs.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1.0, -1.0):
                trial = {k: v.copy() for k, v in inputs.items()}
                trial[name][index] += sign * 1e-6
                numeric[index] += sign * loss(trial) / 2e-6
        assert np.allclose(grads["d" + name], numeric, rtol=1e-5, atol=1e-8), (name, seed)
