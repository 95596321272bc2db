"""Grade many attempts at once: which files a command line means, a pool, and a summary.

What a path stands for: a file is graded whatever its name; a folder stands for every
`*.py` file below it, at any depth (a course export keeps each student in a folder of
their own), in path order, skipping hidden folders (`.git`, `.venv`), `__pycache__` and
virtual environments (a folder holding `pyvenv.cfg`). A file reached twice is graded once.
A path that does not exist, or a folder with no `.py` file, is a usage error found before
anything is graded; a file that is broken is graded like any other and gets its row.

Every grade() already runs its attempt in a process of its own, so a pool of threads runs
`jobs` attempts side by side; by default as many as this process may use CPUs.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TextIO

from grader import catalog
from grader.run import sandbox
from grader.judge.report import CheckResult, Report
from grader.run.sandbox import Limits


class BatchUsageError(Exception):
    """The batch cannot start: a path that does not exist, a folder with nothing to grade."""


def default_jobs() -> int:
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _skipped(folder: Path) -> bool:
    name = folder.name
    try:
        return name.startswith(".") or name == "__pycache__" or (folder / "pyvenv.cfg").exists()
    except OSError:  # cannot look inside: os.walk says so when it gets there
        return False


def attempt_files(folder: Path, unreadable: list[str] | None = None) -> list[Path]:
    """Every *.py file below folder that could be an attempt, in path order. A folder that
    cannot be read is noted in unreadable (a message each) and left out, never fatal."""
    found = []

    def note(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append(f"{exc.filename}: {exc.strerror or exc}")

    for root, dirs, files in os.walk(folder, onerror=note):
        dirs[:] = [d for d in dirs if not _skipped(Path(root) / d)]
        found += [Path(root) / f for f in files if f.endswith(".py") and not f.startswith(".")]
    return sorted(found)


def expand(paths: Iterable[Path], unreadable: list[str] | None = None) -> list[Path]:
    """The files the paths of a command line stand for; BatchUsageError before any grading.
    Folders below them that cannot be read are noted in unreadable (see attempt_files)."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BatchUsageError("no such file or folder: " + ", ".join(missing))
    out: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        found = attempt_files(path, unreadable) if path.is_dir() else [path]
        if not found:
            raise BatchUsageError(f"{path} holds no .py file to grade")
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


@dataclass
class Plan:
    """What a batch grades: its files, the exercise of those nobody recorded one for, how
    that exercise was chosen, and the helper modules left out."""

    files: list[Path]
    exercise_id: str
    chosen: str  # "given" (--exercise), "most files", "tie" (as many files for another), or "default"
    helpers: list[Path]


def prepare(files: list[Path], exercise_id: str | None = None, named: Iterable[Path] = ()) -> Plan:
    """One exercise for the whole batch (a course grades one assignment): the one given, else
    the one most files attempt, told from each file (see source.guess_exercise); a
    submission's own `.drill/` folder is never read. In a folder holding several files,
    those that define none of the exercise's functions are helper modules, not attempts
    (utils.py beside submission.py), and are left out, unless named on the command line."""
    from collections import Counter

    from grader.judge.source import guess_exercise, source_text

    texts = {f: source_text(f) for f in files}
    if exercise_id is not None:
        if exercise_id not in catalog.exercises():
            raise BatchUsageError(catalog.no_such("exercise", exercise_id, catalog.exercises()))
        chosen = "given"
    else:
        votes: Counter = Counter()
        for f in files:
            if f.stem in catalog.exercises() or catalog.guess(texts[f]) is not None:
                votes[guess_exercise(f, texts[f]).id] += 1  # a file that tells nothing has no say
        if votes:
            exercise_id = max(votes, key=lambda e: (votes[e], e == catalog.DEFAULT_EXERCISE))
            tied = sum(n == votes[exercise_id] for n in votes.values()) > 1
            chosen = "tie" if tied else "most files"
        else:
            exercise_id, chosen = catalog.DEFAULT_EXERCISE, "default"
    functions = catalog.exercise(exercise_id).functions
    defines = {f: bool(catalog.defined_names(texts[f]) & set(functions)) for f in files}
    # a file that cannot be read (no permission, a pipe, a dangling link) is no helper: its row says why
    readable = {f: f.is_file() and os.access(f, os.R_OK) for f in files}
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    named = {Path(n).resolve() for n in named}
    helpers = [f for group in by_folder.values() if len(group) > 1 and any(defines[g] for g in group)
               for f in group if not defines[f] and readable[f] and f.resolve() not in named]
    return Plan([f for f in files if f not in helpers], exercise_id, chosen, sorted(helpers))


