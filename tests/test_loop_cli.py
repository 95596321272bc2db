"""The drill loop through Click's runner: start --timed/--weakest, grade, hint, stats, solution, watch."""
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.practice import history, workspace
from grader.catalog import stubgen
from grader.cli import main
from test_history import make_report

EXERCISE = catalog.exercise("mlp_backprop")
STUB = EXERCISE.solution
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def drill(*args):
    return CliRunner().invoke(main, list(args))


def ok(result, code=0):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code:
        assert isinstance(result.exception, SystemExit), result.exception
    return result


class FakeGrade:
    """Stands in for judge.grade.judge under a workspace grade: a report with the checks in
    .wrong judged wrong (practice.grading adds the time since drill start, from its CLOCK)."""

    def __init__(self):
        self.wrong, self.blank, self.calls = set(), set(), []
        self.messages, self.diagnosis = {}, []  # {check: message}; (bug, link, severity) triples
        self.then = None  # called after each grade, with its number (from 1)

    def __call__(self, target):
        self.calls.append(target.path)
        report = make_report(target.path, self.wrong, self.blank, elapsed=None, exercise=target.exercise,
                             messages=self.messages, diagnosis=self.diagnosis)
        if self.then:
            self.then(len(self.calls))
        return report


@pytest.fixture
def fake(monkeypatch):
    fake = FakeGrade()
    monkeypatch.setattr("grader.practice.grading.judge", fake)
    return fake


def rows(folder):
    return history.read(folder)


def corrupt(folder):
    history.db_path().write_bytes(b"not a database " * 200)


# --- start --timed, and the budget in drill grade ------------------------------------------

def test_timed_start_shows_the_budget_and_grade_says_it_was_met(here, fake):
    out = ok(drill("start", "--timed", "15")).output
    assert "budget is 15m" in out
    assert workspace.current_attempt(here).timed_minutes == 15
    result = ok(drill("grade"))
    assert "Full score within budget (0m 0" in result.output and "of 15m)" in result.output
    (g,) = rows(here).grades
    assert g["passed"] == 1 and g["timed_minutes"] == 15 and g["source"] == "attempt"


def test_a_timed_attempt_over_its_budget_says_by_how_much(here, fake, monkeypatch):
    ok(drill("start", "--timed", "1"))
    state = workspace.load_state(here)
    state["attempts"]["mlp_backprop"]["started_at"] = "2024-06-03T09:00:00+00:00"
    workspace.save_state(here, state)
    fake.wrong = {"dz2"}
    result = ok(drill("grade"), 1)
    assert "Not passed yet, and over budget by" in result.output


def test_grade_and_stats_give_the_same_budget_verdict(here, fake, monkeypatch):
    ok(drill("start", "--timed", "10"))
    state = workspace.load_state(here)
    state["attempts"]["mlp_backprop"]["started_at"] = "2024-06-03T09:00:00+00:00"  # long over by the clock
    workspace.save_state(here, state)
    began = datetime(2024, 6, 3, 9, 9, 59, tzinfo=timezone.utc)  # when the grade began: within the budget
    monkeypatch.setattr("grader.practice.grading.CLOCK", lambda: began)
    assert "Full score within budget (9m 59s of 10m)." in ok(drill("grade")).output
    (g,) = rows(here).grades
    assert g["elapsed"] == 599.0
    data = json.loads(ok(drill("stats", "--json")).stdout)["exercises"]["mlp_backprop"]
    assert data["recent"][0]["within_budget"] is True and data["recent"][0]["time_to_pass"] == 599.0
    assert "10m: met" in ok(drill("stats")).output


def test_grade_json_stays_one_object_and_is_still_recorded(here, fake):
    ok(drill("start", "--timed", "15"))
    result = ok(drill("grade", "--json"))
    assert json.loads(result.stdout)["passed"] is True
    assert len(rows(here).grades) == 1


