"""`drill grade --feedback terse` (issue 15): pass or fail per check and where, nothing more."""
import json

import numpy as np
from click.testing import CliRunner

import verdicts
from grader.cli import main
from grader.judge.terse import where

MISSING_N = str(verdicts.FIXTURES / "mlp_backprop" / "wrong_missing_n.py")


def grade(*args):
    result = CliRunner().invoke(main, ["grade", *args, "--json", "--seed", "5"])
    return json.loads(result.output)


def test_terse_feedback_says_pass_or_fail_and_where_only():
    full, terse = grade(MISSING_N), grade(MISSING_N, "--feedback", "terse")
    assert [c["passed"] for c in terse["checks"]] == [c["passed"] for c in full["checks"]]
    assert terse["score"] == full["score"]
    assert full["diagnosis"] and terse["diagnosis"] == []
    dz2 = next(c for c in terse["checks"] if c["name"] == "dz2")
    assert dz2["message"] == "dz2 is wrong in every row, in every column, with the right signs"
    assert "factor" in next(c for c in full["checks"] if c["name"] == "dz2")["message"]
    for c in terse["checks"]:
        assert "factor" not in c["message"] and "times" not in c["message"] and "hint" not in c
        assert c["message"] == "right" if c["passed"] else c["message"]
        assert "notes" not in c


def test_the_default_feedback_is_unchanged():
    def same_parts(report):
        return {k: report[k] for k in ("passed", "score", "checks", "diagnosis", "error", "probes")}

    assert same_parts(grade(MISSING_N)) == same_parts(grade(MISSING_N, "--feedback", "full"))


def test_where_names_rows_columns_and_sign():
    expected = np.arange(1.0, 13.0).reshape(4, 3)
    got = expected.copy()
    got[1, 2] = -got[1, 2]
    got[3, 2] += 1
    assert where("dW1", got, expected) == "dW1 is wrong in rows 1, 3, in columns 2, with the wrong sign in 1 of 12 entries"
    assert where("db1", np.zeros(3), np.ones(4)) == "db1 has the wrong shape"
    assert where("db1", np.array([1.0, np.nan]), np.ones(2)) == "db1 has NaN or infinite entries"
    assert where("db1", -np.ones(3), np.ones(3)) == "db1 is wrong in every entry, with the wrong sign in 3 of 3 entries"
