"""`drill stats --plot` (issue 18): time to a full score per attempt over the calendar, and each
link's error rate over time; the picture is checked through its Figure."""
import sys
from datetime import timedelta

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.practice import history, review, workspace
from test_history import BLANKS, EXERCISE, T0, Workspace

pytest.importorskip("matplotlib")


@pytest.fixture(autouse=True)
def own_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(history.KEY_ENV, str(tmp_path_factory.mktemp("key") / "history.key"))


@pytest.fixture
def practised(tmp_path):
    """Four days: the time to a full score comes down from 12 to 6 minutes, dz2 is wrong on the
    first two days; the last day is an interview."""
    ws = Workspace(tmp_path)
    for day, (minutes, wrong) in enumerate([(12, {"dz2"}), (10, {"dz2", "dW1"}), (8, set()), (6, set())]):
        ws.start(T0 + timedelta(days=day))
        if day == 3:
            ws.attempt = workspace.Attempt(EXERCISE.id, EXERCISE.solution, ws.attempt.started_at, BLANKS,
                                           timed_minutes=15, interview=True)
            assert history.record_start(ws.folder, ws.attempt) is None
        if wrong:
            ws.grade(minutes / 2, wrong=wrong)
        ws.grade(minutes)
    return ws


def test_progress_data_has_the_times_over_the_calendar_and_the_error_rate_per_link(practised):
    data = review.progress(history.read(practised.folder))
    times = data["times"][EXERCISE.id]
    assert [t["seconds"] / 60 for t in times] == [12, 10, 8, 6]
    assert [t["interview"] for t in times] == [False, False, False, True]
    assert [p["rate"] for p in data["rates"][f"{EXERCISE.id} dz2"]] == [1.0, 1.0, 2 / 3, 0.5]
    assert [p["rate"] for p in data["rates"][f"{EXERCISE.id} dW1"]] == [0.0, 0.5, 1 / 3, 0.25]
    assert list(data["rates"])[:5] == [f"{EXERCISE.id} {b}" for b in BLANKS[:5]]  # chain order


def test_the_figure_draws_both_panels(practised):
    from matplotlib.collections import PathCollection

    from grader.course import plot

    fig = plot.progress_figure(review.progress(history.read(practised.folder)))
    ax_time, ax_rate = fig.axes
    assert ax_time.get_title() == "Time to a full score, per attempt"
    assert ax_rate.get_title() == "Each link's error rate over time"
    (line,) = ax_time.get_lines()
    assert list(line.get_ydata()) == [12, 10, 8, 6]
    assert [c for c in ax_time.collections if isinstance(c, PathCollection)]  # the interview, marked
    # the links ever wrong (dz2, dW1), in chain order; the ten never wrong are counted, not drawn
    assert [line.get_label() for line in ax_rate.get_lines()] == [f"{EXERCISE.id} dz2", f"{EXERCISE.id} dW1"]
    assert ax_rate.get_legend().get_title().get_text() == f"{len(BLANKS) - 2} link(s) never wrong: not drawn"
    assert "error rate" in ax_rate.get_ylabel()
    lo, hi = ax_rate.get_xlim()  # the four days, with a margin: not years around them
    assert 3 < hi - lo < 5


def test_one_day_of_practice_spans_a_day_not_years(tmp_path):
    from grader.course import plot

    ws = Workspace(tmp_path)
    ws.start(T0)
    ws.grade(3)
    fig = plot.progress_figure(review.progress(history.read(ws.folder)))
    lo, hi = fig.axes[1].get_xlim()
    assert 0.9 < hi - lo < 1.1  # days
    assert [t.get_text() for t in fig.axes[1].texts] == [f"no link wrong yet ({len(BLANKS)} judged)"]


def test_an_empty_history_draws_a_sentence_not_an_empty_plot():
    from grader.course import plot

    fig = plot.progress_figure(review.progress(history.read()))
    assert [t.get_text() for t in fig.axes[0].texts] == ["no full score yet"]


def test_stats_plot_writes_the_picture(practised, monkeypatch, tmp_path):
    monkeypatch.chdir(practised.folder)
    result = CliRunner().invoke(main, ["stats", "--plot", "progress.png"])
    assert result.exit_code == 0, result.output
    assert (practised.folder / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Drew progress.png" in result.stderr


@pytest.mark.parametrize("target, says", [("progress.txt", "cannot draw a '.txt' file"),
                                          ("no/such/folder/p.png", "does not exist")])
def test_stats_plot_where_it_cannot_draw_is_a_usage_error(tmp_path, monkeypatch, target, says):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["stats", "--plot", target])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_stats_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = CliRunner().invoke(main, ["stats", "--plot", "p.png"])
    assert result.exit_code == 2 and "pip install 'backprop-drill[plot]'" in result.output