def test_a_broken_history_warns_and_grade_carries_on(here, fake):
    ok(drill("start"))
    corrupt(here)
    fake.wrong = {"dz1"}
    result = ok(drill("grade"), 1)
    assert "Score: 90/100" in result.stdout
    assert "warning" in result.stderr and "history.sqlite" in result.stderr


def test_start_with_a_broken_history_warns_and_writes_the_stub(here):
    (here / ".drill").mkdir()
    corrupt(here)
    result = ok(drill("start"))
    assert (here / STUB).is_file() and "warning" in result.stderr


# --- start --weakest -------------------------------------------------------------------------

def test_weakest_blanks_the_links_most_often_wrong(here, fake):
    ok(drill("start"))
    fake.wrong = {"dz2", "dW1"}
    ok(drill("grade"), 1)
    ok(drill("start", "--force"))
    fake.wrong = {"dz2"}
    ok(drill("grade"), 1)
    result = ok(drill("start", "--weakest", "--force"))
    assert "Blank links: dz2, dW1" in result.output
    text = (here / STUB).read_text(encoding="utf-8")
    assert 'todo("dz2"' in text and 'todo("dW1"' in text and 'todo("dz1"' not in text
    assert workspace.current_attempt(here).links == ["dz2", "dW1"]


def test_weakest_without_a_history_says_what_to_do(here):
    result = ok(drill("start", "--weakest"), 1)
    assert "drill start" in result.output
    assert not (here / STUB).exists()


def test_weakest_and_links_together_is_a_usage_error(here):
    assert "give --links or --weakest, not both" in ok(drill("start", "--weakest", "--links", "dz2"), 2).output


# --- hint ------------------------------------------------------------------------------------

def test_hints_go_one_level_further_each_time_and_start_again_at_start(here, fake):
    ok(drill("start"))
    fake.blank = {c.name for c in EXERCISE.checks}  # the stub as drill start wrote it: nothing written
    first = ok(drill("hint")).output  # never graded: graded now, the first blank
    assert "Hint 1 of 3 for z1 (a nudge)" in first and EXERCISE.blank("z1").hints[0] in first
    fake.wrong, fake.blank = {"dz2"}, set()
    (here / STUB).write_text((here / STUB).read_text() + "\n# dz2 written\n")
    ok(drill("grade"), 1)
    graded = len(fake.calls)
    texts = [ok(drill("hint")).output for _ in range(4)]
    assert len(fake.calls) == graded  # the file is as its latest grade judged it: no grade again
    hints = EXERCISE.blank("dz2").hints
    assert "Hint 1 of 3 for dz2 (a nudge)" in texts[0] and "drill hint dz2" in texts[0]
    assert "Hint 2 of 3 for dz2 (the shape)" in texts[1]
    assert "Hint 3 of 3 for dz2 (the formula)" in texts[2] and "dz2 = (probs - one_hot(y)) / N" in texts[2]
    assert "Hint 3 of 3" in texts[3] and "last hint" in texts[3]
    assert hints[0].split()[0] in texts[0]
    assert "Hint 1 of 3 for dW1" in ok(drill("hint", "dW1")).output
    recorded = rows(here).hints
    assert [(h["link"], h["level"]) for h in recorded] == [("z1", 1), ("dz2", 1), ("dz2", 2), ("dz2", 3),
                                                          ("dz2", 3), ("dW1", 1)]
    ok(drill("start", "--force"))
    assert "Hint 1 of 3 for dz2" in ok(drill("hint", "dz2")).output


def test_hint_when_everything_passes_says_so(here, fake):
    ok(drill("start"))
    ok(drill("grade"))
    assert "nothing to hint" in ok(drill("hint")).output


def test_hint_goes_to_the_link_the_failing_check_names_not_the_first_it_judges(here):
    ok(drill("start"))
    reference = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    (here / STUB).write_text(reference.replace("a1 = np.maximum(z1, 0.0)", "a1 = np.tanh(z1)"), encoding="utf-8")
    assert "cache['a1'] is wrong" in ok(drill("grade"), 1).output
    assert "Hint 1 of 3 for a1 (a nudge)" in ok(drill("hint")).output
    links = json.loads(ok(drill("stats", "--json")).stdout)["exercises"]["mlp_backprop"]["links"]
    assert links["a1"]["wrong_grades"] == 1 and links["z1"]["wrong_grades"] == 0


