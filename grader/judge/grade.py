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

import hashlib
import hmac
import importlib
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader import catalog, settings
from grader.catalog import paths
from grader.practice import workspace
from grader.judge.report import CheckResult, Diagnosis, Report
from grader.run.sandbox import Limits, RunResult, run_isolated

WORKER = Path(__file__).resolve().parent.parent / "run" / "worker.py"
MAX_FILE_BYTES = 1_000_000
SHOWN_LINE_CHARS = 300  # of each line of the attempt's output shown in a report
CHANNEL_LOST = 86  # the worker's exit status when the attempt closed or replaced its channel (worker.py)


class GradeUsageError(Exception):
    """The command was used wrongly: no such file, unknown exercise (exit status 2)."""


def grade(path: Path, exercise_id: str | None = None, limits: Limits | None = None,
          seed: int = settings.PROBE_SEED, default: str | None = None) -> Report:
    """Grade the attempt at path as exercise_id; else as the exercise `drill start` or
    `drill inject-bug` recorded for it; else as default (a batch's); else as the exercise
    guess_exercise tells from the file."""
    started = time.perf_counter()
    path = Path(path)
    attempt = workspace.attempt_for_file(path) if path.is_file() else None
    injected = workspace.injected_for_file(path) if path.is_file() else None
    recorded = attempt.exercise if attempt else (injected or {}).get("exercise")
    try:
        chosen = exercise_id or recorded or default
        exercise = catalog.exercise(chosen) if chosen else guess_exercise(path)
    except KeyError as exc:
        raise GradeUsageError(exc.args[0]) from None
    if not path.exists():
        raise GradeUsageError(f"no such file or folder: {path}")
    if path.is_dir():
        raise GradeUsageError(f"{path} is a folder; name the attempt file in it")
    if not path.is_file():  # a pipe or a device: reading it could block or never end
        raise GradeUsageError(f"{path} is not a regular file")
    report = Report(exercise=exercise.id, file=str(path), checks=[])
    if attempt is not None:
        report.elapsed = (workspace.now() - attempt.started).total_seconds()
        if attempt.timed_minutes is not None:
            report.budget = {"minutes": attempt.timed_minutes,
                             "within": report.elapsed <= attempt.timed_minutes * 60}
    problem = _unreadable(path, exercise)
    if problem:
        report.error = problem
        report.checks = _score(exercise, {})
    else:
        _run_and_judge(path, exercise, limits or Limits(), seed, report)
    if injected is not None:
        hidden = bool(injected.get("hidden"))
        report.injected = {"hidden": hidden, "fixed": report.passed,
                           "bug": None if hidden else injected.get("bug")}
        if hidden:  # naming the bug would spoil the practice; the checks still say where
            report.diagnosis = [d for d in report.diagnosis if d.bug is None]
    report.seconds = time.perf_counter() - started
    return report


def guess_exercise(path: Path, text: str | None = None) -> catalog.Exercise:
    """The exercise of a file nobody named one for: the one it is named after (mlp_backprop.py,
    as `drill start` names it), else the one whose functions it defines, else the one its
    name mentions (my_softmax_ce_try.py), see catalog.guess; else the default one. text: the
    file's text when the caller has read it already (source_text)."""
    ids = sorted(catalog.exercises(), key=len, reverse=True)
    if path.stem in ids:  # the name `drill start` gives an attempt
        return catalog.exercise(path.stem)
    named = next((i for i in ids if i in path.stem), None)
    return catalog.guess(source_text(path) if text is None else text, named) or catalog.exercise(named)