def unrun_report(path: Path | str, exercise: catalog.Exercise, kind: str, message: str) -> Report:
    """The report of an attempt that could not be graded at all: every check not run."""
    checks = [CheckResult(c.name, False, 0, c.points, "not run") for c in exercise.checks]
    return Report(exercise=exercise.id, file=str(path), checks=checks, error={"kind": kind, "message": message})


def grade_one(path: Path, exercise_id: str | None, limits: Limits, default: str | None = None) -> Report:
    """grade(), but a row for every file: whatever goes wrong is that file's error."""
    from grader.judge.grade import GradeUsageError, grade

    started = time.perf_counter()
    try:
        return grade(path, exercise_id, limits, default=default)
    except GradeUsageError as exc:  # the file went away meanwhile
        report = unrun_report(path, catalog.exercise(exercise_id or default), "import", str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        report = unrun_report(path, catalog.exercise(exercise_id or default), "grader",
                              f"the grader failed on this file ({type(exc).__name__}: {exc}); "
                              "please report it")
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class Batch:
    reports: list[Report]
    seconds: float
    jobs: int
    plan: Plan | None = None
    interrupted: bool = False  # Ctrl-C: the reports are those finished before it

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    def failed_checks(self) -> dict[str, int]:
        """How many attempts fail each check, in check order."""
        counts: dict[str, int] = {}
        for r in self.reports:
            for c in r.checks:
                counts[c.name] = counts.get(c.name, 0) + (not c.passed)
        return counts

    def summary(self) -> dict:
        scores = [r.score for r in self.reports]
        return {
            "files": len(self.reports),
            "passed": sum(r.passed for r in self.reports),
            "not_passed": sum(not r.passed for r in self.reports),
            "errors": sum(r.error is not None for r in self.reports),
            "mean_score": round(statistics.fmean(scores), 2) if scores else None,
            "median_score": round(statistics.median(scores), 2) if scores else None,
            "max_score": max((r.max_score for r in self.reports), default=None),
            "failed_checks": self.failed_checks(),
            "seconds": round(self.seconds, 2),
            "jobs": self.jobs,
            "exercise": self.plan.exercise_id if self.plan else None,
            "exercise_chosen": self.plan.chosen if self.plan else None,
            "exercises": sorted({r.exercise for r in self.reports}),
            "helpers_left_out": [str(h) for h in self.plan.helpers] if self.plan else [],
            "interrupted": self.interrupted,
        }

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.reports], "summary": self.summary()}


def run(files: list[Path], exercise_id: str | None = None, limits: Limits | None = None,
        jobs: int | None = None, on_done: Callable[[Report], None] | None = None,
        plan: Plan | None = None) -> Batch:
    """Grade files on `jobs` workers; reports come back in the order of files. plan: the
    batch's exercise for files nobody recorded one for (see prepare). On Ctrl-C nothing new
    starts, the attempts running are stopped, and the Batch holds the reports finished
    before it (interrupted)."""
    if exercise_id is not None:
        try:
            catalog.exercise(exercise_id)
        except KeyError as exc:
            raise BatchUsageError(exc.args[0]) from None
    limits = limits or Limits()
    jobs = max(1, min(jobs or default_jobs(), len(files) or 1))
    started = time.perf_counter()
    reports: list[Report | None] = [None] * len(files)
    default = plan.exercise_id if plan else None
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="drill-grade")
    try:
        futures = {pool.submit(grade_one, f, exercise_id, limits, default): i for i, f in enumerate(files)}
        for future in as_completed(futures):
            i = futures[future]
            reports[i] = future.result()
            if on_done is not None:
                on_done(reports[i])
    except KeyboardInterrupt:  # nothing new starts, the runs in progress are stopped and left out
        interrupted = True
        sandbox.cancel_all()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        sandbox.resume()
    return Batch(reports=[r for r in reports if r is not None], seconds=time.perf_counter() - started,
                 jobs=jobs, plan=plan, interrupted=interrupted)


class Progress:
    """A one-line progress bar on a terminal's stderr; silent anywhere else."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.total, self.done, self.passed = total, 0, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.draw("")

    def update(self, report: Report) -> None:
        self.done += 1
        self.passed += report.passed
        self.draw(report.file)

    def draw(self, last: str) -> None:
        if not self.enabled:
            return
        import shutil

        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        spent = time.monotonic() - self.started
        eta = f"  eta {spent / self.done * (self.total - self.done):.0f} s" if self.done else ""
        line = f"{self.done}/{self.total} [{bar}] passed {self.passed}{eta}  {last}"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
