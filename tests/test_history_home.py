"""One history per learner (issue 18): in DRILL_HOME (else the user's data folder), shared by
every workspace; a workspace's own `.drill/history.sqlite` merged in once, losing no row."""
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.practice import history, stats, workspace
from test_history import EXERCISE, T0, Workspace


@pytest.fixture(autouse=True)
def own_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(history.KEY_ENV, str(tmp_path_factory.mktemp("key") / "history.key"))


def test_the_history_lives_in_the_users_data_folder_unless_drill_home_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(history.HOME_ENV)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert history.db_path() == tmp_path / ".local" / "share" / "backprop-drill" / "history.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert history.home() == tmp_path / "data" / "backprop-drill"
    monkeypatch.setenv(history.HOME_ENV, str(tmp_path / "mine"))
    assert history.home() == tmp_path / "mine"


def test_two_folders_one_history(tmp_path):
    monday, tuesday = Workspace(tmp_path / "monday"), Workspace(tmp_path / "tuesday")
    monday.start(T0)
    monday.grade(5, wrong={"dz2"})
    tuesday.start(T0 + timedelta(days=1))
    tuesday.grade(4)
    for folder in (monday.folder, tuesday.folder, None):
        rows = history.read(folder)
        assert len(rows.attempts) == 2 and len(rows.grades) == 2
    assert stats.load(tuesday.folder)["exercises"][EXERCISE.id]["attempts"] == 2
    with sqlite3.connect(history.db_path()) as conn:
        where = {w for (w,) in conn.execute("SELECT workspace FROM events")}
    assert where == {str(monday.folder.resolve()), str(tuesday.folder.resolve())}


def in_a_fresh_folder(tmp_path, monkeypatch, *args):
    """drill args in a new folder, after an attempt in another one got dz2 wrong."""
    old = Workspace(tmp_path / "old")
    old.start(T0)
    old.grade(5, wrong={"dz2"})
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    return CliRunner().invoke(main, list(args))


def test_weakest_in_a_fresh_folder_uses_what_was_practised_elsewhere(tmp_path, monkeypatch):
    result = in_a_fresh_folder(tmp_path, monkeypatch, "start", "--weakest")
    assert result.exit_code == 0, result.output
    assert "Blank links: dz2" in result.output


def _downgrade_to_v2(db: Path) -> None:
    """Make db what drill 2 wrote: no schema 3 columns, no merged table."""
    with sqlite3.connect(db) as conn:
        for table, column in (("grades", "interview"), ("attempts", "interview"), ("events", "workspace")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE merged")
        conn.execute("DROP INDEX events_by_origin")
        conn.execute("ALTER TABLE events DROP COLUMN origin")
        conn.execute("PRAGMA user_version = 2")


def old_workspace(folder: Path, monkeypatch) -> Workspace:
    """A workspace whose history an earlier drill kept in its own `.drill/` (schema 2): two
    attempts, the second passed (signed with the user's key), a hint, an injected bug."""
    home = history.home()
    monkeypatch.setenv(history.HOME_ENV, str(folder / ".drill"))
    ws = Workspace(folder)
    ws.start(T0)
    ws.grade(5, wrong={"dz2"})
    assert history.record_hint(folder, ws.attempt, "dz2", 1, at=T0) is None
    ws.start(T0 + timedelta(days=1))
    ws.grade(3)
    history.record_inject(folder, "bug.py", {"bug": "missing-n", "exercise": EXERCISE.id,
                                             "at": T0.isoformat(), "hidden": True})
    _downgrade_to_v2(history.workspace_file(folder))
    for lock in (folder / ".drill").glob("lock"):
        lock.unlink()
    monkeypatch.setenv(history.HOME_ENV, str(home))
    return ws


def counts() -> dict:
    with sqlite3.connect(history.db_path()) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("events", "attempts", "grades", "grade_checks", "hints", "injections")}


def test_a_workspace_history_is_merged_once_and_loses_no_row(tmp_path, monkeypatch):
    ws = old_workspace(tmp_path / "ws", monkeypatch)
    with sqlite3.connect(history.workspace_file(ws.folder)) as conn:
        before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("events", "attempts", "grades", "grade_checks", "hints", "injections")}
    rows = history.read(ws.folder)
    assert rows.warnings == [] and len(rows.grades) == 2 and len(rows.hints) == 1
    assert counts() == before
    assert history.has_passed(ws.folder, EXERCISE.id)  # the signed pass came along, still signed
    history.read(ws.folder)
    assert history.record_hint(ws.folder, ws.attempt, "dW2", 1) is None
    assert counts() == {**before, "events": before["events"] + 1, "hints": 2}  # nothing merged twice
    assert history.workspace_file(ws.folder).exists()  # left where it was

    copy = tmp_path / "copy"  # the same workspace copied elsewhere: its rows are the same rows
    shutil.copytree(ws.folder, copy)
    history.read(copy)
    assert counts()["grades"] == 2


