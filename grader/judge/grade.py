"""`drill grade`: run one attempt in its own process and judge it, check by check.

The attempt never runs in this process. grade() sends the worker a plan (the inputs of
every check, and a per-run key), reads back plain data on a private channel, keeps only
the lines authenticated with that key, and computes every verdict and the score here,
from the rubric in the exercise's YAML.

Whatever the attempt does, grade() returns a Report (or raises GradeUsageError for a path
that is not a regular file, or an unknown exercise: exit status 2), within these bounds
(T is --timeout, 120 s by default; the shares are in settings.py; docs/hostile.md has the
whole table):

- not Python at all (empty, binary, not UTF-8, a syntax error, over 1 MB): nothing is
  run; milliseconds.
- top-level code that never ends: stopped after LOAD_SHARE * T (12 s).
- one function that never returns: that call is stopped after CALL_SHARE * T (6 s), the
  function is not called again, and the checks that do not need it are still judged;
  finite differences are bounded by FD_SHARE * T (18 s), training by what is left of T.
- an attempt that blocks, ignores or swallows the grader's alarm, floods its output past
  1024 x the kept size, or runs out of memory: stopped at T at the latest.
- the clean-up afterwards (every process of the attempt killed): at most
  sandbox.KILL_SECONDS + DRAIN_SECONDS more; then judging, about a second.

So a grade ends within T + 5.25 s plus judging. The first of these that applies is
report.error (see _error): cheating (forged channel lines, reading or changing the
grader's files, importing it, tampering with its worker), the file failing to load,
the process stopped or dead before the end (timeout, output, bad-output, memory,
crashed, exited), a missing function, what a single task met (timeout, memory,
exited, output), unreadable results. Cheating scores 0; otherwise each check that
could be run is judged, and one that could not scores 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from grader import catalog, settings
from grader.judge import errors, notebook, plan, rerun, source
from grader.judge.report import CheckResult, Diagnosis, Report
from grader.run.sandbox import Limits


class GradeUsageError(Exception):
    """The command was used wrongly: no such file, unknown exercise (exit status 2)."""


@dataclass(frozen=True)
class Target:
    """What is being graded, resolved once (resolve()): everything below reads it from here."""

    path: Path
    exercise: catalog.Exercise
    limits: Limits = Limits()
    seed: int = settings.PROBE_SEED


def resolve(path: Path, exercise_id: str | None = None, limits: Limits | None = None,
            seed: int = settings.PROBE_SEED, default: str | None = None) -> Target:
    """The Target for the attempt at path: graded as exercise_id, else as default, else as the
    exercise source.guess_exercise tells from the file. GradeUsageError for an unknown
    exercise, or a path that is not a regular file."""
    path = Path(path)
    try:
        chosen = exercise_id or default
        exercise = catalog.exercise(chosen) if chosen else source.guess_exercise(path)
    except KeyError as exc:
        raise GradeUsageError(exc.args[0]) from None
    if not path.exists():
        raise GradeUsageError(f"no such file or folder: {path}")
    if path.is_dir():
        raise GradeUsageError(f"{path} is a folder; name the attempt file in it")
    if not path.is_file():  # a pipe or a device: reading it could block or never end
        raise GradeUsageError(f"{path} is not a regular file")
    return Target(path, exercise, limits or Limits(), seed)


def fresh_seed() -> int:
    """A new seed for a grade's probes: never the canonical one the tests use, which records
    nothing in the report."""
    import secrets

    seed = settings.PROBE_SEED
    while seed == settings.PROBE_SEED:
        seed = secrets.randbelow(2**63)
    return seed


def grade(path: Path, exercise_id: str | None = None, limits: Limits | None = None,
          seed: int = settings.PROBE_SEED, default: str | None = None) -> Report:
    """Grade the attempt at path (see resolve() for which exercise it is graded as)."""
    return judge(resolve(path, exercise_id, limits, seed, default))


def judge(target: Target) -> Report:
    """Run the target's attempt and judge every check of its exercise. A notebook's code cells
    are judged as a temporary .py file, and its report names cells (judge.notebook)."""
    if notebook.is_notebook(target.path):
        return notebook.judge(target, _judge_file)
    return _judge_file(target)


def _judge_file(target: Target) -> Report:
    """judge() for a plain Python file."""
    started = time.perf_counter()
    exercise = target.exercise
    report = Report(exercise=exercise.id, file=str(target.path), checks=[], isolation=plan.isolation_level())
    problem = source.unreadable(target.path, exercise)
    if problem:
        report.error = problem
        report.checks = _score(exercise, {})
    else:
        _run_and_judge(target, report)
    report.seconds = time.perf_counter() - started
    return report


def _run_and_judge(target: Target, report: Report) -> None:
    started = time.perf_counter()
    exercise, limits = target.exercise, target.limits
    made: dict = {}

    def make_tasks():  # while the worker starts: the probe module and the reference import numpy
        made["probes"] = probes = plan.probe_module(exercise)
        made["ctx"] = ctx = plan.context(exercise, target.seed)
        return probes.build(ctx)

    run, channel, tasks = plan.run_worker(target.path, exercise, limits, make_tasks)
    probes, ctx = made["probes"], made["ctx"]
    report.output = errors.output(run)
    report.isolation = run.isolation or report.isolation
    report.error = errors.run_error(run, channel, limits, {t["id"]: t for t in tasks})
    if report.error is None:
        rerun.fill_and_rerun(target.path, exercise, limits, ctx, tasks, channel, report,
                             time.perf_counter() - started)
    try:
        outcomes = probes.judge(ctx, channel.results)
    except Exception as exc:  # noqa: BLE001 - a bug of the grader's: say so, never a traceback
        report.error = report.error or errors.internal("judging", exc)
        outcomes = []
    report.checks = _score(exercise, {o.name: o for o in outcomes})
    if report.error and report.error["kind"] == "cheating":
        for c in report.checks:
            c.points, c.passed = 0, False
    conv = next((o for o in outcomes if o.name == "convergence"), None)
    if conv is not None:
        report.convergence = conv.details
    report.diagnosis = _diagnosis(ctx, outcomes) + errors.notes(run, channel, limits)
    if target.seed != settings.PROBE_SEED:  # a drawn seed: recorded, so the grade can be replayed
        report.probes = {"seed": target.seed, "sizes": ctx.data.get("sizes")}


def _diagnosis(ctx, outcomes) -> list[Diagnosis]:
    """The catalogued bugs behind the failing checks, then each unexplained check's own notes."""
    from grader.judge.diagnose import diagnose  # numpy: imported after the worker has started

    try:
        found = diagnose(ctx, outcomes)
    except Exception as exc:  # noqa: BLE001 - a bug of the grader's: the checks stand, the diagnosis is lost
        found = [Diagnosis(bug=None, link="-", severity="note", message=errors.internal("diagnosing", exc)["message"])]
    explained = {d.link for d in found}
    return found + [Diagnosis(bug=None, link=o.name, severity="note", message=n)
                    for o in outcomes if o.name not in explained for n in o.notes]


def _score(exercise: catalog.Exercise, outcomes: dict) -> list[CheckResult]:
    out = []
    for spec in exercise.checks:
        o = outcomes.get(spec.name)
        if o is None:
            out.append(CheckResult(spec.name, False, 0, spec.points, "not run", open=True))
            continue
        out.append(CheckResult(spec.name, o.passed, spec.points if o.passed else 0, spec.points,
                               o.message, list(o.notes), open=o.open and not o.passed, terse=o.terse))
    return out
