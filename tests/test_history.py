"""The history (.drill/history.sqlite), the stats computed from it, timed budgets and the watch loop."""
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader import catalog
from grader.practice import history, stats, timing, watch, workspace
from grader.judge.report import CheckResult, Diagnosis, Report

EXERCISE = catalog.exercise("mlp_backprop")
BLANKS = [b.name for b in EXERCISE.blanks]
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)


def make_report(path, wrong=(), blank=(), elapsed=None, exercise=EXERCISE, messages=None, diagnosis=()):
    """A report of exercise's checks: those in wrong judged wrong, those in blank not written.

    messages: {check: message} in place of the made-up ones; diagnosis: (bug, link, severity) triples.
    """
    checks, messages = [], messages or {}
    for c in exercise.checks:
        if c.name in wrong:
            message = messages.get(c.name, f"{c.name} is wrong where z1 < 0")
            checks.append(CheckResult(c.name, False, 0, c.points, message))
        elif c.name in blank:
            message = messages.get(c.name, f"{c.name} is not written yet")
            checks.append(CheckResult(c.name, False, 0, c.points, message, open=True))
        else:
            checks.append(CheckResult(c.name, True, c.points, c.points, "right"))
    found = [Diagnosis(bug=bug, link=link, severity=severity, message=f"{bug} in {link}")
             for bug, link, severity in diagnosis]
    return Report(exercise=exercise.id, file=str(path), checks=checks, diagnosis=found, elapsed=elapsed)


class Workspace:
    """A workspace in a temporary folder, with a clock the test moves on."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / ".drill").mkdir(parents=True, exist_ok=True)
        self.file = folder / EXERCISE.solution
        self.file.write_text("# attempt\n")
        self.attempt = None

    def start(self, at, links=BLANKS, timed=None):
        self.attempt = workspace.Attempt(exercise=EXERCISE.id, file=EXERCISE.solution,
                                         started_at=at.isoformat(), links=list(links), timed_minutes=timed)
        workspace.record_start(self.folder, self.attempt)
        assert history.record_start(self.folder, self.attempt) is None

    def grade(self, minutes, wrong=(), blank=()):
        at = self.attempt.started + timedelta(minutes=minutes)
        assert history.record_grade(self.file, make_report(self.file, wrong, blank), at=at) is None


@pytest.fixture(autouse=True)
def own_key(tmp_path_factory, monkeypatch):
    """Each test keys its history with a key of its own, outside its workspace."""
    path = tmp_path_factory.mktemp("key") / "history.key"
    monkeypatch.setenv(history.KEY_ENV, str(path))
    return path


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


# --- recording and reading --------------------------------------------------------------

def test_no_history_reads_as_empty(ws):
    rows = history.read(ws.folder)
    assert not rows.exists and rows.grades == []
    assert stats.load(ws.folder)["exercises"] == {}


def test_a_grade_is_recorded_with_every_check_and_the_time_since_start(ws):
    ws.start(T0)
    ws.grade(5, wrong={"dz2"}, blank={"dW1"})
    rows = history.read(ws.folder)
    (g,) = rows.grades
    assert g["source"] == "attempt" and g["attempt"] == T0.isoformat()
    assert g["elapsed"] == 300 and g["passed"] == 0 and g["file"] == EXERCISE.solution
    assert g["checks"]["dz2"] == "wrong" and g["checks"]["dW1"] == "open" and g["checks"]["dW2"] == "pass"
    assert rows.attempts[0]["links"] == BLANKS
    with sqlite3.connect(history.db_path()) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]
        payload = json.loads(conn.execute("SELECT payload FROM events WHERE kind = 'grade'").fetchone()[0])
    assert kinds == ["start", "grade"]
    assert payload["score"] == 80 and payload["statuses"]["dz2"] == "wrong"


def test_a_file_outside_any_workspace_is_not_recorded(tmp_path):
    path = tmp_path / "loose.py"
    path.write_text("# attempt\n")
    assert history.record_grade(path, make_report(path)) is None
    assert not (tmp_path / ".drill").exists()


@pytest.mark.parametrize("passed, open_, status", [(True, False, "pass"), (False, True, "open"), (False, False, "wrong")])
def test_check_status_tells_wrong_from_not_written(passed, open_, status):
    assert history.check_status(CheckResult("dz2", passed, 0, 12, "message", open=open_)) == status


# --- a broken history never stops a command ----------------------------------------------

def test_garbage_history_is_reported_and_recording_carries_on(ws, capsys):
    history.db_path().write_bytes(b"this is no database, just some bytes" * 100)
    ws.attempt = workspace.Attempt(EXERCISE.id, EXERCISE.solution, T0.isoformat(), BLANKS)
    warning = history.record_grade(ws.file, make_report(ws.file))
    assert warning.startswith("not recorded in the history") and "\n" not in warning
    assert capsys.readouterr().err == ""  # the library says it; the command prints it
    with pytest.raises(history.HistoryError, match="move it away"):
        history.read(ws.folder)


def test_a_folder_in_place_of_the_history_is_reported(ws, capsys):
    history.db_path().mkdir()
    warning = history.record_hint(ws.folder, workspace.Attempt(EXERCISE.id, "f.py", T0.isoformat(), []), "dz2", 1)
    assert "history.sqlite" in warning and capsys.readouterr().err == ""
    with pytest.raises(history.HistoryError):
        history.read(ws.folder)


def test_a_history_from_a_newer_drill_is_not_touched(ws):
    with sqlite3.connect(history.db_path()) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(history.HistoryError, match="newer drill"):
        history.read(ws.folder)
    assert "newer drill" in history.record_start(ws.folder, workspace.Attempt(EXERCISE.id, "f.py", T0.isoformat(), []))


# --- concurrency and a kill in the middle of a write -------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from grader.practice import history, workspace
    folder, n, who = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    attempt = workspace.Attempt("mlp_backprop", "mlp_backprop.py", "2024-06-03T09:00:00+00:00", [])
    print("ready", flush=True)
    i = 0
    while n < 0 or i < n:
        assert history.record_hint(folder, attempt, who, i + 1) is None, "a write failed"
        i += 1
""")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    (tmp_path / ".drill").mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "40", who],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for who in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    rows = history.read(tmp_path)
    assert sorted(h["link"] for h in rows.hints) == ["a"] * 40 + ["b"] * 40


