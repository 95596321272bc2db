#!/usr/bin/env python3
"""Where the time of one `drill grade` goes: a timeline of its phases, medians over fresh processes.

    python bench/profile_grade.py [--reps N] [ATTEMPT ...]    (default: the reference)

Each rep starts a fresh Python (the one of drill's venv) that runs the command in-process
(grader.cli.main, as the console script does) with light wrappers that stamp the clock
(time.monotonic, the same clock in every process) where each phase ends: the imports,
stamped where they happen, the grader's own work, the attempt process from its spawn to
its first line on the result channel (`ready`), each task as its line arrives, the
worker's own timings ("seconds"), the clean-up, the judging, the diagnosis, the history
and the output. Work the grader does on another thread is listed apart. The grade runs in
a workspace made by `drill start`, as a user's would. Beside each grade, the floor's
training loop runs, so that the worker's loop can be compared with it.

A last rep runs the worker under `python -X importtime` to split its start-up.

The wrappers rely on private names of the grader (sandbox._Pipes._read, grade._context,
...); a name that has moved is simply not stamped. Phase times include waiting for the
CPU: on a busy machine, compare them with the cpu column (getrusage) and with each other.
"""
from __future__ import annotations

import os
import sys
import time

T_TOP = time.monotonic()  # as early as possible: the interpreter and site are done (they import os, sys)

# Everything else is imported where it is used, so that the child's own start-up adds
# nothing to what `drill grade` imports (json, subprocess, pathlib: drill imports them itself).
BENCH = os.path.dirname(os.path.abspath(__file__))

# Imports stamped where they happen (the outermost of these only: what it imports is its own).
WATCHED_IMPORTS = {"re", "click", "grader.cli", "grader.cli.grade", "grader.judge.grade", "grader.course.formats",
                   "grader.judge.report", "grader.catalog", "grader.run.sandbox", "grader.practice.workspace", "yaml", "numpy",
                   "grader.judge.checks", "grader.catalog.reference", "grader.judge.diagnose", "grader.practice.history", "grader.practice.timing",
                   "subprocess", "sqlite3", "tempfile", "secrets"}


