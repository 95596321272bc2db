"""Terse feedback (`drill grade --feedback terse`), for interview practice: each check passes
or fails, and a failing link says only where it is wrong (its shape, the rows and columns,
the entries of the wrong sign), never by what factor, never which bug, never a hint.

May import: judge.compare.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from grader.judge.compare import as_array, close


def _listed(indexes) -> str:
    shown = ", ".join(str(int(i)) for i in indexes[:8])
    return shown + (", ..." if len(indexes) > 8 else "")


def where(name: str, got, expected) -> str:
    """Where got differs from expected, in a few words: shape, rows, columns, sign."""
    arr, exp = as_array(got), np.asarray(expected, dtype=float) if expected is not None else None
    if arr is None or exp is None:
        return f"{name} is wrong"
    if arr.shape != exp.shape:
        return f"{name} has the wrong shape"
    if not np.all(np.isfinite(arr)):
        return f"{name} has NaN or infinite entries"
    wrong = ~close(arr, exp)
    if arr.ndim == 0 or not wrong.any():
        return f"{name} is wrong"
    parts = []
    if wrong.ndim == 2:
        rows, cols = np.flatnonzero(wrong.any(axis=1)), np.flatnonzero(wrong.any(axis=0))
        parts.append("in every row" if len(rows) == wrong.shape[0] else f"in rows {_listed(rows)}")
        parts.append("in every column" if len(cols) == wrong.shape[1] else f"in columns {_listed(cols)}")
    else:
        idx = np.flatnonzero(wrong)
        parts.append("in every entry" if len(idx) == wrong.size else f"in entries {_listed(idx)}")
    flipped = int(np.sum(np.sign(arr) * np.sign(exp) < 0))
    parts.append(f"with the wrong sign in {flipped} of {wrong.size} entries" if flipped else "with the right signs")
    return f"{name} is wrong " + ", ".join(parts)


def terse(report):
    """The report as terse feedback: the same verdicts and score; messages cut down to pass or
    fail and where; no notes, no diagnosis, no hint."""
    checks = [replace(c, message="right" if c.passed else (c.terse or "wrong"), notes=[]) for c in report.checks]
    return replace(report, checks=checks, diagnosis=[])
