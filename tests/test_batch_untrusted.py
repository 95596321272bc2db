"""A batch of strangers' files (issue 14): every submission gets exactly one row of its own,
nothing in a submission's `.drill/` decides anything, the students (not the files) choose
the exercise, and nothing hangs, whatever the folder holds.

Most tests fake the grading with `verdict`, which reads the verdict from the file's bytes
(a file starting with PASS passes) and refuses anything but a regular file; one test at
the end grades real attempts.
"""
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.catalog import stubgen
from grader.cli import main
from grader.course import batch
from grader.judge.report import CheckResult, Report

PASS = b"PASS\ndef forward(params, x): pass\n"  # tells mlp_backprop by its functions
FAIL = b"FAIL\ndef forward(params, x): pass\n"


def solution(exercise_id: str) -> str:
    return stubgen.strip_markers(catalog.exercise(exercise_id).solution_path.read_text(encoding="utf-8"))


def verdict(path, exercise_id=None, limits=None, default=None, **kwargs) -> Report:
    """A fake grade(): refuses anything but a regular file (the batch must never hand it one),
    and passes a file whose bytes start with PASS."""
    mode = os.stat(path).st_mode
    assert stat.S_ISREG(mode), f"{path} is not a regular file: the batch must not grade it"
    with open(path, "rb") as f:
        passed = f.read(4) == b"PASS"
    exercise = catalog.exercise(exercise_id or default)
    checks = [CheckResult(c.name, passed, c.points if passed else 0, c.points, "ok" if passed else "wrong")
              for c in exercise.checks]
    return Report(exercise=exercise.id, file=str(path), checks=checks)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr("grader.judge.grade.grade", verdict)

    def no_workspace(*args, **kwargs):
        raise AssertionError("a batch must not read any .drill/")

    monkeypatch.setattr("grader.practice.workspace.read_state", no_workspace)


