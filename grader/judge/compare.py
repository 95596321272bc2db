"""Compares an attempt's value with the expected one and says what is wrong and where.

The verdict never hands over the fix: it names the shape, the entries that differ, a
constant factor or a transpose when that is what the difference is, and the region
(e.g. "only where z1 < 0") when the caller supplies named masks.

Each kind of difference is one small detector in DETECTORS, asked in order, its docstring a
one-line example of what it says; the first that answers gives the verdict, and the last,
"wrong in k of n entries", always answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from grader import settings


@dataclass
class Verdict:
    ok: bool
    message: str
    kind: str = "ok"  # ok, or the kind of what is wrong: blank, missing, type, shape, transposed, nonfinite,
    # scaled, values (each from a detector below); or "raised", from checks.judge_link
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
    """Is got the expected value? sizes name factors (N, H...); regions are named masks.

    The verdict is the first of DETECTORS that has something to say; the last always does."""
    case = Case.of(name, got, expected, sizes=sizes, regions=regions, scalar=scalar)
    for detector in DETECTORS:
        verdict = detector(case)
        if verdict is not None:
            return verdict
    raise AssertionError("the last detector always answers")  # pragma: no cover


@dataclass
class Case:
    """What the detectors look at: the attempt's value as it came (got), as float64 (arr, None
    when it is not numbers; a scalar's one number as shape ()), and the expected value."""

    name: str
    got: object
    exp: np.ndarray
    sizes: dict[str, int]
    regions: dict[str, np.ndarray]
    scalar: bool

    @classmethod
    def of(cls, name: str, got, expected, *, sizes: dict[str, int] | None = None,
           regions: dict[str, np.ndarray] | None = None, scalar: bool = False) -> "Case":
        return cls(name, got, np.asarray(expected, dtype=np.float64), sizes or {}, regions or {}, scalar)

    @cached_property
    def arr(self) -> np.ndarray | None:
        arr = as_array(self.got)
        return arr.reshape(()) if arr is not None and self.scalar and arr.size == 1 else arr

    @cached_property
    def wrong(self) -> np.ndarray:
        """The entries that are not close to the expected ones."""
        return ~close(self.arr, self.exp)


Detector = Callable[[Case], "Verdict | None"]
DETECTORS: list[Detector] = []  # in the order they are asked: the first verdict wins


def detector(fn: Detector) -> Detector:
    DETECTORS.append(fn)
    return fn


@detector
def blank(c: Case) -> Verdict | None:
    """`{"__blank__": "dz2"}` -> "dz2 is not written yet"."""
    if isinstance(c.got, dict) and "__blank__" in c.got:
        return Verdict(False, f"{c.name} is not written yet", "blank")


@detector
def missing(c: Case) -> Verdict | None:
    """`None` -> "dz2 is missing"."""
    if c.got is None:
        return Verdict(False, f"{c.name} is missing", "missing")


@detector
def array_not_of_reals(c: Case) -> Verdict | None:
    """an array of complex128 -> "dz2 is an array of complex128; it should hold real numbers (float64)"."""
    kind = c.got.get("__type__", "") if isinstance(c.got, dict) else ""
    if c.arr is None and kind.startswith("ndarray of "):
        return Verdict(False, f"{c.name} is an array of {kind[len('ndarray of '):]}; it should hold real "
                              "numbers (float64)", "type")


@detector
def not_numbers(c: Case) -> Verdict | None:
    """`[1.0, 2.0]` -> "dz2 should be a numpy array, not a list"."""
    if c.arr is None:
        return Verdict(False, f"{c.name} should be {'a number' if c.scalar else 'a numpy array'}, "
                              f"not {describe_value(c.got)}", "type")


@detector
def not_one_number(c: Case) -> Verdict | None:
    """a loss of shape (3,) -> "loss should be one number, not an array of shape (3,)"."""
    if c.scalar and c.arr.size != 1:
        return Verdict(False, f"{c.name} should be one number, not an array of shape {_shape(c.arr.shape)}",
                       "shape")


@detector
def transposed_shape(c: Case) -> Verdict | None:
    """W.T for a (2, 3) W -> "dW has shape (3, 2), the transpose of the expected (2, 3); ..."."""
    arr, exp = c.arr, c.exp
    if not c.scalar and arr.ndim == 2 and arr.shape != exp.shape and arr.shape == exp.shape[::-1] and \
            np.all(close(arr.T, exp)):
        return Verdict(False, f"{c.name} has shape {_shape(arr.shape)}, the transpose of the "
                              f"expected {_shape(exp.shape)}; its values are those of the transpose", "transposed")


@detector
def wrong_shape(c: Case) -> Verdict | None:
    """a (3,) row for a (2, 3) value -> "dz2 has shape (3,) but should have shape (2, 3)"."""
    if not c.scalar and c.arr.shape != c.exp.shape:
        return Verdict(False, f"{c.name} has shape {_shape(c.arr.shape)} but should have shape "
                              f"{_shape(c.exp.shape)}", "shape")


