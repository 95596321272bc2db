"""The plan of a grade: the probes' context, the worker's time bounds, and one run of the worker.

Owns: building the reference context the probes need, the worker's time budgets (shares
of --timeout, settings.py), and a run of the worker with the tasks the probes make.
May import: catalog, run, judge.checks, judge.probes.
"""
from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

from grader import catalog, settings
from grader.catalog import paths
from grader.run import attempt
from grader.run.sandbox import Limits


def context(exercise: catalog.Exercise, seed: int):
    import numpy as np

    from grader.judge import checks
    from grader.catalog import reference

    source = exercise.solution_path.read_text(encoding="utf-8")
    assigns = {b.name: b.assigns for b in exercise.blanks}
    ref = reference.load(source, str(exercise.solution_path))
    traced = reference.load_traced(source, str(exercise.solution_path), assigns)
    return checks.Context(exercise=exercise, ref=ref, traced=traced, rng=np.random.default_rng(seed),
                          seed=seed)


def probe_module(exercise: catalog.Exercise):
    return importlib.import_module(f"grader.judge.probes.{exercise.id}")


def run_worker(path: Path, exercise: catalog.Exercise, limits: Limits, make_tasks, left: float | None = None):
    """One run of the attempt in a worker process: (run, channel, tasks). make_tasks() makes
    the task list; it is called once the worker has started, so that building the probes
    here and importing numpy there overlap. left: seconds left of limits.timeout, for a
    second run: each call keeps its usual bound, the run as a whole gets only what is left."""
    seconds = budgets(limits.timeout)
    if left is not None:
        seconds["total"] = min(seconds["total"], left - (limits.timeout - seconds["total"]))
        limits = replace(limits, timeout=left)
    with attempt.start(path, limits, paths.protected_dirs()) as worker:
        tasks = make_tasks()
        from grader.judge import diagnose  # noqa: F401 - needed after the run: imported before the attempt runs
        run, channel = worker.finish(attempt.Plan(list(exercise.functions), tasks, seconds))
    return run, channel, tasks


def isolation_level() -> str:
    """The wall the worker runs behind on this machine (run.isolation, probed once)."""
    from grader.run import isolation

    return isolation.level()


def budgets(timeout: float) -> dict:
    """The worker's time bounds, in seconds, for a run of `timeout` seconds (settings.py)."""
    def share(fraction):
        return max(settings.MIN_TASK_SECONDS, fraction * timeout)

    reserve = min(max(settings.MIN_RESERVE_SECONDS, settings.RESERVE_SHARE * timeout), timeout / 2)
    return {"total": timeout - reserve, "load": share(settings.LOAD_SHARE),
            "call": share(settings.CALL_SHARE), "fd": share(settings.FD_SHARE)}
