"""The wording of what went wrong with a run: report.error, and the notes a run leaves.

Owns: turning a RunResult and its Channel into the one error a report carries (the first
that applies, docs/hostile.md), the attempt's output as shown, and the run's notes.
The wording is tables: RUN_ERRORS and STOPPED (rules asked in order, the first that
answers wins), LOAD_ERRORS and TASK_ERRORS (by kind); each rule's docstring is an example.
May import: run, judge.report.
"""
from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from grader import settings
from grader.judge.report import Diagnosis
from grader.run.channel import CHANNEL_LOST, Channel
from grader.run.sandbox import Limits, RunResult

SHOWN_LINE_CHARS = 300  # of each line of the attempt's output shown in a report


def internal(doing: str, exc: Exception) -> dict:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
    where = f" ({Path(frame[0].filename).name}, line {frame[0].lineno})" if frame else ""
    return {"kind": "internal", "message": f"the grader failed while {doing} ({type(exc).__name__}: {exc}"
                                           f"{where}); this is a bug in drill, please report it"}


def output(run: RunResult) -> dict:
    keep = settings.SHOWN_OUTPUT_LINES
    return {"stdout": [_printable(s) for s in run.stdout.splitlines()[:keep]],
            "stderr": [_printable(s) for s in run.stderr.splitlines()[-keep:]],
            "stdout_bytes": run.stdout_bytes, "stderr_bytes": run.stderr_bytes}


def _printable(line: str) -> str:
    """The attempt's line with control characters shown as escapes: it cannot move the cursor,
    clear the screen or recolour the grader's own report."""
    from grader.run.wire import printable  # numpy: not before `drill grade` has started its worker

    return printable(line, SHOWN_LINE_CHARS) + (" ..." if len(line) > SHOWN_LINE_CHARS else "")


# ---------------------------------------------------------------- report.error

def run_error(run: RunResult, channel: Channel, limits: Limits, tasks: dict) -> dict | None:
    """The one error the report carries: the first of RUN_ERRORS that applies (docs/hostile.md)."""
    ended = Ended(run, channel, limits, tasks)
    return next((e for e in (asked(ended) for asked in RUN_ERRORS) if e is not None), None)


@dataclass
class Ended:
    """What the rules read: how the attempt's process ended, what it sent, its limits and tasks."""

    run: RunResult
    channel: Channel
    limits: Limits
    tasks: dict

    @property
    def load(self) -> dict:
        return self.channel.events.get("load") or {}

    @cached_property
    def during(self) -> str:
        """" while running backward (backward/0)", or where the worker was when it stopped."""
        channel = self.channel
        if "load" in channel.events and channel.running is None:
            return " after its last result" if channel.results else " after loading the file"
        return " while " + _doing(self.tasks.get(channel.running) if channel.running else None)


Rule = Callable[[Ended], "dict | None"]
RUN_ERRORS: list[Rule] = []  # what the run and its results say, in the order they are asked
STOPPED: list[Rule] = []  # why the worker did not finish, in the order they are asked


def rule(table: list[Rule]) -> Callable[[Rule], Rule]:
    def add(fn: Rule) -> Rule:
        table.append(fn)
        return fn
    return add


@rule(RUN_ERRORS)
def forged(e: Ended) -> dict | None:
    """2 forged lines -> "2 line(s) on the grader's private result channel were not written by the grader..."."""
    if e.channel.forged:
        return {"kind": "cheating", "message": f"{e.channel.forged} line(s) on the grader's private result "
                                               "channel were not written by the grader: the attempt tried to "
                                               "forge its results; the score is 0"}


@rule(RUN_ERRORS)
def cheated(e: Ended) -> dict | None:
    """a refused read of solutions/ -> "the attempt tried to read ..., which belongs to the grader; ..."."""
    if e.channel.cheats:
        return _cheat(e.channel.cheats[0])


@rule(RUN_ERRORS)
def load_failed(e: Ended) -> dict | None:
    """a SyntaxError at import -> "loading the file raised SyntaxError at line 3: ..."."""
    if e.load.get("error"):
        return _load_error(e.load["error"])


@rule(RUN_ERRORS)
def stopped(e: Ended) -> dict | None:
    """no "done" event -> the first of STOPPED that applies."""
    if "done" not in e.channel.events:
        return next(found for found in (asked(e) for asked in STOPPED) if found is not None)


@rule(RUN_ERRORS)
def missing_function(e: Ended) -> dict | None:
    """no backward in the file -> "the file defines no function backward"."""
    if e.load.get("missing"):
        return {"kind": "missing-function", "message": "the file defines no function " + ", ".join(e.load["missing"])}


@rule(RUN_ERRORS)
def task_failed(e: Ended) -> dict | None:
    """a task that timed out, ran out of memory, exited or wrote too large a file: the first, by
    how serious that is (TASK_ERRORS' order)."""
    errors = [(tid, r["error"]) for tid, r in e.channel.results.items() if isinstance(r.get("error"), dict)]
    for kind, message in TASK_ERRORS.items():
        found = [(tid, err) for tid, err in errors if err.get("kind") == kind and not err.get("not_run")]
        if found:
            tid, err = found[0]
            return message(err, e.tasks.get(tid) or {}, e.channel.results[tid], e.limits)