def test_hint_goes_to_the_blank_the_diagnosis_names(here):
    ok(drill("start", "batchnorm_mlp"))
    shutil.copy(FIXTURES / "batchnorm_mlp" / "wrong_unbiased_var.py", here / "batchnorm_mlp.py")
    shutil.copy(FIXTURES / "batchnorm_mlp" / "correct_compact.py", here)  # it imports the rest from there
    assert "bn-unbiased-variance" in ok(drill("grade"), 1).output
    assert "for var (a nudge)" in ok(drill("hint")).output


def test_an_in_place_dz2_gets_hints_for_dz2_and_counts_as_wrong(here):
    ok(drill("start"))
    shutil.copy(FIXTURES / "mlp_backprop" / "inplace_probs.py", here / STUB)
    graded = ok(drill("grade"), 1).output
    assert "FAIL  purity" in graded and "inplace-probs" in graded
    assert "Hint 1 of 3 for dz2 (a nudge)" in ok(drill("hint")).output
    data = json.loads(ok(drill("stats", "--json")).stdout)["exercises"]["mlp_backprop"]
    assert data["links"]["dz2"]["wrong_first"] == 1 and data["weakest"] == ["dz2"]


def test_a_failing_check_no_diagnosis_explains_is_named_when_there_is_nothing_to_hint(here, fake):
    ok(drill("start"))
    fake.wrong = {"purity"}
    ok(drill("grade"), 1)
    out = ok(drill("hint")).output
    assert "purity fails" in out and "drill hint LINK" in out


def test_hint_for_no_such_link_or_without_a_workspace_is_a_usage_error(here):
    assert "no workspace" in ok(drill("hint"), 2).output
    ok(drill("start"))
    assert "dz2" in ok(drill("hint", "dz9"), 2).output


def test_hint_with_a_broken_history_still_hints(here):
    ok(drill("start"))
    corrupt(here)
    result = ok(drill("hint", "dz2"))
    assert "Hint 1 of 3 for dz2" in result.stdout and "warning" in result.stderr


# --- stats -----------------------------------------------------------------------------------

def test_stats_before_anything_and_outside_a_workspace(here):
    assert "No drills recorded yet" in ok(drill("stats")).output  # the learner's one history, wherever they are
    assert not (here / ".drill").exists()
    ok(drill("start"))
    result = ok(drill("stats"))
    assert "attempts" in result.output or "No drills" in result.output


def test_stats_after_practice_text_and_json(here, fake):
    ok(drill("start"))
    fake.wrong = {"dz1"}
    ok(drill("grade"), 1)
    fake.wrong = set()
    ok(drill("grade"))
    text = ok(drill("stats")).output
    assert "mlp_backprop: 1 attempt, 1 passed, 2 grades" in text
    assert "Weakest links: dz1" in text
    data = json.loads(ok(drill("stats", "--json")).stdout)
    ex = data["exercises"]["mlp_backprop"]
    assert ex["links"]["dz1"]["wrong_first"] == 1 and ex["weakest"] == ["dz1"]
    assert ex["time_to_pass"]["full"]["passed"] == 1


def test_stats_suggest_drilling_the_weakest_links_of_that_exercise(here, fake):
    ok(drill("start", "softmax_ce"))
    fake.wrong = {"dz"}
    ok(drill("grade"), 1)
    assert "(drill them: drill start softmax_ce --weakest --force)" in ok(drill("stats")).output
    result = ok(drill("start", "softmax_ce", "--weakest", "--force"))
    assert "Blank links: dz\n" in result.output
    assert workspace.current_attempt(here).exercise == "softmax_ce"


