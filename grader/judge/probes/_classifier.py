"""What the classifier exercises share: the probes and verdicts of a network with the
interface forward(params, x) -> (z2, cache), softmax_cross_entropy(z2, y) -> (loss, probs),
backward(params, cache, probs, y) -> grads and sgd_step(params, grads, lr) -> params, a
ReLU somewhere in the chain, trained on the XOR set.

An exercise module (mlp_backprop, batchnorm_mlp) describes its own network in a Network
(sizes, parameters, cache, links, which value feeds the ReLU) and hands it to build() and
judge() here; grader/judge/checks.py holds the pieces that know no interface at all.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader.judge import checks
from grader.judge.probes import _sizes
from grader import settings
from grader.judge.checks import Context, Outcome

FORWARD = "z2, cache = forward(params, x)"
LOSS = "loss, probs = softmax_cross_entropy(z2, y)"
BACKWARD = "grads = backward(params, cache, probs, y)"
STEP = "params = sgd_step(params, grads, lr)"
BACKWARD_ARGS = ("params", "cache", "probs", "y")


@dataclass(frozen=True)
class Network:
    """One classifier exercise, as its probes see it."""

    sizes: list[dict]  # the link probes' sizes (N, D, H, C) for the canonical seed; all differ in each
    fd_sizes: dict  # the finite-difference probe's sizes for the canonical seed
    ranges: dict  # size -> (least, most): where any other seed draws every probe's sizes (_sizes.py)
    links: list[str]  # the gradient links, in chain order
    cache_keys: tuple[str, ...]  # the cache entries the grader gives backward (its own values)
    forward_outputs: dict  # label in messages -> path into (z2, cache), in chain order
    relu_input: str  # the cache entry the ReLU is applied to
    # random_params(rng, D, H, C, fan_in): non-trivial parameters; fan_in scales weights by fan-in
    random_params: Callable[..., dict]
    # step_inputs(rng, sizes) -> (params, grads, lr): the update step's inputs, shaped for sizes
    step_inputs: Callable[..., tuple]
    # tweak(params): changes the link probes' parameters (not the finite-difference probe's)
    tweak: Callable[[dict], None] | None = None
    # judge_fd(ctx, results, params, offset, truth) -> Outcome: instead of the generic finite-difference check
    judge_fd: Callable[..., Outcome] | None = None
    # exact_zeros(params, x): changes them so that forward itself gives the ReLU's input exact
    # zeros in some entries (the zero probe: a forward, then a backward on its own cache)
    exact_zeros: Callable[[dict, np.ndarray], None] | None = None


def make_probe(net: Network, ref, rng, sizes: dict, *, fan_in: bool = False, tweak: bool = True,
               adjust: Callable[[dict, np.ndarray], None] | None = None) -> dict:
    N, D, H, C = (sizes[k] for k in "NDHC")
    params = net.random_params(rng, D, H, C, fan_in)
    if tweak and net.tweak is not None:
        net.tweak(params)
    x = rng.normal(0, 1, (N, D))
    y = rng.permutation(np.arange(N) % C).astype(np.int64)  # every class appears
    if adjust is not None:
        adjust(params, x)
    z2, cache = ref.forward(params, x)
    loss, probs = ref.softmax_cross_entropy(z2, y)
    return {"sizes": sizes, "params": params, "x": x, "y": y, "z2": z2,
            "cache": {k: cache[k] for k in net.cache_keys}, "loss": loss, "probs": probs}


def zero_probe(net: Network, ref, rng, sizes: dict) -> dict:
    """A probe whose ReLU input has exact zeros, made by forward itself (so an attempt that
    keeps its mask in the cache is judged on it too): only the ReLU convention at 0 can tell
    there."""
    probe = make_probe(net, ref, rng, sizes, adjust=net.exact_zeros)
    if not (probe["cache"][net.relu_input] == 0).any():  # pragma: no cover - a bug in exact_zeros
        raise RuntimeError(f"the zero probe has no exact zero in {net.relu_input}")
    return probe


def fd_probe(net: Network, ref, rng, sizes: dict) -> dict:
    """A probe whose ReLU input keeps FD_KINK_MARGIN away from the kink, with weights scaled by
    fan-in so the softmax is not saturated (saturated gradients are too small to measure), and
    the hard regions of the link probes (net.tweak: batch norm's quiet unit)."""
    for _ in range(1000):
        probe = make_probe(net, ref, rng, sizes, fan_in=True)
        if np.abs(probe["cache"][net.relu_input]).min() > settings.FD_KINK_MARGIN:
            return probe
    raise RuntimeError("no finite-difference probe away from the kink")  # pragma: no cover


def regions(net: Network, probe: dict) -> dict:
    """Named masks over the probe's values, for messages that say where a link is wrong."""
    r = net.relu_input
    before = probe["cache"][r]
    true_class = np.zeros(probe["probs"].shape, dtype=bool)
    true_class[np.arange(len(probe["y"])), probe["y"]] = True
    return {f"where {r} < 0": before < 0, f"where {r} > 0": before > 0, f"where {r} is exactly 0": before == 0,
            "in each row's true-class column": true_class,
            "outside each row's true-class column": ~true_class}


def backward_args(probe: dict) -> tuple:
    return tuple(probe[k] for k in BACKWARD_ARGS)


def build(net: Network, ctx: Context) -> list[dict]:
    ref, rng = ctx.ref, ctx.rng
    sizes_of, fd_sizes = _sizes.probe_sizes(ctx, net.sizes, net.fd_sizes, net.ranges)
    probes = [make_probe(net, ref, rng, s) for s in sizes_of]
    zero, fd = zero_probe(net, ref, rng, sizes_of[1]), fd_probe(net, ref, rng, fd_sizes)
    train, sizes = ctx.exercise.train, ctx.exercise.sizes
    x_train, y_train = ref.make_xor(n=train.n, seed=train.seed)
    init = ref.init_params(sizes["D"], sizes["H"], sizes["C"], seed=train.seed)
    params, grads, lr = net.step_inputs(rng, sizes_of[1])  # shaped like a link probe: not known by its shape
    # in chain order, not the order of params: a step that pairs them by position fails
    step = (params, {k: grads[k] for k in sorted(grads, key=lambda k: net.links.index(k) if k in net.links
                                                 else len(net.links))}, lr)
    # One more forward probe whose outputs no other task is given: the link probes' z2 and
    # cache travel in the plan as the inputs of loss and backward, and the attempt, in the
    # worker's process, can read the plan (tests/fixtures/isolation/plan_lookup.py). Its own
    # generator, so that every other probe stays what it was for a seed.
    solo = make_probe(net, ref, np.random.default_rng([ctx.seed, 1]), sizes_of[-1])
    ctx.data.update(probes=probes, zero=zero, fd=fd, x_train=x_train, y_train=y_train, step=step, solo=solo)
    tasks = []
    for i, p in enumerate(probes):
        tasks.append(checks.call(f"forward/{i}", "forward", [p["params"], p["x"]]))
        tasks.append(checks.call(f"loss/{i}", "softmax_cross_entropy", [p["z2"], p["y"]]))
    tasks.append(checks.call("forward/solo", "forward", [solo["params"], solo["x"]], keep_args=False))
    p0 = probes[0]
    tasks.append(checks.call("stability", "softmax_cross_entropy", [p0["z2"] + settings.STABILITY_SHIFT, p0["y"]]))
    tasks.append(checks.call("stability/rows", "softmax_cross_entropy", [checks.rows_apart(p0["z2"]), p0["y"]],
                             keep_args=False))
    tasks.append(checks.call("stability/spread", "softmax_cross_entropy", [checks.spread(p0["z2"], p0["y"]), p0["y"]],
                             keep_args=False))
    tasks.append(checks.call("step", "sgd_step", list(step), keep_args=False))
    for i, p in enumerate(probes):
        # The attempt's own cache (with any extra keys it keeps) under the grader's values.
        tasks.append(checks.call(f"backward/{i}", "backward", list(backward_args(p)), partial=True,
                                 cache_from={"task": f"forward/{i}", "index": 1, "arg": 1}))
    tasks.append(checks.call("forward/zero", "forward", [zero["params"], zero["x"]], keep_args=False,
                             notes_only=True))
    tasks.append(checks.call("backward/zero", "backward", list(backward_args(zero)), partial=True, notes_only=True,
                             cache_from={"task": "forward/zero", "index": 1, "arg": 1}))
    tasks.append(checks.finite_difference_task(
        "finite-difference", {"params": fd["params"], "x": fd["x"], "y": fd["y"]},
        loss=[FORWARD, LOSS], grads=[FORWARD, LOSS, BACKWARD],
        needs=["forward", "softmax_cross_entropy", "backward"]))
    tasks.append(checks.train_task(
        "convergence", {"params": init, "x": x_train, "y": y_train, "lr": train.lr},
        steps=[FORWARD, LOSS, BACKWARD, STEP], iters=train.iters, final=[FORWARD],
        outputs=["z2", "params"], needs=list(ctx.exercise.functions)))
    return tasks


def judge(net: Network, ctx: Context, results: dict) -> list[Outcome]:
    d = ctx.data
    probes, zero = d["probes"], d["zero"]
    n = range(len(probes))
    sizes = lambda i: probes[i]["sizes"]  # noqa: E731
    fwd = [*probes, d["solo"]]
    out = [
        checks.judge_outputs(ctx, "forward", "forward", results, [*(f"forward/{i}" for i in n), "forward/solo"],
                             lambda i: net.forward_outputs,
                             lambda i: {label: checks.pick((fwd[i]["z2"], fwd[i]["cache"]), path)
                                        for label, path in net.forward_outputs.items()},
                             sizes=lambda i: fwd[i]["sizes"], args=lambda i: [fwd[i]["params"], fwd[i]["x"]]),
        judge_loss(ctx, results, probes),
    ]
    out += checks.judge_links(ctx, results, "backward", net.links, [f"backward/{i}" for i in n],
                              [backward_args(p) for p in probes], sizes=[p["sizes"] for p in probes],
                              regions=[regions(net, p) for p in probes],
                              tolerated=("backward/zero", backward_args(zero), regions(net, zero),
                                         f"where {net.relu_input} is exactly 0"),
                              caveat=checks.extra_cache_caveat(results, [f"forward/{i}" for i in n],
                                                               net.cache_keys, out[0].passed))
    params, grads, lr = d["step"]
    # labelled as what they are: the new params sgd_step returned
    expected = {f"the returned {k}": v - lr * grads[f"d{k}"] for k, v in params.items()}
    out.append(checks.judge_outputs(ctx, "step", "sgd_step", results, ["step"],
                                    lambda i: {f"the returned {k}": (k,) for k in params},
                                    lambda i: expected, sizes=lambda i: {}, args=lambda i: [params, grads, lr]))
    fd, guard = d["fd"], out[1].details.get("log_guard")
    offset = checks.guard_gradient(ctx.ref, guard, fd["params"], fd["x"], fd["y"]) if guard else None
    # Forward and the loss right: the worker's central differences must be the reference's
    # gradient, and the trained parameters are judged by the reference's forward (worker_hijack).
    truth = reference_gradient(ctx.ref, fd) if out[0].passed and out[1].passed else None
    if net.judge_fd is not None:
        out.append(net.judge_fd(ctx, results, fd["params"], offset, truth))
    else:
        out.append(checks.judge_finite_difference(ctx, results, "finite-difference",
                                                  {k: f"d{k}" for k in fd["params"]}, fd["params"], offset=offset,
                                                  truth=truth))
    recompute = (lambda trained: ctx.ref.forward(trained, d["x_train"])[0]) if out[0].passed else None
    out.append(checks.judge_convergence(ctx, results, "convergence", d["y_train"], "z2", recompute=recompute))
    out.append(checks.judge_purity(ctx, results, {
        **{f"forward/{i}": ("forward", {"params": probes[i]["params"], "x": probes[i]["x"]}) for i in n},
        **{f"loss/{i}": ("softmax_cross_entropy", {"z2": probes[i]["z2"], "y": probes[i]["y"]}) for i in n},
        **{f"backward/{i}": ("backward", dict(zip(BACKWARD_ARGS, backward_args(probes[i])))) for i in n},
    }))
    out.append(judge_stability(ctx, results, probes[0]))
    where_it_starts(out, results, [f"backward/{i}" for i in n])
    return out


def reference_gradient(ref, probe: dict) -> dict:
    """parameter -> the reference's gradient of the loss at a probe's parameters and data."""
    z2, cache = ref.forward(probe["params"], probe["x"])
    _, probs = ref.softmax_cross_entropy(z2, probe["y"])
    grads = ref.backward(probe["params"], cache, probs, probe["y"])
    return {k: grads[f"d{k}"] for k in probe["params"]}


def judge_loss(ctx: Context, results: dict, probes: list[dict]) -> Outcome:
    """loss and probs match the reference; a loss with a guard inside the log (-log(p + 1e-7))
    matches within what a loss needs, and passes with a note that says so."""
    ids, n = [f"loss/{i}" for i in range(len(probes))], range(len(probes))
    sizes, args = (lambda i: probes[i]["sizes"]), (lambda i: [probes[i]["z2"], probes[i]["y"]])  # noqa: E731

    def judged(paths):
        return checks.judge_outputs(ctx, "loss", "softmax_cross_entropy", results, ids, lambda i: paths,
                                    lambda i: {"loss": probes[i]["loss"], "probs": probes[i]["probs"]},
                                    sizes=sizes, scalars={"loss"}, args=args)

    outcome = judged({"loss": (0,), "probs": (1,)})
    if outcome.passed or not outcome.evidence or outcome.evidence[0]["label"] != "loss":
        return outcome
    guards = {checks.log_guard(checks.pick(results[ids[i]]["result"], (0,)), probes[i]["probs"], probes[i]["y"])
              for i in n}
    if len(guards) != 1 or None in guards:
        return outcome
    probs = judged({"probs": (1,)})
    if probs.passed:
        guard = guards.pop()
        probs.notes.append(checks.guard_note(guard))
        probs.details["log_guard"] = guard  # finite differences discount its share
    return probs


def where_it_starts(out: list[Outcome], results: dict, backward_ids: list[str]) -> None:
    """Finite differences and training chain the attempt's own functions; when they fail in
    a way the checks of each function alone did not show (every one of them passed, backward
    ran without error on the grader's inputs), the message says where to look: at what one
    function hands the next (an np.matrix from the loss, say), not at the formulas."""
    alone = [o for o in out if o.name not in ("finite-difference", "convergence", "stability")]
    subclass = next((o for o in alone if o.details.get("subclass")), None)
    if subclass is not None:  # a function's own check already says what it hands the next
        for o in out:
            if o.name in ("finite-difference", "convergence") and not o.passed and not o.open:
                o.message += f"; it may start where {subclass.details['subclass']} (see {subclass.name})"
        return
    if not alone or not all(o.passed for o in alone):
        return
    if any(checks.failure(results.get(t), "backward") for t in backward_ids):
        return
    for o in out:
        if o.name in ("finite-difference", "convergence") and not o.passed and not o.open:
            o.message += ("; every function is right on the grader's own inputs (numpy arrays), so look at what "
                          "your functions hand each other: the type and shape of what forward and "
                          "softmax_cross_entropy return")


def judge_stability(ctx: Context, results: dict, p0: dict) -> Outcome:
    """The loss and probs of the first probe's logits + 1000, and of its rows 800 apart, are
    the attempt's own for the logits themselves; one logit per row far above gives finite probs."""
    fn, outputs = "softmax_cross_entropy", {"loss": (0,), "probs": (1,)}
    shapes = {"loss": (), "probs": p0["probs"].shape}
    return checks.judge_stability(ctx, results, [
        checks.Shifted(fn, "loss/0", "stability", outputs, shapes, [p0["z2"] + settings.STABILITY_SHIFT, p0["y"]],
                       p0["sizes"]),
        checks.Shifted(fn, "loss/0", "stability/rows", outputs, shapes, [checks.rows_apart(p0["z2"]), p0["y"]],
                       p0["sizes"], how=checks.ROWS_APART)],
        [(fn, "stability/spread", {"probs": (1,)})])
