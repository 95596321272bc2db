"""Timed drills: `drill start --timed MINUTES` sets a budget, `drill grade` says whether it was met."""
from __future__ import annotations

from pathlib import Path

from grader.practice import workspace
from grader.judge.report import duration


def minutes(value: float) -> str:
    """A budget as people say it: 15m, 7m 30s."""
    whole, seconds = divmod(int(round(value * 60)), 60)
    return f"{whole}m" if not seconds else f"{whole}m {seconds:02d}s"


def budget_line(timed_minutes: float | None, elapsed: float | None, passed: bool) -> str | None:
    """Whether the attempt is within its time budget, in one line; None when it has none."""
    if timed_minutes is None or elapsed is None:
        return None
    budget = timed_minutes * 60
    used = f"{duration(elapsed)} of {minutes(timed_minutes)}"
    if elapsed <= budget:
        if passed:
            return f"Full score within budget ({used})."
        return f"Within budget so far ({used}; {duration(budget - elapsed)} left)."
    over = f"over budget by {duration(elapsed - budget)} ({used})"
    return f"Full score, but {over}." if passed else f"Not passed yet, and {over}."


def met(timed_minutes: float | None, time_to_pass: float | None) -> bool | None:
    """Whether a timed attempt reached a full score within its budget (None: untimed or not yet)."""
    if timed_minutes is None:
        return None
    if time_to_pass is None:
        return None
    return time_to_pass <= timed_minutes * 60


def budget_for(path: Path, report) -> str | None:
    """The budget line for a grade of path, when path is a timed attempt of `drill start`.

    The report's own budget and elapsed time, measured at one instant when grading began,
    are the ones the history records: `drill stats` gives the same verdict.
    """
    if report.budget and report.elapsed is not None:
        return budget_line(report.budget.get("minutes"), report.elapsed, report.passed)
    attempt = workspace.attempt_for_file(Path(path)) if Path(path).is_file() else None
    if attempt is None:
        return None
    return budget_line(attempt.timed_minutes, report.elapsed, report.passed)