def test_stats_with_a_broken_history_fails_cleanly(here):
    ok(drill("start"))
    corrupt(here)
    result = ok(drill("stats"), 1)
    assert "history.sqlite" in result.output and "move it away" in result.output
    ok(drill("stats", "--json"), 1)


def test_spot_the_bug_outcome_is_recorded_and_counted(here, fake):
    ok(drill("inject-bug", "--seed", "1"))
    bug = workspace.load_state(here)["injected"]["mlp_backprop_bug.py"]["bug"]
    fake.wrong = {"dz2"}
    ok(drill("grade", "mlp_backprop_bug.py"), 1)
    fake.wrong = set()
    ok(drill("grade", "mlp_backprop_bug.py"))
    grades = rows(here).grades
    assert [(g["source"], g["bug"], g["passed"]) for g in grades] == [("injected", bug, 0), ("injected", bug, 1)]
    assert grades[1]["elapsed"] is not None
    spot = json.loads(ok(drill("stats", "--json")).stdout)["spot_the_bug"]
    assert spot["bugs"][bug]["tries"] == 1 and spot["bugs"][bug]["success_rate"] == 1.0


def test_a_bug_named_with_bug_is_no_try_in_stats(here, fake):
    ok(drill("inject-bug", "--bug", "missing-n"))
    ok(drill("grade", "mlp_backprop_bug.py"))
    assert [(g["source"], g["bug"], g["hidden"]) for g in rows(here).grades] == [("injected", "missing-n", 0)]
    spot = json.loads(ok(drill("stats", "--json")).stdout)["spot_the_bug"]
    assert spot == {"bugs": {}, "hidden_open": 0}
    assert "missing-n" not in ok(drill("stats")).output


# --- solution --------------------------------------------------------------------------------

def test_solution_only_after_passing_or_forced_and_recorded(here, fake):
    ok(drill("start"))
    refused = ok(drill("solution"), 1)
    assert "--force" in refused.output and "def backward" not in refused.output
    reference = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    assert ok(drill("solution", "--force")).stdout == reference
    ok(drill("grade"))
    assert ok(drill("solution")).stdout == reference
    assert [s["forced"] for s in rows(here).solutions] == [True, False]
    assert "reference viewed 2 times (1 before passing)" in ok(drill("stats")).output


def test_solution_outside_a_workspace_goes_by_the_learners_history(here, fake, tmp_path_factory, monkeypatch):
    """The history follows the learner: a pass in one folder unlocks the solution anywhere,
    and a view from outside any workspace is recorded all the same."""
    outside = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(outside)
    refused = ok(drill("solution", "mlp_backprop"), 1)
    assert "not passed mlp_backprop yet" in refused.output and "def backward" not in refused.output
    assert "no workspace here to take the exercise from" in ok(drill("solution"), 2).output
    shown = ok(drill("solution", "mlp_backprop", "--force"))
    assert "def backward" in shown.stdout and not shown.stderr
    monkeypatch.chdir(here)
    ok(drill("start"))
    ok(drill("grade"))  # passes (the fake grade)
    monkeypatch.chdir(outside)
    assert "def backward" in ok(drill("solution", "mlp_backprop")).stdout
    assert not (outside / ".drill").exists()
    assert [s["forced"] for s in rows(None).solutions] == [True, False]


def test_a_solution_view_of_another_exercise_shows_in_its_stats(here):
    ok(drill("start"))
    ok(drill("solution", "softmax_ce", "--force"))
    assert not ok(drill("solution", "softmax_ce", "--force")).stderr
    data = json.loads(ok(drill("stats", "--json")).stdout)["exercises"]
    assert data["softmax_ce"]["solution_views"] == {"total": 2, "forced": 2}
    assert data["mlp_backprop"]["solution_views"]["total"] == 0
    text = ok(drill("stats")).output
    assert "softmax_ce: 0 attempts" in text and "reference viewed 2 times (2 before passing)" in text


def test_solution_of_an_unknown_exercise_is_a_usage_error(here):
    assert "no exercise called 'no_such_thing'" in ok(drill("solution", "no_such_thing", "--force"), 2).output


