"""Run one attempt's worker: start it, hand it its plan, read back what it sent.

The only code that starts the attempt's process or talks to it (with sandbox.py under it).
The judge calls start() before it has made its plan, so that the worker imports numpy
while the probes are built, then finish(plan) once: the worker reads the plan on stdin.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.run import sandbox
from grader.run.channel import CHANNEL_LOST, Channel, read_channel
from grader.run.sandbox import Limits, RunResult

WORKER = Path(__file__).resolve().parent / "worker.py"


@dataclass
class Plan:
    """What the worker is told: the functions to load and the tasks to run, with its time bounds."""

    functions: list[str]
    tasks: list[dict]
    seconds: dict  # total, load, call, fd: the worker's own bounds (judge.grade.budgets)


class Worker:
    """A worker that has started and waits for its plan."""

    def __init__(self, run: sandbox.Started, attempt: Path, protected: list[Path]):
        self._run, self._attempt, self._protected = run, attempt, protected

    def finish(self, plan: Plan) -> tuple[RunResult, Channel]:
        """Send plan, run the worker to its end, and read its channel back."""
        import json

        key = secrets.token_hex(32)
        data = json.dumps({
            "attempt": str(self._attempt),
            "functions": plan.functions,
            "tasks": plan.tasks,
            "seconds": plan.seconds,
            "key": key,
            "channel_lost": CHANNEL_LOST,
            "grader_pid": os.getpid(),
            "forbidden_dirs": [str(d) for d in self._protected],
            "forbidden_modules": ["grader"],
        }).encode()
        result = self._run.communicate(data)
        return result, read_channel(result.channel, key)


@contextlib.contextmanager
def start(attempt: Path, limits: Limits, protected: list[Path]):
    """Start a worker for the attempt file at `attempt` under `limits`; yield the Worker.

    protected: folders the attempt must not read (the guard's second layer).
    """
    with tempfile.TemporaryDirectory(prefix="drill-run-", ignore_cleanup_errors=True) as scratch:
        # The environment minus every PYTHON* variable (what -I would drop) and with TMPDIR in
        # the scratch folder; unlike -I, the sandbox's PYTHONHASHSEED and PYTHONDONTWRITEBYTECODE
        # still apply. `-s`: no user site-packages; the worker takes its own folder off sys.path.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["TMPDIR"] = scratch
        with sandbox.started([sys.executable, "-s", str(WORKER)], limits, cwd=scratch, env=env) as run:
            yield Worker(run, Path(attempt).resolve(), protected)