@rule(RUN_ERRORS)
def unreadable(e: Ended) -> dict | None:
    """3 results that do not decode -> "3 result(s) from the attempt's process could not be read back"."""
    if e.channel.unreadable:
        return {"kind": "bad-output", "message": f"{e.channel.unreadable} result(s) from the attempt's process "
                                                 "could not be read back"}


def _cheat(what: dict) -> dict:
    target = what.get("target") or what.get("path") or what.get("module") or "?"
    verb = {"read": f"read {target}", "change": f"change {target}", "import": f"import {target}",
            "run": f"run a command on the grader's files ({target})",
            "tamper": f"replace parts of the grader's worker ({target})"}.get(what.get("what"), f"reach {target}")
    return {"kind": "cheating", "message": f"the attempt tried to {verb}, which belongs to the grader; "
                                           "it was refused, and the score is 0"}


def _where(error: dict) -> str:
    where = error.get("where") or {}
    return f" at line {where['line']}" if where.get("line") else ""


LOAD_ERRORS: dict[str, Callable[[dict, str], dict]] = {  # the kind of a failed load -> its error
    "timeout": lambda e, where: {"kind": "timeout", "message": f"loading the file "
                                                               f"{e.get('message', 'took too long')}{where}"},
    "memory": lambda e, where: {"kind": "memory", "message": f"loading the file ran out of memory{where}: "
                                                             f"{e.get('message', '')}".rstrip(": ")},
    "exited": lambda e, where: {"kind": "exited", "message": f"loading the file raised {e.get('type')}{where}: "
                                                             "the file may not end the process it is graded in"},
    "file-size": lambda e, where: {"kind": "output", "message": f"loading the file tried to write a file larger "
                                   f"than the limit {where}: {e.get('message', '')}".replace(" limit  at",
                                                                                              " limit at")},
}


def _load_error(e: dict) -> dict:
    kind = e.get("kind", "import")
    if kind in LOAD_ERRORS:
        return LOAD_ERRORS[kind](e, _where(e))
    return {"kind": kind, "message": f"loading the file raised {e.get('type', 'an error')}{_where(e)}: "
                                     f"{e.get('message', '')}".rstrip(": ")}


DOING = {"call": "running {fn} ({id})", "train": "training ({id})", "fd": "taking finite differences ({id})"}


def _doing(task: dict | None) -> str:
    if task is None:
        return "loading the file"
    return DOING.get(task.get("kind"), "running {id}").format(fn=task.get("fn"), id=task["id"])


