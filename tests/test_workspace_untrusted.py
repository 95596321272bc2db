"""A workspace's `.drill/` may come from anywhere (issue 14): what is in it is read only if it
is a regular file inside the workspace, within a bound, and valid; a damaged one costs one
warning line, never a traceback or a hang; no write goes through a link; and only a pass
the grader itself recorded unlocks `drill solution`.

Grades here are faked (the judge returns a made-up report at once): what is tested is the
workspace around the grade, not the grade.
"""
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog, files
from grader.cli import main
from grader.judge.report import CheckResult, Report
from grader.practice import history, workspace

EXERCISE = catalog.exercise("mlp_backprop")


@pytest.fixture(autouse=True)
def own_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(history.KEY_ENV, str(tmp_path_factory.mktemp("key") / "history.key"))


def report_for(path, passed=True, exercise=EXERCISE) -> Report:
    checks = [CheckResult(c.name, passed, c.points if passed else 0, c.points, "ok" if passed else "wrong")
              for c in exercise.checks]
    return Report(exercise=exercise.id, file=str(path), checks=checks)


@pytest.fixture
def passing(monkeypatch):
    """Every grade passes, at once, as the exercise it was resolved to."""
    monkeypatch.setattr("grader.practice.grading.judge", lambda target: report_for(target.path, True, target.exercise))


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace made by `drill start`, the current folder."""
    monkeypatch.chdir(tmp_path)
    assert drill("start").exit_code == 0
    return tmp_path


def drill(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("drill: warning:")]


def outside(tmp_path_factory) -> Path:
    """A folder outside the workspace, holding a file that must stay as it is."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "precious.txt").write_bytes(b"mine\n")
    return folder


def untouched(folder: Path) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["precious.txt"] and \
        (folder / "precious.txt").read_bytes() == b"mine\n"


# ---------------------------------------------------------------- reading .drill/state.json

def damage(ws: Path, how: str) -> None:
    state = ws / ".drill" / "state.json"
    entry = json.loads(state.read_text())["attempts"]["mlp_backprop"]
    state.unlink()
    if how == "fifo":
        os.mkfifo(state)
    elif how == "zero":
        state.symlink_to("/dev/zero")
    elif how == "huge":
        state.write_bytes(b" " * (workspace.MAX_STATE_BYTES + 1))
    elif how == "deep":
        state.write_text("[" * 100_000 + "]" * 100_000)
    else:
        entry.update({"naive-time": {"started_at": "2024-01-01T09:00:00"}, "nan": {"timed_minutes": float("nan")},
                      "unknown": {"exercise": "nope"}, "escape": {"file": "../../etc/passwd"}}[how])
        state.write_text(json.dumps({"current": "mlp_backprop", "attempts": {"mlp_backprop": entry}}))


@pytest.mark.parametrize("how", ["fifo", "zero", "huge", "deep", "naive-time", "nan", "unknown", "escape"])
def test_a_damaged_state_costs_one_warning_and_the_grade_goes_on(ws, passing, how):
    damage(ws, how)
    result = drill("grade", ws / "mlp_backprop.py")
    assert result.exit_code == 0, result.output
    assert len(warnings(result)) == 1 and "state.json" in warnings(result)[0], result.stderr
    assert "Score: 100/100" in result.stdout and "Time since drill start" not in result.stdout


@pytest.mark.parametrize("how", ["fifo", "zero", "huge"])
def test_a_command_that_writes_the_state_moves_a_damaged_one_aside(ws, how):
    damage(ws, how)
    result = drill("start", "softmax_ce")
    assert result.exit_code == 0, result.output
    assert len(warnings(result)) == 1 and "moved it aside" in warnings(result)[0]
    assert workspace.load_state(ws)["current"] == "softmax_ce"
    assert len(list((ws / ".drill").glob("state.json.damaged-*"))) == 1


def test_a_lock_that_is_a_pipe_or_a_link_is_moved_aside(ws, tmp_path_factory):
    away = outside(tmp_path_factory)
    (ws / ".drill" / "lock").unlink()
    (ws / ".drill" / "lock").symlink_to(away / "precious.txt")
    notes = []
    workspace.update_state(ws, lambda s: s.__setitem__("x", 1), notes)
    assert untouched(away) and "moved it aside" in notes[0]
    (ws / ".drill" / "lock").unlink()
    os.mkfifo(ws / ".drill" / "lock")
    workspace.update_state(ws, lambda s: s.__setitem__("x", 2))
    assert workspace.load_state(ws)["x"] == 2


# ---------------------------------------------------------------- writes never follow a link out