def _vmhwm_kb(pidfd):
    """VmHWM of the process a pidfd holds: its own peak, unlike wait4's ru_maxrss, which for a
    vforked child also counts the parent's memory from before the exec."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as f:
            pid = next(int(line.split()[1]) for line in f if line.startswith("Pid:"))
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0


class Timeline:
    """Marks on the main thread's timeline: each names what ran since the mark before it. Each
    thread has a stack of activities; work done on another thread is kept as spans beside."""

    def __init__(self):
        import threading
        self.threading = threading
        self.main = threading.main_thread()
        self.marks = [("top", T_TOP, 0.0)]
        self.spans = []  # (label, start, end) of work on other threads
        self.local = threading.local()

    def stack(self):
        if not hasattr(self.local, "stack"):
            self.local.stack = ["(other)"]
        return self.local.stack

    def mark(self, label):
        if self.threading.current_thread() is self.main:
            self.marks.append((label, time.monotonic(), time.process_time()))

    def enter(self, label):
        """Close what ran before under its own label, and start `label`."""
        self.mark(self.stack()[-1])
        self.stack().append(label)
        return time.monotonic()

    def leave(self, started):
        label = self.stack().pop()
        if self.threading.current_thread() is self.main:
            self.mark(label)
        else:
            self.spans.append((label, started, time.monotonic()))

    def wrap(self, owner, name, label):
        fn = getattr(owner, name)

        def wrapper(*a, **k):
            started = self.enter(label)
            try:
                return fn(*a, **k)
            finally:
                self.leave(started)
        wrapper.__wrapped__ = fn
        setattr(owner, name, wrapper)


def child(attempt: str, out_path: str, importtime: bool) -> None:
    tl = Timeline()
    extra = {"tasks": [], "yaml_seconds": 0.0, "yaml_files": 0}
    patches = {}  # module name -> fn(module), applied once the module is loaded

    class Stamper:  # a meta path finder (importlib.abc would import typing early: not drill's cost)
        """Stamps the outermost watched import where it happens, and patches modules once loaded."""

        def find_spec(self, name, path, target=None):
            if name not in WATCHED_IMPORTS and name not in patches and not name.startswith("grader.judge.probes."):
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
            loader, run_module = spec.loader, spec.loader.exec_module

            def exec_module(module):
                local = tl.local
                outer = getattr(local, "importing", 0) == 0
                started = tl.enter(f"import {name}") if outer else None
                local.importing = getattr(local, "importing", 0) + 1
                try:
                    run_module(module)
                finally:
                    local.importing -= 1
                    if outer:
                        tl.leave(started)
                patch = patches.get(name) or (patches.get("grader.judge.probes.*") if name.startswith("grader.judge.probes.")
                                              else None)
                if patch:
                    patch(module)
            loader.exec_module = exec_module
            return spec

    def patch_catalog(catalog):
        read_yaml = catalog.read_yaml

        def timed_yaml(path):
            t = time.monotonic()
            try:
                return read_yaml(path)
            finally:
                extra["yaml_seconds"] += time.monotonic() - t
                extra["yaml_files"] += 1
        catalog.read_yaml = timed_yaml
        tl.wrap(catalog, "exercise", "catalog: find the exercise (reads the exercise YAML)")
        tl.wrap(catalog, "bugs", "catalog: the bug catalogue (reads the bugs YAML)")

    def patch_subprocess(subprocess):
        popen = subprocess.Popen

        class Stamped(popen):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                tl.mark("sandbox: pipes, fork + exec of the attempt process")
                tl.stack()[-1] = "sandbox: wait for the plan, feed it"
        subprocess.Popen = Stamped

    def patch_sandbox(sandbox):
        reap = sandbox._reap

        def timed_reap(proc):
            status, usage = reap(proc)
            if usage is not None:
                extra["worker_cpu"] = usage.ru_utime + usage.ru_stime
                extra["worker_maxrss_mib"] = usage.ru_maxrss / 1024
            return status, usage
        sandbox._reap = timed_reap
        read = sandbox._Pipes._read
        pending = {"buf": b""}
        labels = {"ready": "worker: start python, import numpy, read the plan",
                  "load": "worker: load the attempt",
                  "convergence": "worker: the other tasks (calls, finite differences)",
                  "done": "worker: training (convergence), send its result"}

        def stamped_read(self, cap):
            before = len(cap.kept)
            read(self, cap)
            if cap is not self.chan:
                return
            pending["buf"] += bytes(cap.kept[before:])
            while b"\n" in pending["buf"]:
                line, pending["buf"] = pending["buf"].split(b"\n", 1)
                import json  # the grader has imported it by now
                try:
                    obj = json.loads(line.split(b" ", 2)[2])
                except (IndexError, ValueError):
                    continue
                event = obj.get("event")
                key = obj.get("id") if event == "task" else event
                if key in labels:
                    tl.mark(labels[key])
                    tl.stack()[-1] = "worker: exit; sandbox: kill what is left, drain the pipes"
                if event == "done" and self.pidfd is not None:
                    extra["worker_hwm_mib"] = _vmhwm_kb(self.pidfd) / 1024
                if event is None:
                    extra["tasks"].append({"id": obj.get("id"), "seconds": obj.get("seconds"),
                                           "bytes": len(line), "iterations": obj.get("iterations")})
        sandbox._Pipes._read = stamped_read

    def patch_grade(G):
        tl.wrap(G, "grade", "grade: path checks, workspace lookups, report")
        tl.wrap(G, "_unreadable", "grade: read + compile the file (_unreadable)")
        tl.wrap(G, "probe_module", "grade: the exercise's probe module")
        tl.wrap(G, "_context", "plan: reference + traced reference (_context)")
        tl.wrap(G, "_read_channel", "grade: read + authenticate the channel")
        run_isolated = G.run_isolated

        def run(argv, *a, **k):
            if importtime:
                argv = [argv[0], "-X", "importtime"] + list(argv[1:])
            started = tl.enter("sandbox: start (pipes, environment)")
            try:
                r = run_isolated(argv, *a, **k)
            finally:
                tl.leave(started)
            extra["worker_stderr"] = r.stderr if importtime else ""
            return r
        G.run_isolated = run

    def patch_probes(probes):
        tl.wrap(probes, "build", "plan: build the probes and tasks")
        tl.wrap(probes, "judge", "grade: judge the results")

    def patch_command(C):
        tl.wrap(C.command, "callback", "cli: the grade command (options, limits)")
        tl.wrap(C, "_show", "cli: render and print the report")

    patches.update({"subprocess": patch_subprocess, "grader.catalog": patch_catalog, "grader.run.sandbox": patch_sandbox, "grader.judge.grade": patch_grade,
                    "grader.judge.probes.*": patch_probes, "grader.cli.grade": patch_command,
                    "grader.judge.diagnose": lambda D: tl.wrap(D, "diagnose", "grade: diagnose"),
                    "grader.practice.history": lambda H: tl.wrap(H, "record_grade", "cli: record the grade (history)"),
                    "grader.practice.timing": lambda T: tl.wrap(T, "budget_for", "cli: the time budget line")})
    sys.meta_path.insert(0, Stamper())
    tl.mark("profiler: its own start-up (not drill's)")
    tl.stack()[-1] = "cli: the console script, click parses the command line"
    import re  # noqa: F401  (the console script's own first import)

    from grader.cli import main
    try:
        main(["grade", attempt], standalone_mode=False)
    except SystemExit:
        pass
    tl.mark(tl.stack()[-1])
    import json
    from pathlib import Path
    Path(out_path).write_text(json.dumps({"marks": tl.marks, "spans": tl.spans, "extra": extra}),
                              encoding="utf-8")


# ---------------------------------------------------------------- the driver

def one(python, folder, attempt, importtime):
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        spawned = time.monotonic()
        r = subprocess.run([python, str(Path(__file__).resolve()), "--child", attempt, "--out", out]
                           + (["--importtime"] if importtime else []),
                           cwd=folder, capture_output=True, text=True, check=False)
        ended = time.monotonic()
        if r.returncode not in (0, 1):
            sys.exit(f"profile: the child failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
        data = json.loads(Path(out).read_text(encoding="utf-8"))
    finally:
        os.unlink(out)
    marks = data["marks"]
    walls = [("interpreter start (python, site)", marks[0][1] - spawned)]
    walls += [(name, t - prev) for (name, t, _), (_, prev, _) in zip(marks[1:], marks[:-1])]
    walls.append(("process exit", ended - marks[-1][1]))
    cpus = [None] + [c - prev for (_, _, c), (_, _, prev) in zip(marks[1:], marks[:-1])] + [None]
    spans = [(label, end - start) for label, start, end in data["spans"]]
    return walls, cpus, data["extra"], ended - spawned, spans


def worker_imports(stderr: str) -> list[tuple[str, float]]:
    """Top-level groups of the worker's -X importtime, in ms, largest first."""
    rows = []
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) < 3:
            continue
        try:
            cumulative = int(parts[1])
        except ValueError:  # the header line
            continue
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip()) <= 1:  # top level: one space after the bar
            rows.append((name.strip(), cumulative / 1000))
    return sorted(rows, key=lambda r: -r[1])