def source_text(path: Path) -> str:
    """The text of the attempt at path as far as it can be read ('' if not): never opens a
    pipe or a device (reading it could block), never reads more than MAX_FILE_BYTES."""
    if not path.is_file():
        return ""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _unreadable(path: Path, exercise: catalog.Exercise) -> dict | None:
    """An error for a file that cannot be Python at all, found without running it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return {"kind": "import", "message": f"cannot read the file: {exc.strerror or exc}"}
    if len(data) > MAX_FILE_BYTES:
        return {"kind": "syntax", "message": f"the file is larger than {MAX_FILE_BYTES} bytes; "
                                             "an attempt is a short Python file"}
    if not data.strip():
        return {"kind": "missing-function", "message": "the file is empty: it defines none of "
                                                       + ", ".join(exercise.functions)}
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return {"kind": "syntax", "message": "the file is UTF-16 text; save it as UTF-8"}
    if b"\x00" in data:
        return {"kind": "syntax", "message": "the file holds binary data (NUL bytes), not Python source"}
    problem = _undecodable(data)
    if problem:
        return {"kind": "syntax", "message": problem}
    try:
        compile(data, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        if "decode" in str(exc.msg) or "utf-8" in str(exc.msg).lower():
            return {"kind": "syntax", "message": f"the file is not UTF-8 text{where}"}
        return {"kind": "syntax", "message": f"syntax error{where}: {exc.msg}"}
    except (ValueError, MemoryError, RecursionError) as exc:
        return {"kind": "syntax", "message": f"the file cannot be compiled: {exc}"}
    return None


def _undecodable(data: bytes) -> str | None:
    """Why data is not text in the encoding Python would read it with (UTF-8 unless declared)."""
    import io
    import tokenize

    encoding = "utf-8"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except SyntaxError as exc:  # an unknown encoding declared, or the first lines undecodable
        if "unknown encoding" in str(exc):
            return f"the file declares an encoding Python does not know ({exc})"
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as undecodable:
            return _undecodable_at(data, undecodable, "UTF-8")
        return "the file's encoding declaration does not match its bytes"
    except UnicodeDecodeError as exc:
        return _undecodable_at(data, exc, encoding)
    return None


def _undecodable_at(data: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    line = data.count(b"\n", 0, exc.start) + 1
    return f"the file is not {encoding} text: byte 0x{data[exc.start]:02x} at line {line} is not valid"


def _context(exercise: catalog.Exercise, seed: int):
    import numpy as np

    from grader.judge import checks
    from grader.catalog import reference

    source = exercise.solution_path.read_text(encoding="utf-8")
    assigns = {b.name: b.assigns for b in exercise.blanks}
    ref = reference.load(source, str(exercise.solution_path))
    traced = reference.load_traced(source, str(exercise.solution_path), assigns)
    return checks.Context(exercise=exercise, ref=ref, traced=traced, rng=np.random.default_rng(seed))


def probe_module(exercise: catalog.Exercise):
    return importlib.import_module(f"grader.judge.probes.{exercise.id}")


def _run_worker(path: Path, exercise: catalog.Exercise, limits: Limits, tasks_of, left: float | None = None):
    """One run of the attempt in a worker process: (run, channel, tasks). tasks_of() makes
    the task list; it is called while the worker starts up (importing numpy takes as long,
    here as there: the probe modules import it). left: seconds left of limits.timeout, for a
    second run: each call keeps its usual bound, the run as a whole gets only what is left."""
    key = secrets.token_hex(32)
    made: dict = {}
    seconds = budgets(limits.timeout)
    if left is not None:
        seconds["total"] = min(seconds["total"], left - (limits.timeout - seconds["total"]))
        limits = replace(limits, timeout=left)

    def plan() -> bytes:
        made["tasks"] = tasks = tasks_of()
        return json.dumps({
            "attempt": str(path.resolve()),
            "functions": list(exercise.functions),
            "tasks": tasks,
            "seconds": seconds,
            "key": key,
            "grader_pid": os.getpid(),
            "forbidden_dirs": [str(d) for d in paths.protected_dirs()],
            "forbidden_modules": ["grader"],
        }).encode()

    with tempfile.TemporaryDirectory(prefix="drill-run-", ignore_cleanup_errors=True) as scratch:
        # The environment minus every PYTHON* variable (what -I would drop) and with TMPDIR in
        # the scratch folder; unlike -I, the sandbox's PYTHONHASHSEED and PYTHONDONTWRITEBYTECODE
        # still apply. `-s`: no user site-packages; the worker takes its own folder off sys.path.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["TMPDIR"] = scratch
        run = run_isolated([sys.executable, "-s", str(WORKER)], plan, limits, cwd=scratch, env=env)
    return run, _read_channel(run.channel, key), made["tasks"]


def _run_and_judge(path: Path, exercise: catalog.Exercise, limits: Limits, seed: int, report: Report):
    started = time.perf_counter()
    made: dict = {}

    def tasks_of():
        made["probes"] = probes = probe_module(exercise)
        made["ctx"] = ctx = _context(exercise, seed)
        return probes.build(ctx)

    run, channel, tasks = _run_worker(path, exercise, limits, tasks_of)
    probes, ctx = made["probes"], made["ctx"]
    report.output = _output(run)
    report.error = _error(run, channel, limits, {t["id"]: t for t in tasks})
    if report.error is None:
        _fill_and_rerun(path, exercise, limits, ctx, tasks, channel, report, time.perf_counter() - started)
    try:
        outcomes = probes.judge(ctx, channel.results)
    except Exception as exc:  # noqa: BLE001 - a bug of the grader's: say so, never a traceback
        report.error = report.error or _internal("judging", exc)
        outcomes = []
    report.checks = _score(exercise, {o.name: o for o in outcomes})
    if report.error and report.error["kind"] == "cheating":
        for c in report.checks:
            c.points, c.passed = 0, False
    conv = next((o for o in outcomes if o.name == "convergence"), None)
    if conv is not None:
        report.convergence = conv.details
    from grader.judge.diagnose import diagnose

    try:
        report.diagnosis = diagnose(ctx, outcomes)
    except Exception as exc:  # noqa: BLE001 - as above: the checks stand, the diagnosis is lost
        report.diagnosis = [Diagnosis(bug=None, link="-", severity="note",
                                      message=_internal("diagnosing", exc)["message"])]
    explained = {d.link for d in report.diagnosis}
    for o in outcomes:
        if o.name not in explained:
            report.diagnosis += [Diagnosis(bug=None, link=o.name, severity="note", message=n) for n in o.notes]
    report.diagnosis += _notes(run, channel, limits)


def _fill_and_rerun(path: Path, exercise: catalog.Exercise, limits: Limits, ctx, tasks: list[dict],
                    channel, report: Report, spent: float) -> None:
    """Finished links computed from a link left blank (a todo, or a statement that raised)
    earn their points too: the calls where that happened run again, in a second worker, with
    a stand-in value in each blank link's place, and the links after it are judged given
    that value (as every link is judged given its own inputs). The stand-ins are random,
    drawn afresh for every grade, never the expected values: the attempt learns nothing
    from them. The blank links keep their first-run verdicts. The second run gets what is
    left of --timeout, and is skipped when too little is."""
    import numpy as np

    from grader.judge import checks
    from grader.run.wire import decode, encode

    rng = np.random.default_rng(secrets.randbits(64))
    by_id = {t["id"]: t for t in tasks}
    again, roots_of = [], {}
    for t in tasks:
        r = channel.results.get(t["id"])
        if not t.get("partial") or t.get("notes_only") or r is None or "result" not in r:
            continue
        named = _named_values(r["result"])  # a dict of links, or (O, cache), or (loss, probs)
        blanks = {k: v for k, v in named.items() if isinstance(v, dict) and "__blank__" in v}
        if not any((v.get("error") or {}).get("kind") == "depends" for v in blanks.values()):
            continue
        roots = [k for k, v in blanks.items() if (v.get("error") or {}).get("kind") != "depends"]
        try:  # only the shape and scale of each blank link are taken from the reference
            given, _ = checks.expected_links(ctx, t["fn"], tuple(decode(a) for a in t["args"]), named)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError):
            continue  # the reference cannot run on these values: the first run's verdicts stand
        fill = {}
        for k in roots:
            like = np.asarray(given.get(k)) if given.get(k) is not None else None
            if like is not None and like.dtype.kind == "f":
                # positive, so that a stand-in for probabilities or a variance stays in its domain
                scale = float(np.std(like)) or 1.0
                fill[str(blanks[k]["__blank__"])] = encode(np.abs(rng.normal(0.0, scale, like.shape)) + 0.1 * scale)
        if not fill:
            continue
        earlier = (t.get("cache_from") or {}).get("task")
        if earlier in by_id and all(a["id"] != earlier for a in again):
            again.append(by_id[earlier])  # the call whose output (the attempt's cache) it takes
        again.append({**t, "fill": fill})
        roots_of[t["id"]] = {k: blanks[k] for k in roots}
    left = limits.timeout - spent
    reserve = limits.timeout - budgets(limits.timeout)["total"]
    if not roots_of or left - reserve < settings.MIN_SECOND_RUN_SECONDS:
        return
    run, second, _ = _run_worker(path, exercise, limits, lambda: again, left=left)
    problem = _error(run, second, limits, {t["id"]: t for t in again})
    if problem and problem["kind"] == "cheating":
        report.error = problem
        return
    for tid, roots in roots_of.items():
        r = second.results.get(tid)
        if r is not None and "result" in r:
            r["filled"] = roots  # judged as in the first run; their stand-ins feed the links after
            first = channel.results[tid]  # purity holds only if it held in every run
            r["args_after_more"] = ([first["args_after"]] if "args_after" in first else []) + \
                first.get("args_after_more", []) + r.get("args_after_more", [])
            channel.results[tid] = r


def _named_values(result) -> dict:
    """The named values in what a call returned: a dict's entries, and those of a dict inside
    a returned tuple (forward's cache), with a tuple's other values under the names their
    blanks carry (softmax_cross_entropy's (loss, probs) left as todo). {} when none."""
    if isinstance(result, dict):
        return {} if "__type__" in result or "__blank__" in result else dict(result)
    named = {}
    if isinstance(result, (list, tuple)):
        for value in result:
            if isinstance(value, dict) and "__blank__" in value:
                named[str(value["__blank__"])] = value
            elif isinstance(value, dict) and "__type__" not in value:
                named.update(value)
    return named


def budgets(timeout: float) -> dict:
    """The worker's time bounds, in seconds, for a run of `timeout` seconds (settings.py)."""
    def share(fraction):
        return max(settings.MIN_TASK_SECONDS, fraction * timeout)

    reserve = min(max(settings.MIN_RESERVE_SECONDS, settings.RESERVE_SHARE * timeout), timeout / 2)
    return {"total": timeout - reserve, "load": share(settings.LOAD_SHARE),
            "call": share(settings.CALL_SHARE), "fd": share(settings.FD_SHARE)}


def _internal(doing: str, exc: Exception) -> dict:
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
    where = f" ({Path(frame[0].filename).name}, line {frame[0].lineno})" if frame else ""
    return {"kind": "internal", "message": f"the grader failed while {doing} ({type(exc).__name__}: {exc}"
                                           f"{where}); this is a bug in drill, please report it"}


@dataclass
class Channel:
    """What the worker sent back, authenticated: events, results by task id, and what was wrong."""

    results: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)  # ready, load, done: the last of each
    cheats: list = field(default_factory=list)
    patched: list = field(default_factory=list)
    started: list = field(default_factory=list)  # task ids, in the order the worker began them
    forged: int = 0  # lines without the run's key: not written by the worker
    unreadable: int = 0  # authentic lines whose data could not be decoded

    @property
    def running(self) -> str | None:
        """The task the worker had begun and not reported when the channel ended."""
        return next((t for t in reversed(self.started) if t not in self.results), None)


def _read_channel(data: bytes, key: str) -> Channel:
    """Lines `<pid> <hmac> <json>` (see worker.Channel). A line without the right HMAC is forged;
    a line from another process than the worker's is taken only if it reports a cheat."""
    from grader.run.wire import decode

    out = Channel()
    mac = hmac.new(bytes.fromhex(key), digestmod=hashlib.sha256)
    worker = None
    for line in data.split(b"\n"):
        if not line:
            continue
        head, _, rest = line.partition(b" ")
        digest, _, body = rest.partition(b" ")
        check = mac.copy()
        check.update(head + b" " + body)
        if not head.isdigit() or not hmac.compare_digest(check.hexdigest().encode(), digest):
            out.forged += 1
            continue
        try:
            obj = json.loads(body)
        except ValueError:
            out.unreadable += 1
            continue
        if not isinstance(obj, dict):
            out.unreadable += 1
            continue
        worker = worker or head
        if obj.get("event") == "cheat":
            out.cheats.append(obj)
        elif head != worker:
            continue  # a forked copy of the worker: it may report a cheat, never a result
        elif obj.get("event") == "patched":
            out.patched += [str(n) for n in obj.get("names", [])]
        elif obj.get("event") == "task":
            out.started.append(str(obj.get("id")))
        elif "event" in obj:
            out.events[str(obj["event"])] = obj
        else:
            try:
                out.results.setdefault(str(obj["id"]), _decode_result(obj, decode))
            except (KeyError, ValueError, TypeError):
                out.unreadable += 1
    return out


def _decode_result(obj: dict, decode) -> dict:
    out = dict(obj)
    for key in ("result", "analytic", "numeric", "losses", "outputs"):
        if key in out:
            out[key] = decode(out[key])
    if "args_after" in out:
        out["args_after"] = [decode(a) for a in out["args_after"]]
    if "args_after_more" in out:
        out["args_after_more"] = [[decode(a) for a in afters] for afters in out["args_after_more"]]
    return out


def _output(run: RunResult) -> dict:
    keep = settings.SHOWN_OUTPUT_LINES
    return {"stdout": [_printable(s) for s in run.stdout.splitlines()[:keep]],
            "stderr": [_printable(s) for s in run.stderr.splitlines()[-keep:]],
            "stdout_bytes": run.stdout_bytes, "stderr_bytes": run.stderr_bytes}


def _printable(line: str) -> str:
    """The attempt's line with control characters shown as escapes: it cannot move the cursor,
    clear the screen or recolour the grader's own report."""
    from grader.run.wire import printable

    return printable(line, SHOWN_LINE_CHARS) + (" ..." if len(line) > SHOWN_LINE_CHARS else "")


# ---------------------------------------------------------------- report.error

def _error(run: RunResult, channel: Channel, limits: Limits, tasks: dict) -> dict | None:
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
    import signal

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


def _notes(run: RunResult, channel: Channel, limits: Limits) -> list[Diagnosis]:
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
    import signal

    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    what = {"SIGSEGV": "a segmentation fault", "SIGBUS": "a bus error", "SIGABRT": "an abort",
            "SIGFPE": "a floating-point exception", "SIGILL": "an illegal instruction",
            "SIGKILL": "SIGKILL", "SIGTERM": "SIGTERM"}.get(name)
    return f"{name} ({what})" if what and what != name else name


def _score(exercise: catalog.Exercise, outcomes: dict) -> list[CheckResult]:
    out = []
    for spec in exercise.checks:
        o = outcomes.get(spec.name)
        if o is None:
            out.append(CheckResult(spec.name, False, 0, spec.points, "not run", open=True))
            continue
        out.append(CheckResult(spec.name, o.passed, spec.points if o.passed else 0, spec.points,
                               o.message, list(o.notes), open=o.open and not o.passed))
    return out
