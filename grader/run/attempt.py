"""Run one attempt's worker: start it behind the strongest wall there is, hand it its plan, read back.

The only code that starts the attempt's process or talks to it (with sandbox.py under it,
and isolation.py for the wall). The judge calls start() before it has made its plan, so
that the worker imports numpy while the probes are built, then finish(plan) once: the
worker reads the plan on stdin, and only then loads the attempt.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.run import isolation, sandbox
from grader.run.channel import CHANNEL_LOST, Channel, read_channel
from grader.run.sandbox import Limits, RunResult


@dataclass
class Plan:
    """What the worker is told: the functions to load and the tasks to run, with its time bounds."""

    functions: list[str]
    tasks: list[dict]
    seconds: dict  # total, load, call, fd: the worker's own bounds (judge.grade.budgets)


class Worker:
    """A worker that has started and waits for its plan."""

    def __init__(self, run: sandbox.Started, box: isolation.Box, protected: list[Path]):
        self._run, self._box, self._protected = run, box, protected
        self.isolation = box.level

    def finish(self, plan: Plan) -> tuple[RunResult, Channel]:
        """Send plan, run the worker to its end, and read its channel back."""
        key = secrets.token_hex(32)
        data = json.dumps({
            "attempt": str(self._box.attempt),
            "functions": plan.functions,
            "tasks": plan.tasks,
            "seconds": plan.seconds,
            "key": key,
            "channel_lost": CHANNEL_LOST,
            "grader_pid": os.getpid() if self._box.spec is None else None,  # boxed: its parent is the box's init
            "forbidden_dirs": [str(d) for d in self._protected],
            "forbidden_modules": ["grader"],
        }).encode()
        result = self._run.communicate(data)
        return result, read_channel(result.channel, key)


@contextlib.contextmanager
def start(attempt: Path, limits: Limits, protected: list[Path]):
    """Start a worker for the attempt file at `attempt` under `limits`; yield the Worker.

    protected: folders the attempt must not read: hidden from it (masked) behind the
    kernel's walls, and refused by the worker's own guard as a second layer.
    """
    with isolation.box(Path(attempt), protected) as box:
        # -I: no PYTHON* variable, no user site-packages, not the script's folder on sys.path;
        # -B: no bytecode written beside the attempt's modules.
        argv = [sys.executable, "-I", "-B", str(box.lib / "worker.py")]
        if box.spec is not None:
            argv += ["--box", json.dumps(box.spec)]
        with sandbox.started(argv, limits, cwd=str(box.work), env=box.env, kill_uid=box.uid) as run:
            yield Worker(run, box, protected)