def main(argv=None):
    import argparse
    import shutil
    import tempfile
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("attempts", nargs="*", help="attempt files (default: the reference solution)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--importtime", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.out, args.importtime)
        return 0

    sys.path.insert(0, BENCH)
    import run as bench

    drill, python = bench.find_drill()
    ex = bench.exercise_settings(python)
    reference = Path(ex.pop("reference"))
    attempts = [Path(a).resolve() for a in args.attempts] or [reference]
    tmp = Path(tempfile.mkdtemp(prefix="drill-profile-"))
    floor = tmp / "floor.py"
    floor.write_text(bench.FLOOR.format(**ex), encoding="utf-8")
    try:
        for n, attempt in enumerate(attempts):
            target = bench.workspace(drill, tmp / f"ws{n}", attempt)
            report(python, target, attempt, args.reps, [python, str(floor), str(reference)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def floor_train(argv, env=None):
    """The floor's own timing of its training loop (the reference's train(), 3000 iterations)."""
    import subprocess

    r = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return float(r.stdout.split("train_seconds")[1])


def report(python, target, attempt, reps, floor):
    import statistics

    # Interleaved: a grade, the floor's loop, the floor's loop with the worker's environment.
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    worker_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    runs, floors, floors_env = [], [], []
    for _ in range(reps):
        runs.append(one(python, target.parent, target.name, False))
        floors.append(floor_train(floor))
        floors_env.append(floor_train([floor[0], "-s"] + floor[1:], worker_env))
    print(f"\n`drill grade` of {attempt.name}: medians of {reps} fresh processes"
          f" (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
    print("On the main thread, in the order first met (a phase met several times is summed; "
          "cpu is the whole grader process's, threads included):\n")
    print(f"{'phase':<66} {'wall ms':>8} {'cpu ms':>7}")
    per_run = []
    for walls, cpus, _, _, _ in runs:
        summed = {}
        for (name, wall), c in zip(walls, cpus):
            w, cc = summed.get(name, (0.0, 0.0))
            summed[name] = (w + wall, cc + (c or 0.0))
        per_run.append(summed)
    names = list(dict.fromkeys(name for walls, *_ in runs for name, _ in walls))
    lines = []
    for name in names:
        wall = statistics.median(r.get(name, (0.0, 0.0))[0] for r in per_run) * 1000
        cpu = statistics.median(r.get(name, (0.0, 0.0))[1] for r in per_run) * 1000
        shown = "      -" if name in ("interpreter start (python, site)", "process exit") else f"{cpu:7.0f}"
        if wall >= 0.5:
            lines.append(f"{name:<66} {wall:8.0f} {shown}")
    print("\n".join(lines))
    total = statistics.median(r[3] for r in runs) * 1000
    print(f"{'total (wall, spawn to exit, as measured outside)':<66} {total:8.0f}")
    spans = {}
    for *_, sp in runs:
        summed = {}
        for label, secs in sp:
            summed[label] = summed.get(label, 0.0) + secs
        for label, secs in summed.items():
            spans.setdefault(label, []).append(secs)
    if spans:
        print("\nOn another thread, overlapping the phases above:")
        for label, xs in spans.items():
            print(f"  {label:<64} {statistics.median(xs) * 1000:8.0f}")
    extras = [r[2] for r in runs]
    yaml_s = statistics.median(e["yaml_seconds"] for e in extras) * 1000
    print(f"YAML parsing inside those phases: {yaml_s:.0f} ms for {extras[0]['yaml_files']} file(s)")
    wc = [e["worker_cpu"] for e in extras if "worker_cpu" in e]
    if wc:
        hwm = [e["worker_hwm_mib"] for e in extras if e.get("worker_hwm_mib")]
        print(f"attempt process: cpu {statistics.median(wc) * 1000:.0f} ms (wait4); peak RSS "
              + (f"{statistics.median(hwm):.1f} MiB (its VmHWM at its last line); " if hwm else "")
              + f"wait4's ru_maxrss {statistics.median(e['worker_maxrss_mib'] for e in extras):.1f} MiB "
              "(counts the grader's memory too: the child is vforked)")
    tasks = {}
    for e in extras:
        for t in e["tasks"]:
            tasks.setdefault(t["id"], []).append(t)
    calls = [statistics.median(x["seconds"] for x in ts) for tid, ts in tasks.items()
             if tid not in ("convergence", "finite-difference") and ts[0]["seconds"] is not None]
    conv = tasks.get("convergence", [])
    if calls:
        print(f"worker's own timing of the {len(calls)} call tasks: {sum(calls) * 1000:.1f} ms in all "
              "(the rest of that phase is the worker's per-task work: decode, alarms, checkpoints, encode, send)")
    if conv and conv[0]["seconds"] is not None:
        secs = statistics.median(x["seconds"] for x in conv)
        its = conv[0]["iterations"] or 1
        print(f"training, as the worker times it: {secs * 1000:.0f} ms for {its} iterations "
              f"({secs / its * 1e6:.0f} us each); its result line is {conv[0]['bytes'] / 1024:.0f} KiB "
              "(sent once, after the loop)")
        f, fe = statistics.median(floors), statistics.median(floors_env)
        print(f"the floor's own loop, interleaved with those: {f * 1000:.0f} ms ({f / 3000 * 1e6:.0f} us each); "
              f"with the worker's environment (one BLAS thread, -s): {fe * 1000:.0f} ms; "
              f"worker / floor: {secs / f:.2f}x")
    extra = one(python, target.parent, target.name, True)[2]
    rows = worker_imports(extra.get("worker_stderr", ""))
    if rows:
        print("worker start-up under -X importtime (inflated by the tracing; top groups, ms): "
              + ", ".join(f"{n} {ms:.0f}" for n, ms in rows[:6]))


if __name__ == "__main__":
    sys.exit(main())
