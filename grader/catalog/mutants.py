"""A catalogued bug as code: its mutation made in working code (the reference, or an attempt).

What `drill inject-bug` writes, what the diagnosis and the self-test run.
"""
from __future__ import annotations

from grader import catalog
from grader.catalog import mutate, stubgen


def mutant(source: str, bug: catalog.Bug, origin: str = "<source>") -> str:
    """source with bug's mutation made; mutate.NoSiteError when its pattern does not fit."""
    m = bug.mutation
    return mutate.apply(source, m.operator, m.function, m.target, m.occurrence, origin=origin)


def reference_mutant(bug: catalog.Bug | str) -> str:
    """The reference solution of the bug's exercise with the bug in it, without drill markers.

    This is the bug's behaviour as a module's text: what the diagnosis of `drill grade` and
    the self-test of `drill bugs --check` run.
    """
    if isinstance(bug, str):
        bug = catalog.bug(bug)
    exercise = catalog.exercise(bug.exercise)
    path = exercise.solution_path
    return stubgen.strip_markers(mutant(path.read_text(encoding="utf-8"), bug, str(path)))


def fitting_bugs(source: str, exercise_id: str, origin: str = "<source>") -> list[catalog.Bug]:
    """The bugs of exercise_id whose pattern fits source, in catalogue order."""
    return [b for b in catalog.bugs(exercise_id).values() if _fits(source, b, origin)]


def _fits(source: str, bug: catalog.Bug, origin: str) -> bool:
    try:
        mutant(source, bug, origin)
    except mutate.NoSiteError:
        return False
    return True