def test_a_drill_folder_that_is_a_link_is_never_written_through(tmp_path, tmp_path_factory, monkeypatch, passing):
    away = outside(tmp_path_factory)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".drill").symlink_to(away)
    (tmp_path / "mlp_backprop.py").write_text("# mine\n")
    graded = drill("grade", "mlp_backprop.py")
    assert graded.exit_code == 0 and any(".drill" in w for w in warnings(graded))
    started = drill("start", "--force")
    assert started.exit_code == 1 and "symbolic link" in started.output
    assert untouched(away) and (tmp_path / "mlp_backprop.py").read_text() == "# mine\n"


@pytest.mark.parametrize("name", ["history.sqlite", "history.sqlite-wal", "history.sqlite-journal"])
def test_a_history_that_is_a_link_is_never_written_through(ws, tmp_path_factory, passing, name):
    away = outside(tmp_path_factory)
    target = history.db_path().with_name(name)
    if target.exists():
        target.unlink()
    target.symlink_to(away / "precious.txt")
    result = drill("grade")
    assert result.exit_code == 0 and "not recorded in the history" in result.stderr and "symbolic link" in result.stderr
    assert untouched(away)


def test_a_history_that_is_a_pipe_never_hangs(ws, passing):
    db = history.db_path()
    db.unlink()
    os.mkfifo(db)
    result = drill("grade")
    assert result.exit_code == 0 and "named pipe" in result.stderr
    assert drill("stats").exit_code == 1


@pytest.mark.parametrize("kind", ["link", "pipe", "garbage", "other-program", "bad-row"])
def test_a_damaged_workspace_history_costs_one_warning_is_kept_aside_and_merges_nothing(
        ws, tmp_path_factory, passing, kind):
    away = outside(tmp_path_factory)
    old = history.workspace_file(ws)
    if kind == "link":
        old.symlink_to(away / "precious.txt")
    elif kind == "pipe":
        os.mkfifo(old)
    elif kind == "garbage":
        old.write_bytes(b"no database here " * 100)
    else:
        with sqlite3.connect(old) as conn:
            conn.execute("CREATE TABLE mine (x)" if kind == "other-program" else "CREATE TABLE events (id, kind)")
            conn.execute("PRAGMA user_version = 0" if kind == "other-program" else "PRAGMA user_version = 2")
    first, second = drill("grade"), drill("grade")
    assert first.exit_code == 0 and second.exit_code == 0
    merged = [w for w in warnings(first) if "history.sqlite" in w]
    assert len(merged) == 1 and "nothing of it was merged" in merged[0], first.stderr
    assert not [w for w in warnings(second) if "history.sqlite" in w]  # once
    assert not os.path.lexists(old) and list(old.parent.glob("history.sqlite.damaged-*"))
    assert untouched(away) and len(history.read(ws).grades) == 2


def test_backups_that_are_a_link_stop_start_force_before_anything_is_written(ws, tmp_path_factory):
    away = outside(tmp_path_factory)
    (ws / "mlp_backprop.py").write_text("# my work\n")
    (ws / ".drill" / "backups").symlink_to(away)
    result = drill("start", "--force")
    assert result.exit_code == 1 and "symbolic link" in result.output
    assert untouched(away) and (ws / "mlp_backprop.py").read_text() == "# my work\n"


def test_start_force_replaces_a_link_to_an_attempt_not_its_target(ws, tmp_path_factory):
    away = outside(tmp_path_factory)
    (ws / "mlp_backprop.py").unlink()
    (ws / "mlp_backprop.py").symlink_to(away / "precious.txt")
    assert drill("start").exit_code == 1  # occupied
    result = drill("start", "--force")
    assert result.exit_code == 0, result.output
    assert untouched(away) and not (ws / "mlp_backprop.py").is_symlink()
    kept = list((ws / ".drill" / "backups").iterdir())
    assert len(kept) == 1 and kept[0].is_symlink() and kept[0].resolve() == away / "precious.txt"


def test_start_force_over_a_pipe_refuses_without_hanging(ws):
    (ws / "mlp_backprop.py").unlink()
    os.mkfifo(ws / "mlp_backprop.py")
    result = drill("start", "--force")
    assert result.exit_code == 1 and "named pipe" in result.output


def test_inject_bug_out_link_force_replaces_the_link_not_its_target(ws, tmp_path_factory):
    away = outside(tmp_path_factory)
    (ws / "bug.py").symlink_to(away / "precious.txt")
    assert drill("inject-bug", "--bug", "missing-n", "--out", "bug.py").exit_code == 1
    result = drill("inject-bug", "--bug", "missing-n", "--out", "bug.py", "--force")
    assert result.exit_code == 0, result.output
    assert untouched(away) and not (ws / "bug.py").is_symlink() and "def backward" in (ws / "bug.py").read_text()
    assert "bug.py" in workspace.load_state(ws)["injected"]


def test_inject_bug_from_a_pipe_is_a_usage_error_not_a_hang(ws):
    os.mkfifo(ws / "pipe.py")
    result = drill("inject-bug", "--from", "pipe.py")
    assert result.exit_code == 2 and "pipe.py is not a file" in result.output