RACER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from grader.practice import history, workspace
    start, folders = float(sys.argv[1]), sys.argv[2:]
    attempt = workspace.Attempt("mlp_backprop", "mlp_backprop.py", "2024-06-03T09:00:00+00:00", [])
    for i, folder in enumerate(folders):  # every process writes each history's first record at once
        os.environ[history.HOME_ENV] = folder + "/home"
        while time.time() < start + 0.3 * i:
            pass
        assert history.record_hint(Path(folder), attempt, "x", 1) is None, "a write failed"
""")


def test_commands_creating_the_history_at_once_all_write(tmp_path, monkeypatch):
    # Creating the history and switching it to WAL is not covered by SQLite's busy wait:
    # five commands doing it at the same instant used to lose some of their records.
    folders = [tmp_path / f"w{i}" for i in range(4)]
    for f in folders:
        (f / ".drill").mkdir(parents=True)
    start = time.time() + 2.0  # after every process has started
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(start), *map(str, folders)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(5)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    for f in folders:
        monkeypatch.setenv(history.HOME_ENV, str(f / "home"))
        assert len(history.read(f).hints) == 5


def test_threads_writing_at_once_lose_nothing(ws):
    ws.start(T0)
    errors = []

    def write(who):
        for i in range(25):
            if history.record_grade(ws.file, make_report(ws.file, wrong={who}),
                                    at=T0 + timedelta(seconds=i)) is not None:
                errors.append(who)

    threads = [threading.Thread(target=write, args=(who,)) for who in ("dz2", "dz1", "db1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(history.read(ws.folder).grades) == 75


def test_a_writer_killed_mid_write_leaves_a_readable_history(tmp_path):
    (tmp_path / ".drill").mkdir()
    for delay in (0.1, 0.2, 0.3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "-1", "k"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        with sqlite3.connect(history.db_path()) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = history.read(tmp_path)
        assert rows.hints, "the writer wrote nothing before it was killed"
        # every committed hint has its event, none half-written
        with sqlite3.connect(history.db_path()) as conn:
            assert conn.execute("SELECT count(*) FROM hints").fetchone()[0] == \
                   conn.execute("SELECT count(*) FROM events WHERE kind = 'hint'").fetchone()[0]
    assert history.record_hint(tmp_path, workspace.Attempt(EXERCISE.id, "f.py", T0.isoformat(), []), "after", 1) is None


# --- stats ---------------------------------------------------------------------------------

def week(ws):
    """Five days of practice: the time to a full score comes down, dz2 stays weak."""
    for day, (minutes, wrong) in enumerate([(14, {"dz2", "dW2"}), (11, {"dz2"}), (9, {"dz2", "dz1"}),
                                            (6, set()), (4, {"dz2"})]):
        ws.start(T0 + timedelta(days=day))
        ws.grade(0, blank={c.name for c in EXERCISE.checks})  # graded the untouched stub first: not "wrong"
        if wrong:
            ws.grade(minutes / 2, wrong=wrong)
        ws.grade(minutes)


def test_stats_show_the_time_coming_down_and_the_links_still_wrong(ws):
    week(ws)
    s = stats.load(ws.folder)["exercises"]["mlp_backprop"]
    assert s["attempts"] == 5 and s["passed"] == 5
    full = s["time_to_pass"]["full"]
    assert full["trend"] == [14 * 60, 11 * 60, 9 * 60, 6 * 60, 4 * 60]
    assert full["best"] == 240 and full["recent"] == 240 and full["first"] == 840
    assert s["links"]["dz2"] == {"check": "dz2", "attempts": 5, "wrong_first": 4, "recent_wrong": 4,
                                 "grades": 9, "wrong_grades": 4}
    assert s["links"]["dz1"]["wrong_first"] == 1 and s["links"]["db1"]["wrong_grades"] == 0
    assert s["weakest"] == ["dz2", "dW2", "dz1"]
    assert [a["first_score"] for a in s["recent"]] == [80, 88, 78, 100, 88]
    assert [a["best_score"] for a in s["recent"]] == [100] * 5
    text = stats.render_text(stats.load(ws.folder))
    assert "best 4m 00s, latest 4m 00s, first 14m 00s" in text
    assert "14m 00s -> 11m 00s -> 9m 00s -> 6m 00s -> 4m 00s" in text
    assert "Weakest links: dW2, dz2, dz1" not in text and "Weakest links: dz2, dW2, dz1" in text


def test_weakest_links_come_from_the_history(ws):
    week(ws)
    assert stats.weakest_links(ws.folder, EXERCISE, count=1) == ["dz2"]
    assert stats.weakest_links(ws.folder, EXERCISE) == ["dz2", "dW2", "dz1"]


def test_weakest_with_nothing_wrong_says_so(ws):
    with pytest.raises(stats.StatsError, match="no history yet"):
        stats.weakest_links(ws.folder, EXERCISE)
    ws.start(T0)
    ws.grade(3)
    with pytest.raises(stats.StatsError, match="has been wrong yet"):
        stats.weakest_links(ws.folder, EXERCISE)


def test_a_partial_attempt_is_timed_apart_and_counts_only_its_links(ws):
    ws.start(T0)
    ws.grade(10)
    ws.start(T0 + timedelta(days=1), links=["dz2", "dz1"])
    ws.grade(1, wrong={"dz2", "dW1"})  # dW1 was filled in: not the user's link
    ws.grade(2)
    s = stats.load(ws.folder)["exercises"]["mlp_backprop"]
    assert s["time_to_pass"]["full"]["recent"] == 600
    assert s["time_to_pass"]["partial"]["recent"] == 120
    assert s["links"]["dz2"]["wrong_first"] == 1 and s["links"]["dW1"]["wrong_grades"] == 0
    assert s["links"]["dW1"]["attempts"] == 1


def test_timed_attempts_say_whether_the_budget_was_met(ws):
    ws.start(T0, timed=10)
    ws.grade(7)
    ws.start(T0 + timedelta(days=1), timed=5)
    ws.grade(7)
    recent = stats.load(ws.folder)["exercises"]["mlp_backprop"]["recent"]
    assert [a["within_budget"] for a in recent] == [True, False]


def injected(ws, name, bug, at, hidden=False):
    path = ws.folder / name
    path.write_text("# with a bug\n")
    state = workspace.load_state(ws.folder)
    entry = {"bug": bug, "exercise": EXERCISE.id, "at": at.isoformat(), "hidden": hidden}
    state.setdefault("injected", {})[name] = entry
    workspace.save_state(ws.folder, state)
    assert history.record_inject(ws.folder, name, entry) is None
    return path


def test_spot_the_bug_success_rate_and_time_per_bug(ws):
    p = injected(ws, "a.py", "missing-n", T0, hidden=True)
    history.record_grade(p, make_report(p, wrong={"dz2"}), at=T0 + timedelta(minutes=1))
    history.record_grade(p, make_report(p), at=T0 + timedelta(minutes=3))
    injected(ws, "a.py", "missing-n", T0 + timedelta(hours=1), hidden=True)  # given up: replaced by a new one
    p = injected(ws, "a.py", "bad-transpose", T0 + timedelta(hours=2), hidden=True)
    history.record_grade(p, make_report(p), at=T0 + timedelta(hours=2, minutes=2))
    spot = stats.load(ws.folder)["spot_the_bug"]
    assert spot["bugs"]["missing-n"] == {"tries": 2, "fixed": 1, "success_rate": 0.5,
                                         "best_seconds": 180, "recent_seconds": 180}
    assert spot["bugs"]["bad-transpose"]["fixed"] == 1 and spot["hidden_open"] == 0
    assert "missing-n" in stats.render_text(stats.load(ws.folder))


def test_a_bug_named_when_injected_is_no_try(ws):
    p = injected(ws, "named.py", "missing-n", T0)  # drill inject-bug --bug missing-n: nothing to find
    history.record_grade(p, make_report(p), at=T0 + timedelta(minutes=1))
    injected(ws, "b.py", "relu-ge", T0 + timedelta(hours=1))  # named, never graded: not a hunt either
    p = injected(ws, "hunt.py", "bad-transpose", T0 + timedelta(hours=2), hidden=True)
    injected(ws, "hunt.py", "db1-mean", T0 + timedelta(hours=3))  # a named one replaces the hunt
    spot = stats.load(ws.folder)["spot_the_bug"]
    assert spot == {"bugs": {"bad-transpose": {"tries": 1, "fixed": 0, "success_rate": 0.0,
                                               "best_seconds": None, "recent_seconds": None}},
                    "hidden_open": 0}


def test_a_hidden_bug_being_hunted_is_not_named(ws):
    injected(ws, "hunt.py", "onehot-off-by-one", T0, hidden=True)
    summary = stats.load(ws.folder)
    assert summary["spot_the_bug"] == {"bugs": {}, "hidden_open": 1}
    assert "onehot" not in stats.render_text(summary) and "onehot" not in json.dumps(summary)


def test_revealing_a_hidden_bug_is_a_try_given_up(ws):
    p = injected(ws, "hunt.py", "onehot-off-by-one", T0, hidden=True)
    assert history.record_reveal(ws.folder, "hunt.py", EXERCISE.id, T0.isoformat(), at=T0 + timedelta(minutes=9)) is None
    history.record_grade(p, make_report(p), at=T0 + timedelta(minutes=10))  # fixed after looking: no credit
    spot = stats.load(ws.folder)["spot_the_bug"]
    assert spot["hidden_open"] == 0
    assert spot["bugs"]["onehot-off-by-one"] == {"tries": 1, "fixed": 0, "success_rate": 0.0,
                                                 "best_seconds": None, "recent_seconds": None}


# --- which blank a failing check is about ------------------------------------------------

def grade_row(exercise=EXERCISE, wrong=(), blank=(), messages=None, diagnosis=()):
    """A grade as history.read gives it, from a made-up report."""
    report = make_report("x.py", wrong, blank, exercise=exercise, messages=messages, diagnosis=diagnosis)
    return {"checks": {c.name: history.check_status(c) for c in report.checks},
            **history._findings(json.dumps(report.to_dict()))}


def test_a_shared_check_is_put_on_the_blank_its_message_names():
    row = grade_row(wrong={"forward"}, messages={"forward": "cache['a1'] is wrong in 128 of 128 entries"})
    verdicts = stats.blank_verdicts(EXERCISE, row)
    assert (verdicts["z1"], verdicts["a1"], verdicts["z2"]) == ("pass", "wrong", None)
    assert verdicts["dz2"] == "pass"
    row = grade_row(blank={"forward"}, messages={"forward": "forward is not finished: z2"})
    verdicts = stats.blank_verdicts(EXERCISE, row)
    assert (verdicts["z1"], verdicts["a1"], verdicts["z2"]) == (None, None, "open")
    row = grade_row(wrong={"forward"}, messages={"forward": "forward returned a list"})  # names none: all three
    assert {stats.blank_verdicts(EXERCISE, row)[n] for n in ("z1", "a1", "z2")} == {"wrong"}


def test_a_shared_check_is_put_on_the_blank_the_diagnosis_names():
    bn = catalog.exercise("batchnorm_mlp")
    row = grade_row(bn, wrong={"forward", "finite-difference"},
                    messages={"forward": "the forward outputs are wrong"},
                    diagnosis=[("bn-unbiased-variance", "var", "error")])
    verdicts = stats.blank_verdicts(bn, row)
    assert (verdicts["z1"], verdicts["mu"], verdicts["var"], verdicts["inv_std"]) == ("pass", "pass", "wrong", None)


def test_a_failing_check_of_no_blank_is_put_on_the_link_the_diagnosis_names():
    row = grade_row(wrong={"purity"}, diagnosis=[("inplace-probs", "dz2", "error")])
    verdicts = stats.blank_verdicts(EXERCISE, row)
    assert verdicts["dz2"] == "wrong" and verdicts["dz1"] == "pass"
    row = grade_row(diagnosis=[("relu-ge", "dz1", "note")])  # a note on a passing attempt blames nothing
    assert set(stats.blank_verdicts(EXERCISE, row).values()) == {"pass"}


def test_stats_count_a_link_the_diagnosis_blames_for_a_failing_purity(ws):
    ws.start(T0)
    at = T0 + timedelta(minutes=4)
    report = make_report(ws.file, wrong={"purity"}, diagnosis=[("inplace-probs", "dz2", "error")])
    assert history.record_grade(ws.file, report, at=at) is None
    ws.grade(6)
    s = stats.load(ws.folder)["exercises"]["mlp_backprop"]
    assert s["links"]["dz2"]["wrong_first"] == 1 and s["links"]["dz2"]["wrong_grades"] == 1
    assert s["weakest"] == ["dz2"]


def test_a_grade_records_the_elapsed_time_its_report_measured(ws):
    ws.start(T0, timed=10)
    report = make_report(ws.file, elapsed=599.0)  # measured when grading began, within the 10m budget
    assert history.record_grade(ws.file, report, at=T0 + timedelta(minutes=10, seconds=5)) is None  # ended after it
    (g,) = history.read(ws.folder).grades
    assert g["elapsed"] == 599.0
    assert stats.load(ws.folder)["exercises"]["mlp_backprop"]["recent"][0]["within_budget"] is True


# --- timed budget ------------------------------------------------------------------------

@pytest.mark.parametrize("elapsed, passed, expected", [
    (432, True, "Full score within budget (7m 12s of 15m)."),
    (432, False, "Within budget so far (7m 12s of 15m; 7m 48s left)."),
    (1023, True, "Full score, but over budget by 2m 03s (17m 03s of 15m)."),
    (1023, False, "Not passed yet, and over budget by 2m 03s (17m 03s of 15m)."),
])
def test_budget_line(elapsed, passed, expected):
    assert timing.budget_line(15, elapsed, passed) == expected


def test_no_budget_line_without_a_budget():
    assert timing.budget_line(None, 100, True) is None
    assert timing.minutes(7.5) == "7m 30s"


# --- the watch loop ----------------------------------------------------------------------

def test_watch_grades_at_once_then_each_completed_save(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("v1")
    graded, polls = [], []

    def sleep(_):
        polls.append(1)
        n = len(polls)
        if n == 2:
            path.write_text("v2, half")
        elif n == 3:
            path.write_text("v2, half and the rest")  # still being written: not graded yet
        elif n == 8:
            path.unlink()  # an editor's save: delete, then rename into place
        elif n == 9:
            path.write_text("v3 after the rename")

    count = watch.watch(path, lambda p: graded.append(p.read_text()) or make_report(p), lambda r: None,
                        max_grades=3, sleep=sleep)
    assert count == 3
    assert graded == ["v1", "v2, half and the rest", "v3 after the rename"]


def test_watch_stops_on_the_event(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("v1")
    stop = threading.Event()
    shown = []
    count = watch.watch(path, make_report, lambda r: (shown.append(r), stop.set()), stop=stop,
                        sleep=lambda _: None)
    assert count == 1 and len(shown) == 1


def test_compact_report_shows_only_what_fails():
    report = make_report("x/mlp_backprop.py", wrong={"dz1"}, elapsed=75)
    text = watch.compact(report, budget="Within budget so far (1m 15s of 15m; 13m 45s left).", clock="10:00:00")
    assert text.splitlines()[0] == "[10:00:00] mlp_backprop.py: 90/100 not passed yet  (1m 15s since drill start)"
    assert "FAIL  dz1  dz1 is wrong where z1 < 0" in text and "dW2" not in text
    assert "13m 45s left" in text
