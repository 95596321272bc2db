"""How the grader probes a batchnorm_mlp attempt: the inputs of every check, and its verdicts.

The network is mlp_backprop's with batch norm before the ReLU, so the probes differ in
what batch norm needs: gamma and beta among the parameters; in every forward and link
probe one unit whose z1 hardly varies over the batch (there EPS changes inv_std by
percents, so a missing EPS shows); N > 1 everywhere and different from D, H and C
(the statistics are over the batch axis, so a wrong axis must not fit by chance); and the
finite-difference probe keeps h, the ReLU's input, away from the kink.
"""
from __future__ import annotations

import numpy as np

from .. import checks, settings
from ..checks import Context, Outcome
from ..compare import as_array

# In each probe N, D, H and C all differ; the first has the exercise's D and H.
SIZES = [
    {"N": 12, "D": 2, "H": 8, "C": 3},
    {"N": 7, "D": 3, "H": 5, "C": 4},
    {"N": 9, "D": 4, "H": 6, "C": 2},
]
FD_SIZES = {"N": 6, "D": 3, "H": 5, "C": 4}
LINKS = ["dz2", "dW2", "db2", "da1", "dh", "dgamma", "dbeta", "dxhat", "dz1", "dW1", "db1"]
PARAMS = ["W1", "b1", "gamma", "beta", "W2", "b2"]
# forward's outputs in chain order, as (label in messages, path into (z2, cache)).
FORWARD_OUTPUTS = {**{f"cache['{k}']": (1, k) for k in ("z1", "mu", "var", "inv_std", "xhat", "h", "a1")},
                   "z2": (0,)}
CACHE_KEYS = ("x", "z1", "mu", "var", "inv_std", "xhat", "h", "a1")
# A unit whose weights are this small has a variance of order 1e-4 over the batch, against EPS 1e-5.
QUIET_UNIT_SCALE = 1e-2
# b1's true gradient is exactly 0 (batch norm subtracts it away again), so its central
# differences are rounding alone: a few ulps of the loss over 2 * FD_EPS, up to ~5e-10, which
# the generic relative test (absolute floor FD_TOL * FD_FLOOR = 1e-10) cannot tell from an
# error. db1 is held to this absolute bound instead (still far below any wrong db1).
ZERO_GRADIENT_NOISE = 1e-8

FORWARD = "z2, cache = forward(params, x)"
LOSS = "loss, probs = softmax_cross_entropy(z2, y)"
BACKWARD = "grads = backward(params, cache, probs, y)"
STEP = "params = sgd_step(params, grads, lr)"


def random_params(rng, D, H, C, fan_in=False):
    """Non-trivial parameters: biases, a gamma that is not 1 and a beta that is not 0."""
    s1, s2 = (D ** -0.5, H ** -0.5) if fan_in else (1.0, 1.0)
    return {"W1": rng.normal(0, s1, (D, H)), "b1": rng.normal(0, 0.5, H),
            "gamma": rng.normal(1.0, 0.5, H), "beta": rng.normal(0, 0.5, H),
            "W2": rng.normal(0, s2, (H, C)), "b2": rng.normal(0, 0.5, C)}


def make_probe(ref, rng, sizes, fan_in=False, quiet_unit=True):
    N, D, H, C = (sizes[k] for k in "NDHC")
    params = random_params(rng, D, H, C, fan_in)
    if quiet_unit:
        params["W1"][:, 0] *= QUIET_UNIT_SCALE
    x = rng.normal(0, 1, (N, D))
    y = rng.permutation(np.arange(N) % C).astype(np.int64)  # every class appears
    z2, cache = ref.forward(params, x)
    loss, probs = ref.softmax_cross_entropy(z2, y)
    return {"sizes": sizes, "params": params, "x": x, "y": y, "z2": z2,
            "cache": {k: cache[k] for k in CACHE_KEYS}, "loss": loss, "probs": probs}


def zero_probe(ref, rng):
    """A probe whose h has exact zeros: only the ReLU convention at 0 can tell there."""
    probe = make_probe(ref, rng, SIZES[1])
    h = probe["cache"]["h"].copy()
    h[::2, ::2] = 0.0
    probe["cache"]["h"] = h
    probe["cache"]["a1"] = np.maximum(h, 0.0)
    return probe


