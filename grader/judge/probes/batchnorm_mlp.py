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

from grader.judge.probes import _classifier
from grader.judge import checks
from grader import settings
from grader.judge.checks import Context, Outcome
from grader.judge.compare import as_array

# In each probe N, D, H and C all differ; the first has the exercise's D and H.
SIZES = [
    {"N": 12, "D": 2, "H": 8, "C": 3},
    {"N": 7, "D": 3, "H": 5, "C": 4},
    {"N": 9, "D": 4, "H": 6, "C": 2},
]
FD_SIZES = {"N": 6, "D": 3, "H": 5, "C": 4}
# Any other seed than the canonical one draws every probe's sizes (the same ranges for all).
RANGES = {"N": (5, 20), "D": (2, 6), "H": (3, 10), "C": (2, 6)}
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


def random_params(rng, D, H, C, fan_in=False):
    """Non-trivial parameters: biases, a gamma that is not 1 and a beta that is not 0."""
    s1, s2 = (D ** -0.5, H ** -0.5) if fan_in else (1.0, 1.0)
    return {"W1": rng.normal(0, s1, (D, H)), "b1": rng.normal(0, 0.5, H),
            "gamma": rng.normal(1.0, 0.5, H), "beta": rng.normal(0, 0.5, H),
            "W2": rng.normal(0, s2, (H, C)), "b2": rng.normal(0, 0.5, C)}


def quiet_unit(params):
    """One unit whose z1 hardly varies over the batch: there EPS changes inv_std by percents."""
    params["W1"][:, 0] *= QUIET_UNIT_SCALE


def step_inputs(rng, sizes):
    """Parameters and a full dict of gradients (every link), shaped for sizes."""
    N, D, H, C = (sizes[k] for k in "NDHC")
    params = random_params(rng, D, H, C)
    shapes = {"dz2": (N, C), "da1": (N, H), "dh": (N, H), "dxhat": (N, H), "dz1": (N, H),
              **{f"d{k}": v.shape for k, v in params.items()}}
    return params, {link: rng.normal(0, 1, shapes[link]) for link in LINKS}, 0.1


def judge_finite_difference(ctx: Context, results: dict, params: dict, offset: dict | None = None,
                            truth: dict | None = None) -> Outcome:
    """The generic check for every parameter but b1; b1 within rounding of its central differences."""
    name = "finite-difference"
    outcome = checks.judge_finite_difference(ctx, results, name, {k: f"d{k}" for k in PARAMS if k != "b1"}, params,
                                             offset=offset, truth=truth)
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


def exact_zeros(params, x):
    """Even units with no weights, bias or beta: their z1 is 0 in every row, so its mean, its
    normalised value and h are exactly 0 there."""
    params["W1"][:, ::2] = 0.0
    params["b1"][::2] = 0.0
    params["beta"][::2] = 0.0


NETWORK = _classifier.Network(
    sizes=SIZES, fd_sizes=FD_SIZES, ranges=RANGES, links=LINKS, cache_keys=CACHE_KEYS, forward_outputs=FORWARD_OUTPUTS,
    relu_input="h", random_params=random_params, step_inputs=step_inputs, tweak=quiet_unit,
    judge_fd=judge_finite_difference, exact_zeros=exact_zeros)


def build(ctx: Context) -> list[dict]:
    return _classifier.build(NETWORK, ctx)


def judge(ctx: Context, results: dict) -> list[Outcome]:
    return _classifier.judge(NETWORK, ctx, results)
