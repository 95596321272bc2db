"""Interview mode (issue 18): `drill start --interview` is a timed drill whose feedback stays
terse, without hints or the solution, until the time is up (or the attempt passes); then the
full report; the history marks it. The clock is practice.grading.CLOCK, set by each test."""
import json
import sqlite3
from datetime import timedelta

import pytest

from grader import settings
from grader.practice import history, workspace
from test_loop_cli import FakeGrade, drill, ok


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake(monkeypatch):
    fake = FakeGrade()
    fake.wrong = {"dz2"}
    fake.diagnosis = [("missing-n", "dz2", "error")]
    monkeypatch.setattr("grader.practice.grading.judge", fake)
    return fake


@pytest.fixture
def at(here, monkeypatch):
    """Start an interview here, and set the clock to `minutes` after its start."""
    ok(drill("start", "--interview"))
    started = workspace.current_attempt(here).started

    def set_clock(minutes):
        monkeypatch.setattr("grader.practice.grading.CLOCK", lambda: started + timedelta(minutes=minutes))
    set_clock(0)
    return set_clock


def test_start_interview_is_a_fifteen_minute_drill_recorded_as_an_interview(here):
    out = ok(drill("start", "--interview")).output
    assert "Interview: 15m on the clock" in out and "no hints" in out
    attempt = workspace.current_attempt(here)
    assert attempt.interview and attempt.timed_minutes == settings.INTERVIEW_MINUTES == 15
    ok(drill("start", "--interview", "--timed", "5", "--force"))
    assert workspace.current_attempt(here).timed_minutes == 5
    with sqlite3.connect(history.db_path()) as conn:
        assert [i for (i,) in conn.execute("SELECT interview FROM attempts")] == [1, 1]


def test_while_the_time_runs_grade_is_terse_and_hint_and_solution_refuse(here, fake, at):
    at(7)
    graded = ok(drill("grade"), 1)
    assert "dz2" in graded.output and "missing-n" not in graded.output and "in dz2" not in graded.output
    assert "Interview: 8m 00s left" in graded.output
    as_json = json.loads(ok(drill("grade", "--json"), 1).stdout)
    assert as_json["diagnosis"] == [] and as_json["budget"]["interview"] is True
    hint = ok(drill("hint"), 1)
    assert "interview is running" in hint.output and "left" in hint.output
    assert "interview is running" in ok(drill("solution", "--force"), 1).output
    rows = history.read(here)
    assert [g["interview"] for g in rows.grades] == [1, 1] and rows.hints == []


def test_when_the_time_is_up_the_next_grade_shows_the_full_report(here, fake, at):
    at(16)
    graded = ok(drill("grade"), 1)
    assert "missing-n" in graded.output and "Interview over: the 15m are up" in graded.output
    assert "Hint 1" in ok(drill("hint")).output


def test_a_pass_before_the_deadline_ends_the_interview_with_the_full_report(here, fake, at):
    fake.wrong, fake.diagnosis = set(), []
    at(9)
    graded = ok(drill("grade"))
    assert "Interview over: full score in 9m 00s of 15m" in graded.output
    stats = ok(drill("stats")).output
    assert "(interview)" in stats


def test_an_attempt_that_is_not_an_interview_keeps_full_feedback(here, fake, monkeypatch):
    ok(drill("start", "--timed", "15"))
    graded = ok(drill("grade"), 1)
    assert "missing-n" in graded.output and "Interview" not in graded.output


def test_a_state_with_an_interview_mark_that_is_not_true_or_false_is_passed_over(here):
    ok(drill("start", "--interview"))
    state = workspace.load_state(here)
    state["attempts"]["mlp_backprop"]["interview"] = "yes"
    workspace.save_state(here, state)
    with pytest.raises(workspace.WorkspaceError, match="interview mark"):
        workspace.current_attempt(here)


def test_watch_keeps_an_interview_terse_too(here, fake, at):
    at(3)
    result = ok(drill("watch", "--count", "1", "--interval", "0.05"), 1)
    assert "FAIL  dz2" in result.output and "missing-n" not in result.output
    assert "Interview: 12m 00s left" in result.output
