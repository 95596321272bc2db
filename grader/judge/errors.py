"""The wording of what went wrong with a run: report.error, and the notes a run leaves.

Owns: turning a RunResult and its Channel into the one error a report carries (the first
that applies, docs/hostile.md), the attempt's output as shown, and the run's notes.
May import: run, judge.report.
"""
from __future__ import annotations

import signal
import traceback
from pathlib import Path

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
    """The one error the report carries: the first of these that applies (docs/hostile.md)."""
    if channel.forged:
        return {"kind": "cheating", "message": f"{channel.forged} line(s) on the grader's private result channel "
                                               "were not written by the grader: the attempt tried to forge its "
                                               "results; the score is 0"}
    if channel.cheats:
        return _cheat(channel.cheats[0])
    load = channel.events.get("load")
    if load and load.get("error"):
        return _load_error(load["error"])
    if "done" not in channel.events:
        return _stopped(run, channel, limits, tasks)
    return _task_error(channel.results, tasks, load, limits) or (
        {"kind": "bad-output", "message": f"{channel.unreadable} result(s) from the attempt's process "
                                          "could not be read back"} if channel.unreadable else None)


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


def _load_error(e: dict) -> dict:
    kind = e.get("kind", "import")
    where = _where(e)
    if kind == "timeout":
        return {"kind": "timeout", "message": f"loading the file {e.get('message', 'took too long')}{where}"}
    if kind == "memory":
        return {"kind": "memory", "message": f"loading the file ran out of memory{where}: {e.get('message', '')}"
                .rstrip(": ")}
    if kind == "exited":
        return {"kind": "exited", "message": f"loading the file raised {e.get('type')}{where}: the file may not "
                                             "end the process it is graded in"}
    if kind == "file-size":
        return {"kind": "output", "message": f"loading the file tried to write a file larger than the limit "
                                             f"{where}: {e.get('message', '')}".replace(" limit  at", " limit at")}
    return {"kind": kind, "message": f"loading the file raised {e.get('type', 'an error')}{where}: "
                                     f"{e.get('message', '')}".rstrip(": ")}


def _doing(task: dict | None) -> str:
    if task is None:
        return "loading the file"
    if task.get("kind") == "call":
        return f"running {task.get('fn')} ({task['id']})"
    if task.get("kind") == "train":
        return f"training ({task['id']})"
    if task.get("kind") == "fd":
        return f"taking finite differences ({task['id']})"
    return f"running {task['id']}"


def _stopped(run: RunResult, channel: Channel, limits: Limits, tasks: dict) -> dict:
    """The worker did not finish: the process was stopped, crashed or exited early."""
    if "ready" not in channel.events:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kind": "crashed", "message": f"the grader's worker could not start: {_printable(last)}"}
    during = " while " + _doing(tasks.get(channel.running) if channel.running else None)
    if "load" in channel.events and channel.running is None:
        during = " after its last result" if channel.results else " after loading the file"
    if run.stopped == "timeout":
        return {"kind": "timeout", "message": f"the attempt was still running after {limits.timeout:g} s, the "
                                              f"limit for the whole run (--timeout), and was stopped{during}; it "
                                              "kept the grader's own time limits from stopping it sooner"}
    if run.signal == signal.SIGALRM:  # the attempt gave SIGALRM back its default action: to end the process
        return {"kind": "timeout", "message": f"the attempt's time ran out{during}, and the grader's alarm ended "
                                              "the whole process: the attempt had reset the alarm's handler"}
    if run.stopped == "flood":
        stream = "stdout" if run.stdout_bytes >= run.stderr_bytes else "stderr"
        size = max(run.stdout_bytes, run.stderr_bytes)
        return {"kind": "output", "message": f"the attempt wrote more than {_mb(size)} to {stream} and was "
                                             f"stopped{during}"}
    if run.stopped == "channel":
        return {"kind": "bad-output", "message": f"the attempt's process sent more than {_mb(limits.channel_bytes)} "
                                                 f"of results and was stopped{during}"}
    if run.memory_exceeded:
        return {"kind": "memory", "message": f"the attempt ran out of its memory limit ({limits.memory_mb} MiB, "
                                             f"--memory) and was stopped{during}"}
    if run.timed_out:
        return {"kind": "timeout", "message": f"the attempt used more than its CPU time limit and was "
                                              f"stopped{during}"}
    if run.signal:
        return {"kind": "crashed", "message": f"the attempt's process was killed by {_signal_name(run.signal)}"
                                              f"{during}"}
    if run.returncode == CHANNEL_LOST:
        return {"kind": "bad-output", "message": f"the attempt closed or replaced the grader's result channel"
                                                 f"{during}; nothing more could be read back"}
    last = [s for s in run.stderr.strip().splitlines() if s.strip()][-1:]
    said = f" (its last words on stderr: {_printable(last[0])[:200]})" if run.returncode and last else ""
    return {"kind": "exited", "message": f"the attempt's process exited with status {run.returncode}{during}, "
                                         f"before grading was finished{said}"}


def _task_error(results: dict, tasks: dict, load: dict | None, limits: Limits) -> dict | None:
    """The worker finished, but a task of it could not: the first such, by how serious it is."""
    if load and load.get("missing"):
        return {"kind": "missing-function", "message": "the file defines no function " + ", ".join(load["missing"])}
    errors = [(tid, r["error"]) for tid, r in results.items() if isinstance(r.get("error"), dict)]
    for kind in ("timeout", "memory", "exited", "file-size"):
        found = [(tid, e) for tid, e in errors if e.get("kind") == kind and not e.get("not_run")]
        if not found:
            continue
        tid, e = found[0]
        doing = _doing(tasks.get(tid))
        if kind == "timeout":
            return {"kind": "timeout", "message": _timeout_message(tasks.get(tid) or {}, results[tid], e)}
        if kind == "memory":
            return {"kind": "memory", "message": f"the attempt ran out of memory{_where(e)} while {doing} "
                                                 f"(limit {limits.memory_mb} MiB, --memory)"}
        if kind == "exited":
            return {"kind": "exited", "message": f"the attempt raised {e.get('type')}{_where(e)} while {doing}: "
                                                 "an attempt may not end the process it is graded in"}
        return {"kind": "output", "message": f"the attempt tried to write a file larger than "
                                             f"{limits.file_mb} MiB{_where(e)} while {doing}"}
    return None


def _timeout_message(task: dict, result: dict, e: dict) -> str:
    fn = e.get("running") or task.get("fn") or "the attempt"
    stopped = f"{e.get('message', 'took too long')}{_where(e)}"
    slow = " (a correct but slow attempt can be given more time with --timeout)"
    if task.get("kind") == "train":
        return (f"training {stopped}, in {fn}, after {result.get('iterations')} of {task.get('iters')} "
                f"iterations{slow}")
    if task.get("kind") == "fd":
        return f"taking finite differences {stopped}, in {fn}; training was not run{slow}"
    return f"{fn} {stopped}, while {_doing(task)}; the checks that need {fn} were not run{slow}"


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
