"""How the grader probes an mlp_backprop attempt: the inputs of every check, and its verdicts.

The probes and verdicts of the classifier interface live in grader/judge/probes/_classifier.py
and the generic pieces (comparison, link isolation, finite differences, convergence,
purity) in grader/judge/checks.py; this module only knows this network's shapes.
"""
from __future__ import annotations

import numpy as np

from grader.judge.probes import _classifier
from grader.judge.checks import Context, Outcome

# Probe sizes: in each, N, D, H and C all differ, so a transpose that only works when two
# sizes coincide shows; the first has the exercise's H and its two classes.
SIZES = [
    {"N": 16, "D": 3, "H": 8, "C": 2},
    {"N": 7, "D": 3, "H": 5, "C": 4},
    {"N": 9, "D": 4, "H": 6, "C": 3},
]
FD_SIZES = {"N": 6, "D": 3, "H": 5, "C": 4}
# Any other seed than the canonical one draws every probe's sizes (the same ranges for all).
RANGES = {"N": (5, 24), "D": (2, 7), "H": (3, 12), "C": (2, 6)}
LINKS = ["dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1"]


def random_params(rng, D, H, C, fan_in=False):
    """Non-trivial parameters (biases too); fan_in scales each weight by its fan-in."""
    s1, s2 = (1 / np.sqrt(D), 1 / np.sqrt(H)) if fan_in else (1.0, 1.0)
    return {"W1": rng.normal(0, s1, (D, H)), "b1": rng.normal(0, 0.5, H),
            "W2": rng.normal(0, s2, (H, C)), "b2": rng.normal(0, 0.5, C)}


def step_inputs(rng, sizes):
    """Parameters and a full dict of gradients (every link), shaped for sizes."""
    N, D, H, C = (sizes[k] for k in "NDHC")
    params = random_params(rng, D, H, C)
    grads = {f"d{k}": rng.normal(0, 1, v.shape) for k, v in params.items()}
    grads.update({k: rng.normal(0, 1, (N, C if k == "dz2" else H)) for k in ("dz2", "da1", "dz1")})
    return params, grads, 0.1


def exact_zeros(params, x):
    """Even rows of x all zero and even entries of b1 zero: z1 is exactly 0 where both meet."""
    x[::2] = 0.0
    params["b1"][::2] = 0.0


NETWORK = _classifier.Network(
    sizes=SIZES, fd_sizes=FD_SIZES, ranges=RANGES, links=LINKS, cache_keys=("x", "z1", "a1"),
    forward_outputs={"cache['z1']": (1, "z1"), "cache['a1']": (1, "a1"), "z2": (0,)},
    relu_input="z1", random_params=random_params, step_inputs=step_inputs, exact_zeros=exact_zeros)


def build(ctx: Context) -> list[dict]:
    return _classifier.build(NETWORK, ctx)


def judge(ctx: Context, results: dict) -> list[Outcome]:
    return _classifier.judge(NETWORK, ctx, results)
