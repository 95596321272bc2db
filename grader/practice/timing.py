"""Timed drills: `drill start --timed MINUTES` sets a budget, `drill grade` says whether it was met.

Interview mode (`drill start --interview`) is a timed drill (settings.INTERVIEW_MINUTES, the
15-minute whiteboard, unless --timed says otherwise) that keeps its feedback for the end. The
deadline lives in the workspace state (`.drill/state.json`: the attempt's start time, its
minutes and `"interview": true`), so every command reads the same one. While it runs,
`drill grade` prints terse feedback only (judge/terse.py: pass or fail per check, and where:
no factor, no diagnosis, no hint), `drill hint` and `drill solution` refuse (exit 1). It is
over at the deadline, or at the first grade that passes (the candidate has put the pen down:
there is nothing left to hide); the grade that ends it, and every one after, shows the full
report. Its attempt and grades are marked as an interview in the history (interview = 1).
"""
from __future__ import annotations

from datetime import datetime
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


def interview_running(report) -> bool:
    """Whether report is a grade of an interview whose time is not up and which does not pass:
    its feedback stays terse."""
    budget = report.budget or {}
    return (bool(budget.get("interview")) and report.elapsed is not None
            and report.elapsed < budget["minutes"] * 60 and not report.passed)


def interview_line(report) -> str | None:
    """What an interview's grade says about the interview; None for any other grade."""
    budget = report.budget or {}
    if not budget.get("interview"):
        return None
    if interview_running(report):
        left = duration(budget["minutes"] * 60 - report.elapsed)
        return (f"Interview: {left} left. Until the time is up you get pass or fail and where, "
                "nothing more, and no hints; then the full report.")
    if report.passed and report.elapsed is not None and report.elapsed <= budget["minutes"] * 60:
        return f"Interview over: full score in {duration(report.elapsed)} of {minutes(budget['minutes'])}. The full report is above."
    return f"Interview over: the {minutes(budget['minutes'])} are up. The full report is above; `drill hint` works again."


def interview_refusal(attempt, now: datetime) -> str | None:
    """Why a hint or the solution is refused now: attempt is an interview still running (its
    time not up); None otherwise. (A pass ends an interview too; then nothing is left to hint.)"""
    if not attempt.interview or attempt.timed_minutes is None:
        return None
    left = attempt.timed_minutes * 60 - (now - attempt.started).total_seconds()
    if left <= 0:
        return None
    return (f"an interview is running ({duration(left)} left): no hints and no solution until the time "
            "is up; `drill grade` says pass or fail and where")


def budget_for(path: Path, report) -> str | None:
    """The budget line for a grade of path, when path is a timed attempt of `drill start`.

    The report's own budget and elapsed time, measured at one instant when grading began,
    are the ones the history records: `drill stats` gives the same verdict.
    """
    if report.budget and report.budget.get("interview"):
        return interview_line(report)
    if report.budget and report.elapsed is not None:
        return budget_line(report.budget.get("minutes"), report.elapsed, report.passed)
    attempt = workspace.attempt_for_file(Path(path)) if Path(path).is_file() else None
    if attempt is None:
        return None
    return budget_line(attempt.timed_minutes, report.elapsed, report.passed)
