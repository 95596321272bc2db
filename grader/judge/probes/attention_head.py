"""How the grader probes an attention_head attempt: the inputs of every check, and its verdicts.

The generic pieces (comparison, link isolation, finite differences, purity) live in
grader/judge/checks.py. The forward pass is judged link by link like the backward pass: each of
Q, K, V, S, A and O given the attempt's own upstream values, so a wrong S does not also
fail the weights or the output. Convergence is judged here: the generic check measures a
classifier's accuracy, this exercise fits a regression target.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from grader.judge import checks
from grader.judge.probes import _sizes
from grader import settings
from grader.judge.checks import Context, Outcome


# Probe sizes: in each, T, d_model, d_k and d_v all differ, so a transpose that only works
# when two sizes coincide shows; the first is the exercise's default head.
SIZES = [
    {"T": 12, "d_model": 8, "d_k": 4, "d_v": 6},
    {"T": 7, "d_model": 5, "d_k": 3, "d_v": 4},
    {"T": 5, "d_model": 9, "d_k": 6, "d_v": 2},
]
FD_SIZES = {"T": 6, "d_model": 5, "d_k": 3, "d_v": 4}
# Any other seed than the canonical one draws every probe's sizes (the same ranges for all).
RANGES = {"T": (4, 14), "d_model": (3, 10), "d_k": (2, 7), "d_v": (2, 7)}
GRADS_OF = {"Wq": "dWq", "Wk": "dWk", "Wv": "dWv"}
LINKS = ["dO", "dA", "dV", "dS", "dQ", "dK", "dWq", "dWk", "dWv", "dX"]
# The links of shape (T, T): a transpose there keeps the shape, so only the values tell.
# The forward pass's links, and the check that judges each group of them.
FORWARD_CHECKS = {"projections": ["Q", "K", "V"], "scores": ["S"], "weights": ["A"], "output": ["O"]}
# The convergence run (described in the exercise's YAML): fit a student head, its weights
# drawn with seed + student_offset, to a teacher's outputs on the default sizes; pass when
# the loss falls below `fraction` of its start within `iters` steps.
TRAIN = {"seed": 0, "student_offset": 2, "lr": 0.15, "iters": 300, "fraction": 0.2}

FORWARD = "O, cache = forward(params, X)"
LOSS = "loss = mse_loss(O, target)"
BACKWARD = "grads = backward(params, cache, O, target)"
STEP = "params = sgd_step(params, grads, lr)"


def random_params(rng, d_model, d_k, d_v):
    """Weights scaled by fan-in: scores of order 1, so the softmax is far from saturated."""
    s = 1 / np.sqrt(d_model)
    return {"Wq": rng.normal(0, s, (d_model, d_k)), "Wk": rng.normal(0, s, (d_model, d_k)),
            "Wv": rng.normal(0, s, (d_model, d_v))}


def make_probe(ref, rng, sizes):
    T, d_model, d_k, d_v = sizes["T"], sizes["d_model"], sizes["d_k"], sizes["d_v"]
    params = random_params(rng, d_model, d_k, d_v)
    X = rng.normal(0, 1, (T, d_model))
    target = rng.normal(0, 1, (T, d_v))
    O, cache = ref.forward(params, X)
    return {"sizes": sizes, "params": params, "X": X, "target": target, "O": O, "cache": cache,
            "loss": ref.mse_loss(O, target)}


def build(ctx: Context) -> list[dict]:
    ref, rng = ctx.ref, ctx.rng
    sizes_of, fd_sizes = _sizes.probe_sizes(ctx, SIZES, FD_SIZES, RANGES)
    probes = [make_probe(ref, rng, s) for s in sizes_of]
    fd = make_probe(ref, rng, fd_sizes)
    # softmax on its own: every probe's scores along the keys, and one wide matrix down its columns
    wide = rng.normal(0, 2, (4, 7))
    soft = [(p["cache"]["S"], -1) for p in probes] + [(wide, 0)]
    sizes = ctx.exercise.sizes
    X_train, target_train = ref.make_teacher_task(sizes["T"], sizes["d_model"], sizes["d_k"], sizes["d_v"],
                                                  seed=TRAIN["seed"])
    init = ref.init_params(sizes["d_model"], sizes["d_k"], sizes["d_v"], seed=TRAIN["seed"] + TRAIN["student_offset"])
    O0, _ = ref.forward(init, X_train)
    # One more forward probe whose outputs no other task is given (a link probe's cache and O
    # are backward's inputs, and the attempt can read the plan: tests/fixtures/isolation/plan_lookup.py).
    solo = make_probe(ref, np.random.default_rng([ctx.seed, 1]), sizes_of[-1])
    ctx.data.update(probes=probes, fd=fd, soft=soft, X_train=X_train, target_train=target_train,
                    start_loss=ref.mse_loss(O0, target_train), solo=solo)
    tasks = []
    for i, (S, axis) in enumerate(soft):
        tasks.append(checks.call(f"softmax/{i}", "softmax", [S, axis]))
    S0 = soft[0][0]
    tasks.append(checks.call("stability", "softmax", [S0 + settings.STABILITY_SHIFT, -1]))
    tasks.append(checks.call("stability/rows", "softmax", [checks.rows_apart(S0), -1], keep_args=False))
    tasks.append(checks.call("stability/spread", "softmax", [checks.spread(S0, S0.argmax(axis=1)), -1],
                             keep_args=False))
    for i, p in enumerate(probes):
        tasks.append(checks.call(f"forward/{i}", "forward", [p["params"], p["X"]], partial=True))
        tasks.append(checks.call(f"loss/{i}", "mse_loss", [p["O"], p["target"]]))
        # The attempt's own cache (with any extra keys it keeps) under the grader's values.
        tasks.append(checks.call(f"backward/{i}", "backward", [p["params"], p["cache"], p["O"], p["target"]],
                                 partial=True, cache_from={"task": f"forward/{i}", "index": 1, "arg": 1}))
    tasks.append(checks.call("forward/solo", "forward", [solo["params"], solo["X"]], partial=True, keep_args=False))
    tasks.append(checks.finite_difference_task(
        "finite-difference", {"params": fd["params"], "X": fd["X"], "target": fd["target"]},
        loss=[FORWARD, LOSS], grads=[FORWARD, LOSS, BACKWARD], needs=["forward", "mse_loss", "backward"]))
    tasks.append(checks.train_task(
        "convergence", {"params": init, "X": X_train, "target": target_train, "lr": TRAIN["lr"]},
        steps=[FORWARD, LOSS, BACKWARD, STEP], iters=TRAIN["iters"], final=[FORWARD], outputs=["O", "params"],
        needs=list(ctx.exercise.functions)))
    return tasks


def _forward_structure(result) -> str | None:
    """Why forward's result is not (O, cache) with cache a dict, or None."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return "forward should return two values, O and cache"
    cache = result[1]
    if not isinstance(cache, dict) or "__type__" in cache or "__blank__" in cache:
        return "forward's cache should be a dict holding X, Q, K, V, S and A"
    return None


