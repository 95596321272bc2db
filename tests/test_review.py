"""`drill next` and what `drill stats` says is due (issue 18): Leitner boxes over links and bugs,
sessions, habits; every time is an injected clock, nothing sleeps."""
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.cli import main
from grader.practice import history, review, workspace
from test_history import BLANKS, EXERCISE, T0, Workspace, make_report

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def own_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(history.KEY_ENV, str(tmp_path_factory.mktemp("key") / "history.key"))


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


def attempt(ws, at, wrong=(), links=BLANKS, blamed=()):
    """One attempt started at `at`, graded once 5 minutes later; blamed: (bug, link) the
    diagnosis names."""
    ws.start(at, links=links)
    report = make_report(ws.file, wrong=wrong, diagnosis=[(bug, link, "error") for bug, link in blamed])
    assert history.record_grade(ws.file, report, at=at + timedelta(minutes=5)) is None


def item(name, rows, kind=review.LINK):
    return next(i for i in review.items(rows) if i.name == name and i.kind == kind)


# --- Leitner boxes --------------------------------------------------------------------

def test_wrong_goes_to_box_one_due_at_once_and_right_climbs_one_box_per_session():
    it = review.Item("mlp_backprop", review.LINK, "dz2", 0)
    it.reviews = [review.Review(T0, False)]
    review.leitner(it)
    assert it.box == 1 and it.due == T0 + timedelta(minutes=0)
    it.reviews += [review.Review(T0 + DAY, True), review.Review(T0 + DAY + timedelta(minutes=30), True)]
    fresh = review.leitner(review.Item("mlp_backprop", review.LINK, "dz2", 0, list(it.reviews)))
    assert fresh.box == 2  # two right attempts in one sitting are one step up
    assert fresh.due == T0 + DAY + timedelta(minutes=30) + timedelta(days=review.INTERVAL_DAYS[1])
    later = [review.Review(T0 + k * 5 * DAY, True) for k in range(2, 12)]
    top = review.leitner(review.Item("mlp_backprop", review.LINK, "dz2", 0, fresh.reviews + later))
    assert top.box == len(review.INTERVAL_DAYS)  # the last box, and no further
    again = review.leitner(review.Item("mlp_backprop", review.LINK, "dz2", 0,
                                       top.reviews + [review.Review(T0 + 90 * DAY, False)]))
    assert again.box == 1 and again.last_wrong == T0 + 90 * DAY


def test_next_picks_the_link_got_wrong_most_recently_and_skips_those_got_right_recently(ws):
    attempt(ws, T0, wrong={"dz2"})
    attempt(ws, T0 + 2 * DAY, wrong={"dW1"})
    chosen = review.plan(history.read(ws.folder), T0 + 2 * DAY + timedelta(hours=1))
    assert chosen.kind == review.LINK and [i.name for i in chosen.chosen] == ["dW1"]
    dz2 = item("dz2", history.read(ws.folder))
    assert dz2.box == 2 and dz2.due == T0 + 2 * DAY + timedelta(minutes=5) + DAY  # right again: back in a day
    # a day later dz2 is due again too, and the one got wrong most recently comes first
    later = review.plan(history.read(ws.folder), T0 + 3 * DAY + timedelta(hours=1))
    assert [i.name for i in later.chosen] == ["dz2", "dW1"]
    assert sorted(later.chosen, key=review.rank)[0].name == "dW1"


def test_links_never_practised_are_new_and_due(ws):
    attempt(ws, T0, links=["dz2"])
    chosen = review.plan(history.read(ws.folder), T0 + timedelta(hours=1))
    assert "dz2" not in [i.name for i in chosen.chosen] and "db1" in [i.name for i in chosen.chosen]
    assert review.why(item("db1", history.read(ws.folder))) == "db1: not practised yet"


def test_an_empty_history_plans_the_whole_chain_of_the_default_exercise():
    chosen = review.plan(history.read(), T0)
    assert chosen.exercise == catalog.exercise(None).id and [i.name for i in chosen.chosen] == BLANKS


# --- habits ---------------------------------------------------------------------------

def test_the_same_link_wrong_the_same_way_twice_is_a_habit_once_is_a_slip(ws):
    attempt(ws, T0, wrong={"dz2"}, blamed=[("missing-n", "dz2")])
    attempt(ws, T0 + DAY, wrong={"dz2"})
    rows = history.read(ws.folder)
    assert item("dz2", rows).habit is None  # once: a slip
    attempt(ws, T0 + 2 * DAY, wrong={"dz2"}, blamed=[("missing-n", "dz2")])
    attempt(ws, T0 + 3 * DAY, wrong={"dW1"}, blamed=[("bad-transpose", "dW1")])
    rows = history.read(ws.folder)
    habit = item("dz2", rows).habit
    assert habit["bug"] == "missing-n" and habit["count"] == 2 and habit["of"] == 4
    assert review.habit_line(habit).endswith("in 2 of your last 4 attempts")
    # the habit comes first, before the link got wrong more recently
    assert sorted(review.plan(rows, T0 + 3 * DAY + timedelta(hours=1)).chosen, key=review.rank)[0].name == "dz2"
    assert "a habit: missing-n" in review.why(item("dz2", rows))


