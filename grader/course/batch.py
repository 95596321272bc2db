"""Grade many attempts at once: which submissions a command line means, whose they are, a
pool, and a summary.

What a path stands for. A file named on the command line is one submission, graded
whatever its name (a link named there is followed: the teacher chose it). A folder is a
course export, in one of two shapes, or both at once:

- flat (the usual LMS download, one file per student): every `*.py` (or `*.ipynb`) entry directly in it
  is a submission of its own, whatever it holds: an empty file, a binary, a pipe, a
  folder named like a file. A symbolic link there is refused in its row: it points at a
  file that is not that student's own.
- one folder per student: every `*.py` file below a student's folder, at any depth, is
  that student's. A file that defines none of the exercise's functions beside one of the
  same student's that does is a helper module (utils.py), left out and named; a link is
  graded as its target's content, for this student, if the target lies inside the
  student's own folder, and refused in its row otherwise. A student's folder with no
  `*.py` file at all gets a row saying so.

Hidden files and folders (`.git`, `.drill`, `.venv`), `__pycache__` and virtual environments
(a folder holding `pyvenv.cfg`) are skipped. Nothing is ever read from a submission's
`.drill/`: strangers' state decides nothing here. Every submission gets exactly one row:
what cannot be graded at all (kind bad-input, found without opening it: a link out, a pipe,
a device, a folder, a file that cannot be read) gets a row saying why; files are read only
through files.read_bounded (never blocking, never more than the attempt bound). The same
path reached twice is graded once; two paths never share a row, even when they lead to the
same file. A path that does not exist, or a folder with no `.py` file, is a usage error
found before anything is graded.

The exercise is the teacher's to choose (--exercise); without it, the students decide by
a clear majority (MAJORITY of those whose files tell an exercise, one vote per student
folder or flat file, never per file), else the batch stops with a usage error naming the
candidates.

Every grade() already runs its attempt in a process of its own, so a pool of threads runs
`jobs` attempts side by side; by default as many as this process may use CPUs.
"""
from __future__ import annotations

import os
import stat
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TextIO

from grader import catalog, files, settings
from grader.run import attempt, sandbox
from grader.judge.report import CheckResult, Report
from grader.run.sandbox import Limits

SUFFIXES = (".py", ".ipynb")  # what a submission is: a Python file or a notebook (judge.notebook)
MAJORITY = 0.75  # the share of the voting students one exercise needs, without --exercise
BAD_INPUT = "bad-input"  # the error kind of a submission that cannot be graded at all


class BatchUsageError(Exception):
    """The batch cannot start: a path that does not exist, a folder with nothing to grade,
    students who do not agree on one exercise."""


def default_jobs() -> int:
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Submission:
    """One row of a batch: a path, whose it is, and why it cannot be graded (if so)."""

    path: Path
    student: Path | None = None  # the student's folder; None: a file of its own (flat, or named)
    problem: str | None = None  # why it cannot be graded at all: its row says so (bad-input)
    named: bool = False  # named on the command line: graded whatever it defines, a link followed


def student_name(sub: Submission) -> str:
    """Whose a submission is, for a gradebook: the student's folder, else the file's stem (a
    flat folder's file is named for its student). A file named on the command line and named
    like an exercise (drill start's mlp_backprop.py, the same for everyone) is its folder's."""
    if sub.student is not None:
        return sub.student.name
    folder = sub.path.absolute().parent.name
    return folder if sub.named and sub.path.stem in catalog.exercises() and folder else sub.path.stem


def _skipped(folder: Path) -> bool:
    name = folder.name
    try:
        return name.startswith(".") or name == "__pycache__" or (folder / "pyvenv.cfg").exists()
    except OSError:  # cannot look inside: os.walk says so when it gets there
        return False


def _inside(path: str, folder: Path) -> bool:
    real, home = os.path.realpath(path), os.path.realpath(folder)
    return real == home or real.startswith(home.rstrip(os.sep) + os.sep)