def judge_forward(ctx: Context, results: dict) -> list[Outcome]:
    """The forward checks: each link right given the attempt's own upstream links."""
    probes = [*ctx.data["probes"], ctx.data["solo"]]
    ids = [*(f"forward/{i}" for i in range(len(probes) - 1)), "forward/solo"]
    as_links = {}
    for tid in ids:
        r = results.get(tid)
        if checks.failure(r, "forward") is None:
            problem = _forward_structure(r["result"])
            if problem:
                return [Outcome(name, False, problem) for name in FORWARD_CHECKS]
            O, cache = r["result"]
            r = {**r, "result": {**cache, "O": O}}
        as_links[tid] = r
    links = [link for group in FORWARD_CHECKS.values() for link in group]
    verdicts = {o.name: o for o in checks.judge_links(
        ctx, as_links, "forward", links, ids, [(p["params"], p["X"]) for p in probes],
        sizes=[p["sizes"] for p in probes], regions=[{} for _ in probes])}
    out = []
    for name, group in FORWARD_CHECKS.items():
        wrong = next((verdicts[link] for link in group if not verdicts[link].passed), None)
        out.append(replace(wrong or verdicts[group[0]], name=name))
    return out


def judge_convergence(ctx: Context, results: dict, forward_passed: bool = False) -> Outcome:
    """The loss of the attempt's final O (recomputed here) against the loss at the start. When
    the attempt's forward passed its checks, O is the reference's forward of the trained
    parameters, not the O that came back (which the attempt could make up: worker_hijack)."""
    name = "convergence"
    stopped, details = checks.training_run(results, name)
    if stopped:
        return stopped
    O = checks.pick(results[name].get("outputs"), ("O",))
    if forward_passed and isinstance(O, np.ndarray):
        try:
            O = ctx.ref.forward(checks.pick(results[name].get("outputs"), ("params",)), ctx.data["X_train"])[0]
        except Exception:  # noqa: BLE001 - whatever came back as the parameters
            return Outcome(name, False, "after training, sgd_step's parameters came back unusable", details=details)
    target = ctx.data["target_train"]
    if not isinstance(O, np.ndarray) or O.shape != target.shape:
        return Outcome(name, False, "after training, forward gave no usable output O", details=details)
    first = ctx.data["start_loss"]
    last = float(0.5 * np.sum((O.astype(np.float64) - target) ** 2) / target.shape[0])
    details.update(start_loss=first, final_loss=last)
    goal = TRAIN["fraction"] * first
    text = f"after {TRAIN['iters']} steps the loss went from {checks.loss_text(first)} to {checks.loss_text(last)}"
    if np.isfinite(last) and last <= goal:
        return Outcome(name, True, text, details=details)
    return Outcome(name, False, f"{text}; it should fall below {checks.loss_text(goal)} "
                                f"({TRAIN['fraction']:g} of the start)", details=details)


