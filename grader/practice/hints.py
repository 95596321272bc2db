"""`drill hint`: the exercise's hints for a link, one level more per call, per attempt.

The levels come from the exercise's YAML (a nudge, the shape, the formula). How many a
link has had is counted in the history, for the current attempt only: `drill start`
begins again from the nudge.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader import catalog
from grader.practice import history, workspace


class HintError(Exception):
    """No hint can be given: no attempt, or no such link; the message says what to do."""


class InterviewRunning(HintError):
    """An interview drill is running: no hints until its time is up (exit status 1)."""


class NothingToHint(HintError):
    """Every link of the attempt passes in its latest grade."""


@dataclass
class Hint:
    link: str
    blank: catalog.Blank
    level: int  # from 1
    text: str
    warning: str | None = None  # the history could not be read: levels start again
    regraded: bool = False  # the file was graded now: it changed since its latest grade (or had none)

    @property
    def levels(self) -> int:
        return len(self.blank.hints)

    @property
    def kind(self) -> str:
        if self.level == 1:
            return "a nudge"
        return "the formula" if self.level == self.levels else "the shape"

    @property
    def last(self) -> bool:
        return self.level >= self.levels


def _attempt(start: Path | None) -> tuple[Path, workspace.Attempt, catalog.Exercise]:
    folder = workspace.find(start)
    if folder is None:
        raise HintError("no workspace here (no .drill folder in this folder or above): run `drill start` first")
    try:
        attempt = workspace.current_attempt(folder)
    except workspace.WorkspaceError as exc:
        raise HintError(str(exc)) from None
    if attempt is None:
        raise HintError(f"the workspace {folder} has no attempt; run `drill start`")
    try:
        return folder, attempt, catalog.exercise(attempt.exercise)
    except KeyError as exc:
        raise HintError(exc.args[0]) from None


def first_failing(exercise: catalog.Exercise, attempt: workspace.Attempt, grade: dict | None) -> str | None:
    """The first open blank, in chain order, that the latest grade (history.last_grade) finds
    wrong or not written (any, if never graded).

    Which blank a check's failure is about is stats.blank_verdicts' call: when z1, a1 and z2
    share `forward`, the blank its message or the diagnosis names; when purity or stability
    fails, the blank the diagnosis names.
    """
    from grader.practice.stats import blank_verdicts

    open_blanks = [b for b in exercise.blanks if b.name in attempt.links] or list(exercise.blanks)
    if grade is None:
        return open_blanks[0].name
    verdicts = blank_verdicts(exercise, grade)
    return next((b.name for b in open_blanks if verdicts.get(b.name) in (history.WRONG, history.OPEN)), None)


def _nothing(exercise: catalog.Exercise, grade: dict | None) -> NothingToHint:
    linked = {b.check for b in exercise.blanks}
    failing = [c for c, st in ((grade or {}).get("checks") or {}).items() if c not in linked and st != history.PASS]
    if not failing:
        return NothingToHint("every link you wrote passes in your latest grade: nothing to hint. "
                             "Name a link for its hints anyway: drill hint LINK")
    return NothingToHint(f"every link you wrote passes its own check in your latest grade, but "
                         f"{', '.join(failing)} {'fails' if len(failing) == 1 else 'fail'}, and the diagnosis "
                         "names no link: `drill grade` says what it saw. Name a link for its hints: drill hint LINK")


def current_grade(folder: Path, attempt: workspace.Attempt) -> tuple[dict | None, str | None, bool]:
    """(the grade of the attempt's file as it is now, a warning about the history, whether it
    was graded now). The latest recorded grade when it judged the same content (the file's
    SHA-256); else the file is graded now, with the probes' canonical seed, and recorded."""
    from grader.judge.grade import GradeUsageError
    from grader.practice.grading import grade_attempt

    grade, warning = None, None
    try:
        grade = history.last_grade(folder, attempt)
    except history.HistoryError as exc:
        warning = str(exc)
    path = folder / attempt.file
    digest = history.file_digest(path)
    if digest is None or (grade is not None and grade.get("file_sha256") == digest):
        return grade, warning, False  # unchanged (or gone: the latest grade is all there is)
    try:
        report = grade_attempt(path, attempt.exercise)
    except GradeUsageError as exc:
        raise HintError(str(exc)) from None
    history.record_grade(path, report)  # best effort: the hint is given either way
    return history.grade_view(report), warning, True


def next_hint(link: str | None = None, start: Path | None = None) -> Hint:
    """The next hint for link (default: the first link still failing in the file as it is
    now, see current_grade), recorded in the history."""
    from grader.practice import grading, timing

    folder, attempt, exercise = _attempt(start)
    refused = timing.interview_refusal(attempt, grading.CLOCK())
    if refused:
        raise InterviewRunning(refused)
    warning, regraded = None, False
    if link is None:
        grade, warning, regraded = current_grade(folder, attempt)
        link = first_failing(exercise, attempt, grade)
        if link is None:
            raise _nothing(exercise, grade)
    try:
        blank = exercise.blank(link)
    except KeyError:
        raise HintError(f"no link called {link!r} in {exercise.id}; the links are: "
                        f"{', '.join(b.name for b in exercise.blanks)}") from None
    given = 0
    if warning is None:
        try:
            given = history.hints_given(folder, attempt, link)
        except history.HistoryError as exc:
            warning = str(exc)
    level = min(given + 1, len(blank.hints))
    if warning is None:
        warning = history.record_hint(folder, attempt, link, level)  # None once recorded
    return Hint(link=link, blank=blank, level=level, text=blank.hints[level - 1], warning=warning,
                regraded=regraded)
