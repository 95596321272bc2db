"""How the grader probes a softmax_ce attempt: the inputs of every check, and its verdicts.

Each function is called on the grader's own inputs, so a wrong softmax never makes the
loss or dz fail: softmax(z) is compared with the reference; the loss of
softmax_cross_entropy(z, y) with the reference's formula applied to the probs that the
attempt itself returned (the traced reference, as for a gradient link); and
grad_logits(probs, y) is given the reference's probs.

Finite differences: the worker nudges every entry of z itself and takes the attempt's own
loss; the analytic side is grad_logits at the attempt's own probs of z.
"""
from __future__ import annotations

import numpy as np

from grader.judge import checks
from grader.judge.probes import _sizes
from grader import settings
from grader.judge.checks import Context, Outcome
from grader.judge.compare import compare

# Probe sizes: N and C differ in each; C = 2 is the binary case.
SIZES = [{"N": 8, "C": 3}, {"N": 5, "C": 7}, {"N": 6, "C": 2}]
FD_SIZES = {"N": 5, "C": 4}
# Any other seed than the canonical one draws every probe's sizes (the same ranges for all).
RANGES = {"N": (3, 14), "C": (2, 8)}
LOGIT_SCALE = 2.0
FD_LOGIT_SCALE = 1.0  # unsaturated: no gradient entry too small to measure


def make_probe(ref, rng, sizes, scale=LOGIT_SCALE):
    N, C = sizes["N"], sizes["C"]
    z = rng.normal(0.0, scale, (N, C))
    y = rng.permutation(np.arange(N) % C).astype(np.int64)  # every class appears when N >= C
    loss, probs = ref.softmax_cross_entropy(z, y)
    return {"sizes": sizes, "z": z, "y": y, "loss": loss, "probs": probs, "dz": ref.grad_logits(probs, y)}


def build(ctx: Context) -> list[dict]:
    ref, rng = ctx.ref, ctx.rng
    sizes, fd_sizes = _sizes.probe_sizes(ctx, SIZES, FD_SIZES, RANGES)
    probes = [make_probe(ref, rng, s) for s in sizes]
    fd = make_probe(ref, rng, fd_sizes, scale=FD_LOGIT_SCALE)
    # One more softmax probe whose probs no other task is given (grad_logits is given the link
    # probes' probs, and the attempt can read the plan: tests/fixtures/isolation/plan_lookup.py).
    solo = make_probe(ref, np.random.default_rng([ctx.seed, 1]), sizes[-1])
    ctx.data.update(probes=probes, fd=fd, solo=solo)
    # grad_logits runs last, after calls on other probes: one that reuses the probs a previous
    # call left behind, instead of the probs it is given, fails
    tasks = [checks.call(f"softmax/{i}", "softmax", [p["z"]]) for i, p in enumerate(probes)]
    tasks.append(checks.call("softmax/solo", "softmax", [solo["z"]], keep_args=False))
    # partial: a loss written after a softmax still left to do is judged (judge/rerun.py)
    tasks += [checks.call(f"loss/{i}", "softmax_cross_entropy", [p["z"], p["y"]], partial=True)
              for i, p in enumerate(probes)]
    p0 = probes[0]
    shifted, spread = p0["z"] + settings.STABILITY_SHIFT, checks.spread(p0["z"], p0["y"])
    tasks.append(checks.call("stability/softmax", "softmax", [shifted], keep_args=False))
    tasks.append(checks.call("stability/loss", "softmax_cross_entropy", [shifted, p0["y"]], keep_args=False))
    rows = checks.rows_apart(p0["z"])
    tasks.append(checks.call("stability/rows-softmax", "softmax", [rows], keep_args=False))
    tasks.append(checks.call("stability/rows-loss", "softmax_cross_entropy", [rows, p0["y"]], keep_args=False))
    tasks.append(checks.call("stability/spread-softmax", "softmax", [spread], keep_args=False))
    tasks.append(checks.call("stability/spread-loss", "softmax_cross_entropy", [spread, p0["y"]], keep_args=False))
    tasks += [checks.call(f"dz/{i}", "grad_logits", [p["probs"], p["y"]]) for i, p in enumerate(probes)]
    loss = "loss, probs = softmax_cross_entropy(z, y)"
    tasks.append(checks.finite_difference_task(
        "finite-difference", {"z": fd["z"], "y": fd["y"]}, loss=[loss], grads=[loss, "dz = grad_logits(probs, y)"],
        needs=["softmax_cross_entropy", "grad_logits"], params="z", grads_name="dz"))
    return tasks


