"""The probes' sizes: drawn afresh from each grade's seed, so that no probe is known by its shape.

Every probe of a grade gets its own sizes, all of them distinct (a transpose that only
works when two sizes coincide shows), drawn from one range per size; the finite-difference
probe is drawn from the same ranges as the link probes, so its shape does not give it away.
The canonical seed (settings.PROBE_SEED, what the library's grade() uses unless told
otherwise) keeps the exercise's fixed table instead: the tests pin messages made with it.
`drill grade` draws a new seed for every grade and records it in the report; `--seed`
replays one.
"""
from __future__ import annotations

import numpy as np

from grader import settings


def draw(rng: np.random.Generator, ranges: dict[str, tuple[int, int]]) -> dict[str, int]:
    """One set of sizes, each within its inclusive range, no two equal."""
    for _ in range(10_000):
        sizes = {name: int(rng.integers(lo, hi + 1)) for name, (lo, hi) in ranges.items()}
        if len(set(sizes.values())) == len(sizes):
            return sizes
    raise RuntimeError(f"no distinct sizes within {ranges}")  # pragma: no cover - ranges too narrow


def probe_sizes(ctx, fixed: list[dict], fd_fixed: dict, ranges: dict[str, tuple[int, int]]) -> tuple[list[dict], dict]:
    """(the link probes' sizes, the finite-difference probe's): the fixed table for the
    canonical seed, else as many sets drawn from ranges; recorded in ctx.data["sizes"]."""
    if ctx.seed == settings.PROBE_SEED:
        sizes, fd = [dict(s) for s in fixed], dict(fd_fixed)
    else:
        rng = np.random.default_rng([ctx.seed, 1])  # a stream of its own: the probes' values keep theirs
        sizes = [draw(rng, ranges) for _ in fixed]
        fd = draw(rng, ranges)
    ctx.data["sizes"] = {"probes": sizes, "finite-difference": fd}
    return sizes, fd