def test_a_workspace_history_written_again_by_an_older_drill_merges_only_what_is_new(tmp_path, monkeypatch):
    ws = old_workspace(tmp_path / "ws", monkeypatch)
    history.read(ws.folder)
    with sqlite3.connect(history.workspace_file(ws.folder)) as conn:
        conn.execute("INSERT INTO events (kind, exercise, at, payload) VALUES ('solution', ?, ?, '{\"forced\": true}')",
                     (EXERCISE.id, T0.isoformat()))
    assert len(history.read(ws.folder).solutions) == 1
    assert counts()["grades"] == 2


def test_a_workspace_history_from_a_newer_drill_is_left_alone_with_one_warning(tmp_path):
    ws = Workspace(tmp_path)
    with sqlite3.connect(history.workspace_file(ws.folder)) as conn:
        conn.execute("PRAGMA user_version = 99")
    first, second = history.read(ws.folder).warnings, history.read(ws.folder).warnings
    assert len(first) == 1 and "newer drill" in first[0] and second == []
    assert history.workspace_file(ws.folder).exists()


WRITER = textwrap.dedent("""
    import sys
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_history import Workspace, T0
    ws = Workspace(Path(sys.argv[1]))
    ws.start(T0 + timedelta(hours=int(sys.argv[2])))
    for i in range(30):
        ws.grade(i, wrong={"dz2"} if i % 2 else ())
""")


def test_two_terminals_in_two_folders_grading_at_once_lose_nothing(tmp_path):
    here = str(Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / name), str(i), here],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, name in enumerate(("left", "right"))]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    rows = history.read()
    assert len(rows.grades) == 60 and len(rows.attempts) == 2
    assert not workspace.find(tmp_path) and (tmp_path / "left" / ".drill").is_dir()


def test_stats_outside_any_workspace_show_the_one_history(tmp_path, monkeypatch):
    result = in_a_fresh_folder(tmp_path, monkeypatch, "stats", "--json")
    assert result.exit_code == 0, result.output
    assert '"attempts": 1' in result.output


def test_drill_home_may_be_a_link_the_learner_made(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real")
    monkeypatch.setenv(history.HOME_ENV, str(tmp_path / "home"))
    ws = Workspace(tmp_path / "ws")
    ws.start(T0)
    assert (tmp_path / "real" / "history.sqlite").is_file() and len(history.read().attempts) == 1


def test_a_schema_1_workspace_history_merges_and_its_unsigned_passes_unlock_nothing(tmp_path, monkeypatch):
    ws = old_workspace(tmp_path / "ws", monkeypatch)
    with sqlite3.connect(history.workspace_file(ws.folder)) as conn:
        conn.execute("ALTER TABLE grades DROP COLUMN mac")
        conn.execute("PRAGMA user_version = 1")
    assert len(history.read(ws.folder).grades) == 2
    assert not history.has_passed(ws.folder, EXERCISE.id)


def test_a_workspace_history_over_the_bound_is_kept_aside_unread(tmp_path, monkeypatch):
    from grader.practice import merge

    ws = old_workspace(tmp_path / "ws", monkeypatch)
    monkeypatch.setattr(merge, "MAX_BYTES", 1024)
    rows = history.read(ws.folder)
    assert len(rows.warnings) == 1 and "larger than" in rows.warnings[0] and rows.grades == []
    assert list((ws.folder / ".drill").glob("history.sqlite.damaged-*"))


def test_two_commands_merging_the_same_workspace_at_once_merge_it_once(tmp_path, monkeypatch):
    import threading

    ws = old_workspace(tmp_path / "ws", monkeypatch)
    with sqlite3.connect(history.workspace_file(ws.folder)) as conn:
        grades = conn.execute("SELECT count(*) FROM grades").fetchone()[0]
    errors = []

    def command():
        try:
            history.read(ws.folder)
        except Exception as exc:  # noqa: BLE001 - collected, then asserted
            errors.append(exc)

    threads = [threading.Thread(target=command) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and counts()["grades"] == grades
