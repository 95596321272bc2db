"""`drill solution`: the reference solution, once the exercise is passed (or on request)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import catalog
from grader.practice import history, workspace
from grader.catalog import stubgen


class SolutionError(Exception):
    """The reference is not shown yet; the message says why and how to see it."""


class NoExercise(SolutionError):
    """No exercise named, and no workspace to take it from (a usage error)."""


@dataclass
class Shown:
    exercise: catalog.Exercise
    text: str
    forced: bool  # shown before the exercise was passed here
    folder: Path | None  # the workspace the view was made in; None outside any (recorded all the same)
    warnings: list[str] = field(default_factory=list)  # one line each, for the command to show


def reveal_solution(exercise_id: str | None = None, force: bool = False, start: Path | None = None) -> Shown:
    """The reference of exercise (default: the current attempt's), if passed or forced.

    Passed means a pass of that exercise, in any folder, that this grader recorded and
    signed (history.has_passed): a row that an attempt, a shipped `.drill/` or a hand edit
    put in the history does not count. Every view is recorded in the learner's history
    (history.home()), from a workspace or not, so `drill stats` tells how often they looked.
    """
    from grader.practice import grading, timing

    folder = workspace.find(start)
    attempt = None
    if folder is not None:
        try:
            attempt = workspace.current_attempt(folder)
        except workspace.WorkspaceError:
            attempt = None
        refused = timing.interview_refusal(attempt, grading.CLOCK()) if attempt else None
        if refused:
            raise SolutionError(refused)
    if exercise_id is None and folder is None:
        raise NoExercise("no workspace here to take the exercise from: name it "
                         "(`drill solution mlp_backprop`), or run this where you did `drill start`")
    if exercise_id is None:
        exercise_id = attempt.exercise if attempt else None  # None: the catalogue's default
    exercise = catalog.exercise(exercise_id)  # KeyError for an unknown name
    passed = False
    try:
        passed = history.has_passed(folder, exercise.id)
    except history.HistoryError as exc:
        if not force:
            raise SolutionError(f"cannot tell whether you have passed {exercise.id}: {exc}. "
                                "Pass --force to see the reference anyway") from None
    if not passed and not force:
        raise SolutionError(f"you have not passed {exercise.id} yet (in any folder). Keep going: `drill hint` "
                            "gives the next hint; or pass --force to see the reference now "
                            "(the view is recorded in your history)")
    warning = history.record_solution_view(folder, exercise.id, forced=not passed)
    text = stubgen.strip_markers(exercise.solution_path.read_text(encoding="utf-8"))
    return Shown(exercise=exercise, text=text, forced=not passed, folder=folder, warnings=[warning] if warning else [])