def test_solution_with_a_broken_history_needs_force(here):
    ok(drill("start"))
    corrupt(here)
    assert "cannot tell" in ok(drill("solution"), 1).output
    assert "def backward" in ok(drill("solution", "--force")).stdout


# --- watch -----------------------------------------------------------------------------------

def test_watch_grades_now_and_after_a_save(here, fake):
    ok(drill("start", "--timed", "10"))
    path = here / STUB
    fake.wrong = {"dz2"}

    def save_a_fix(n):
        if n == 1:
            fake.wrong = set()
            path.write_text(path.read_text() + "\n# saved again\n")

    fake.then = save_a_fix
    result = ok(drill("watch", "--count", "2", "--interval", "0.05"))
    assert result.output.count("mlp_backprop.py:") == 2
    assert "88/100 not passed yet" in result.output and "FAIL  dz2" in result.output
    assert "100/100 PASSED" in result.output and "Full score within budget" in result.output
    assert [g["passed"] for g in rows(here).grades] == [0, 1]


def test_watch_exits_with_the_status_of_its_last_grade(here, fake):
    ok(drill("start"))
    fake.wrong = {"dz2"}
    assert "88/100 not passed yet" in ok(drill("watch", "--count", "1"), 1).output
    fake.wrong = set()
    assert "100/100 PASSED" in ok(drill("watch", "--count", "1")).output


def test_watch_without_an_attempt_is_a_usage_error(here):
    assert "no PATH given and no workspace here" in ok(drill("watch", "--count", "1"), 2).output


# --- explain still works, and every new command has help ------------------------------------

def test_explain_a_bug():
    result = ok(drill("explain", "missing-n"))
    assert "missing-n" in result.output and "Symptom" in result.output


@pytest.mark.parametrize("name", ["hint", "stats", "watch", "solution"])
def test_help(name):
    result = ok(drill(name, "--help"))
    assert "Example" in result.output


# --- end to end: a real grade of the reference ---------------------------------------------

def test_end_to_end_the_reference_passes_and_stats_show_it(here):
    ok(drill("start", "--timed", "15"))
    shutil.copy(EXERCISE.solution_path, here / STUB)
    result = ok(drill("grade"))
    assert "Score: 100/100" in result.output and "Full score within budget" in result.output
    data = json.loads(ok(drill("stats", "--json")).stdout)["exercises"]["mlp_backprop"]
    assert data["passed"] == 1 and data["recent"][0]["within_budget"] is True
    assert all(v["wrong_grades"] == 0 for v in data["links"].values())
    assert "def backward" in ok(drill("solution")).stdout


@pytest.mark.parametrize("args", [("grade",), ("hint",), ("solution",), ("reveal",), ("watch", "--count", "1")])
def test_every_workspace_command_outside_a_workspace_exits_2(here, args):
    result = ok(drill(*args), 2)
    assert "no workspace" in result.output or "no PATH given" in result.output
    assert not (here / ".drill").exists()


def test_hint_judges_the_file_as_it_is_now_not_its_last_grade(here, fake):
    ok(drill("start"))
    fake.wrong = {"dz2"}
    ok(drill("grade"), 1)
    assert "for dz2" in ok(drill("hint")).output and len(fake.calls) == 1  # unchanged: the latest grade
    fake.wrong = {"dW1"}  # the learner fixed dz2, and dW1 is now wrong
    (here / STUB).write_text((here / STUB).read_text() + "\n# changed\n")
    result = ok(drill("hint"))
    assert "Hint 1 of 3 for dW1" in result.stdout and "as it is now" in result.stderr
    assert len(fake.calls) == 2 and len(rows(here).grades) == 2  # graded once more, and recorded
    assert "Hint 2 of 3 for dW1" in ok(drill("hint")).output and len(fake.calls) == 2
    fake.wrong = set()
    (here / STUB).write_text((here / STUB).read_text() + "\n# all fixed\n")
    assert "nothing to hint" in ok(drill("hint")).output
