"""Grading many attempts: which files a folder means, the pool, the progress bar, the CLI.

The real batch grades a course-export-shaped folder of fixture attempts, broken ones
included, once (about 4 s on two cores); the rest fakes grade() or grades nothing.
"""
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.course import batch
from grader import catalog, settings
from grader.cli import main
from grader.judge.report import CheckResult, Report

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"

# student folder -> (fixture, passes, error kind)
COURSE = {
    "ada": ("correct_reference.py", True, None),
    "ben": ("correct_loops.py", True, None),
    "cai": ("wrong_missing_n.py", False, None),
    "dee": ("crash_da1_shape.py", False, None),
    "eli": ("broken_syntax.py", False, "syntax"),
    "fay": ("broken_empty.py", False, "missing-function"),
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_report(path, passed=True, error=None) -> Report:
    checks = [CheckResult(c.name, passed, c.points if passed else 0, c.points, "ok" if passed else "wrong")
              for c in catalog.exercise().checks]
    return Report(exercise="mlp_backprop", file=str(path), checks=checks, error=error)


@pytest.fixture
def no_grading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("nothing should have been graded")

    monkeypatch.setattr("grader.judge.grade.grade", refuse)


# ---------------------------------------------------------------- which files

def test_a_folder_means_its_py_files_at_any_depth_skipping_hidden_caches_and_venvs(tmp_path):
    keep = [touch(tmp_path / "subs" / "b.py"), touch(tmp_path / "subs" / "a" / "mlp_backprop.py"),
            touch(tmp_path / "subs" / "a" / "deep" / "helper.py")]
    for skipped in (".git/hooks/x.py", "__pycache__/m.py", "venv/lib/site.py", "a/.ipynb_checkpoints/c.py", "a/.h.py"):
        touch(tmp_path / "subs" / skipped)
    touch(tmp_path / "subs" / "venv" / "pyvenv.cfg")
    touch(tmp_path / "subs" / "notes.txt")
    got = batch.expand([tmp_path / "subs", keep[0], keep[1]])
    assert [s.path for s in got] == sorted(keep)  # in path order, each file once even when named twice
    assert [s.student for s in got] == [tmp_path / "subs" / "a"] * 2 + [None]  # b.py: a flat folder's file
    assert [s.named for s in got] == [False, True, True]


def test_a_file_is_graded_whatever_its_name_and_order_of_arguments_is_kept(tmp_path):
    files = [touch(tmp_path / "z.txt"), touch(tmp_path / "a.py")]
    assert [s.path for s in batch.expand(files)] == files


@pytest.mark.parametrize("make, says", [
    (lambda t: t / "nope", "no such file or folder"),
    (lambda t: touch(t / "empty" / "notes.md").parent, "holds no .py file"),
])
def test_missing_path_or_empty_folder_is_a_usage_error_before_any_grading(tmp_path, no_grading, make, says):
    good = touch(tmp_path / "ok.py")
    with pytest.raises(batch.BatchUsageError, match=says):
        batch.expand([good, make(tmp_path)])
    result = invoke("grade", good, make(tmp_path))
    assert result.exit_code == 2 and says in result.output


def test_unknown_exercise_is_a_usage_error(tmp_path, no_grading):
    result = invoke("grade", touch(tmp_path / "a.py"), touch(tmp_path / "b.py"), "--exercise", "nope")
    assert result.exit_code == 2 and "no exercise called 'nope'" in result.output


def test_gradescope_format_grades_one_submission_not_a_batch(tmp_path, no_grading):
    result = invoke("grade", tmp_path, "--format", "gradescope")
    assert result.exit_code == 2 and "gradescope-bundle" in result.output


def test_json_and_another_format_conflict(tmp_path, no_grading):
    result = invoke("grade", touch(tmp_path / "a.py"), "--json", "--format", "junit")
    assert result.exit_code == 2 and "two formats" in result.output


def test_csv_may_not_overwrite_an_attempt(tmp_path, no_grading):
    a, b = touch(tmp_path / "a.py"), touch(tmp_path / "b.py")
    result = invoke("grade", a, b, "--csv", b)
    assert result.exit_code == 2 and "is one of the attempts" in result.output


def test_csv_writes_only_a_regular_file_of_its_own(tmp_path, no_grading):
    import os

    a, b = touch(tmp_path / "a.py"), touch(tmp_path / "b.py")
    other = touch(tmp_path / "other_attempt.py", "def forward(): pass\n")
    result = invoke("grade", a, b, "--csv", other)  # someone's code, not graded now
    assert result.exit_code == 2 and "is a .py file, perhaps someone's code" in result.output
    assert other.read_text() == "def forward(): pass\n"
    os.mkfifo(tmp_path / "pipe.csv")
    result = invoke("grade", a, b, "--csv", tmp_path / "pipe.csv")
    assert result.exit_code == 2 and "not a regular file" in result.output
    result = invoke("grade", a, b, "--csv", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.output


# ---------------------------------------------------------------- the pool

def test_one_bad_file_never_stops_the_batch(monkeypatch, tmp_path):
    def grade(path, exercise_id=None, limits=None, **kwargs):
        if path.name == "boom.py":
            raise RuntimeError("kaboom")
        return fake_report(path)

    monkeypatch.setattr("grader.judge.grade.grade", grade)
    files = [tmp_path / n for n in ("a.py", "boom.py", "c.py")]
    seen = []
    got = batch.run(files, jobs=2, on_done=seen.append)
    assert [r.file for r in got.reports] == [str(f) for f in files]  # input order, whatever finished first
    assert len(seen) == 3 and not got.passed
    boom = got.reports[1]
    assert boom.error["kind"] == "grader" and "kaboom" in boom.error["message"]
    assert boom.score == 0 and all(c.message == "not run" for c in boom.checks)
    assert got.summary()["errors"] == 1 and got.summary()["passed"] == 2


def test_jobs_default_to_the_cpus_and_never_exceed_the_files(monkeypatch, tmp_path):
    monkeypatch.setattr("grader.judge.grade.grade", lambda path, *a, **k: fake_report(path))
    assert batch.run([tmp_path / "a.py"]).jobs == 1
    assert batch.run([tmp_path / f"{i}.py" for i in range(64)]).jobs == min(64, batch.default_jobs())


def test_a_batch_draws_one_new_seed_per_run_unless_one_is_given(monkeypatch, tmp_path):
    seeds = []

    def grade(path, exercise_id=None, limits=None, seed=None, **kwargs):
        seeds.append(seed)
        return fake_report(path)

    monkeypatch.setattr("grader.judge.grade.grade", grade)
    files = [touch(tmp_path / f"{n}.py") for n in "abc"]
    first, second = batch.run(files, jobs=2), batch.run(files, jobs=2)
    assert seeds[:3] == [first.summary()["seed"]] * 3 and seeds[3:] == [second.summary()["seed"]] * 3
    assert first.summary()["seed"] != second.summary()["seed"]
    assert settings.PROBE_SEED not in seeds  # the canonical seed, which records nothing, is never drawn
    seeds.clear()
    result = invoke("grade", *files, "--exercise", "mlp_backprop", "--seed", "1234", "--json")
    assert result.exit_code == 0, result.output
    assert seeds == [1234] * 3 and json.loads(result.stdout)["summary"]["seed"] == 1234


def test_progress_bar_draws_on_a_terminal_and_is_silent_elsewhere(tmp_path):
    stream = io.StringIO()
    bar = batch.Progress(2, stream, enabled=True)
    bar.update(fake_report("x/a.py"))
    assert "1/2" in stream.getvalue() and "passed 1" in stream.getvalue() and "x/a.py" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()  # StringIO is not a TTY
    bar = batch.Progress(2, quiet)
    bar.update(fake_report("a.py"))
    bar.close()
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------- a real batch

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course export: one folder per student, each holding mlp_backprop.py."""
    root = tmp_path_factory.mktemp("course") / "submissions"
    for student, (fixture, _, _) in COURSE.items():
        (root / student).mkdir(parents=True)
        shutil.copy(FIXTURES / fixture, root / student / "mlp_backprop.py")
    touch(root / "ada" / ".git" / "hook.py", "raise SystemExit")  # never graded
    return root


@pytest.fixture(scope="module")
def graded(course):
    out = course.parent / "grades.csv"
    result = CliRunner().invoke(main, ["grade", str(course), "--json", "--csv", str(out), "--jobs", "2"])
    return result, out


def test_batch_over_a_folder_prints_one_json_object_with_a_row_per_file(graded, course):
    result, _ = graded
    assert result.exit_code == 1, result.output  # some were graded and did not pass
    data = json.loads(result.stdout)
    assert set(data) == {"results", "summary"}
    rows = data["results"]
    assert [r["file"] for r in rows] == [str(course / s / "mlp_backprop.py") for s in sorted(COURSE)]
    for row, (fixture, passes, kind) in zip(rows, (COURSE[s] for s in sorted(COURSE))):
        assert row["passed"] is passes, fixture
        assert (row["error"] or {}).get("kind") == kind, fixture
        assert len(row["checks"]) == len(catalog.exercise().checks)
    summary = data["summary"]
    assert summary["files"] == 6 and summary["passed"] == 2 and summary["not_passed"] == 4
    # one seed drawn for the run, recorded in every report judged, so each can be replayed
    assert summary["seed"] != settings.PROBE_SEED
    judged = [r for r in rows if (r["error"] or {}).get("kind") is None]
    assert judged and all(r["probes"]["seed"] == summary["seed"] for r in judged)
    assert summary["errors"] == 2 and summary["jobs"] == 2
    assert summary["mean_score"] == pytest.approx(sum(r["score"] for r in rows) / 6, abs=0.01)
    assert summary["failed_checks"]["dz2"] == 3  # cai, eli, fay


def test_batch_csv_has_a_row_per_file_and_a_points_column_per_check(graded, course):
    _, out = graded
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [str(course / s / "mlp_backprop.py") for s in sorted(COURSE)]
    assert {c.name for c in catalog.exercise().checks} <= set(rows[0])
    by_student = {Path(r["file"]).parent.name: r for r in rows}
    assert by_student["ada"]["passed"] == "true" and float(by_student["ada"]["score"]) == 100
    assert by_student["eli"]["error_kind"] == "syntax" and float(by_student["eli"]["dz2"]) == 0
    assert by_student["cai"]["first_failure"] == "dz2"


def test_batch_text_is_a_summary_table_and_exit_0_when_all_pass(course):
    result = invoke("grade", course / "ada" / "mlp_backprop.py", course / "ben", "-j", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["score", "result", "file"]
    assert sum(" PASS " in line for line in lines) == 2
    assert "2 attempts graded" in result.stdout and "2 passed, 0 not passed" in result.stdout


def test_one_file_json_is_still_exactly_its_report(course):
    result = invoke("grade", course / "eli" / "mlp_backprop.py", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert "results" not in data and data["error"]["kind"] == "syntax" and data["score"] == 0


def test_a_batch_without_exercise_is_graded_as_the_one_most_students_attempt(tmp_path):
    # a course export where nothing was made by `drill start` and the names tell nothing:
    # one assignment, so a student who did another exercise does not pass it
    from grader.catalog import stubgen

    def solution(ex):
        return stubgen.strip_markers(catalog.exercise(ex).solution_path.read_text(encoding="utf-8"))

    for student in ("ann", "bob", "dan"):
        touch(tmp_path / student / "submission.py", solution("softmax_ce"))
    touch(tmp_path / "cid" / "hw3.py", solution("mlp_backprop"))
    touch(tmp_path / "bob" / "utils.py", "EPS = 1e-12\n")  # a helper beside a submission
    result = invoke("grade", tmp_path, "--json", "-j", "2")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    rows = {Path(r["file"]).parent.name: r for r in data["results"]}
    assert sorted(rows) == ["ann", "bob", "cid", "dan"]  # utils.py is no student's attempt
    assert {r["exercise"] for r in rows.values()} == {"softmax_ce"}
    assert rows["ann"]["passed"] and rows["bob"]["passed"] and not rows["cid"]["passed"]
    summary = data["summary"]
    assert summary["exercise"] == "softmax_ce" and summary["exercise_chosen"] == "most students"
    assert summary["votes"] == {"softmax_ce": 3, "mlp_backprop": 1}  # 75%: a clear majority
    assert summary["helpers_left_out"] == [str(tmp_path / "bob" / "utils.py")]
    assert "Left out 1 helper module" in result.stderr
    # named on the command line, a file is graded whatever it defines
    named = invoke("grade", tmp_path / "bob" / "utils.py", tmp_path / "ann" / "submission.py", "--json")
    assert len(json.loads(named.stdout)["results"]) == 2


def test_ctrl_c_stops_a_batch_and_keeps_what_was_graded(monkeypatch, tmp_path):
    import threading

    from grader.run import sandbox

    graded = []

    def grade(path, exercise_id=None, limits=None, **kwargs):
        if path.name == "b.py":
            raise KeyboardInterrupt  # as if Ctrl-C came while b.py was being graded
        graded.append(path.name)
        return fake_report(path)

    monkeypatch.setattr("grader.judge.grade.grade", grade)
    got = batch.run([tmp_path / n for n in ("a.py", "b.py", "c.py")], jobs=1)
    assert got.interrupted and [Path(r.file).name for r in got.reports] == ["a.py"]
    assert got.summary()["interrupted"] is True
    assert not sandbox._cancelled.is_set()  # the next batch runs normally
    assert threading.active_count() >= 1


def test_files_that_cannot_be_read_are_rows_not_helpers_and_unreadable_folders_are_noted(tmp_path, monkeypatch):
    import os

    from grader.catalog import stubgen

    solution = stubgen.strip_markers(catalog.exercise("mlp_backprop").solution_path.read_text(encoding="utf-8"))
    sub = touch(tmp_path / "s1" / "submission.py", solution)
    os.mkfifo(tmp_path / "s1" / "pipe.py")
    (tmp_path / "s1" / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    plan = batch.prepare(batch.expand([tmp_path]))
    assert plan.helpers == [] and sub in [s.path for s in plan.files] and len(plan.files) == 3
    assert sorted(s.problem is None for s in plan.files) == [False, False, True]
    # a folder os.walk cannot open is named, not a traceback
    real_walk = os.walk

    def walk(top, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "locked")))
        yield from real_walk(top, onerror=onerror, **kwargs)

    monkeypatch.setattr(batch.os, "walk", walk)
    unreadable = []
    assert sub in [s.path for s in batch.expand([tmp_path], unreadable)]
    assert unreadable == [f"{tmp_path / 'locked'}: Permission denied"]


# ---------------------------------------------------------------- the CSV: whose, and to stdout

@pytest.fixture
def fake_grading(monkeypatch):
    """grade() answers at once: a pass for every file but one named wrong*.py."""
    def fake(path, *args, **kwargs):
        return fake_report(path, passed=not Path(path).name.startswith("wrong"))

    monkeypatch.setattr("grader.judge.grade.grade", fake)


def test_csv_names_the_student_folder_or_the_flat_files_stem_and_dash_writes_only_it_to_stdout(tmp_path, fake_grading):
    root = tmp_path / "subs"
    touch(root / "ada" / "mlp_backprop.py")
    touch(root / "ben" / "hw" / "wrong.py")
    touch(root / "cai_smith.py")
    result = CliRunner().invoke(main, ["grade", str(root), "--csv", "-", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # stdout is the CSV and nothing else
    assert [(r["student"], Path(r["file"]).name) for r in rows] == [
        ("ada", "mlp_backprop.py"), ("ben", "wrong.py"), ("cai_smith", "cai_smith.py")]
    assert list(rows[0])[:2] == ["student", "file"]
    assert "attempts graded" in result.stderr and "attempts graded" not in result.stdout  # the table: stderr


def test_csv_dash_with_one_file_and_a_named_drill_start_file_is_its_folders(tmp_path):
    attempt = touch(tmp_path / "dee" / "mlp_backprop.py")  # empty: graded at once, missing-function
    result = CliRunner().invoke(main, ["grade", str(attempt), "--csv", "-"])
    assert result.exit_code == 1, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))  # the report went to stderr
    assert row["student"] == "dee" and row["error_kind"] == "missing-function"
    assert "Score: 0/100" in result.stderr


def test_csv_dash_and_a_format_for_stdout_conflict(tmp_path, no_grading):
    result = invoke("grade", touch(tmp_path / "a.py"), touch(tmp_path / "b.py"), "--csv", "-", "--json")
    assert result.exit_code == 2 and "--csv -" in result.output
