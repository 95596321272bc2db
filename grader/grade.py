"""`drill grade`: run one attempt in its own process and judge it, check by check.

The attempt never runs in this process. grade() sends the worker a plan (the inputs of
every check), reads back plain data on a private channel, and computes every verdict and
the score here, from the rubric in the exercise's YAML.
"""
from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

from . import catalog, paths, settings, workspace
from .report import CheckResult, Diagnosis, Report
from .sandbox import Limits, RunResult, run_isolated

WORKER = Path(__file__).resolve().parent / "worker.py"
MAX_FILE_BYTES = 1_000_000


class GradeUsageError(Exception):
    """The command was used wrongly: no such file, unknown exercise (exit status 2)."""


def grade(path: Path, exercise_id: str | None = None, limits: Limits | None = None,
          seed: int = settings.PROBE_SEED) -> Report:
    started = time.perf_counter()
    path = Path(path)
    attempt = workspace.attempt_for_file(path) if path.is_file() else None
    injected = workspace.injected_for_file(path) if path.is_file() else None
    recorded = attempt.exercise if attempt else (injected or {}).get("exercise")
    try:
        exercise = catalog.exercise(exercise_id or recorded)
    except KeyError as exc:
        raise GradeUsageError(exc.args[0]) from None
    if not path.exists():
        raise GradeUsageError(f"no such file: {path}")
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

    from . import checks, reference

    source = exercise.solution_path.read_text(encoding="utf-8")
    assigns = {b.name: b.assigns for b in exercise.blanks}
    ref = reference.load(source, str(exercise.solution_path))
    traced = reference.load_traced(source, str(exercise.solution_path), assigns)
    return checks.Context(exercise=exercise, ref=ref, traced=traced, rng=np.random.default_rng(seed))


def probe_module(exercise: catalog.Exercise):
    return importlib.import_module(f"grader.probes.{exercise.id}")


def _run_and_judge(path: Path, exercise: catalog.Exercise, limits: Limits, seed: int, report: Report):
    probes = probe_module(exercise)
    ctx = _context(exercise, seed)
    tasks = probes.build(ctx)
    plan = {
        "attempt": str(path.resolve()),
        "functions": list(exercise.functions),
        "tasks": tasks,
        "forbidden_dirs": [str(paths.solutions_dir()), str(Path(__file__).resolve().parent)],
        "forbidden_modules": ["grader"],
    }
    with tempfile.TemporaryDirectory(prefix="drill-run-") as scratch:
        run = run_isolated([sys.executable, "-I", str(WORKER)], json.dumps(plan).encode(), limits, cwd=scratch)
    events, results, bad = _read_channel(run.channel)
    report.output = _output(run)
    report.error = _error(run, events, results, bad, exercise)
    outcomes = probes.judge(ctx, results)
    report.checks = _score(exercise, {o.name: o for o in outcomes})
    if report.error and report.error["kind"] == "cheating":
        for c in report.checks:
            c.points, c.passed = 0, False
    conv = next((o for o in outcomes if o.name == "convergence"), None)
    if conv is not None:
        report.convergence = conv.details
    from .diagnose import diagnose

    report.diagnosis = diagnose(ctx, outcomes)
    explained = {d.link for d in report.diagnosis}
    for o in outcomes:
        if o.name not in explained:
            report.diagnosis += [Diagnosis(bug=None, link=o.name, severity="note", message=n) for n in o.notes]
    if events.get("patched"):
        report.diagnosis.append(Diagnosis(
            bug=None, link="-", severity="error",
            message="the attempt replaced " + ", ".join(events["patched"][:8]) +
                    "; the grader judges in its own process, so this changes nothing"))



def _read_channel(data: bytes):
    from .wire import decode

    events: dict = {"cheat": []}
    results: dict = {}
    bad = 0
    for line in data.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(obj, dict):
            bad += 1
            continue
        if "event" in obj:
            if obj["event"] == "cheat":
                events["cheat"].append(obj)
            else:
                events[obj["event"]] = obj
                if obj["event"] == "done":
                    events["patched"] = obj.get("patched") or []
            continue
        try:
            results[str(obj["id"])] = _decode_result(obj, decode)
        except (KeyError, ValueError, TypeError):
            bad += 1
    return events, results, bad


def _decode_result(obj: dict, decode) -> dict:
    out = dict(obj)
    for key in ("result", "analytic", "numeric", "losses", "outputs"):
        if key in out:
            out[key] = decode(out[key])
    if "args_after" in out:
        out["args_after"] = [decode(a) for a in out["args_after"]]
    return out


def _output(run: RunResult) -> dict:
    keep = settings.SHOWN_OUTPUT_LINES
    return {"stdout": run.stdout.splitlines()[:keep], "stderr": run.stderr.splitlines()[-keep:],
            "stdout_bytes": run.stdout_bytes, "stderr_bytes": run.stderr_bytes}


def _error(run: RunResult, events: dict, results: dict, bad: int, exercise: catalog.Exercise) -> dict | None:
    if events["cheat"]:
        what = events["cheat"][0]
        target = what.get("path") or what.get("module")
        return {"kind": "cheating", "message": f"the attempt tried to {'read' if what['what'] == 'read' else 'import'} "
                                               f"{target}, which belongs to the grader; the score is 0"}
    load = events.get("load")
    if load and load.get("error"):
        e = load["error"]
        where = f" at line {e['where']['line']}" if e.get("where") and e["where"].get("line") else ""
        return {"kind": e.get("kind", "import"),
                "message": f"loading the file {e.get('type', 'failed')}{where}: {e.get('message', '')}".rstrip(": ")}
    if run.timed_out:
        return {"kind": "timeout", "message": f"the attempt ran longer than {run_limit(run)}; it was stopped"}
    if run.memory_exceeded:
        return {"kind": "memory", "message": "the attempt ran out of its memory limit and was stopped"}
    if load and load.get("missing"):
        return {"kind": "missing-function", "message": "the file defines no function " + ", ".join(load["missing"])}
    exits = [r for r in results.values() if (r.get("error") or {}).get("type") in ("SystemExit", "KeyboardInterrupt")]
    if exits:
        e = exits[0]["error"]
        where = f" at line {e['where']['line']}" if e.get("where") else ""
        return {"kind": "exited", "message": f"the attempt raised {e['type']}{where} while being graded"}
    if "done" not in events:
        if run.signal:
            return {"kind": "crashed", "message": f"the attempt's process was killed by signal {run.signal}"}
        if "ready" not in events:
            return {"kind": "crashed", "message": "the grader's worker could not start: "
                                                  + (run.stderr.strip().splitlines() or ["no output"])[-1]}
        return {"kind": "exited", "message": f"the attempt's process exited (status {run.returncode}) "
                                             "before grading was finished"}
    if bad:
        return {"kind": "bad-output", "message": f"{bad} results could not be read back"}
    return None


def run_limit(run: RunResult) -> str:
    return f"{run.duration:.0f} s"


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
