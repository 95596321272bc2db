"""The reference solution is right: it learns XOR on every seed, and its gradients match finite differences."""
import numpy as np
from hypothesis import HealthCheck, assume, given, note, settings as hsettings, strategies as st

from conftest import trained_accuracies
from grader import settings

# The reference reaches at least this on every seed, so the convergence check
# (which asks an attempt for the exercise's `train.min_accuracy`) is never flaky.
REFERENCE_MIN_ACCURACY = 0.95
SEEDS = range(20)
PARAMS = ("W1", "b1", "W2", "b2")


def test_reference_learns_xor_on_every_seed(exercise):
    accuracies = trained_accuracies(exercise, SEEDS)
    low = {seed: acc for seed, acc in accuracies.items() if acc < REFERENCE_MIN_ACCURACY}
    assert not low, f"accuracy below {REFERENCE_MIN_ACCURACY} after {exercise.train.iters} iterations, by seed: {low}"


def loss_of(reference, params, x, y) -> float:
    z2, _ = reference.forward(params, x)
    return reference.softmax_cross_entropy(z2, y)[0]


def numerical_gradient(reference, params, x, y, name) -> np.ndarray:
    """Central differences of the loss over every entry of params[name]."""
    grad = np.zeros_like(params[name])
    for i in np.ndindex(grad.shape):
        shifted = {k: v.copy() for k, v in params.items()}
        shifted[name][i] = params[name][i] + settings.FD_EPS
        up = loss_of(reference, shifted, x, y)
        shifted[name][i] = params[name][i] - settings.FD_EPS
        down = loss_of(reference, shifted, x, y)
        grad[i] = (up - down) / (2 * settings.FD_EPS)
    return grad


# Four sizes from 1..9, no two equal, so a transpose that only works when sizes coincide shows.
distinct_sizes = st.lists(st.integers(1, 9), min_size=4, max_size=4, unique=True)


@hsettings(max_examples=200, deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.filter_too_much])
@given(sizes=distinct_sizes, seed=st.integers(0, 2**32 - 1))
def test_reference_gradients_match_finite_differences(reference, sizes, seed):
    N, D, H, C = sizes
    note(f"N={N} D={D} H={H} C={C} seed={seed}")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    y = rng.integers(0, C, size=N)
    # Weights scaled by fan-in keep the logits O(1): a saturated softmax has gradient entries
    # so small (< 1e-6) that central differences at eps 1e-6 cannot resolve them to 1e-4.
    params = {"W1": rng.normal(0, D ** -0.5, (D, H)), "b1": rng.normal(0, 0.5, H),
              "W2": rng.normal(0, H ** -0.5, (H, C)), "b2": rng.normal(0, 0.5, C)}
    z2, cache = reference.forward(params, x)
    assume(np.abs(cache["z1"]).min() >= settings.FD_KINK_MARGIN)  # away from the ReLU kink
    _, probs = reference.softmax_cross_entropy(z2, y)
    grads = reference.backward(params, cache, probs, y)
    for name in PARAMS:
        analytic, numeric = grads["d" + name], numerical_gradient(reference, params, x, y, name)
        assert analytic.shape == params[name].shape, f"d{name} has shape {analytic.shape}"
        rel = np.abs(numeric - analytic) / np.maximum(np.abs(numeric) + np.abs(analytic), settings.FD_FLOOR)
        worst = np.unravel_index(rel.argmax(), rel.shape)
        assert rel.max() <= settings.FD_TOL, (
            f"d{name}{list(worst)}: analytic {analytic[worst]:.6g}, numeric {numeric[worst]:.6g}, "
            f"relative error {rel.max():.2e} (N={N} D={D} H={H} C={C} seed={seed})")


def test_threads_sharing_a_traced_module_each_record_only_their_own_links(exercise):
    """The diagnosis shares cached traced mutants between a batch's threads: a link computed
    in one thread must never land in another thread's tracer (it did: a catalogued bug went
    unnamed in a self-test run with several jobs)."""
    import threading

    from grader.catalog import reference as traced

    source = exercise.solution_path.read_text(encoding="utf-8")
    module = traced.load_traced(source, str(exercise.solution_path), {b.name: b.assigns for b in exercise.blanks})
    sizes = exercise.sizes
    both_inside = threading.Barrier(2)

    def run(seed):
        rng = np.random.default_rng(seed)
        params = {"W1": rng.normal(size=(sizes["D"], sizes["H"])), "b1": rng.normal(size=sizes["H"]),
                  "W2": rng.normal(size=(sizes["H"], sizes["C"])), "b2": rng.normal(size=sizes["C"])}
        x = rng.normal(size=(5, sizes["D"]))

        def wait_once(blank, target, value, waited=[]):  # noqa: B006 - one wait per run
            if not waited:
                waited.append(True)
                both_inside.wait(timeout=10)  # the other thread is inside the module too
            return value

        _, values = traced.run_traced(module, "forward", (params, x), substitute=wait_once)
        return x, values

    results = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, run(s))) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, (x, values) in results.items():
        _, alone = traced.run_traced(module, "forward", _inputs_of(seed, sizes))  # the same run, by itself
        assert len(alone) >= 2 and values.keys() == alone.keys(), (values.keys(), alone.keys())
        for target, value in alone.items():
            np.testing.assert_allclose(values[target], value, err_msg=target)


def _inputs_of(seed, sizes):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.normal(size=(sizes["D"], sizes["H"])), "b1": rng.normal(size=sizes["H"]),
              "W2": rng.normal(size=(sizes["H"], sizes["C"])), "b2": rng.normal(size=sizes["C"])}
    return params, rng.normal(size=(5, sizes["D"]))
