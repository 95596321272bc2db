"""`drill inject-bug` and `drill reveal`: put one catalogued bug into working code, and tell it later.

The bug goes into the reference solution (marker-free) or into the user's own attempt,
when the bug's pattern fits that code. A bug picked at random stays hidden: only the
workspace state (`.drill/state.json`, key "injected") records it, for `drill reveal`, after
which `drill grade` names it. Code given with --from must pass `drill grade` first.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from grader import catalog, files
from grader.practice import history, workspace
from grader.catalog import mutate, stubgen
from grader.catalog.mutants import fitting_bugs, mutant

STATE_KEY = "injected"


class InjectError(Exception):
    """The bug cannot be injected or revealed; the message says why and what to do."""


class InjectUsageError(InjectError):
    """The command was used wrongly: no such file, an unknown name (exit status 2)."""


class UnknownName(InjectUsageError):
    """An exercise or bug id that the catalogue does not have (a usage error)."""


@dataclass
class Injected:
    """What inject() wrote: the file, the bug (reveal it only when named), the backup made."""

    path: Path
    exercise: catalog.Exercise
    bug: catalog.Bug
    hidden: bool
    backup: Path | None
    warnings: list[str] = field(default_factory=list)  # one line each, for the command to show


def _exercise(exercise_id: str | None) -> catalog.Exercise:
    try:
        return catalog.exercise(exercise_id)
    except KeyError as exc:
        raise UnknownName(exc.args[0]) from None


def _read_attempt(path: Path) -> str:
    from grader.judge.source import MAX_FILE_BYTES

    if not path.exists():
        raise InjectUsageError(f"no such file: {path}")
    if not path.is_file():
        raise InjectUsageError(f"{path} is not a file")
    try:  # named by the user: a link is followed, but a pipe swapped in never blocks
        return files.read_bounded(path, MAX_FILE_BYTES, follow=True).decode("utf-8")
    except UnicodeDecodeError:
        raise InjectError(f"{path} is not UTF-8 text, so it cannot be Python source") from None
    except files.Refused as exc:
        raise InjectUsageError(str(exc)) from None
    except OSError as exc:
        raise InjectError(f"cannot read {path}: {exc.strerror or exc}") from None


def _choose(exercise: catalog.Exercise, bug_id: str | None, source: str, origin: str,
            seed: int | None) -> catalog.Bug:
    """The bug named bug_id, or a random one of those that fit (errors, not notes)."""
    table = catalog.bugs(exercise.id)
    if bug_id is not None:
        if bug_id not in table:
            raise UnknownName(catalog.no_such("bug", bug_id, table, f"drill bugs {exercise.id}",
                                              where=f" in {exercise.id}"))
        return table[bug_id]
    # a note is no exercise in finding a bug: `drill grade` passes the attempt anyway
    candidates = [b for b in fitting_bugs(source, exercise.id, origin) if b.severity == "error"]
    if not candidates:
        raise InjectError(f"{origin}: none of the catalogued bugs of {exercise.id} fits this code; "
                          "pass --bug ID to see why a given one does not")
    return random.Random(seed).choice(candidates)


def _workspace_for(path: Path) -> Path:
    """The nearest workspace above path, or path's own folder."""
    return workspace.find(path.parent) or path.parent


