"""`drill bugs --check`: the repository checks itself.

Every exercise's reference must pass every check, its untouched stub must score 0, and
every catalogued bug, put into the reference, must be caught by the check its entry names
(a note for a bug of severity note) and be named by the diagnosis.
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader import catalog
from grader.catalog import stubgen
from grader.judge.grade import grade
from grader.judge.report import Report
from grader.run import attempt


@dataclass
class Case:
    """One graded file of the self-test and what it should have shown."""

    label: str  # "reference", "stub" or a bug id
    exercise: catalog.Exercise
    bug: catalog.Bug | None
    report: Report | None = None

    @property
    def failing(self) -> set[str]:
        return {c.name for c in self.report.checks if not c.passed}

    @property
    def noted(self) -> set[str]:
        return {c.name for c in self.report.checks if c.notes}

    @property
    def named(self) -> bool:
        return any(d.bug == self.bug.id for d in self.report.diagnosis) if self.bug else True

    @property
    def problem(self) -> str | None:
        """Why this case fails the self-test, or None."""
        r = self.report
        if self.bug is None:
            if self.label == "reference" and not r.passed:
                return f"the reference does not pass: {r.first_failure.name}: {r.first_failure.message}"
            if self.label == "stub" and (r.score != 0 or r.error is not None):
                return f"the untouched stub scores {r.score:g} (error: {r.error})"
            return None
        check = self.bug.caught_by
        if self.bug.severity == "error" and check not in self.failing:
            return f"escapes its check {check}" + (f" (caught by {', '.join(sorted(self.failing))})"
                                                   if self.failing else " (no check fails)")
        if self.bug.severity == "note" and (self.failing or check not in self.noted):
            return f"should pass with a note on {check}; failing: {sorted(self.failing) or 'none'}"
        if not self.named:
            return "is caught but the diagnosis does not name it"
        return None


def run(exercise_id: str | None = None, jobs: int | None = None) -> list[Case]:
    exercises = [catalog.exercise(exercise_id)] if exercise_id else list(catalog.exercises().values())
    cases: list[tuple[Case, str]] = []
    from grader.catalog.mutants import reference_mutant

    for ex in exercises:
        solution = ex.solution_path.read_text(encoding="utf-8")
        cases.append((Case("reference", ex, None), stubgen.strip_markers(solution)))
        cases.append((Case("stub", ex, None), stubgen.stub_for(ex)))
        for bug in catalog.bugs(ex.id).values():
            cases.append((Case(bug.id, ex, bug), reference_mutant(bug)))
    with tempfile.TemporaryDirectory(prefix="drill-selftest-") as scratch:
        def one(item):
            case, text = item
            path = Path(scratch) / case.exercise.id / f"{case.label}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            case.report = grade(path, case.exercise.id)
            return case

        with attempt.warm(), ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            return list(pool.map(one, cases))


def matrix(cases: list[Case]) -> str:
    """Which checks each case fails: X fails, n a note, . passes; and the verdict."""
    lines = []
    for ex_id in dict.fromkeys(c.exercise.id for c in cases):
        rows = [c for c in cases if c.exercise.id == ex_id]
        ex = rows[0].exercise
        names = [c.name for c in ex.checks]
        width = max(len(c.label) for c in rows)
        heads = [n[:4] for n in names]
        lines.append(f"{ex.id}: X fails, n a note, . passes")
        lines.append(" " * width + "  " + " ".join(f"{h:^4}" for h in heads))
        for c in rows:
            cells = " ".join(f"{'X' if n in c.failing else 'n' if n in c.noted else '.':^4}" for n in names)
            verdict = "ok" if c.problem is None else f"PROBLEM: {c.problem}"
            expected = f"  -> {c.bug.caught_by}" if c.bug else ""
            lines.append(f"{c.label:<{width}}  {cells}  {verdict}{expected}")
        lines.append("")
    lines += power(cases)
    bad = [c for c in cases if c.problem]
    lines.append(f"{len(cases) - len(bad)} of {len(cases)} cases as expected"
                 + ("" if not bad else f"; {len(bad)} not: " + ", ".join(c.label for c in bad)))
    return "\n".join(lines)


def _signature(case: Case) -> tuple:
    """What a grade lets anyone see of a bug: each check's verdict and message."""
    return tuple((c.name, c.passed, c.message, tuple(c.notes)) for c in case.report.checks)


def indistinguishable(cases: list[Case]) -> list[tuple[str, str]]:
    """Pairs of bugs of one exercise whose grades are the same, check by check and word for
    word: no probe tells them apart."""
    pairs = []
    bugs = [c for c in cases if c.bug is not None and c.report is not None]
    for i, a in enumerate(bugs):
        for b in bugs[i + 1:]:
            if a.exercise.id == b.exercise.id and _signature(a) == _signature(b):
                pairs.append((a.label, b.label))
    return pairs


def uncaught(cases: list[Case]) -> list[str]:
    """Bugs that no check fails (nor notes): the grade cannot see them at all."""
    return [c.label for c in cases if c.bug is not None and c.report is not None and not c.failing and not c.noted]


def power(cases: list[Case]) -> list[str]:
    """Each exercise's diagnostic power, as lines: its bugs caught and named, the pairs no
    probe tells apart and the bugs no check catches."""
    lines = []
    for ex_id in dict.fromkeys(c.exercise.id for c in cases):
        mine = [c for c in cases if c.exercise.id == ex_id]
        bugs = [c for c in mine if c.bug is not None]
        named = sum(1 for c in bugs if c.named and (c.failing or c.noted))
        pairs = indistinguishable(mine)
        missed = uncaught(mine)
        lines.append(f"{ex_id}: {named} of {len(bugs)} bugs caught and named; "
                     f"pairs no probe tells apart: {', '.join(' = '.join(p) for p in pairs) or 'none'}; "
                     f"bugs no check catches: {', '.join(missed) or 'none'}")
    return lines + [""]