def test_stats_name_habits_and_list_what_is_due_and_when(ws, monkeypatch):
    for day in range(3):
        attempt(ws, T0 + day * DAY, wrong={"dz2"}, blamed=[("missing-n", "dz2")])
    monkeypatch.setattr(review, "CLOCK", lambda: T0 + 2 * DAY + timedelta(hours=1))
    monkeypatch.chdir(ws.folder)
    text = CliRunner().invoke(main, ["stats"])
    assert text.exit_code == 0, text.output
    assert "Habits" in text.output and "missing-n" in text.output and "in 3 of your last 3 attempts" in text.output
    assert "now    mlp_backprop dz2: a habit" in text.output
    assert "mlp_backprop z1, a1, z2, loss, dW2" in text.output  # due at one time, in one box: one line
    data = json.loads(CliRunner().invoke(main, ["stats", "--json"]).stdout)["review"]
    assert [d["name"] for d in data["due"]] == ["dz2"]
    assert {d["name"] for d in data["upcoming"]} == set(BLANKS) - {"dz2"}
    assert data["habits"][0]["link"] == "dz2" and data["bugs_not_hunted"] > 0


# --- bugs to spot -----------------------------------------------------------------------

def test_when_every_link_is_right_a_hidden_bug_is_due_and_a_missed_one_comes_back(ws):
    attempt(ws, T0)
    rows = history.read(ws.folder)
    chosen = review.plan(rows, T0 + timedelta(hours=1))
    assert chosen.kind == review.BUG and len(chosen.chosen) == 1
    bug = chosen.chosen[0].name
    entry = {"bug": bug, "exercise": EXERCISE.id, "at": (T0 + timedelta(hours=1)).isoformat(), "hidden": True}
    history.record_inject(ws.folder, "b.py", entry)
    history.record_reveal(ws.folder, "b.py", EXERCISE.id, entry["at"], at=T0 + timedelta(hours=2))
    missed = item(bug, history.read(ws.folder), review.BUG)
    assert missed.box == 1 and "missed" in review.why(missed) and bug not in review.why(missed, hidden=True)


# --- drill next -------------------------------------------------------------------------

def next_(*args):
    result = CliRunner().invoke(main, ["next", *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_drill_next_writes_the_due_links_says_why_and_never_overwrites(ws, monkeypatch):
    attempt(ws, T0, wrong={"dz2"})
    ws.file.write_text("# my work\n")
    monkeypatch.setattr(review, "CLOCK", lambda: T0 + timedelta(hours=1))
    monkeypatch.chdir(ws.folder)
    refused = next_()
    assert refused.exit_code == 1 and "already exists" in refused.output and "--force" in refused.output
    assert ws.file.read_text() == "# my work\n"
    done = next_("--force")
    assert done.exit_code == 0, done.output
    assert "dz2: wrong on" in done.output and "box 1" in done.output and "links blank: dz2" in done.output
    assert workspace.current_attempt(ws.folder).links == ["dz2"]
    assert "raise NotImplementedError" in ws.file.read_text() or "todo(" in ws.file.read_text()
    assert list((ws.folder / ".drill" / "backups").iterdir())  # the old file kept


def test_drill_next_writes_a_hidden_bug_when_that_is_due(ws, monkeypatch):
    attempt(ws, T0)
    monkeypatch.setattr(review, "CLOCK", lambda: T0 + timedelta(hours=1))
    monkeypatch.chdir(ws.folder)
    done = next_()
    assert done.exit_code == 0, done.output
    written = ws.folder / f"{EXERCISE.id}_bug.py"
    assert written.exists() and "hidden bug" in done.output
    entry = workspace.load_state(ws.folder)["injected"][written.name]
    assert entry["hidden"] is True and entry["bug"] not in done.output


def test_drill_next_when_nothing_is_due_says_when_and_writes_nothing(ws, monkeypatch):
    attempt(ws, T0)
    monkeypatch.setattr(review, "items", lambda rows, exercise_id=None: [
        i for i in _items(rows, exercise_id) if i.kind == review.LINK])
    monkeypatch.setattr(review, "CLOCK", lambda: T0 + timedelta(hours=1))
    ws.file.unlink()
    monkeypatch.chdir(ws.folder)
    done = next_()
    assert done.exit_code == 0 and "Nothing is due now" in done.output and "Next: mlp_backprop" in done.output
    assert not ws.file.exists()


_items = review.items


def test_drill_next_of_an_unknown_exercise_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = next_("no_such_exercise")
    assert result.exit_code == 2 and "no_such_exercise" in result.output
    assert not (tmp_path / ".drill").exists()