def _key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def inject(exercise_id: str | None = None, bug_id: str | None = None, *, from_path: Path | None = None,
           seed: int | None = None, out: Path | None = None, force: bool = False,
           hidden: bool | None = None) -> Injected:
    """Write working code with one catalogued bug in it; hidden (recorded only, not named)
    without bug_id, or when hidden says so (`drill next` picks the bug, the learner hunts it)."""
    exercise = _exercise(exercise_id)
    hidden = bug_id is None if hidden is None else hidden
    if from_path is not None:
        origin = str(from_path)
        source = _read_attempt(from_path)
        try:
            mutate.Source(source, origin)
        except mutate.MutationError as exc:
            raise InjectError(str(exc)) from None
    else:
        origin = str(exercise.solution_path)
        source = exercise.solution_path.read_text(encoding="utf-8")
    bug = _choose(exercise, bug_id, source, origin, seed)
    try:
        text = mutant(source, bug, origin)
    except mutate.NoSiteError as exc:
        raise InjectError(f"the bug {bug.id} does not fit {origin}: {_reason(exc, origin)}") from None
    except mutate.MutationError as exc:
        raise InjectError(str(exc)) from None
    if from_path is None:
        text = stubgen.strip_markers(text)
    else:
        _require_passing(from_path, exercise)

    path = files.output_path(out or Path(f"{exercise.id}_bug.py"))  # a link there is replaced, not followed
    if path.is_dir() and not path.is_symlink():
        raise InjectError(f"{path} is a folder; pass --out with a file name")
    folder = _workspace_for(path)
    try:
        saved = workspace.place(path, text, folder, force=force)
    except workspace.Occupied:
        raise InjectError(f"{path} already exists; pass --force to replace it "
                          "(the old file is kept in .drill/backups/), or choose another --out.") from None
    except workspace.WorkspaceError as exc:
        raise InjectError(str(exc)) from None
    entry = {"bug": bug.id, "exercise": exercise.id, "at": workspace.now().isoformat(), "hidden": hidden}

    def record(state):  # under the workspace's lock: another command's update is kept
        injected = state.get(STATE_KEY)
        state[STATE_KEY] = injected = injected if isinstance(injected, dict) else {}
        injected[_key(path, folder)] = entry

    notes: list[str] = []
    try:
        workspace.update_state(folder, record, notes)
    except (OSError, workspace.WorkspaceError) as exc:
        raise InjectError(f"wrote {path}, but cannot record it in {folder / workspace.STATE_DIR}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    warning = history.record_inject(folder, _key(path, folder), entry)  # best effort
    return Injected(path=path, exercise=exercise, bug=bug, hidden=hidden, backup=saved,
                    warnings=notes + ([warning] if warning else []))


def _require_passing(path: Path, exercise: catalog.Exercise) -> None:
    """InjectError unless `drill grade` passes path: a bug is spotted only in working code."""
    from grader.judge.grade import GradeUsageError
    from grader.practice.grading import grade_attempt

    try:
        report = grade_attempt(path, exercise.id)
    except GradeUsageError as exc:
        raise InjectUsageError(str(exc)) from None
    if report.passed:
        return
    if report.error:
        why = f"{report.error['kind']}: {report.error['message']}"
    else:
        first = report.first_failure
        why = f"the check {first.name} fails: {first.message}" if first else "it does not pass"
    raise InjectError(f"{path} does not pass yet ({report.score:g}/{report.max_score:g}; {why}). "
                      f"--from takes a passing attempt of {exercise.id}: finish it first "
                      f"(drill grade {path} says what is left), or leave out --from to use the reference")


def _reason(exc: mutate.NoSiteError, origin: str) -> str:
    message = str(exc)
    return message[len(origin) + 2:] if message.startswith(origin + ": ") else message


@dataclass
class Revealed:
    """The bug recorded for a file that `drill inject-bug` wrote."""

    path: Path
    bug: catalog.Bug
    at: str
    warnings: list[str] = field(default_factory=list)  # one line each, for the command to show


def reveal(path: Path | None = None, start: Path | None = None) -> Revealed:
    """The bug injected into path, or into the latest file injected in the workspace around start."""
    given = path
    if path is not None:
        path = path.resolve()
        folder = _workspace_for(path)
    else:
        folder = workspace.find(start)
        if folder is None:
            raise InjectUsageError("no workspace here (no .drill folder in this folder or above); "
                              "write a file with a hidden bug first: drill inject-bug")
    try:
        state = workspace.load_state(folder)
    except workspace.WorkspaceError as exc:
        raise InjectError(str(exc)) from None
    recorded = state.get(STATE_KEY)
    entries = {k: v for k, v in recorded.items() if isinstance(v, dict)} if isinstance(recorded, dict) else {}
    if path is None:
        if not entries:
            raise InjectError(f"no injected bug is recorded in {folder}; write one with: drill inject-bug")
        key = max(entries, key=lambda k: str(entries[k].get("at", "")))
        path = folder / key
    else:
        try:
            key = _key(path, folder)
        except ValueError:  # not below the workspace found for it
            key = None
        if key not in entries:
            if not path.exists():
                raise InjectUsageError(f"no such file: {given}")
            raise InjectError(f"no bug was injected into {path} (nothing recorded in "
                              f"{folder / workspace.STATE_DIR / workspace.STATE_FILE})")
    entry = entries[key]
    bug_id = str(entry.get("bug"))
    try:
        bug = catalog.bug(bug_id)
    except KeyError:
        raise InjectError(f"{path} was given the bug {bug_id!r}, which the catalogue no longer has") from None
    injected_at = str(entry.get("at", ""))
    warnings = []
    if entry.get("hidden"):
        warnings = [w for w in (_unhide(folder, key, injected_at),
                                history.record_reveal(folder, key, bug.exercise, injected_at)) if w]
    return Revealed(path=path, bug=bug, at=injected_at, warnings=warnings)


def _unhide(folder: Path, key: str, injected_at: str) -> str | None:
    """The bug in key is hidden no more: `drill grade` names it from now on. Returns None,
    or a warning when that cannot be recorded (the answer is shown all the same)."""
    def change(state):
        entry = (state.get(STATE_KEY) or {}).get(key)
        if isinstance(entry, dict) and str(entry.get("at", "")) == injected_at:
            entry["hidden"] = False
            entry["revealed_at"] = workspace.now().isoformat()

    try:
        workspace.update_state(folder, change)
    except (OSError, workspace.WorkspaceError) as exc:
        return (f"the reveal is not recorded in {folder / workspace.STATE_DIR}: "
                f"{getattr(exc, 'strerror', None) or exc}")
    return None