def problem(path: Path, student: Path | None, named: bool = False) -> str | None:
    """Why the submission at path cannot be graded at all, found without opening it; None
    when it can. A link is followed only when named, or when it stays inside student."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            target = os.readlink(path)
            if not named and student is None:
                return f"is a symbolic link to {target}; a link among submissions is refused (it may lead to another's work)"
            if not named and not _inside(str(path), student):
                return f"is a symbolic link to {target}, outside this student's folder; it is refused"
            mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a symbolic link to nothing" if os.path.islink(path) else "went away before it was graded"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"is {files.kind(mode)}, not a file of Python source"
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied"
    return None


def _candidates(folder: Path, note: Callable[[OSError], None]) -> list[Path]:
    """Every *.py and *.ipynb entry below folder that could be an attempt, in path order: files, links
    (to a folder too: refused in their row), pipes; not inside links to folders."""
    found = []
    for root, dirs, names in os.walk(folder, onerror=note):
        here = Path(root)
        found += [here / d for d in dirs if d.endswith(SUFFIXES) and not d.startswith(".") and (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if not (here / d).is_symlink() and not _skipped(here / d)]
        found += [here / f for f in names if f.endswith(SUFFIXES) and not f.startswith(".")]
    return sorted(found)


def attempt_files(folder: Path, unreadable: list[str] | None = None) -> list[Path]:
    """Every *.py and *.ipynb entry below folder that could be an attempt, in path order (one
    student's folder: the Gradescope bundle's submission). A folder that cannot be read is
    noted in unreadable (a message each) and left out, never fatal."""
    def note(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append(f"{exc.filename}: {exc.strerror or exc}")

    return _candidates(folder, note)


def _student(folder: Path, note: Callable[[OSError], None]) -> list[Submission]:
    """A student's folder: each of their *.py files, or one row saying why there is none."""
    try:
        os.scandir(folder).close()
    except OSError as exc:
        return [Submission(folder, folder, f"cannot be read: {exc.strerror or exc}")]
    found = _candidates(folder, note)
    if not found:
        return [Submission(folder, folder, "holds no .py file (nor .ipynb notebook): nothing to grade")]
    return [Submission(p, folder, problem(p, folder)) for p in found]


def _folder(root: Path, note: Callable[[OSError], None]) -> list[Submission]:
    """The submissions in a folder named on the command line (see the module's docstring)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        note(exc)
        return []
    subs: list[Submission] = []
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir(follow_symlinks=False):
            subs += [] if _skipped(path) else _student(path, note)
        elif entry.name.endswith(SUFFIXES) or (entry.is_symlink() and path.is_dir()):
            subs.append(Submission(path, None, problem(path, None)))
    return subs


def expand(paths: Iterable[Path], unreadable: list[str] | None = None) -> list[Submission]:
    """The submissions the paths of a command line stand for; BatchUsageError before any
    grading. Folders below them that cannot be read are noted in unreadable (a message each)."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BatchUsageError("no such file or folder: " + ", ".join(missing))

    def note(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append(f"{exc.filename}: {exc.strerror or exc}")

    out: dict[str, Submission] = {}  # by the path as given, never by where a link leads
    for path in paths:
        if path.is_dir():
            found = _folder(path, note)
            # no .py file anywhere (a folder named like one counts: it is someone's row): nothing to grade
            if all(s.student == s.path and not s.path.name.endswith(SUFFIXES) for s in found):
                raise BatchUsageError(f"{path} holds no .py file (nor .ipynb notebook) to grade")
        else:
            found = [Submission(path, None, problem(path, None, named=True), named=True)]
        for sub in found:
            key = os.path.abspath(sub.path)
            if key not in out or sub.named:  # named as well: graded whatever it defines
                out[key] = sub if key not in out else Submission(out[key].path, out[key].student, sub.problem, True)
    return list(out.values())


@dataclass
class Plan:
    """What a batch grades: its submissions, the exercise they are graded as, how that was
    chosen, the students' votes, and the helper modules left out."""

    files: list[Submission]
    exercise_id: str
    chosen: str  # "given" (--exercise), "most students", or "default" (nobody's files told one)
    helpers: list[Path]
    votes: dict[str, int]


def _text(sub: Submission) -> str:
    """What the submission holds, as far as the plan needs it ('' if it cannot be read)."""
    from grader.judge.source import MAX_FILE_BYTES

    if sub.problem:
        return ""
    try:  # a link here was checked by problem(); a pipe swapped in since is refused, never read
        return files.read_bounded(sub.path, MAX_FILE_BYTES, follow=True).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _votes(subs: list[Submission], texts: dict) -> Counter:
    """One vote per student (the exercise most of their telling files attempt; none on a tie)
    or per file of its own; a file that tells nothing has no say."""
    from grader.judge.source import guess_exercise

    told: dict[Path, Counter] = {}
    for s in subs:
        if s.problem is None and (s.path.stem in catalog.exercises() or catalog.guess(texts[s]) is not None):
            told.setdefault(s.student or s.path, Counter())[guess_exercise(s.path, texts[s]).id] += 1
    votes: Counter = Counter()
    for counts in told.values():
        ranked = counts.most_common(2)
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            votes[ranked[0][0]] += 1
    return votes


def _choose(exercise_id: str | None, votes: Counter) -> tuple[str, str]:
    if exercise_id is not None:
        if exercise_id not in catalog.exercises():
            raise BatchUsageError(catalog.no_such("exercise", exercise_id, catalog.exercises()))
        return exercise_id, "given"
    if not votes:
        return catalog.DEFAULT_EXERCISE, "default"
    best = max(votes, key=lambda e: (votes[e], e == catalog.DEFAULT_EXERCISE))
    if votes[best] >= MAJORITY * sum(votes.values()):
        return best, "most students"
    counted = ", ".join(f"{e} ({n} student{'s' if n != 1 else ''})" for e, n in votes.most_common())
    raise BatchUsageError(f"the submissions do not agree on one exercise: {counted}; none is attempted "
                          f"by {MAJORITY:.0%} of them. A batch is one assignment: pass --exercise NAME "
                          f"to grade every file as NAME (e.g. --exercise {best})")


def _helpers(subs: list[Submission], texts: dict, functions) -> list[Path]:
    """Files of a student's folder that define none of the exercise's functions, beside one
    of the same student's that does. Never a flat folder's file, a named one, or one with a problem."""
    defines = {s: bool(catalog.defined_names(texts[s]) & set(functions)) for s in subs}
    by_student: dict[Path, list[Submission]] = {}
    for s in subs:
        if s.student is not None and not s.named and s.problem is None:
            by_student.setdefault(s.student, []).append(s)
    return [s.path for group in by_student.values() if any(defines[g] for g in group)
            for s in group if not defines[s]]


def prepare(subs: list[Submission | Path], exercise_id: str | None = None) -> Plan:
    """One exercise for the whole batch (a course grades one assignment): the one given, else
    the one a clear majority of students attempt (_votes, MAJORITY), told from each file's
    name and functions (source.guess_exercise); a submission's own `.drill/` folder is never
    read. A plain Path counts as named on the command line."""
    subs = [s if isinstance(s, Submission) else Submission(Path(s), None, problem(Path(s), None, True), True)
            for s in subs]
    texts = {s: _text(s) for s in subs}
    votes = _votes(subs, texts)
    exercise_id, chosen = _choose(exercise_id, votes)
    helpers = _helpers(subs, texts, catalog.exercise(exercise_id).functions)
    return Plan([s for s in subs if s.path not in helpers], exercise_id, chosen, sorted(helpers), dict(votes))


def unrun_report(path: Path | str, exercise: catalog.Exercise, kind: str, message: str) -> Report:
    """The report of an attempt that could not be graded at all: every check not run."""
    checks = [CheckResult(c.name, False, 0, c.points, "not run", open=True) for c in exercise.checks]
    return Report(exercise=exercise.id, file=str(path), checks=checks, error={"kind": kind, "message": message})


def grade_one(sub: Submission | Path, exercise_id: str | None, limits: Limits, default: str | None = None,
              seed: int = settings.PROBE_SEED) -> Report:
    """grade(), but a row for every submission: whatever goes wrong is that submission's error.
    seed: the probes' (a drawn one is recorded in the report, as probes.seed)."""
    from grader.judge.grade import GradeUsageError, grade

    sub = sub if isinstance(sub, Submission) else Submission(Path(sub), named=True)
    exercise = catalog.exercise(exercise_id or default)
    if sub.problem:
        return unrun_report(sub.path, exercise, BAD_INPUT, f"{sub.path.name} {sub.problem}")
    started = time.perf_counter()
    try:
        return grade(sub.path, exercise_id, limits, seed=seed, default=default)
    except GradeUsageError as exc:  # the file went away meanwhile
        report = unrun_report(sub.path, exercise, "import", str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        report = unrun_report(sub.path, exercise, "grader",
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
    students: dict[str, str] = field(default_factory=dict)  # a report's file -> whose it is (student_name)
    seed: int | None = None  # the probes' seed of every report of this run

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
            "votes": dict(self.plan.votes) if self.plan else {},
            "interrupted": self.interrupted,
            "seed": self.seed,
        }

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.reports], "summary": self.summary()}