def fd_probe(ref, rng):
    """Every entry of h at least FD_KINK_MARGIN from the ReLU's kink; weights scaled by fan-in
    so the softmax is not saturated; no quiet unit (its large inv_std would magnify rounding)."""
    for _ in range(1000):
        probe = make_probe(ref, rng, FD_SIZES, fan_in=True, quiet_unit=False)
        if np.abs(probe["cache"]["h"]).min() > settings.FD_KINK_MARGIN:
            return probe
    raise RuntimeError("no finite-difference probe away from the kink")  # pragma: no cover


def step_inputs(rng):
    """Parameters and a full dict of gradients (every link, shaped for N=7, D=3, H=5, C=4)."""
    params = random_params(rng, 3, 5, 4)
    shapes = {"dz2": (7, 4), "da1": (7, 5), "dh": (7, 5), "dxhat": (7, 5), "dz1": (7, 5),
              **{f"d{k}": v.shape for k, v in params.items()}}
    return params, {link: rng.normal(0, 1, shapes[link]) for link in LINKS}, 0.1


def build(ctx: Context) -> list[dict]:
    ref, rng = ctx.ref, ctx.rng
    probes = [make_probe(ref, rng, s) for s in SIZES]
    zero, fd = zero_probe(ref, rng), fd_probe(ref, rng)
    train, sizes = ctx.exercise.train, ctx.exercise.sizes
    x_train, y_train = ref.make_xor(n=train.n, seed=train.seed)
    init = ref.init_params(sizes["D"], sizes["H"], sizes["C"], seed=train.seed)
    step = step_inputs(rng)
    ctx.data.update(probes=probes, zero=zero, fd=fd, y_train=y_train, step=step)
    tasks = []
    for i, p in enumerate(probes):
        tasks.append(checks.call(f"forward/{i}", "forward", [p["params"], p["x"]]))
        tasks.append(checks.call(f"loss/{i}", "softmax_cross_entropy", [p["z2"], p["y"]]))
    shifted = probes[0]["z2"] + settings.STABILITY_SHIFT
    tasks.append(checks.call("stability", "softmax_cross_entropy", [shifted, probes[0]["y"]]))
    tasks.append(checks.call("step", "sgd_step", list(step), keep_args=False))
    for i, p in enumerate(probes):
        # The attempt's own cache (with any extra keys it keeps) under the grader's values.
        tasks.append(checks.call(f"backward/{i}", "backward", backward_args(p), partial=True,
                                 cache_from={"task": f"forward/{i}", "index": 1, "arg": 1}))
    tasks.append(checks.call("backward/zero", "backward", backward_args(zero), partial=True))
    tasks.append(checks.finite_difference_task(
        "finite-difference", {"params": fd["params"], "x": fd["x"], "y": fd["y"]},
        loss=[FORWARD, LOSS], grads=[FORWARD, LOSS, BACKWARD],
        needs=["forward", "softmax_cross_entropy", "backward"]))
    tasks.append(checks.train_task(
        "convergence", {"params": init, "x": x_train, "y": y_train, "lr": train.lr},
        steps=[FORWARD, LOSS, BACKWARD, STEP], iters=train.iters, final=[FORWARD],
        outputs=["z2", "params"], needs=list(ctx.exercise.functions)))
    return tasks


def backward_args(probe) -> tuple:
    return probe["params"], probe["cache"], probe["probs"], probe["y"]


def regions(probe) -> dict:
    h = probe["cache"]["h"]
    true_class = np.zeros(probe["probs"].shape, dtype=bool)
    true_class[np.arange(len(probe["y"])), probe["y"]] = True
    return {"where h < 0": h < 0, "where h > 0": h > 0, "where h is exactly 0": h == 0,
            "in each row's true-class column": true_class,
            "outside each row's true-class column": ~true_class}