@rule(STOPPED)
def not_started(e: Ended) -> dict | None:
    """no "ready" event -> "the grader's worker could not start: <its last line on stderr>"."""
    if "ready" not in e.channel.events:
        last = (e.run.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kind": "crashed", "message": f"the grader's worker could not start: {_printable(last)}"}


@rule(STOPPED)
def out_of_time(e: Ended) -> dict | None:
    """--timeout ran out -> "the attempt was still running after 60 s, the limit for the whole run ..."."""
    if e.run.stopped == "timeout":
        return {"kind": "timeout", "message": f"the attempt was still running after {e.limits.timeout:g} s, the "
                                              f"limit for the whole run (--timeout), and was stopped{e.during}; it "
                                              "kept the grader's own time limits from stopping it sooner"}


@rule(STOPPED)
def alarm_reset(e: Ended) -> dict | None:
    """killed by SIGALRM -> "the attempt's time ran out ..., and the grader's alarm ended the whole process ..."."""
    if e.run.signal == signal.SIGALRM:  # the attempt gave SIGALRM back its default action: to end the process
        return {"kind": "timeout", "message": f"the attempt's time ran out{e.during}, and the grader's alarm ended "
                                              "the whole process: the attempt had reset the alarm's handler"}


@rule(STOPPED)
def flooded(e: Ended) -> dict | None:
    """too much printed -> "the attempt wrote more than 65.6 MB to stderr and was stopped while ..."."""
    if e.run.stopped == "flood":
        stream = "stdout" if e.run.stdout_bytes >= e.run.stderr_bytes else "stderr"
        size = max(e.run.stdout_bytes, e.run.stderr_bytes)
        return {"kind": "output", "message": f"the attempt wrote more than {_mb(size)} to {stream} and was "
                                             f"stopped{e.during}"}


@rule(STOPPED)
def channel_flooded(e: Ended) -> dict | None:
    """too much sent back -> "the attempt's process sent more than 67.1 MB of results, or one result over 16.8 MB, and was stopped ..."."""
    if e.run.stopped == "channel":
        return {"kind": "bad-output", "message": f"the attempt's process sent more than {_mb(e.limits.channel_bytes)} "
                                                 f"of results, or one result over {_mb(e.limits.line_bytes)}, and was "
                                                 f"stopped{e.during}"}


@rule(STOPPED)
def out_of_memory(e: Ended) -> dict | None:
    """over --memory -> "the attempt ran out of its memory limit (512 MiB, --memory) and was stopped ..."."""
    if e.run.memory_exceeded:
        return {"kind": "memory", "message": f"the attempt ran out of its memory limit ({e.limits.memory_mb} MiB, "
                                             f"--memory) and was stopped{e.during}"}


@rule(STOPPED)
def out_of_cpu(e: Ended) -> dict | None:
    """over the CPU-time limit -> "the attempt used more than its CPU time limit and was stopped ..."."""
    if e.run.timed_out:
        return {"kind": "timeout", "message": f"the attempt used more than its CPU time limit and was "
                                              f"stopped{e.during}"}


@rule(STOPPED)
def killed(e: Ended) -> dict | None:
    """SIGSEGV -> "the attempt's process was killed by SIGSEGV (a segmentation fault) while ..."."""
    if e.run.signal:
        return {"kind": "crashed", "message": f"the attempt's process was killed by {_signal_name(e.run.signal)}"
                                              f"{e.during}"}


@rule(STOPPED)
def channel_lost(e: Ended) -> dict | None:
    """the channel closed -> "the attempt closed or replaced the grader's result channel ...; nothing more ..."."""
    if e.run.returncode == CHANNEL_LOST:
        return {"kind": "bad-output", "message": f"the attempt closed or replaced the grader's result channel"
                                                 f"{e.during}; nothing more could be read back"}


@rule(STOPPED)
def exited(e: Ended) -> dict:
    """sys.exit(3) -> "the attempt's process exited with status 3 while ..., before grading was finished"."""
    last = [s for s in e.run.stderr.strip().splitlines() if s.strip()][-1:]
    said = f" (its last words on stderr: {_printable(last[0])[:200]})" if e.run.returncode and last else ""
    return {"kind": "exited", "message": f"the attempt's process exited with status {e.run.returncode}{e.during}, "
                                         f"before grading was finished{said}"}


def _task_timeout(e: dict, task: dict, result: dict, limits: Limits) -> dict:
    fn = e.get("running") or task.get("fn") or "the attempt"
    stopped = f"{e.get('message', 'took too long')}{_where(e)}"
    slow = " (a correct but slow attempt can be given more time with --timeout)"
    if task.get("kind") == "train":
        message = (f"training {stopped}, in {fn}, after {result.get('iterations')} of {task.get('iters')} "
                   f"iterations{slow}")
    elif task.get("kind") == "fd":
        message = f"taking finite differences {stopped}, in {fn}; training was not run{slow}"
    else:
        message = f"{fn} {stopped}, while {_doing(task)}; the checks that need {fn} were not run{slow}"
    return {"kind": "timeout", "message": message}


TASK_ERRORS: dict[str, Callable[[dict, dict, dict, Limits], dict]] = {  # by how serious, first first
    "timeout": _task_timeout,
    "memory": lambda e, task, result, limits: {
        "kind": "memory", "message": f"the attempt ran out of memory{_where(e)} while {_doing(task or None)} "
                                     f"(limit {limits.memory_mb} MiB, --memory)"},
    "exited": lambda e, task, result, limits: {
        "kind": "exited", "message": f"the attempt raised {e.get('type')}{_where(e)} while "
                                     f"{_doing(task or None)}: an attempt may not end the process it is graded in"},
    "file-size": lambda e, task, result, limits: {
        "kind": "output", "message": f"the attempt tried to write a file larger than {limits.file_mb} MiB"
                                     f"{_where(e)} while {_doing(task or None)}"},
}


def notes(run: RunResult, channel: Channel, limits: Limits) -> list[Diagnosis]:
    """What the attempt did that did not stop the grading, but that its author should know."""
    notes = []
    if channel.patched:
        notes.append(Diagnosis(bug=None, link="-", severity="error", message=(
            "the attempt replaced " + ", ".join(sorted(set(channel.patched))[:8]) + "; the grader judges in its "
            "own process and put them back after loading and after each check, so this changes nothing")))
    if "done" in channel.events and run.output_flooded:
        notes.append(Diagnosis(bug=None, link="-", severity="note", message=(
            f"the attempt printed {_mb(run.stdout_bytes + run.stderr_bytes)}; only the first "
            f"{_mb(limits.output_bytes)} of stdout and of stderr were kept")))
    if run.leftovers:
        notes.append(Diagnosis(bug=None, link="-", severity="note", message=(
            f"the attempt left {run.leftovers} process(es) running when it ended; the grader killed them")))
    return notes


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    what = {"SIGSEGV": "a segmentation fault", "SIGBUS": "a bus error", "SIGABRT": "an abort",
            "SIGFPE": "a floating-point exception", "SIGILL": "an illegal instruction",
            "SIGKILL": "SIGKILL", "SIGTERM": "SIGTERM"}.get(name)
    return f"{name} ({what})" if what and what != name else name
