"""The comparison that every check rests on, and the wire format, over random shapes (Hypothesis)."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from grader.run import wire
from grader.judge.compare import compare

shapes = st.tuples(st.integers(2, 7), st.integers(2, 7)).filter(lambda s: s[0] != s[1])
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) > 1e-3)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_a_value_equals_itself_and_its_transpose_is_named(shape, seed):
    expected = np.random.default_rng(seed).normal(size=shape)
    assert compare("dW", expected.copy(), expected).ok
    v = compare("dW", expected.T.copy(), expected)
    assert not v.ok and v.kind == "transposed" and "transpose" in v.message


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), n=st.integers(2, 50))
def test_a_factor_of_n_is_named_with_its_size(shape, seed, n):
    expected = np.random.default_rng(seed).normal(size=shape)
    v = compare("dz2", expected * n, expected, sizes={"N": n})
    assert not v.ok and v.kind == "scaled" and f"N = {n}" in v.message
    v = compare("dz2", expected / n, expected, sizes={"N": n})
    assert f"1/N = 1/{n}" in v.message


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_nan_never_passes_and_shapes_must_match_exactly(shape, seed):
    expected = np.random.default_rng(seed).normal(size=shape)
    broken = expected.copy()
    broken[0, 0] = np.nan
    assert compare("x", broken, expected).kind == "nonfinite"
    assert compare("x", expected[0], expected).kind == "shape"  # no broadcasting a row into a matrix
    assert compare("b", np.float64(expected.sum()), expected.sum(axis=0)).kind == "shape"


def test_masked_differences_name_their_region():
    expected = np.arange(12.0).reshape(3, 4) - 5
    got = expected.copy()
    got[expected < 0] += 1
    v = compare("dz1", got, expected, regions={"where z1 < 0": expected < 0})
    assert "only where z1 < 0" in v.message


def test_non_numbers_are_described_not_trusted():
    assert compare("dz2", None, np.zeros(2)).kind == "missing"
    assert compare("dz2", [1.0, 2.0], np.zeros(2)).kind == "type"
    assert compare("loss", np.zeros(3), 0.0, scalar=True).kind == "shape"


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**62, 2**62), finite, st.text(max_size=20),
              arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(0, 4)),
                     elements=st.floats(allow_nan=True, allow_infinity=True)),
              arrays(np.int64, st.integers(0, 5), elements=st.integers(-9, 9))),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=10)


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


@settings(max_examples=60, deadline=None)
@given(value=values)
def test_wire_round_trip_is_exact(value):
    sent = json.loads(json.dumps(wire.encode(value), allow_nan=True))
    assert _same(value, wire.decode(sent))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, on purpose
def test_the_wire_says_an_array_was_an_np_matrix():
    # sent as its values, with the subclass named: a check can say where a matrix came from
    sent = json.loads(json.dumps(wire.encode({"probs": np.matrix([[0.25, 0.75]]), "z2": np.ones((1, 2))})))
    got = wire.decode(sent)
    assert wire.sent_as(got["probs"]) == "matrix" and np.array_equal(got["probs"], [[0.25, 0.75]])
    assert wire.sent_as(got["z2"]) == "" and type(got["z2"]) is np.ndarray
    assert wire.sent_as(got["probs"] * 2) == ""  # what the grader computes from it is not marked
    assert wire.sent_as(np.matrix([[1.0]])) == ""  # only what came over the wire
    with pytest.raises(ValueError):
        wire.decode({**sent["__dict__"]["probs"], "subclass": 7})


@pytest.mark.parametrize("forged", [
    {"__nd__": "object", "shape": [1], "b64": ""},
    {"__nd__": "float64", "shape": [3], "b64": "AAAA"},
    {"__evil__": 1},
])
def test_wire_rejects_what_it_did_not_send(forged):
    with pytest.raises(ValueError):
        wire.decode(forged)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 7), seed=st.integers(0, 2**32 - 1))
def test_a_square_matrix_transposed_is_named_though_its_shape_is_right(n, seed):
    expected = np.random.default_rng(seed).normal(size=(n, n))
    v = compare("S", expected.T.copy(), expected)
    assert not v.ok and v.kind == "transposed" and "transposed" in v.message


def test_a_wrong_number_says_what_it_is_and_how_far_off():
    v = compare("loss", 12.5, 0.5, scalar=True)
    assert not v.ok and v.message == "loss is 12.5, not the expected value (25 times it)"
    assert compare("loss", 0.3, 0.0, scalar=True).message == "loss is 0.3, not the expected value (off by 0.3)"
    assert compare("loss", 3.7140065, 3.714, scalar=True).message.endswith("(off by 6.5e-06)")


def test_the_largest_difference_named_is_one_of_the_wrong_entries():
    expected = np.array([[1e6, 1.0, 1.0]])
    got = np.array([[1e6 + 0.5, 1.2, 1.0]])  # off by 0.5 at [0, 0], 5e-7 relative: right; [0, 1] is wrong
    v = compare("g", got, expected)
    assert "wrong in 1 of 3 entries" in v.message and v.message.endswith("at [0, 1]")


@pytest.mark.parametrize("value, text", [(0.6024, "0.6024"), (0.0, "0.0000"), (1e140, "1e+140"), (7.7e-05, "7.7e-05"),
                                         (float("nan"), "nan"), (123456.7, "1.235e+05")])
def test_a_loss_in_a_message_never_runs_to_a_hundred_digits(value, text):
    from grader.judge.checks import loss_text

    assert loss_text(value) == text


def test_values_right_only_to_float32_precision_say_so():
    expected = np.random.default_rng(3).normal(size=(4, 5))
    v = compare("z1", expected.astype(np.float32), expected)
    assert v.ok or "float32 precision" in v.message  # float32 rounding alone may be within tolerance
    v = compare("z1", (expected * (1 + 3e-6)).astype(np.float32), expected)
    assert not v.ok and "right only to float32 precision" in v.message and "float64" in v.message
    assert "float32" not in compare("z1", expected + 0.1, expected).message


# --- the detectors of compare(): one row each, (detector, got, expected, options, message) -------

from grader.judge.compare import DETECTORS, Case  # noqa: E402

W = np.arange(6.0).reshape(2, 3) + 1
S = np.array([[1.0, 2.0], [3.0, 4.0]])
DETECTOR_ROWS = [
    ("blank", {"__blank__": "dz2"}, W, {}, "x is not written yet"),
    ("missing", None, W, {}, "x is missing"),
    ("array_not_of_reals", {"__type__": "ndarray of complex128"}, W, {},
     "x is an array of complex128; it should hold real numbers (float64)"),
    ("not_numbers", [1.0, 2.0], W, {}, "x should be a numpy array, not a list"),
    ("not_one_number", np.zeros(3), 0.5, {"scalar": True}, "x should be one number, not an array of shape (3,)"),
    ("transposed_shape", W.T.copy(), W, {},
     "x has shape (3, 2), the transpose of the expected (2, 3); its values are those of the transpose"),
    ("wrong_shape", W[0], W, {}, "x has shape (3,) but should have shape (2, 3)"),
    ("nonfinite_number", float("nan"), 0.5, {"scalar": True}, "x is nan, not a finite number"),
    ("nonfinite_entries", np.where(W == 1, np.nan, W), W, {}, "x has 1 NaN or infinite entry"),
    ("right", W.copy(), W, {}, "x is right"),
    ("square_transposed", S.T.copy(), S, {},
     "x holds the expected values transposed: its entry [i, j] is the one expected at [j, i]"),
    ("scaled", W * 2, W, {"sizes": {"N": 2}}, "x is 2 times the expected value (a factor of N = 2)"),
    ("low_precision", (W * (1 + 3e-6)).astype(np.float32), W, {},
     "x is right only to float32 precision (the largest difference is 1.8e-05): the exercise works in float64"),
    ("wrong_number", 12.5, 0.5, {"scalar": True}, "x is 12.5, not the expected value (25 times it)"),
    ("wrong_entries", np.where(W > 4, W + 1, W), W, {"regions": {"where x > 4": W > 4}},
     "x is wrong in 2 of 6 entries (columns 1, 2), only where x > 4; the largest difference is 1 at [1, 1]"),
]


@pytest.mark.parametrize("detector, got, expected, options, message", DETECTOR_ROWS, ids=[r[0] for r in DETECTOR_ROWS])
def test_each_detector_answers_its_own_case_first(detector, got, expected, options, message):
    case = Case.of("x", got, expected, **options)
    names = [d.__name__ for d in DETECTORS]
    assert all(d(case) is None for d in DETECTORS[:names.index(detector)])  # nothing before it answers
    assert DETECTORS[names.index(detector)](case).message == message
    assert compare("x", got, expected, **options).message == message


def test_every_detector_has_a_row_and_an_example():
    assert [d.__name__ for d in DETECTORS] == [r[0] for r in DETECTOR_ROWS]  # the table's order is the rows'
    for d in DETECTORS:
        assert " -> " in (d.__doc__ or "").splitlines()[0], d.__name__
