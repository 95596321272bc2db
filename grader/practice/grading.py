"""A grade in the learner's own workspace: the exercise `drill start` or `drill inject-bug`
recorded for the file, the time since the drill began, and a hidden bug kept hidden.

May import: judge, practice.workspace. (A teacher's batch never comes here: strangers'
`.drill/` folders are not read.) What the workspace recorded is used only once
workspace.Attempt.load / load_injected have checked it: an entry naming an unknown
exercise, a start time without a time zone or a budget that is no number is passed over
(workspace.problems() names it for the command to show), never a crash.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from grader import settings
from grader.judge.grade import judge, resolve
from grader.judge.report import Report
from grader.practice import workspace
from grader.run.sandbox import Limits

CLOCK = workspace.now  # the clock grades read when none is given (tests set their own)


def grade_attempt(path: Path, exercise_id: str | None = None, limits: Limits | None = None,
                  seed: int = settings.PROBE_SEED, clock: Callable[[], datetime] | None = None) -> Report:
    """Grade the attempt at path as exercise_id; else as the exercise its workspace recorded
    for it; else as the file tells (judge.grade.resolve). GradeUsageError as resolve().
    clock: what time it is (workspace.now); the time since the drill began is taken when
    grading begins, so `drill stats` gives the budget verdict `drill grade` gave."""
    path = Path(path)
    attempt = workspace.attempt_for_file(path) if path.is_file() else None
    injected = workspace.injected_for_file(path) if path.is_file() else None
    recorded = attempt.exercise if attempt else (injected or {}).get("exercise")
    target = resolve(path, exercise_id or recorded, limits, seed)
    began = (clock or CLOCK)()
    report = judge(target)
    if attempt is not None:
        report.elapsed = (began - attempt.started).total_seconds()
        if attempt.timed_minutes is not None:
            report.budget = {"minutes": attempt.timed_minutes,
                             "within": report.elapsed <= attempt.timed_minutes * 60,
                             **({"interview": True} if attempt.interview else {})}
    if injected is not None:
        hidden = bool(injected.get("hidden"))
        report.injected = {"hidden": hidden, "fixed": report.passed,
                           "bug": None if hidden else injected.get("bug")}
        if hidden:  # naming the bug would spoil the practice; the checks still say where
            report.diagnosis = [d for d in report.diagnosis if d.bug is None]
    return report
