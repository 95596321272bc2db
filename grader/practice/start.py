"""`drill start`: write an exercise's stub into a workspace and note when the drill began."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import catalog, settings
from grader.practice import history, workspace
from grader.catalog import stubgen


class StartError(Exception):
    """The stub cannot be written; the message says why and what to do."""


class StartUsageError(StartError):
    """The command was used wrongly: an unknown exercise or link (exit status 2)."""


@dataclass
class Started:
    path: Path
    exercise: catalog.Exercise
    links: list[str]
    backup: Path | None
    warnings: list[str] = field(default_factory=list)  # one line each, for the command to show
    timed_minutes: float | None = None


def parse_links(exercise: catalog.Exercise, links: str | None) -> list[str]:
    """The blanks to leave open: all of them (links None), or those named in a comma-separated list."""
    names = [b.name for b in exercise.blanks]
    if links is None:
        return names
    chosen = [part.strip() for part in links.split(",") if part.strip()]
    if not chosen:
        raise StartUsageError(f"--links {links!r} names no link; name one or more, separated by commas "
                              f"(the links of {exercise.id}: {', '.join(names)}), or leave out --links "
                              "to blank them all")
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise StartUsageError(f"no such link in {exercise.id}: {', '.join(unknown)}; "
                              f"the links are: {', '.join(names)}")
    return [n for n in names if n in chosen]


def start(exercise_id: str | None, folder: Path, force: bool = False, links: str | None = None,
          timed_minutes: float | None = None, weakest: bool = False, notebook: bool = False,
          interview: bool = False) -> Started:
    """Write the stub (as a Jupyter notebook, EXERCISE.ipynb, with notebook) and record the start.
    interview: a timed drill (settings.INTERVIEW_MINUTES unless timed_minutes) with terse
    feedback until its time is up (see practice/timing.py)."""
    if interview and timed_minutes is None:
        timed_minutes = settings.INTERVIEW_MINUTES
    try:
        exercise = catalog.exercise(exercise_id)
    except KeyError as exc:
        raise StartUsageError(exc.args[0]) from None
    open_links = _weakest(exercise, folder) if weakest else parse_links(exercise, links)
    keep = frozenset(b.name for b in exercise.blanks) - set(open_links)
    text = stubgen.stub_for(exercise, keep)
    folder = folder.resolve()
    if folder.exists() and not folder.is_dir():
        raise StartError(f"{folder} is a file, not a folder")
    path = folder / exercise.solution
    if notebook:
        path = path.with_suffix(".ipynb")
        text = _as_notebook(exercise, text, path.name)
    try:
        saved = workspace.place(path, text, folder, force=force)
    except workspace.Occupied:
        raise StartError(f"{path} already exists: it may hold your work. Grade it with "
                         f"`drill grade {path}`, or pass --force to start afresh "
                         "(the old file is kept in .drill/backups/).") from None
    except workspace.WorkspaceError as exc:
        raise StartError(str(exc)) from None
    notes: list[str] = []
    try:
        attempt = workspace.Attempt(
            exercise=exercise.id, file=path.name, started_at=workspace.now().isoformat(),
            links=open_links, timed_minutes=timed_minutes, interview=interview)
        workspace.record_start(folder, attempt, notes)
    except (OSError, workspace.WorkspaceError) as exc:
        raise StartError(f"wrote {path}, but cannot record it: {getattr(exc, 'strerror', None) or exc}") from None
    warning = history.record_start(folder, attempt)  # best effort: a broken history only warns
    return Started(path=path, exercise=exercise, links=open_links, backup=saved,
                   warnings=notes + ([warning] if warning else []), timed_minutes=timed_minutes)


def _weakest(exercise: catalog.Exercise, folder: Path) -> list[str]:
    """The links the history of folder says are wrong most often (`drill start --weakest`)."""
    from grader.practice import stats

    try:
        return stats.weakest_links(folder.resolve(), exercise)
    except (stats.StatsError, history.HistoryError) as exc:
        raise StartError(str(exc)) from None


def _as_notebook(exercise: catalog.Exercise, stub: str, name: str) -> str:
    """The stub as a notebook (`drill start --notebook`): judge.notebook writes it from the stub."""
    from grader.judge import notebook

    try:
        return notebook.from_stub(exercise, stub, name)
    except notebook.NotebookUnavailable as exc:
        raise StartUsageError(str(exc)) from None