@detector
def nonfinite_number(c: Case) -> Verdict | None:
    """a loss of nan -> "loss is nan, not a finite number"."""
    if c.arr.ndim == 0 and not np.isfinite(c.arr):
        return Verdict(False, f"{c.name} is {float(c.arr)}, not a finite number", "nonfinite")


@detector
def nonfinite_entries(c: Case) -> Verdict | None:
    """one NaN in dz2 -> "dz2 has 1 NaN or infinite entry"."""
    bad = int((~np.isfinite(c.arr)).sum())
    if bad:
        return Verdict(False, f"{c.name} has {bad} NaN or infinite {'entry' if bad == 1 else 'entries'}",
                       "nonfinite")


@detector
def right(c: Case) -> Verdict | None:
    """the expected value, within settings.RTOL and ATOL -> "dz2 is right"."""
    if not c.wrong.any():
        return Verdict(True, f"{c.name} is right")


@detector
def square_transposed(c: Case) -> Verdict | None:
    """S.T for a square S -> "S holds the expected values transposed: its entry [i, j] is ..."."""
    arr = c.arr
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] > 1 and np.all(close(arr.T, c.exp)):
        return Verdict(False, f"{c.name} holds the expected values transposed: its entry [i, j] "
                              "is the one expected at [j, i]", "transposed")


@detector
def scaled(c: Case) -> Verdict | None:
    """dz2 * N, with sizes {"N": 4} -> "dz2 is 4 times the expected value (a factor of N = 4)"."""
    arr, exp = c.arr, c.exp
    denom = float(np.sum(exp * exp))
    if denom <= 0:
        return None
    factor = float(np.sum(arr * exp) / denom)
    named = factor_name(factor, c.sizes)
    # one number is always some multiple of another: a factor tells something only when it is a size
    # and a factor of 1.000003 says nothing but "a little off"
    meaningful = (arr.size > 1 or named or np.isclose(factor, -1.0)) and not np.isclose(factor, 1.0, rtol=1e-3)
    if not (meaningful and abs(factor) > 1e-12 and np.all(close(arr, factor * exp))):
        return None
    how = f"{factor:.6g} times the expected value" + (f" (a factor of {named})" if named else "")
    if np.isclose(factor, -1.0):
        how = "the expected value with the sign flipped"
    return Verdict(False, f"{c.name} is {how}", "scaled", factor)


@detector
def low_precision(c: Case) -> Verdict | None:
    """z1 in float32 -> "z1 is right only to float32 precision (the largest difference is ...)"."""
    got = c.got
    if isinstance(got, np.ndarray) and got.dtype.itemsize < 8 and got.dtype.kind == "f" and \
            np.allclose(c.arr, c.exp, rtol=1e-5 if got.dtype.itemsize == 4 else 1e-2, atol=1e-6):
        return Verdict(False, f"{c.name} is right only to {got.dtype.name} precision (the largest difference "
                              f"is {float(np.max(np.abs(c.arr - c.exp))):.2g}): the exercise works in float64",
                       "values")


@detector
def wrong_number(c: Case) -> Verdict | None:
    """12.5 for 0.5 -> "loss is 12.5, not the expected value (25 times it)"."""
    if c.arr.ndim == 0:
        a, e = float(c.arr), float(c.exp)
        how = (f"{a / e:.4g} times it" if e != 0 and abs(a / e - 1) >= 1e-3 else f"off by {abs(a - e):.2g}")
        return Verdict(False, f"{c.name} is {a:.6g}, not the expected value ({how})", "values")


@detector
def wrong_entries(c: Case) -> Verdict:
    """dz1 off where z1 < 0 -> "dz1 is wrong in 3 of 12 entries, only where z1 < 0; the largest ..."."""
    wrong, diff = c.wrong, np.abs(c.arr - c.exp)
    # the worst of the entries that are wrong: a large entry may differ more and still be right
    worst = np.unravel_index(np.argmax(np.where(wrong, diff, -1.0)), c.arr.shape)
    return Verdict(False, f"{c.name} is wrong in {int(wrong.sum())} of {wrong.size} entries"
                          f"{_lines_of(wrong)}{_region_of(wrong, c.regions)}; the largest difference is "
                          f"{float(diff[worst]):.3g} at {list(map(int, worst))}", "values")


def _lines_of(wrong: np.ndarray) -> str:
    """" (columns 0, 2)" or " (rows 1)" when the wrong entries of a matrix lie in some of them only."""
    if wrong.ndim == 2 and wrong.shape[0] > 1 and wrong.shape[1] > 1:
        rows = np.flatnonzero(wrong.any(axis=1))
        cols = np.flatnonzero(wrong.any(axis=0))
        if len(cols) < wrong.shape[1]:
            return f" (columns {', '.join(map(str, cols[:8]))})"
        if len(rows) < wrong.shape[0]:
            return f" (rows {', '.join(map(str, rows[:8]))})"
    return ""


def _region_of(wrong: np.ndarray, regions: dict[str, np.ndarray]) -> str:
    """", only where z1 < 0" for the first named region that holds every wrong entry."""
    for label, mask in regions.items():
        if mask.shape == wrong.shape and wrong.any() and not (wrong & ~mask).any():
            return f", only {label}"
    return ""
