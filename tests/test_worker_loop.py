"""The worker's compiled training loop means exactly what running the steps one by one means."""
import numpy as np
import pytest

from grader.run import worker

STEPS = [worker.parse_step(s) for s in ["z, cache = f(w, x)", "loss = g(z)", "w = h(w, z)"]]


DEFAULT = object()


def functions(loss_at=None, f_returns=DEFAULT):
    def f(w, x):
        return (w * x, {"x": x}) if f_returns is DEFAULT else f_returns

    def g(z):
        return float(z.sum()) if loss_at is None else loss_at(z)

    def h(w, z):
        return w * 0.5
    return {"f": f, "g": g, "h": h}


def test_the_compiled_loop_matches_the_steps_one_by_one():
    env_a = {"w": np.ones(3), "x": np.arange(3.0)}
    env_b = {k: v.copy() for k, v in env_a.items()}
    losses = np.full(5, np.nan)
    state = {"i": 0}
    worker.compile_loop(STEPS, "loss")(env_a, functions(), losses, state)
    expected = []
    for _ in range(5):
        worker.run_steps(STEPS, env_b, functions())
        expected.append(worker.scalar(env_b["loss"]))
    assert losses.tolist() == expected and state == {"i": 4}
    assert np.array_equal(env_a["w"], env_b["w"]) and env_a["loss"] == env_b["loss"]


def test_a_non_finite_loss_stops_the_loop_where_it_happened():
    losses = np.full(10, np.nan)
    state = {"i": 0}
    calls = iter(range(10))
    worker.compile_loop(STEPS, "loss")({"w": np.ones(2), "x": np.ones(2)},
                                       functions(loss_at=lambda z: [1.0, 2.0, float("inf")][min(next(calls), 2)]),
                                       losses, state)
    assert state == {"i": 2, "stopped": 2} and losses[:2].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("returned", [None, 3.0, (1, 2, 3), [1]])
def test_a_wrong_return_says_what_was_expected(returned):
    with pytest.raises(worker.BadReturn, match=r"f must return 2 values \(z, cache\)"):
        worker.compile_loop(STEPS, "loss")({"w": 1.0, "x": 1.0}, functions(f_returns=returned),
                                           np.full(3, np.nan), {"i": 0})


def test_a_list_of_the_right_length_is_accepted_like_a_tuple():
    env = {"w": np.ones(2), "x": np.ones(2)}
    worker.compile_loop(STEPS, "loss")(env, functions(f_returns=[np.ones(2), {}]), np.full(2, np.nan), {"i": 0})
    assert env["loss"] == 2.0