def write(path: Path, data: bytes = PASS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rows_of(*paths, args=()):
    result = CliRunner().invoke(main, ["grade", *map(str, paths), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result, {r["file"]: r for r in json.loads(result.stdout)["results"]} if result.exit_code != 2 else {}


def kind(row) -> str | None:
    return (row["error"] or {}).get("kind")


# ---------------------------------------------------------------- a flat folder

def test_every_py_of_a_flat_folder_gets_one_row_whatever_it_is(tmp_path, fake):
    subs = tmp_path / "subs"
    ada, ben = write(subs / "ada.py"), write(subs / "ben.py", FAIL)
    write(subs / "cai.py", b"")  # empty
    write(subs / "dee.py", b"EPS = 1e-12\n")  # unrelated: no helper in a flat folder
    write(subs / "eli.py", b"\x00\xff\xfe binary")
    write(subs / "fay.py", "# caf\xe9\n".encode("latin-1"))
    write(subs / "gus.py", b"#" * 2_000_000)  # huge
    os.mkfifo(subs / "hal.py")
    (subs / "ivy.py").symlink_to("ada.py")  # a classmate's file: refused, ada keeps hers
    (subs / "jon.py").symlink_to("/dev/zero")
    (subs / "kim.py").symlink_to(tmp_path / "nowhere.py")
    (subs / "lou.py").mkdir()  # a folder named like a file: a student folder holding nothing
    write(subs / "notes.txt", b"not python")
    result, rows = rows_of(subs)
    assert result.exit_code == 1
    names = sorted(Path(f).name for f in rows)
    assert names == ["ada.py", "ben.py", "cai.py", "dee.py", "eli.py", "fay.py", "gus.py", "hal.py", "ivy.py",
                     "jon.py", "kim.py", "lou.py"]
    assert rows[str(ada)]["passed"] and not rows[str(ben)]["passed"] and kind(rows[str(ben)]) is None
    refused = {Path(f).name: r["error"]["message"] for f, r in rows.items() if kind(r) == "bad-input"}
    assert sorted(refused) == ["hal.py", "ivy.py", "jon.py", "kim.py", "lou.py"]
    assert "named pipe" in refused["hal.py"] and "symbolic link" in refused["ivy.py"]
    assert "holds no .py file" in refused["lou.py"]
    assert not any(r["passed"] for f, r in rows.items() if Path(f).name != "ada.py")


def test_a_named_file_is_graded_and_a_named_link_followed(tmp_path, fake):
    ada = write(tmp_path / "ada.py")
    (tmp_path / "mine.py").symlink_to("ada.py")
    _, rows = rows_of(tmp_path / "mine.py", ada)
    assert all(r["passed"] for r in rows.values()) and len(rows) == 2  # two paths, two rows


def test_the_same_path_twice_is_one_row(tmp_path, fake):
    ada = write(tmp_path / "subs" / "ada.py")
    _, rows = rows_of(tmp_path / "subs", ada, tmp_path / "subs" / ".." / "subs" / "ada.py")
    assert list(rows) == [str(ada)]


# ---------------------------------------------------------------- a folder per student

def test_links_inside_a_students_folder_are_graded_as_their_content_for_that_student(tmp_path, fake):
    subs = tmp_path / "subs"
    write(subs / "ada" / "work" / "v1.py")
    (subs / "ada" / "mlp_backprop.py").symlink_to(Path("work") / "v1.py")
    write(subs / "ben" / "mlp_backprop.py", FAIL)
    (subs / "eve" / "x").mkdir(parents=True)
    (subs / "eve" / "mlp_backprop.py").symlink_to(Path("..") / "ada" / "work" / "v1.py")
    (subs / "eve" / "x" / "dir.py").symlink_to(subs / "ada")
    result, rows = rows_of(subs)
    ada_link = rows[str(subs / "ada" / "mlp_backprop.py")]
    assert ada_link["passed"] and rows[str(subs / "ada" / "work" / "v1.py")]["passed"]
    eve = rows[str(subs / "eve" / "mlp_backprop.py")]
    assert kind(eve) == "bad-input" and "outside this student's folder" in eve["error"]["message"]
    assert kind(rows[str(subs / "eve" / "x" / "dir.py")]) == "bad-input"
    assert not rows[str(subs / "ben" / "mlp_backprop.py")]["passed"]
    assert len(rows) == 5


def test_a_students_folder_that_is_a_link_is_refused_in_its_row(tmp_path, fake):
    subs = tmp_path / "subs"
    write(subs / "ada" / "mlp_backprop.py")
    (subs / "zed").symlink_to(subs / "ada")
    _, rows = rows_of(subs)
    assert kind(rows[str(subs / "zed")]) == "bad-input" and rows[str(subs / "ada" / "mlp_backprop.py")]["passed"]


def test_helpers_only_beside_an_attempt_of_the_same_student(tmp_path, fake):
    subs = tmp_path / "subs"
    write(subs / "ada" / "mlp_backprop.py")
    write(subs / "ada" / "lib" / "utils.py", b"EPS = 1\n")  # a helper, even a folder down
    write(subs / "ben" / "utils.py", b"EPS = 1\n")  # ben has nothing else: his row
    result, rows = rows_of(subs)
    assert sorted(rows) == [str(subs / "ada" / "mlp_backprop.py"), str(subs / "ben" / "utils.py")]
    assert "Left out 1 helper module" in result.stderr


# ---------------------------------------------------------------- .drill/ of a submission

@pytest.mark.parametrize("state", ["json", "fifo", "zero", "naive-time", "nan"])
def test_a_shipped_drill_folder_changes_nothing(tmp_path, fake, state):
    subs = tmp_path / "subs"
    for student in ("ada", "ben", "cai", "dee"):
        write(subs / student / "attempt.py", b"PASS\n" + solution("softmax_ce").encode())
    drill = subs / "ada" / ".drill"
    drill.mkdir()
    entry = {"exercise": "mlp_backprop", "file": "attempt.py", "started_at": "2024-01-01T00:00:00+00:00",
             "links": [], "timed_minutes": None}
    if state == "fifo":
        os.mkfifo(drill / "state.json")
    elif state == "zero":
        (drill / "state.json").symlink_to("/dev/zero")
    else:
        if state == "naive-time":
            entry["started_at"] = "2024-01-01T00:00:00"
        elif state == "nan":
            entry["timed_minutes"] = float("nan")
        (drill / "state.json").write_text(json.dumps({"current": "mlp_backprop", "attempts": {"mlp_backprop": entry}}))
    result, rows = rows_of(subs)
    assert result.exit_code == 0, result.output
    assert {r["exercise"] for r in rows.values()} == {"softmax_ce"} and all(r["passed"] for r in rows.values())
    assert not (tmp_path / "subs" / "ben" / ".drill").exists()  # and nothing was written there


# ---------------------------------------------------------------- the students choose the exercise

def test_one_student_with_many_files_of_another_exercise_does_not_outvote_the_class(tmp_path, fake):
    subs = tmp_path / "subs"
    for student in ("ada", "ben", "cai"):
        write(subs / student / "hw.py", b"PASS\n" + solution("mlp_backprop").encode())
    for i in range(5):
        write(subs / "zed" / f"try{i}.py", b"PASS\n" + solution("softmax_ce").encode())
    plan = batch.prepare(batch.expand([subs]))
    assert plan.exercise_id == "mlp_backprop" and plan.votes == {"mlp_backprop": 3, "softmax_ce": 1}
    assert plan.chosen == "most students"


def test_no_clear_majority_is_a_usage_error_naming_the_candidates(tmp_path, fake):
    subs = tmp_path / "subs"
    for student, exercise in (("ada", "mlp_backprop"), ("ben", "mlp_backprop"), ("cai", "softmax_ce")):
        write(subs / f"{student}.py", b"PASS\n" + solution(exercise).encode())
    result = CliRunner().invoke(main, ["grade", str(subs)])
    assert result.exit_code == 2
    assert "mlp_backprop (2 students)" in result.output and "softmax_ce (1 student)" in result.output
    assert "--exercise" in result.output
    given = CliRunner().invoke(main, ["grade", str(subs), "--exercise", "softmax_ce", "--json"])
    assert {r["exercise"] for r in json.loads(given.stdout)["results"]} == {"softmax_ce"}


# ---------------------------------------------------------------- outputs

def test_csv_replaces_a_link_and_never_writes_through_it(tmp_path, fake):
    a, b = write(tmp_path / "subs" / "a.py"), write(tmp_path / "subs" / "b.py")
    precious = write(tmp_path / "precious.txt", b"mine\n")
    (tmp_path / "grades.csv").symlink_to(precious)
    result = CliRunner().invoke(main, ["grade", str(a), str(b), "--csv", str(tmp_path / "grades.csv")])
    assert result.exit_code == 0, result.output
    assert precious.read_bytes() == b"mine\n"
    assert not (tmp_path / "grades.csv").is_symlink() and "file,exercise" in (tmp_path / "grades.csv").read_text()


def test_grade_of_a_pipe_given_directly_is_a_usage_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "pipe.py")])
    assert result.exit_code == 2 and "not a regular file" in result.output


# ---------------------------------------------------------------- real grades

def test_a_real_batch_of_strange_submissions(tmp_path):
    subs = tmp_path / "subs"
    good = write(subs / "ada.py", solution("mlp_backprop").encode())
    write(subs / "ben.py", b"")
    write(subs / "cai.py", b"\xff\xfe\x00junk")
    os.mkfifo(subs / "dee.py")
    (subs / "eve.py").symlink_to("ada.py")
    write(subs / "fay" / ".drill" / "state.json", b'{"attempts": {"x": {"exercise": "nope"}}}')
    write(subs / "fay" / "mlp_backprop.py", solution("mlp_backprop").encode())
    result, rows = rows_of(subs, args=["--exercise", "mlp_backprop", "-j", "2"])
    assert result.exit_code == 1, result.output
    assert rows[str(good)]["passed"] and rows[str(subs / "fay" / "mlp_backprop.py")]["passed"]
    assert kind(rows[str(subs / "ben.py")]) == "missing-function" and kind(rows[str(subs / "cai.py")]) == "syntax"
    assert kind(rows[str(subs / "dee.py")]) == "bad-input" and kind(rows[str(subs / "eve.py")]) == "bad-input"
    assert len(rows) == 6
