"""The repository checks itself: `drill bugs --check`."""
from dataclasses import replace

import pytest
from click.testing import CliRunner

from grader.judge import selftest
from grader.cli import main


@pytest.fixture(scope="module")
def cases():
    return selftest.run()


def test_every_case_is_as_expected(cases):
    assert [(c.exercise.id, c.label, c.problem) for c in cases if c.problem] == []
    labels = {c.label for c in cases}
    assert {"reference", "stub", "missing-n", "onehot-off-by-one", "bad-transpose", "inplace-probs",
            "relu-ge", "unstable-softmax"} <= labels


def test_bugs_check_prints_the_matrix_and_exits_0(cases, monkeypatch):
    monkeypatch.setattr(selftest, "run", lambda exercise=None, jobs=None: cases)
    result = CliRunner().invoke(main, ["bugs", "--check"])
    assert result.exit_code == 0, result.output
    assert "reference" in result.output and "missing-n" in result.output
    assert "PROBLEM" not in result.output


def test_a_bug_that_escapes_its_check_fails_the_self_test(cases, monkeypatch):
    broken = [replace(c) for c in cases]
    case = next(c for c in broken if c.label == "missing-n")
    case.bug = replace(case.bug, caught_by="purity")
    assert "escapes its check purity" in case.problem
    monkeypatch.setattr(selftest, "run", lambda exercise=None, jobs=None: broken)
    result = CliRunner().invoke(main, ["bugs", "--check"])
    assert result.exit_code == 1
    assert "PROBLEM: escapes its check purity" in result.output


def test_a_bug_the_diagnosis_does_not_name_is_a_problem(cases):
    case = replace(next(c for c in cases if c.label == "bad-transpose"))
    case.report = replace(case.report, diagnosis=[])
    assert case.problem == "is caught but the diagnosis does not name it"


def test_bugs_check_prints_each_exercises_diagnostic_power(cases):
    text = selftest.matrix(cases)
    for ex in {c.exercise.id for c in cases}:
        line = next(l for l in text.splitlines() if l.startswith(f"{ex}: ") and "bugs caught and named" in l)
        assert "pairs no probe tells apart: none" in line and "bugs no check catches: none" in line
    assert selftest.indistinguishable(cases) == [] and selftest.uncaught(cases) == []


def test_two_bugs_with_the_same_grade_and_a_bug_no_check_sees_are_named(cases):
    twin = replace(next(c for c in cases if c.label == "db1-mean"), label="db1-mean-twin")
    reference = next(c for c in cases if c.label == "reference" and c.exercise.id == "mlp_backprop")
    hidden = replace(twin, label="invisible", report=reference.report)
    assert selftest.indistinguishable([*cases, twin]) == [("db1-mean", "db1-mean-twin")]
    assert selftest.uncaught([*cases, hidden]) == ["invisible"]
    text = selftest.matrix([*cases, twin, hidden])
    assert "pairs no probe tells apart: db1-mean = db1-mean-twin" in text
    assert "bugs no check catches: invisible" in text