def judge(ctx: Context, results: dict) -> list[Outcome]:
    probes = ctx.data["probes"]
    sizes = lambda i: probes[i]["sizes"]  # noqa: E731
    alone = [*probes, ctx.data["solo"]]
    softmax = checks.judge_outputs(ctx, "softmax", "softmax", results,
                                   [*(f"softmax/{i}" for i in range(len(probes))), "softmax/solo"],
                                   lambda i: {"probs": ()}, lambda i: {"probs": alone[i]["probs"]},
                                   sizes=lambda i: alone[i]["sizes"], args=lambda i: [alone[i]["z"]])
    loss = judge_loss(ctx, results, probes)
    # softmax and the loss right: the worker's central differences must be the reference's (worker_hijack)
    fd = ctx.data["fd"]
    truth = {"z": fd["dz"]} if softmax.passed and loss.passed else None
    return [
        softmax,
        loss,
        checks.judge_outputs(ctx, "dz", "grad_logits", results, [f"dz/{i}" for i in range(len(probes))],
                             lambda i: {"dz": ()}, lambda i: {"dz": probes[i]["dz"]},
                             sizes=sizes, args=lambda i: [probes[i]["probs"], probes[i]["y"]]),
        checks.judge_finite_difference(ctx, results, "finite-difference", {"z": "dz"}, fd["z"],
                                       grads_fn="grad_logits", truth=truth),
        judge_stability(ctx, results, probes[0]),
        checks.judge_purity(ctx, results, {
            **{f"softmax/{i}": ("softmax", {"z": p["z"]}) for i, p in enumerate(probes)},
            **{f"loss/{i}": ("softmax_cross_entropy", {"z": p["z"], "y": p["y"]}) for i, p in enumerate(probes)},
            **{f"dz/{i}": ("grad_logits", {"probs": p["probs"], "y": p["y"]}) for i, p in enumerate(probes)},
        }),
    ]


def judge_loss(ctx: Context, results: dict, probes: list[dict]) -> Outcome:
    """The loss is right given the attempt's own probs: the reference's formula applied to
    the probs softmax_cross_entropy returned (or the reference's loss outright)."""
    fn, guards = "softmax_cross_entropy", set()
    for i, p in enumerate(probes):
        r = results.get(f"loss/{i}")
        why = checks.failure(r, fn)
        if why:
            return Outcome("loss", False, why, open=checks.unjudged(r))
        problem = checks.shape_problem(r["result"], (1,), fn)
        if problem:
            return Outcome("loss", False, problem)
        loss, probs = checks.pick(r["result"], (0,)), checks.pick(r["result"], (1,))
        args = (p["z"], p["y"])
        if isinstance(loss, dict) and "__blank__" in loss:  # a partial attempt: not written, or from a blank
            return Outcome("loss", False, checks.blank_message("loss", loss.get("error")), open=True)
        given, plain = checks.expected_links(ctx, fn, args, {"probs": probs})
        v = compare("loss", loss, given["loss"], sizes=p["sizes"], scalar=True)
        if v.ok or compare("loss", loss, plain["loss"], scalar=True).ok:
            continue
        guard = checks.log_guard(loss, checks.as_array(probs), p["y"]) if checks.as_array(probs) is not None \
            and checks.as_array(probs).shape == p["probs"].shape else None
        guards.add(guard)
        if guard is None or len(guards) > 1:
            return Outcome("loss", False, checks.sized(v.message, p["sizes"]),
                           evidence=[{"fn": fn, "link": "loss", "args": args, "value": loss,
                                      "grads": {"probs": probs}, "sizes": p["sizes"]}])
    return Outcome("loss", True, "right for every probe, given your own probs",
                   notes=[checks.guard_note(g) for g in guards])


def judge_stability(ctx: Context, results: dict, probe: dict) -> Outcome:
    """softmax and softmax_cross_entropy give, for z + 1000, the same finite values as they
    themselves give for z (a wrong softmax is the softmax check's business, not this one's),
    and finite values for a row with one logit far above the others."""
    shifted, rows = probe["z"] + settings.STABILITY_SHIFT, checks.rows_apart(probe["z"])
    return checks.judge_stability(ctx, results, [
        checks.Shifted("softmax", "softmax/0", "stability/softmax", {"probs": ()}, {"probs": probe["probs"].shape},
                       [shifted], probe["sizes"]),
        checks.Shifted("softmax_cross_entropy", "loss/0", "stability/loss", {"loss": (0,)}, {"loss": ()},
                       [shifted, probe["y"]], probe["sizes"]),
        checks.Shifted("softmax", "softmax/0", "stability/rows-softmax", {"probs": ()}, {"probs": probe["probs"].shape},
                       [rows], probe["sizes"], how=checks.ROWS_APART),
        checks.Shifted("softmax_cross_entropy", "loss/0", "stability/rows-loss", {"loss": (0,)}, {"loss": ()},
                       [rows, probe["y"]], probe["sizes"], how=checks.ROWS_APART)],
        [("softmax", "stability/spread-softmax", {"probs": ()}),
         ("softmax_cross_entropy", "stability/spread-loss", {"probs": (1,)})])