def _label(call) -> str:
    return f"softmax(S, axis={call[1]})"


def judge(ctx: Context, results: dict) -> list[Outcome]:
    d = ctx.data
    probes, soft = d["probes"], d["soft"]
    softmax_of = [ctx.ref.softmax(S, axis) for S, axis in soft]
    out = [checks.judge_outputs(ctx, "softmax", "softmax", results, [f"softmax/{i}" for i in range(len(soft))],
                                lambda i: {_label(soft[i]): ()}, lambda i: {_label(soft[i]): softmax_of[i]},
                                sizes=lambda i: {}, args=lambda i: list(soft[i]))]
    out += judge_forward(ctx, results)
    out.append(checks.judge_outputs(ctx, "loss", "mse_loss", results, [f"loss/{i}" for i in range(len(probes))],
                                    lambda i: {"loss": ()}, lambda i: {"loss": probes[i]["loss"]},
                                    sizes=lambda i: probes[i]["sizes"], scalars={"loss"},
                                    args=lambda i: [probes[i]["O"], probes[i]["target"]]))
    link_args = [(p["params"], p["cache"], p["O"], p["target"]) for p in probes]
    out += checks.judge_links(
        ctx, results, "backward", LINKS, [f"backward/{i}" for i in range(len(probes))], link_args,
        sizes=[p["sizes"] for p in probes], regions=[{} for _ in probes])
    # forward and the loss right: the worker's central differences must be the reference's (worker_hijack)
    forward_passed = all(o.passed for o in out[1:1 + len(FORWARD_CHECKS)])
    fd = d["fd"]
    truth = None
    if forward_passed and out[1 + len(FORWARD_CHECKS)].passed:
        grads = ctx.ref.backward(fd["params"], fd["cache"], fd["O"], fd["target"])
        truth = {k: grads[g] for k, g in GRADS_OF.items()}
    out.append(checks.judge_finite_difference(ctx, results, "finite-difference", GRADS_OF, fd["params"],
                                              truth=truth))
    out.append(judge_convergence(ctx, results, forward_passed))
    out.append(checks.judge_purity(ctx, results, {
        **{f"softmax/{i}": ("softmax", {"S": S}) for i, (S, _) in enumerate(soft)},
        **{f"forward/{i}": ("forward", {"params": p["params"], "X": p["X"]}) for i, p in enumerate(probes)},
        **{f"loss/{i}": ("mse_loss", {"O": p["O"], "target": p["target"]}) for i, p in enumerate(probes)},
        **{f"backward/{i}": ("backward", {"params": p["params"], "cache": p["cache"], "O": p["O"],
                                          "target": p["target"]}) for i, p in enumerate(probes)},
    }))
    S0, label = soft[0][0], _label(soft[0])
    out.append(checks.judge_stability(
        ctx, results, [checks.Shifted("softmax", "softmax/0", "stability", {label: ()}, {label: S0.shape},
                                      [S0 + settings.STABILITY_SHIFT, -1], {}),
                       checks.Shifted("softmax", "softmax/0", "stability/rows", {label: ()}, {label: S0.shape},
                                      [checks.rows_apart(S0), -1], {}, how=checks.ROWS_APART)],
        [("softmax", "stability/spread", {label: ()})], what="score"))
    return out
