"""Compares an attempt's value with the expected one and says what is wrong and where.

The verdict never hands over the fix: it names the shape, the entries that differ, a
constant factor or a transpose when that is what the difference is, and the region
(e.g. "only where z1 < 0") when the caller supplies named masks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader import settings


@dataclass
class Verdict:
    ok: bool
    message: str
    kind: str = "ok"  # ok, missing, blank, type, shape, transposed, nonfinite, scaled, values
    factor: float | None = None


def _shape(a) -> str:
    return "(" + ", ".join(str(n) for n in a) + (",)" if len(a) == 1 else ")")


def close(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.isclose(got, expected, rtol=settings.RTOL, atol=settings.ATOL) & np.isfinite(got)


def as_array(value):
    """value as a float64 array, or None when it is not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return np.asarray(float(value))
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.astype(np.float64)
    return None


def describe_value(value) -> str:
    if isinstance(value, dict) and "__type__" in value:
        return value["__type__"]
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__}"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype}"
    return type(value).__name__


def factor_name(factor: float, sizes: dict[str, int]) -> str:
    """The size the factor equals (N, 1/N...), when exactly one size does: two sizes of the
    same value would make the name a guess."""
    names = []
    for name, n in sizes.items():
        if n > 1 and np.isclose(factor, n, rtol=1e-6):
            names.append(f"{name} = {n}")
        elif n > 1 and np.isclose(factor, 1.0 / n, rtol=1e-6):
            names.append(f"1/{name} = 1/{n}")
    return names[0] if len(names) == 1 else ""


def compare(name: str, got, expected, *, sizes: dict[str, int] | None = None,
            regions: dict[str, np.ndarray] | None = None, scalar: bool = False) -> Verdict:
    """Is got the expected value? sizes name factors (N, H...); regions are named masks."""
    sizes = sizes or {}
    if isinstance(got, dict) and "__blank__" in got:
        return Verdict(False, f"{name} is not written yet", "blank")
    if got is None:
        return Verdict(False, f"{name} is missing", "missing")
    arr = as_array(got)
    exp = np.asarray(expected, dtype=np.float64)
    if arr is None:
        kind = got.get("__type__", "") if isinstance(got, dict) else ""
        if kind.startswith("ndarray of "):  # an array, but not of real numbers
            return Verdict(False, f"{name} is an array of {kind[len('ndarray of '):]}; it should hold real "
                                  "numbers (float64)", "type")
        return Verdict(False, f"{name} should be {'a number' if scalar else 'a numpy array'}, "
                              f"not {describe_value(got)}", "type")
    if scalar:
        if arr.size != 1:
            return Verdict(False, f"{name} should be one number, not an array of shape {_shape(arr.shape)}", "shape")
        arr = arr.reshape(())
    elif arr.shape != exp.shape:
        if arr.shape == exp.shape[::-1] and arr.ndim == 2 and np.all(close(arr.T, exp)):
            return Verdict(False, f"{name} has shape {_shape(arr.shape)}, the transpose of the "
                                  f"expected {_shape(exp.shape)}; its values are those of the transpose", "transposed")
        return Verdict(False, f"{name} has shape {_shape(arr.shape)} but should have shape {_shape(exp.shape)}", "shape")
    bad_values = ~np.isfinite(arr)
    if bad_values.any() and arr.ndim == 0:
        return Verdict(False, f"{name} is {float(arr)}, not a finite number", "nonfinite")
    if bad_values.any():
        return Verdict(False, f"{name} has {int(bad_values.sum())} NaN or infinite "
                              f"{'entry' if bad_values.sum() == 1 else 'entries'}", "nonfinite")
    ok = close(arr, exp)
    if ok.all():
        return Verdict(True, f"{name} is right")
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] > 1 and np.all(close(arr.T, exp)):
        return Verdict(False, f"{name} holds the expected values transposed: its entry [i, j] "
                              "is the one expected at [j, i]", "transposed")
    denom = float(np.sum(exp * exp))
    if denom > 0:
        factor = float(np.sum(arr * exp) / denom)
        named = factor_name(factor, sizes)
        # one number is always some multiple of another: a factor tells something only when it is a size
        # and a factor of 1.000003 says nothing but "a little off"
        meaningful = (arr.size > 1 or named or np.isclose(factor, -1.0)) and not np.isclose(factor, 1.0, rtol=1e-3)
        if meaningful and abs(factor) > 1e-12 and np.all(close(arr, factor * exp)):
            how = f"{factor:.6g} times the expected value" + (f" (a factor of {named})" if named else "")
            if np.isclose(factor, -1.0):
                how = "the expected value with the sign flipped"
            return Verdict(False, f"{name} is {how}", "scaled", factor)
    wrong = ~ok
    if isinstance(got, np.ndarray) and got.dtype.itemsize < 8 and got.dtype.kind == "f" and \
            np.allclose(arr, exp, rtol=1e-5 if got.dtype.itemsize == 4 else 1e-2, atol=1e-6):
        return Verdict(False, f"{name} is right only to {got.dtype.name} precision (the largest difference is "
                              f"{float(np.max(np.abs(arr - exp))):.2g}): the exercise works in float64", "values")
    msg = f"{name} is wrong in {int(wrong.sum())} of {wrong.size} entries"
    if wrong.ndim == 2 and wrong.shape[0] > 1 and wrong.shape[1] > 1:
        rows = np.flatnonzero(wrong.any(axis=1))
        cols = np.flatnonzero(wrong.any(axis=0))
        if len(cols) < wrong.shape[1]:
            msg += f" (columns {', '.join(map(str, cols[:8]))})"
        elif len(rows) < wrong.shape[0]:
            msg += f" (rows {', '.join(map(str, rows[:8]))})"
    for label, mask in (regions or {}).items():
        if mask.shape == wrong.shape and wrong.any() and not (wrong & ~mask).any():
            msg += f", only {label}"
            break
    if arr.ndim == 0:
        a, e = float(arr), float(exp)
        how = (f"{a / e:.4g} times it" if e != 0 and abs(a / e - 1) >= 1e-3 else f"off by {abs(a - e):.2g}")
        return Verdict(False, f"{name} is {a:.6g}, not the expected value ({how})", "values")
    # the worst of the entries that are wrong: a large entry may differ more and still be right
    worst = np.unravel_index(np.argmax(np.where(wrong, np.abs(arr - exp), -1.0)), arr.shape)
    msg += f"; the largest difference is {float(np.abs(arr - exp)[worst]):.3g} at {list(map(int, worst))}"
    return Verdict(False, msg, "values")