def test_files_helpers_refuse_links_pipes_and_devices(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(files.Refused, match="symbolic link"):
        files.write_atomic(tmp_path / "link" / "x", "x", overwrite=True, root=tmp_path)
    assert list((tmp_path / "real").iterdir()) == []
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(files.Refused, match="named pipe"):
        files.read_bounded(tmp_path / "fifo", 10)
    with pytest.raises(files.Refused, match="device"):
        files.read_bounded(Path("/dev/zero"), 10, follow=True)
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(files.Refused, match="symbolic link"):
        files.read_bounded(tmp_path / "zero", 10)
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(files.Refused, match="larger than 10"):
        files.read_bounded(tmp_path / "big", 10)
    assert files.output_path(tmp_path / "link") == tmp_path / "link"


# ---------------------------------------------------------------- only the grader's own pass unlocks the solution

def test_a_pass_the_grader_recorded_unlocks_the_solution(ws, passing):
    assert drill("solution").exit_code == 1
    assert drill("grade").exit_code == 0
    assert drill("solution").exit_code == 0


def forge(ws: Path, passed_was_failing: bool = False, db: Path | None = None) -> None:
    """What an attempt with write access to the history could do: put a pass in it."""
    with sqlite3.connect(db or history.db_path()) as conn:
        if passed_was_failing:
            conn.execute("UPDATE grades SET passed = 1, score = max_score")
            return
        attempt = json.loads((ws / ".drill" / "state.json").read_text())["attempts"]["mlp_backprop"]
        conn.execute("INSERT INTO events (kind, exercise, at, payload) VALUES ('grade', 'mlp_backprop', ?, '{}')",
                     (attempt["started_at"],))
        event = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        conn.execute("INSERT INTO grades (event_id, exercise, at, file, source, attempt, score, max_score, passed, mac) "
                     "VALUES (?, 'mlp_backprop', ?, 'mlp_backprop.py', 'attempt', ?, 100, 100, 1, ?)",
                     (event, attempt["started_at"], attempt["started_at"], "0" * 64))


def test_a_pass_written_into_the_history_by_anyone_else_unlocks_nothing(ws, monkeypatch):
    forge(ws)
    result = drill("solution")
    assert result.exit_code == 1 and "not passed" in result.output
    monkeypatch.setattr("grader.practice.grading.judge", lambda target: report_for(target.path, False))
    assert drill("grade").exit_code == 1
    forge(ws, passed_was_failing=True)  # a failing grade turned into a pass: its MAC no longer matches
    assert not history.has_passed(ws, "mlp_backprop")
    assert drill("solution").exit_code == 1


def test_a_pass_forged_in_a_workspace_history_is_merged_but_unlocks_nothing(ws, passing):
    old = history.workspace_file(ws)
    with sqlite3.connect(history.db_path()) as src, sqlite3.connect(old) as dst:
        src.backup(dst)  # a workspace history of schema 3, as the attempt could make one
    history.db_path().unlink()
    forge(ws, db=old)
    assert not history.has_passed(ws, "mlp_backprop")
    assert len(history.read(ws).grades) == 1  # merged all the same: it is history
    assert drill("solution").exit_code == 1


def test_a_history_from_elsewhere_keyed_with_another_secret_unlocks_nothing(ws, passing, monkeypatch, tmp_path_factory):
    assert drill("grade").exit_code == 0 and history.has_passed(ws, "mlp_backprop")
    monkeypatch.setenv(history.KEY_ENV, str(tmp_path_factory.mktemp("other") / "history.key"))
    assert not history.has_passed(ws, "mlp_backprop")  # another user's key (or none yet)


def test_a_key_that_is_not_private_is_refused_with_a_clear_message(ws, passing):
    assert drill("grade").exit_code == 0
    os.chmod(history.key_path(), 0o644)
    result = drill("solution")
    assert result.exit_code == 1 and "not a private file" in result.output


def test_an_older_history_is_migrated_and_its_unsigned_passes_unlock_nothing(ws, passing):
    db = history.db_path()
    forge(ws)
    with sqlite3.connect(db) as conn:  # schema 1: grades had no mac
        for table, column in (("grades", "mac"), ("grades", "interview"), ("attempts", "interview"),
                              ("events", "workspace")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE merged")
        conn.execute("DROP INDEX events_by_origin")
        conn.execute("ALTER TABLE events DROP COLUMN origin")
        conn.execute("PRAGMA user_version = 1")
    assert not history.has_passed(ws, "mlp_backprop")
    assert history.read(ws).grades  # still read as it is
    assert drill("grade").exit_code == 0  # writes: migrated to schema 2, this pass signed
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert history.has_passed(ws, "mlp_backprop")
