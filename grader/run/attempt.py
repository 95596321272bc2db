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
import threading
from dataclasses import dataclass
from pathlib import Path

from grader.run import isolation, sandbox
from grader.run.channel import CHANNEL_LOST, Channel, Reader
from grader.run.sandbox import Limits, RunResult


@dataclass
class Plan:
    """What the worker is told: the functions to load and the tasks to run, with its time bounds."""

    functions: list[str]
    tasks: list[dict]
    seconds: dict  # total, load, call, fd: the worker's own bounds (judge.grade.budgets)


class Worker:
    """A worker that has started and waits for its plan."""

    def __init__(self, run: sandbox.Started | None, box: isolation.Box | None, attempt: Path, limits: Limits,
                 protected: list[Path], warm: tuple | None = None):
        self._run, self._box, self._attempt, self._limits, self._protected = run, box, attempt, limits, protected
        self._warm = warm  # (the _Warm, an ExitStack): the attempt is forked when its plan is ready

    def finish(self, plan: Plan) -> tuple[RunResult, Channel]:
        """Send plan, run the worker to its end, and read its channel back."""
        if self._warm is not None:
            server, stack = self._warm
            try:
                self._run, self._box = stack.enter_context(server.fork(self._attempt, self._limits))
            except sandbox.WarmFailed:
                return self._again(plan)
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
        reader = Reader(key)  # each line decoded as it comes: a large result is never held twice
        try:
            result = self._run.communicate(data, reader)
        except sandbox.WarmFailed:  # the warm worker is gone: the same attempt, started cold
            return self._again(plan)
        channel = reader.channel
        if (self._box.spec is not None and result.returncode == isolation.SETUP_FAILED
                and "ready" not in channel.events):
            if self._box.runs is not None:  # a warm fork could not build its walls: cold decides
                return self._again(plan)
            if isolation.fell_short(self._box):
                return self._again(plan)  # once more, one level down
        if self._box.spec is not None and "ready" in channel.events:
            isolation.succeeded(self._box)
        result.isolation = self._box.level
        linked = _linked_to(self._attempt, self._protected)
        if linked:
            channel.cheats.insert(0, {"event": "cheat", "what": "read", "target": linked})
        return result, channel

    def _again(self, plan: Plan) -> tuple[RunResult, Channel]:
        with start(self._attempt, self._limits, self._protected, cold=True) as again:
            return again.finish(plan)


@contextlib.contextmanager
def start(attempt: Path, limits: Limits, protected: list[Path], cold: bool = False):
    """Start a worker for the attempt file at `attempt` under `limits`; yield the Worker.

    protected: folders the attempt must not read: hidden from it (masked) behind the
    kernel's walls, and refused by the worker's own guard as a second layer. Inside warm()
    (and unless cold), the worker is a fork of this thread's warm worker when there is one,
    made when finish() has the plan (a cold start if the warm worker cannot make it).
    """
    server = None if cold else _warm_worker(protected)
    if server is not None:  # forked in finish(): the warm worker goes on starting while the plan is made
        with contextlib.ExitStack() as stack:
            yield Worker(None, None, Path(attempt), limits, protected, warm=(server, stack))
        return
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


# ---------------------------------------------------------------- warm workers

class _Warm:
    """One thread's warm worker: its box (a slot held for its life) and the Server in it."""

    def __init__(self, protected: list[Path], level: str):
        self._stack = contextlib.ExitStack()
        try:
            self.box = self._stack.enter_context(isolation.server_box(protected, level))
            argv = [sys.executable, "-I", "-B", str(self.box.lib / "worker.py"), "--box", json.dumps(self.box.spec)]
            self.server = sandbox.Server(argv, {**self.box.env, **sandbox.CHILD_ENV}, str(self.box.folder))
            self._stack.callback(self.server.close)  # before the box is removed
        except BaseException:
            self._stack.close()
            raise

    @contextlib.contextmanager
    def fork(self, attempt: Path, limits: Limits):
        """(the Forked run, its Box) for one attempt; WarmFailed when the worker cannot fork it."""
        with isolation.run_folder(self.box, attempt) as (name, copy):
            with sandbox.forked(self.server, {"run": name, "env": self.box.env}, limits) as run:
                box = isolation.Box(self.box.level, self.box.folder, self.box.work, self.box.lib, copy,
                                    self.box.spec, None, self.box.env, self.box.runs)
                yield run, box

    def close(self) -> None:
        self._stack.close()


_warm = {"depth": 0, "workers": {}, "failed": False}
_warm_lock = threading.Lock()


@contextlib.contextmanager
def warm():
    """While open, attempts started in this process run as forks of a warm worker: one per
    thread (a batch's slot, a watch session, a self-test's pool), started behind its walls
    once with numpy imported, each attempt a fresh process with walls of its own
    (docs/hostile.md). Where no wall with namespaces is available, attempts start cold."""
    with _warm_lock:
        _warm["depth"] += 1
    try:
        yield
    finally:
        with _warm_lock:
            _warm["depth"] -= 1
            closing = list(_warm["workers"].values()) if _warm["depth"] == 0 else []
            if _warm["depth"] == 0:
                _warm["workers"].clear()
        for worker in closing:
            worker.close()


def prestart(protected: list[Path]) -> None:
    """Inside warm(): start this thread's warm worker for protected now, so that it builds
    its walls and imports numpy while the caller still starts up (`drill grade` does this
    first thing). Nothing when no warm worker can run here."""
    _warm_worker(protected)


def _warm_worker(protected: list[Path]) -> _Warm | None:
    """This thread's warm worker for protected (started now if need be), or None: cold."""
    if not _warm["depth"] or _warm["failed"]:
        return None
    level = isolation.warm_level()
    if level is None:
        return None
    key = (threading.get_ident(), tuple(str(p) for p in protected), level)
    with _warm_lock:
        worker = _warm["workers"].get(key)
    if worker is not None and not worker.server.broken:
        return worker
    if worker is not None:
        worker.close()
    try:
        worker = _Warm(protected, level)
    except OSError:
        with _warm_lock:
            _warm["failed"] = True
        return None
    with _warm_lock:
        _warm["workers"][key] = worker
    return worker