def run(files: list[Submission | Path], exercise_id: str | None = None, limits: Limits | None = None,
        jobs: int | None = None, on_done: Callable[[Report], None] | None = None,
        plan: Plan | None = None, seed: int | None = None) -> Batch:
    """Grade files (submissions, or paths named on the command line) on `jobs` workers; reports
    come back in the order of files, one each. plan: the batch's exercise (see prepare). On Ctrl-C nothing new
    starts, the attempts running are stopped, and the Batch holds the reports finished
    before it (interrupted). seed: the probes' for every file (`drill grade --seed`); None
    draws a new one for this run, recorded in each report (probes.seed) and the summary."""
    if exercise_id is not None:
        try:
            catalog.exercise(exercise_id)
        except KeyError as exc:
            raise BatchUsageError(exc.args[0]) from None
    limits = limits or Limits()
    if seed is None:
        from grader.judge.grade import fresh_seed

        seed = fresh_seed()
    jobs = max(1, min(jobs or default_jobs(), len(files) or 1))
    started = time.perf_counter()
    reports: list[Report | None] = [None] * len(files)
    default = plan.exercise_id if plan else None
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="drill-grade")
    with attempt.warm():  # one warm worker per thread of the pool, each attempt a fresh fork of it
        try:
            futures = {pool.submit(grade_one, f, exercise_id, limits, default, seed): i for i, f in enumerate(files)}
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
    students = {str(s.path): student_name(s) for s in
                (f if isinstance(f, Submission) else Submission(Path(f), named=True) for f in files)}
    return Batch(reports=[r for r in reports if r is not None], seconds=time.perf_counter() - started,
                 jobs=jobs, plan=plan, interrupted=interrupted, students=students, seed=seed)


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
