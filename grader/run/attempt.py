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

    def __init__(self, run: sandbox.Started, box: isolation.Box, attempt: Path, limits: Limits,
                 protected: list[Path]):
        self._run, self._box, self._attempt, self._limits, self._protected = run, box, attempt, limits, protected

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
        channel = read_channel(result.channel, key)
        if (self._box.spec is not None and result.returncode == isolation.SETUP_FAILED
                and "ready" not in channel.events and isolation.fell_short(self._box)):
            with start(self._attempt, self._limits, self._protected) as again:  # once more, one level down
                return again.finish(plan)
        if self._box.spec is not None and "ready" in channel.events:
            isolation.succeeded(self._box)
        result.isolation = self._box.level
        linked = _linked_to(self._attempt, self._protected)
        if linked:
            channel.cheats.insert(0, {"event": "cheat", "what": "read", "target": linked})
        return result, channel


@contextlib.contextmanager
def start(attempt: Path, limits: Limits, protected: list[Path]):
    """Start a worker for the attempt file at `attempt` under `limits`; yield the Worker.

    protected: folders the attempt must not read: hidden from it (masked) behind the
    kernel's walls, and refused by the worker's own guard as a second layer.
    """
    with isolation.box(Path(attempt), protected) as box:
        # -I: no PYTHON* variable, no user site-packages, not the script's folder on sys.path;
        # -B: no bytecode written beside the attempt's modules (PYTHONDONTWRITEBYTECODE, which
        # -I ignores). -I ignores PYTHONHASHSEED=0 too: the worker's str hashes are random, and
        # nothing it sends depends on them (its results are lists and insertion-ordered dicts).
        argv = [sys.executable, "-I", "-B", str(box.lib / "worker.py")]
        if box.spec is not None:
            argv += ["--box", json.dumps(box.spec)]
        with sandbox.started(argv, limits, cwd=str(box.work), env=box.env, kill_uid=box.uid) as run:
            yield Worker(run, box, Path(attempt), limits, protected)


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def _linked_to(attempt: Path, protected: list[Path]) -> str | None:
    """The grader's own file that the attempt, given by a path outside the grader's folders,
    is a symbolic or hard link to (the reference handed in as one's own), or None."""
    folders = [os.path.realpath(d) for d in protected]
    literal = os.path.abspath(attempt)
    if _inside(literal, folders):
        return None  # the grader's own file graded as such (the self-test grades the reference)
    resolved = os.path.realpath(attempt)
    if _inside(resolved, folders):
        return resolved
    try:
        st = os.stat(resolved)
    except OSError:
        return None
    if st.st_nlink < 2:
        return None
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                with contextlib.suppress(OSError):
                    other = os.stat(os.path.join(root, name))
                    if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                        return os.path.join(root, name)
    return None