def judge_finite_difference(ctx: Context, results: dict, params: dict) -> Outcome:
    """The generic check for every parameter but b1; b1 within rounding of its central differences."""
    name = "finite-difference"
    outcome = checks.judge_finite_difference(ctx, results, name, {k: f"d{k}" for k in PARAMS if k != "b1"}, params)
    if not outcome.passed:
        return outcome
    r = results[name]
    numeric = as_array(checks.pick(r.get("numeric"), ("b1",)))
    analytic = as_array(checks.pick(r.get("analytic"), ("db1",)))
    if analytic is None or analytic.shape != params["b1"].shape or not np.all(np.isfinite(analytic)):
        return Outcome(name, False, f"backward returned no usable db1 of shape {params['b1'].shape}")
    if numeric is None or not np.all(np.isfinite(numeric)):
        return Outcome(name, False, "the loss is not finite when b1 is nudged")
    error = np.abs(numeric - analytic)
    allowed = np.maximum(settings.FD_TOL * np.maximum(np.abs(numeric) + np.abs(analytic), settings.FD_FLOOR),
                         ZERO_GRADIENT_NOISE)
    if (error > allowed).any():
        return Outcome(name, False, f"db1 disagrees with central differences of your own loss in "
                                    f"{int((error > allowed).sum())} of {error.size} entries (worst difference "
                                    f"{float(error.max()):.2g})")
    return outcome


def judge(ctx: Context, results: dict) -> list[Outcome]:
    d = ctx.data
    probes, zero = d["probes"], d["zero"]
    n = range(len(probes))
    sizes = lambda i: probes[i]["sizes"]  # noqa: E731
    out = [
        checks.judge_outputs(ctx, "forward", "forward", results, [f"forward/{i}" for i in n],
                             lambda i: FORWARD_OUTPUTS,
                             lambda i: {label: checks.pick((probes[i]["z2"], probes[i]["cache"]), path)
                                        for label, path in FORWARD_OUTPUTS.items()},
                             sizes=sizes, args=lambda i: [probes[i]["params"], probes[i]["x"]]),
        checks.judge_outputs(ctx, "loss", "softmax_cross_entropy", results, [f"loss/{i}" for i in n],
                             lambda i: {"loss": (0,), "probs": (1,)},
                             lambda i: {"loss": probes[i]["loss"], "probs": probes[i]["probs"]},
                             sizes=sizes, scalars={"loss"}, args=lambda i: [probes[i]["z2"], probes[i]["y"]]),
    ]
    out += checks.judge_links(ctx, results, "backward", LINKS, [f"backward/{i}" for i in n],
                              [backward_args(p) for p in probes], sizes=[p["sizes"] for p in probes],
                              regions=[regions(p) for p in probes],
                              tolerated=("backward/zero", backward_args(zero), regions(zero),
                                         "where h is exactly 0"))
    params, grads, lr = d["step"]
    expected = {k: v - lr * grads[f"d{k}"] for k, v in params.items()}
    out.append(checks.judge_outputs(ctx, "step", "sgd_step", results, ["step"], lambda i: {k: (k,) for k in params},
                                    lambda i: expected, sizes=lambda i: {}, args=lambda i: [params, grads, lr]))
    out.append(judge_finite_difference(ctx, results, d["fd"]["params"]))
    out.append(checks.judge_convergence(ctx, results, "convergence", d["y_train"], "z2"))
    out.append(checks.judge_purity(ctx, results, {
        **{f"forward/{i}": ("forward", {"params": probes[i]["params"], "x": probes[i]["x"]}) for i in n},
        **{f"loss/{i}": ("softmax_cross_entropy", {"z2": probes[i]["z2"], "y": probes[i]["y"]}) for i in n},
        **{f"backward/{i}": ("backward", dict(zip(("params", "cache", "probs", "y"), backward_args(probes[i]))))
           for i in n},
    }))
    shifted = [probes[0]["z2"] + settings.STABILITY_SHIFT, probes[0]["y"]]
    out.append(checks.judge_outputs(ctx, "stability", "softmax_cross_entropy", results, ["stability"],
                                    lambda i: {"loss": (0,), "probs": (1,)},
                                    lambda i: {"loss": probes[0]["loss"], "probs": probes[0]["probs"]},
                                    sizes=sizes, scalars={"loss"}, context="with every logit shifted by +1000, ",
                                    args=lambda i: shifted))
    return out
