"""How the grader probes an mlp_backprop attempt: the inputs of every check, and its verdicts.

The generic pieces (comparison, link isolation, finite differences, convergence, purity)
live in grader/checks.py; this module only knows this exercise's functions and shapes.
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..checks import Context, Outcome

# Probe sizes: in each, N, D, H and C all differ, so a transpose that only works when two
# sizes coincide shows; the first is the exercise's default network.
SIZES = [
    {"N": 16, "D": 2, "H": 8, "C": 2},
    {"N": 7, "D": 3, "H": 5, "C": 4},
    {"N": 9, "D": 4, "H": 6, "C": 3},
]
FD_SIZES = {"N": 6, "D": 3, "H": 5, "C": 4}
GRADS_OF = {"W1": "dW1", "b1": "db1", "W2": "dW2", "b2": "db2"}
LINKS = ["dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1"]

FORWARD = "z2, cache = forward(params, x)"
LOSS = "loss, probs = softmax_cross_entropy(z2, y)"
BACKWARD = "grads = backward(params, cache, probs, y)"
STEP = "params = sgd_step(params, grads, lr)"


def random_params(rng, D, H, C, scale=1.0):
    """Non-trivial parameters (biases too); scale None scales each weight by its fan-in."""
    s1, s2 = (scale, scale) if scale is not None else (1 / np.sqrt(D), 1 / np.sqrt(H))
    return {"W1": rng.normal(0, s1, (D, H)), "b1": rng.normal(0, 0.5, H),
            "W2": rng.normal(0, s2, (H, C)), "b2": rng.normal(0, 0.5, C)}


def labels(rng, N, C):
    y = rng.permutation(np.arange(N) % C)  # every class appears
    return y.astype(np.int64)


def make_probe(ref, rng, sizes, scale=1.0):
    N, D, H, C = sizes["N"], sizes["D"], sizes["H"], sizes["C"]
    params = random_params(rng, D, H, C, scale)
    x = rng.normal(0, 1, (N, D))
    y = labels(rng, N, C)
    z2, cache = ref.forward(params, x)
    loss, probs = ref.softmax_cross_entropy(z2, y)
    return {"sizes": sizes, "params": params, "x": x, "y": y, "z2": z2,
            "cache": {k: cache[k] for k in ("x", "z1", "a1")}, "loss": loss, "probs": probs}


def zero_probe(ref, rng):
    """A probe whose z1 has exact zeros: only the ReLU convention at 0 can tell there."""
    probe = make_probe(ref, rng, SIZES[1])
    z1 = probe["cache"]["z1"].copy()
    z1[::2, ::2] = 0.0
    probe["cache"]["z1"] = z1
    probe["cache"]["a1"] = np.maximum(z1, 0.0)
    return probe


def fd_probe(ref, rng):
    """A probe whose pre-activations all keep away from the ReLU kink, with weights scaled by
    fan-in so the softmax is not saturated (saturated gradients are too small to measure)."""
    from .. import settings

    for _ in range(1000):
        probe = make_probe(ref, rng, FD_SIZES, scale=None)
        if np.abs(probe["cache"]["z1"]).min() > settings.FD_KINK_MARGIN:
            return probe
    raise RuntimeError("no finite-difference probe away from the kink")  # pragma: no cover


def build(ctx: Context) -> list[dict]:
    ref, rng = ctx.ref, ctx.rng
    probes = [make_probe(ref, rng, s) for s in SIZES]
    zero = zero_probe(ref, rng)
    fd = fd_probe(ref, rng)
    train = ctx.exercise.train
    x_train, y_train = ref.make_xor(n=train.n, seed=train.seed)
    sizes = ctx.exercise.sizes
    init = ref.init_params(sizes["D"], sizes["H"], sizes["C"], seed=train.seed)
    step_params = random_params(rng, 3, 5, 4)
    step_grads = {f"d{k}": rng.normal(0, 1, v.shape) for k, v in step_params.items()}
    step_grads.update({k: rng.normal(0, 1, (7, 4 if k == "dz2" else 5)) for k in ("dz2", "da1", "dz1")})
    ctx.data.update(probes=probes, zero=zero, fd=fd, x_train=x_train, y_train=y_train,
                    step=(step_params, step_grads, 0.1))
    tasks = []
    for i, p in enumerate(probes):
        tasks.append(checks.call(f"forward/{i}", "forward", [p["params"], p["x"]]))
        tasks.append(checks.call(f"loss/{i}", "softmax_cross_entropy", [p["z2"], p["y"]]))
    tasks.append(checks.call("stability", "softmax_cross_entropy",
                             [probes[0]["z2"] + checks.settings.STABILITY_SHIFT, probes[0]["y"]]))
    tasks.append(checks.call("step", "sgd_step", [step_params, step_grads, 0.1], keep_args=False))
    for i, p in enumerate(probes):
        # The attempt's own cache (with any extra keys it keeps) under the grader's x, z1, a1.
        tasks.append(checks.call(f"backward/{i}", "backward", [p["params"], p["cache"], p["probs"], p["y"]],
                                 partial=True, cache_from={"task": f"forward/{i}", "index": 1, "arg": 1}))
    tasks.append(checks.call("backward/zero", "backward",
                             [zero["params"], zero["cache"], zero["probs"], zero["y"]], partial=True))
    tasks.append(checks.finite_difference_task(
        "finite-difference", {"params": fd["params"], "x": fd["x"], "y": fd["y"]},
        loss=[FORWARD, LOSS], grads=[FORWARD, LOSS, BACKWARD], needs=["forward", "softmax_cross_entropy", "backward"]))
    tasks.append(checks.train_task(
        "convergence", {"params": init, "x": x_train, "y": y_train, "lr": train.lr},
        steps=[FORWARD, LOSS, BACKWARD, STEP], iters=train.iters, final=[FORWARD], outputs=["z2", "params"],
        needs=list(ctx.exercise.functions)))
    return tasks


def _regions(probe):
    z1 = probe["cache"]["z1"]
    true_class = np.zeros(probe["probs"].shape, dtype=bool)
    true_class[np.arange(len(probe["y"])), probe["y"]] = True
    return {"where z1 < 0": z1 < 0, "where z1 > 0": z1 > 0, "where z1 is exactly 0": z1 == 0,
            "in each row's true-class column": true_class,
            "outside each row's true-class column": ~true_class}


def judge(ctx: Context, results: dict) -> list[Outcome]:
    d = ctx.data
    probes = d["probes"]
    out = [
        checks.judge_outputs(ctx, "forward", "forward", results, [f"forward/{i}" for i in range(len(probes))],
                             lambda i: {"cache['z1']": (1, "z1"), "cache['a1']": (1, "a1"), "z2": (0,)},
                             lambda i: {"z2": probes[i]["z2"], "cache['z1']": probes[i]["cache"]["z1"],
                                        "cache['a1']": probes[i]["cache"]["a1"]},
                             sizes=lambda i: probes[i]["sizes"], args=lambda i: [probes[i]["params"], probes[i]["x"]]),
        checks.judge_outputs(ctx, "loss", "softmax_cross_entropy", results, [f"loss/{i}" for i in range(len(probes))],
                             lambda i: {"loss": (0,), "probs": (1,)},
                             lambda i: {"loss": probes[i]["loss"], "probs": probes[i]["probs"]},
                             sizes=lambda i: probes[i]["sizes"], scalars={"loss"},
                             args=lambda i: [probes[i]["z2"], probes[i]["y"]]),
    ]
    link_args = [(p["params"], p["cache"], p["probs"], p["y"]) for p in probes]
    out += checks.judge_links(ctx, results, "backward", LINKS, [f"backward/{i}" for i in range(len(probes))],
                              link_args, sizes=[p["sizes"] for p in probes],
                              regions=[_regions(p) for p in probes],
                              tolerated=("backward/zero", (d["zero"]["params"], d["zero"]["cache"],
                                                           d["zero"]["probs"], d["zero"]["y"]),
                                         _regions(d["zero"]), "where z1 is exactly 0"))
    params, grads, lr = d["step"]
    expected = {k: v - lr * grads[f"d{k}"] for k, v in params.items()}
    out.append(checks.judge_outputs(ctx, "step", "sgd_step", results, ["step"],
                                    lambda i: {k: (k,) for k in params},
                                    lambda i: expected, sizes=lambda i: {}, args=lambda i: [params, grads, lr]))
    out.append(checks.judge_finite_difference(ctx, results, "finite-difference", GRADS_OF, d["fd"]["params"]))
    out.append(checks.judge_convergence(ctx, results, "convergence", d["y_train"], "z2"))
    out.append(checks.judge_purity(ctx, results, {
        **{f"forward/{i}": ("forward", {"params": p["params"], "x": p["x"]}) for i, p in enumerate(probes)},
        **{f"loss/{i}": ("softmax_cross_entropy", {"z2": p["z2"], "y": p["y"]}) for i, p in enumerate(probes)},
        **{f"backward/{i}": ("backward", {"params": p["params"], "cache": p["cache"], "probs": p["probs"],
                                          "y": p["y"]}) for i, p in enumerate(probes)},
    }))
    out.append(checks.judge_outputs(ctx, "stability", "softmax_cross_entropy", results, ["stability"],
                                    lambda i: {"loss": (0,), "probs": (1,)},
                                    lambda i: {"loss": probes[0]["loss"], "probs": probes[0]["probs"]},
                                    sizes=lambda i: probes[0]["sizes"], scalars={"loss"},
                                    context="with every logit shifted by +1000, ",
                                    args=lambda i: [probes[0]["z2"] + checks.settings.STABILITY_SHIFT, probes[0]["y"]]))
    return out
