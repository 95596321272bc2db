#!/usr/bin/env python3
"""Benchmark `drill` against its targets (issue 19, which restates issue 8's). A script, not a test.

    python bench/run.py [--reps N] [--quick] [--batch-files N] [--write-results]

Measures whole commands, wall clock (time.perf_counter around the process), with the
pair members interleaved: every round runs each command once, in an order that rotates
from round to round, so a change in the machine's load hits both members of a pair.
Each ratio is the ratio of the medians over the rounds; the spread of the per-round
ratios is printed beside it. Exits 1 when a ratio misses its target, 2 when a command
could not be run as expected (a wrong exit status, a wrong verdict). Every grade runs
with the isolation this machine offers (uid as root, namespaces otherwise).

The pairs (A / B):

  1  drill grade of the reference   / floor: python imports numpy, trains 3000 it.  <= 1.25x
  1b drill grade of the reference   / the same with DRILL_ISOLATION=process        info
     (what the kernel's walls cost)
  2  drill grade of the reference   / pytest, the seed's two tests, no plugins      <= 1.0x
  2b the same, with every pytest plugin this venv has (hypothesis's among them)     info
  3  drill bugs --check EXERCISE    / drill grade of the reference, every exercise  <= 4x
  4  --jobs 2 throughput / --jobs 1 throughput, a batch of the same files           >= 1.8x
  5  drill grade of precision/wrong_db1_from_da1 (diagnosed by the search over small
     mistakes) / drill grade of the reference                                       <= 1.5x
  5b drill grade of wrong_onehot (trains fully, catalogued diagnosis) / the same     <= 1.5x
  6  drill watch: from a save to its re-grade shown / a cold drill grade            <= 0.8x
  7  the grader's own peak memory (VmHWM of `drill grade`) while an attempt sends back
     the most the channel accepts                                                   < 200 MB

Every `drill grade` runs in a workspace that `drill start` made (so the history is
written, as for a user), with its default text output. The floor script, the pytest file
and the batch folder are generated into a temporary folder. `drill`, and the Python that
runs the floor and pytest, are the ones of one virtual environment: the `drill` next to
sys.executable (else on PATH), and the interpreter its first line names.

Besides wall clock, the CPU time of each command (user + sys, its own and its reaped
descendants', from wait4) is printed: on a machine shared with other work, CPU time
moves much less than wall time, and tells whether a change saved work or only waiting.

Only the standard library is used, in whatever Python runs this file.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = ROOT / "tests" / "fixtures" / "mlp_backprop"
RESULTS = BENCH / "RESULTS.md"
EXERCISE = "mlp_backprop"
# The attempts copied into the batch folder, in turn: two right, three wrong in different ways
# (one diverges at once, two train all 3000 iterations and are diagnosed).
BATCH_MIX = ["correct_reference.py", "correct_functional.py", "wrong_missing_n.py",
             "wrong_onehot.py", "wrong_dz1_mask.py"]
BATCH_PASSING = {"correct_reference.py", "correct_functional.py"}
FAILING = "precision/wrong_db1_from_da1.py"  # item 5: diagnosed by the search over small mistakes
FAILING_FULL = "wrong_onehot.py"  # item 5b: trains all 3000 iterations, then is diagnosed
MEMORY_MB = 200  # item 7: the grader's own peak while an attempt sends back all the channel takes

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


# ---------------------------------------------------------------- the generated files

FLOOR = '''\
"""The floor: one Python process that imports numpy and trains the reference."""
import importlib.util
import sys
import time

import numpy as np  # noqa: F401  (the reference imports it too; named here to be plain)

spec = importlib.util.spec_from_file_location("reference", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
x, y = ref.make_xor(n={n}, seed={seed})
params = ref.init_params({D}, {H}, {C}, seed={seed})
start = time.perf_counter()
params = ref.train(params, x, y, lr={lr}, iters={iters}, log_every=0)
seconds = time.perf_counter() - start
accuracy = ref.accuracy(params, x, y)
print(f"accuracy {{accuracy:.3f}} train_seconds {{seconds:.4f}}")
sys.exit(0 if accuracy >= {min_accuracy} else 1)
'''

SEED_TESTS = '''\
"""The two tests of the seed analysis, on the reference: what a user would run instead of drill."""
import importlib.util

import numpy as np

REFERENCE = {reference!r}


def load():
    spec = importlib.util.spec_from_file_location("reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = load()


def loss_of(params, x, y):
    z2, _ = ref.forward(params, x)
    loss, _ = ref.softmax_cross_entropy(z2, y)
    return loss


def test_finite_difference_check():
    """Perturb every parameter entry by +-eps; central differences match backward within 1e-4."""
    x, y = ref.make_xor(n={n}, seed={seed})
    params = ref.init_params({D}, {H}, {C}, seed={seed})
    z2, cache = ref.forward(params, x)
    _, probs = ref.softmax_cross_entropy(z2, y)
    grads = ref.backward(params, cache, probs, y)
    eps = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + eps
            plus = loss_of(params, x, y)
            value[index] = saved - eps
            minus = loss_of(params, x, y)
            value[index] = saved
            numeric[index] = (plus - minus) / (2 * eps)
        analytic = grads["d" + name]
        rel = np.abs(numeric - analytic) / np.maximum(np.abs(numeric) + np.abs(analytic), 1e-8)
        assert rel.max() <= 1e-4, (name, rel.max())


def test_xor_converges():
    x, y = ref.make_xor(n={n}, seed={seed})
    params = ref.train(ref.init_params({D}, {H}, {C}, seed={seed}), x, y, lr={lr}, iters={iters}, log_every=0)
    assert ref.accuracy(params, x, y) >= {min_accuracy}
'''


# ---------------------------------------------------------------- running a command

@dataclass
class Run:
    wall: float
    cpu: float  # user + sys of the process and of the descendants it reaped
    returncode: int
    stdout: str
    stderr: str


def run(argv, cwd, env=None, timeout=3600.0) -> Run:
    """argv to the end, with its output in files (no pipe to serve) and its rusage from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, proc.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


class BadRun(Exception):
    """A command did not do what the benchmark relies on: its numbers would mean nothing."""


@dataclass
class Command:
    key: str
    label: str
    argv: list
    cwd: Path
    ok_codes: tuple = (0,)
    check: object = None  # fn(Run) -> problem or None
    env: dict | None = None
    runs: list = field(default_factory=list)

    def once(self) -> Run:
        r = run(self.argv, self.cwd, self.env)
        problem = None
        if r.returncode not in self.ok_codes:
            problem = f"exit status {r.returncode}, expected {self.ok_codes}"
        elif self.check is not None:
            problem = self.check(r)
        if problem:
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
            raise BadRun(f"{self.label}: {problem}\n  $ {' '.join(map(str, self.argv))}  (in {self.cwd})\n{tail}")
        self.runs.append(r)
        return r

    def close(self) -> None:
        """Nothing to end: each run is a process of its own (Watch keeps one open)."""

    @property
    def shown(self) -> str:
        """The label, with the number of cases for `drill bugs --check` (it grows with the catalogue)."""
        found = {re.search(r"(\d+) of \1 cases", r.stdout) for r in self.runs} - {None}
        counts = sorted({int(m[1]) for m in found})
        return self.label + (f" ({'/'.join(map(str, counts))} cases)" if counts else "")

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


class Watch(Command):
    """`drill watch` kept running: each once() saves the attempt (a comment line more) and
    times how long until its re-grade is shown, the poll's own delay included."""

    proc = None

    def _start(self):
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        self._shown()

    def _shown(self, timeout=120.0):
        """Read until the line that ends one shown grade; what the grade showed."""
        seen = []
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            if not line:
                raise BadRun(f"{self.label}: drill watch ended:\n" + "".join(seen[-15:]))
            seen.append(line)
            if line.startswith("(watching"):
                return "".join(seen)
        raise BadRun(f"{self.label}: no re-grade within {timeout} s")

    def once(self) -> Run:
        if self.proc is None:
            self._start()
        path = self.cwd / f"{EXERCISE}.py"
        start = time.perf_counter()
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"# saved {len(self.runs)}\n")
        shown = self._shown()
        wall = time.perf_counter() - start
        if "PASSED" not in shown:
            raise BadRun(f"{self.label}: the re-grade did not pass:\n{shown}")
        r = Run(wall, 0.0, 0, shown, "")
        self.runs.append(r)
        return r

    def close(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C: drill watch ends its warm worker and removes its box
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# ---------------------------------------------------------------- item 7: the grader's own memory

MAX_CHANNEL = '''\
"""An attempt whose forward sends back as much as the grader's channel accepts: extra cache
entries of random floats, each call as much as one line may hold, until the channel is all but full."""
import numpy as np

LINE_MIB, TOTAL_MIB = {line_mib}, {total_mib}
sent = [0.0]


def forward(params, x):
    z1 = x @ params["W1"] + params["b1"]
    a1 = np.maximum(z1, 0.0)
    z2 = a1 @ params["W2"] + params["b2"]
    cache = {{"x": x, "z1": z1, "a1": a1}}
    room = min(LINE_MIB - 1.0, TOTAL_MIB - 2.0 - sent[0])  # MiB of JSON: 4/3 of the bytes, as base64
    for i in range(int(room // 8)):
        cache[f"big{{i}}"] = np.random.default_rng(i).random(int(8 * 2**20 * 3 / 4 / 8))
        sent[0] += 8.0
    return z2, cache
'''


def grader_peak(drill, python, tmp, reps, channel_mib):
    """Item 7: the peak resident size (VmHWM, sampled until it exits) of `drill grade` itself
    while its attempt sends back the largest result its channel accepts (Limits' defaults)."""
    code = "from grader.run.sandbox import Limits; l = Limits(); print(l.channel_bytes, l.line_bytes)"
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    total, line = (int(x) >> 20 for x in r.stdout.split()) if r.returncode == 0 else (256, 256)
    if channel_mib:
        total, line = (int(x) for x in channel_mib.split(","))
    path = tmp / "max_channel" / f"{EXERCISE}.py"
    path.parent.mkdir()
    path.write_text(MAX_CHANNEL.format(line_mib=line, total_mib=total), encoding="utf-8")
    peaks = []
    for _ in range(max(1, min(reps, 3))):
        run_, sampler = run_sampled_self([drill, "grade", path.name, "--exercise", EXERCISE, "--json"], path.parent)
        report = json.loads(run_.stdout)
        if report.get("error") and report["error"]["kind"] in ("bad-output", "cheating"):
            raise BadRun(f"item 7: the attempt's result was refused ({report['error']}): it must be accepted")
        peaks.append(sampler.own / 1024)
    mib = max(peaks)
    print(f"\nitem 7: grader peak with a {total} MiB channel of {line} MiB lines: " +
          ", ".join(f"{p:.1f}" for p in peaks) + " MiB", flush=True)
    return {"mib": mib, "ok": mib < MEMORY_MB, "total": total, "line": line}


def run_sampled_self(argv, cwd):
    """run(), with the process's own VmHWM polled every 10 ms until it exits."""
    sampler = PeakSampler(interval=0.01)
    original = subprocess.Popen

    class Watched(original):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            sampler.start(self.pid)

    subprocess.Popen = Watched
    try:
        return run(argv, cwd), sampler
    finally:
        subprocess.Popen = original
        sampler.stop()


# ---------------------------------------------------------------- peak memory of the attempt processes

def _status_kb(pid, field_name):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field_name.encode() + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _children(pid):
    """Pids of pid's children, from /proc/PID/task/*/children (every thread's own)."""
    found = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            pass
    return found


class PeakSampler:
    """Polls the peak resident size (VmHWM) of one process and of its children (the attempt
    processes a `drill grade` starts). VmHWM only grows, so the last sample of a process is
    a lower bound of its peak, short of what it reached in its last poll interval."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.pid = None
        self.own = 0
        self.workers = {}  # pid -> kB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self, pid):
        self.pid = pid
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.wait(self.interval):
            own = _status_kb(self.pid, "VmHWM")
            if own:
                self.own = max(self.own, own)
            for child in _children(self.pid):
                kb = _status_kb(child, "VmHWM")
                if kb:  # the last sample: just after a vfork, the child still shows the grader's memory
                    self.workers[child] = kb


def run_sampled(argv, cwd):
    """run(), with the peak memory of the process and of each of its children sampled."""
    sampler = PeakSampler()
    result = {}
    original = subprocess.Popen

    class Watched(original):  # start sampling the moment the pid exists
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            sampler.start(self.pid)

    subprocess.Popen = Watched
    try:
        result["run"] = run(argv, cwd)
    finally:
        subprocess.Popen = original
        sampler.stop()
    return result["run"], sampler


# ---------------------------------------------------------------- the machine

def machine(python) -> dict:
    info = {"nproc": os.cpu_count(), "cpu": platform.processor() or "?"}
    try:
        with open("/proc/cpuinfo") as f:
            models = re.findall(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if models:
            info["cpu"] = models[0].strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read())[1])
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, TypeError):
        pass
    probe = ("import sys, platform, numpy, click, yaml; "
             "print(platform.python_version(), numpy.__version__, click.__version__, yaml.__version__, "
             "yaml.__with_libyaml__)")
    r = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    if r.returncode == 0:
        py, np_, click_, yaml_, libyaml = r.stdout.split()
        info.update(python=py, numpy=np_, click=click_, pyyaml=f"{yaml_} (libyaml {'yes' if libyaml == 'True' else 'no'})")
    r = subprocess.run([python, "-m", "pytest", "--version"], capture_output=True, text=True, check=False)
    info["pytest"] = (r.stdout + r.stderr).strip().split()[-1] if r.returncode == 0 else "not installed"
    info["OPENBLAS_*"] = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                                   if k.startswith("OPENBLAS")) or "unset"
    try:
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    info["platform"] = platform.platform()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "grader", "exercises",
                            "solutions", "bugs"], capture_output=True, text=True, check=False).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    info["code"] = (f"commit {head or '?'}" + (f" + {len(dirty)} uncommitted file(s) in the grader and its data "
                                               f"({', '.join(dirty[:6])}{', ...' if len(dirty) > 6 else ''})"
                                               if dirty else ""))
    return info


# ---------------------------------------------------------------- set-up

def find_drill(given=None) -> tuple[Path, str]:
    """The drill console script (given, else this venv's, else on PATH), and the Python it runs on."""
    here = Path(given) if given else Path(sys.executable).parent / "drill"
    drill = here if here.is_file() else (Path(shutil.which("drill")) if shutil.which("drill") and not given else None)
    if drill is None:
        sys.exit("bench: no `drill` next to this Python or on PATH: install the project first "
                 "(python -m pip install -e .) and run this with that environment's Python")
    first = drill.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    return drill, python


def exercise_settings(python) -> dict:
    """The training run and sizes from the exercise's own YAML, and where the reference is."""
    code = ("import json; from grader import catalog; from grader.catalog import paths; e = catalog.exercise('mlp_backprop'); "
            "t = e.train; print(json.dumps({'n': t.n, 'seed': t.seed, 'lr': t.lr, 'iters': t.iters, "
            "'min_accuracy': t.min_accuracy, 'D': e.sizes['D'], 'H': e.sizes['H'], 'C': e.sizes['C'], "
            "'reference': str(paths.solutions_dir() / 'mlp_backprop.py'), 'exercises': sorted(catalog.exercises())}))")
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"bench: cannot read the exercise's settings with {python}:\n{r.stderr}")
    return json.loads(r.stdout)


def workspace(drill, folder: Path, attempt: Path) -> Path:
    """A `drill start` workspace in folder whose attempt is a copy of `attempt`."""
    folder.mkdir(parents=True)
    r = subprocess.run([str(drill), "start", EXERCISE], cwd=folder, capture_output=True, text=True, check=False,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"bench: drill start failed in {folder}:\n{r.stdout}{r.stderr}")
    target = folder / f"{EXERCISE}.py"
    shutil.copyfile(attempt, target)
    return target


def batch_folder(folder: Path, files: int) -> int:
    """files attempts in student folders, copies of BATCH_MIX in turn; how many should pass."""
    passing = 0
    for i in range(files):
        source = BATCH_MIX[i % len(BATCH_MIX)]
        student = folder / f"student{i:03d}"
        student.mkdir(parents=True)
        shutil.copyfile(FIXTURES / source, student / f"{EXERCISE}.py")
        passing += source in BATCH_PASSING
    return passing


def says(pattern):
    def check(r):
        return None if re.search(pattern, r.stdout) else f"its output does not say {pattern!r}"
    return check


# ---------------------------------------------------------------- the benchmark

@dataclass
class Pair:
    item: str
    label: str
    a: Command
    b: Command
    target: float
    at_most: bool = True  # the ratio must be <= target (else >=)
    info: bool = False  # printed, not judged

    @property
    def ratio(self):
        return self.a.wall / self.b.wall

    @property
    def spread(self):
        rs = [x.wall / y.wall for x, y in zip(self.a.runs, self.b.runs)]
        return (min(rs), max(rs)) if rs else (float("nan"),) * 2

    @property
    def ok(self):
        return self.ratio <= self.target if self.at_most else self.ratio >= self.target


def fmt_s(x):
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, help="rounds of the single commands (default 5; 3 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer rounds, 40 batch files, and no 2b or 3b")
    ap.add_argument("--batch-files", type=int, help="attempts in the batch (default 200; 40 with --quick)")
    ap.add_argument("--batch-reps", type=int, default=1,
                    help="runs of each batch command (default 1; 2 runs A B B A)")
    ap.add_argument("--skip", default="", help="items to leave out, e.g. 3b,4")
    ap.add_argument("--write-results", action="store_true",
                    help=f"write the table and the machine into {RESULTS.relative_to(ROOT)} "
                         "(between its bench markers)")
    ap.add_argument("--drill", help="the drill script to measure (default: the one next to this Python); "
                    "its first line names the Python that also runs the floor and pytest")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    ap.add_argument("--channel-mib", help="item 7: the channel's cap and the cap of one line, in MiB, as "
                    "TOTAL,LINE (default: the grader's Limits; for a grader older than the per-line cap, 256,256)")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 5)
    files = args.batch_files or (40 if args.quick else 200)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.quick:
        skip |= {"2b", "3b"}

    drill, python = find_drill(args.drill)
    info = machine(python)
    info["drill"] = f"{drill} (python {python})"
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    ex = exercise_settings(python)
    reference = Path(ex.pop("reference"))
    ex_ids = ex.pop("exercises")

    tmp = Path(tempfile.mkdtemp(prefix="drill-bench-"))
    try:
        code = run_all(drill, python, ex, reference, tmp, reps, files, args.batch_reps, skip, info,
                       args.write_results, ex_ids, args.channel_mib)
    except BadRun as exc:
        print(f"\nbench: a command did not run as expected, so its timing means nothing:\n{exc}", file=sys.stderr)
        code = 2
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


def run_all(drill, python, ex, reference, tmp, reps, files, batch_reps, skip, info, write, ex_ids=(EXERCISE,),
            channel_mib=None):
    drill = str(drill)
    ref_attempt = workspace(drill, tmp / "ws-reference", reference)
    fail_attempt = workspace(drill, tmp / "ws-search", FIXTURES / FAILING)
    watch_attempt = workspace(drill, tmp / "ws-watch", reference)
    full_attempt = workspace(drill, tmp / "ws-onehot", FIXTURES / FAILING_FULL)
    (tmp / "floor.py").write_text(FLOOR.format(**ex), encoding="utf-8")
    seed_dir = tmp / "seed-tests"
    seed_dir.mkdir()
    (seed_dir / "test_seed.py").write_text(SEED_TESTS.format(reference=str(reference), **ex), encoding="utf-8")
    pytest_env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}

    def grade(key, label, attempt, passes):
        return Command(key, label, [drill, "grade", attempt.name], attempt.parent,
                       ok_codes=(0,) if passes else (1,), check=says(r"PASSED" if passes else r"Score: "))

    cmds = {
        "grade": grade("grade", "drill grade (reference)", ref_attempt, True),
        "floor": Command("floor", "floor: python + numpy + 3000 it.", [python, str(tmp / "floor.py"), str(reference)],
                         tmp, check=says(r"accuracy")),
        # A user's plain pytest: this venv also has hypothesis (the test extras), whose pytest
        # plugin adds over a second to every start; 2b measures pytest as this venv has it.
        "pytest": Command("pytest", "pytest: the seed's 2 tests", [python, "-m", "pytest", "-q", "-p",
                          "no:hypothesispytest", "test_seed.py"], seed_dir, check=says(r"\b2 passed\b"),
                          env=pytest_env),
        "pytest_venv": Command("pytest_venv", "pytest, with this venv's plugins", [python, "-m", "pytest", "-q",
                               "test_seed.py"], seed_dir, check=says(r"\b2 passed\b"), env=pytest_env),
        "grade_process": Command("grade_process", "drill grade (reference), DRILL_ISOLATION=process",
                                 [drill, "grade", ref_attempt.name], ref_attempt.parent,
                                 check=says(r"Isolation: process"), env={**os.environ, "DRILL_ISOLATION": "process"}),
        "fail": grade("fail", f"drill grade ({Path(FAILING).name})", fail_attempt, False),
        "fail_full": grade("fail_full", f"drill grade ({FAILING_FULL})", full_attempt, False),
        "watch": Watch("watch", "drill watch: save -> re-grade shown", [drill, "watch", "--interval", "0.05"],
                       watch_attempt.parent),
    }
    for ex_id in ex_ids:
        cmds[f"bugs-{ex_id}"] = Command(f"bugs-{ex_id}", f"drill bugs --check {ex_id}", [drill, "bugs", "--check", ex_id],
                                        tmp, check=says(r"(\d+) of \1 cases as expected"))
    pairs = [
        Pair("1", "grade / floor", cmds["grade"], cmds["floor"], 1.25),
        Pair("1b", "grade behind the walls / at the level process", cmds["grade"], cmds["grade_process"], 1.1,
             info=True),
        Pair("2", "grade / pytest (seed tests)", cmds["grade"], cmds["pytest"], 1.0),
        Pair("2b", "grade / pytest (+ hypothesis plugin)", cmds["grade"], cmds["pytest_venv"], 1.0, info=True),
        *[Pair("3", f"bugs --check {ex_id} / grade", cmds[f"bugs-{ex_id}"], cmds["grade"], 4.0) for ex_id in ex_ids],
        Pair("5", f"failing ({Path(FAILING).name}) / passing", cmds["fail"], cmds["grade"], 1.5),
        Pair("5b", f"failing ({FAILING_FULL}) / passing", cmds["fail_full"], cmds["grade"], 1.5),
        Pair("6", "watch re-grade / cold grade", cmds["watch"], cmds["grade"], 0.8),
    ]
    pairs = [p for p in pairs if p.item not in skip]
    used = [c for c in cmds.values() if any(c in (p.a, p.b) for p in pairs)]

    print(f"\n{len(used)} commands, {reps} rounds, interleaved (the order rotates every round)", flush=True)
    try:
        for c in used:  # a warm-up of each: page cache, .pyc files; not counted
            c.once()
            c.runs.clear()
        for r in range(reps if used else 0):
            order = used[r % len(used):] + used[:r % len(used)]
            for c in order:
                c.once()
            print(f"  round {r + 1}/{reps}: " + ", ".join(f"{c.key} {c.runs[-1].wall:.2f}" for c in order),
                  flush=True)
    finally:
        for c in used:  # drill watch is ended whatever happened
            c.close()
    batch = None
    if "4" not in skip:
        batch = run_batch(drill, python, tmp, files, batch_reps)
    memory = None if "7" in skip else grader_peak(drill, python, tmp, reps, channel_mib)

    lines = table(pairs, batch, used, reps, memory)
    text = "\n".join(lines)
    print("\n" + text)
    misses = [p for p in pairs if not p.info and not p.ok]
    if batch and not batch["ok"]:
        misses.append(batch)
    if memory and not memory["ok"]:
        misses.append(memory)
    print(f"\n{'MISS: ' + str(len(misses)) + ' target(s) missed' if misses else 'every target met'}")
    if write:
        write_results(info, text, reps, files)
    return 1 if misses else 0


def run_batch(drill, python, tmp, files, batch_reps):
    folder = tmp / "batch"
    passing = batch_folder(folder, files)
    out = {1: [], 2: [], "workers": [], "grader": []}
    order = [1, 2, 2, 1] * batch_reps
    order = order[:2 * batch_reps]
    print(f"\nbatch: {files} attempts ({passing} should pass), --jobs 1 and --jobs 2, order {order}", flush=True)
    for jobs in order:
        r, sampler = run_sampled([drill, "grade", str(folder), "--jobs", str(jobs), "--json"], tmp)
        if r.returncode not in (0, 1):
            raise BadRun(f"drill grade DIR --jobs {jobs}: exit status {r.returncode}\n{r.stderr[-2000:]}")
        summary = json.loads(r.stdout)["summary"]
        if summary["files"] != files or summary["passed"] != passing:
            raise BadRun(f"drill grade DIR --jobs {jobs}: {summary['passed']} of {summary['files']} passed, "
                         f"expected {passing} of {files} (a timeout on a busy machine?)\n{r.stderr[-2000:]}")
        out[jobs].append(r)
        out["workers"] += list(sampler.workers.values())
        out["grader"].append(sampler.own)
        print(f"  --jobs {jobs}: {r.wall:.1f} s wall, {r.cpu:.1f} s cpu, {files / r.wall:.2f} attempts/s; "
              f"{len(sampler.workers)} attempt processes seen", flush=True)
    out["exact"] = exact_peaks(python, sorted(folder.rglob("*.py"))[:20])
    t1 = statistics.median(r.wall for r in out[1])
    t2 = statistics.median(r.wall for r in out[2])
    ratio = t1 / t2  # throughput of --jobs 2 over that of --jobs 1
    out.update(files=files, t1=t1, t2=t2, ratio=ratio, ok=ratio >= 1.8,
               cpu1=statistics.median(r.cpu for r in out[1]), cpu2=statistics.median(r.cpu for r in out[2]))
    return out


EXACT_PEAKS = r"""
import json, sys
from pathlib import Path
from grader.course import batch
from grader.run import sandbox
peaks = []  # (VmHWM when the worker said done, ru_maxrss from wait4), KiB
read, reap = sandbox._Pipes._read, sandbox._reap
seen = {}

def hwm(pidfd):
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        pid = next(int(l.split()[1]) for l in f if l.startswith("Pid:"))
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))

def watched(self, cap):
    before = len(cap.kept)
    read(self, cap)
    if cap is self.chan and b'"event": "done"' in bytes(cap.kept[max(0, before - 64):]) and self.pidfd is not None:
        try:
            seen[sandbox.threading.get_ident()] = hwm(self.pidfd)
        except (OSError, StopIteration, ValueError):
            pass

def counted(proc):
    status, usage = reap(proc)
    if usage is not None:
        peaks.append((seen.pop(sandbox.threading.get_ident(), None), usage.ru_maxrss))
    return status, usage

sandbox._Pipes._read, sandbox._reap = watched, counted
batch.run([Path(p) for p in sys.argv[1:]], None, None, 2)
print(json.dumps(peaks))
"""


def exact_peaks(python, files):
    """The peak resident size (KiB) of each attempt process, as VmHWM read from /proc the moment
    its last line ("done") arrives, when it only has to exit; and its ru_maxrss from wait4, which
    on Linux also counts the grader's own peak (the child is vforked: its memory before exec is
    the grader's). batch.run in a Python of drill's venv, with private names of grader.run.sandbox
    wrapped: None if they have moved."""
    r = subprocess.run([python, "-c", EXACT_PEAKS, *map(str, files)], capture_output=True, text=True, check=False)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None
    except (ValueError, IndexError):
        return None


def table(pairs, batch, used, reps, memory=None):
    lines = [(f"{'item':<4} {'pair (A / B)':<40} {'A median':>9} {'B median':>9} {'ratio':>6} "
              f"{'(spread)':>13} {'target':>7}  result")]
    for p in pairs:
        lo, hi = p.spread
        target = f"{'<=' if p.at_most else '>='}{p.target:g}x"
        result = "info" if p.info else ("ok" if p.ok else "MISS")
        lines.append(f"{p.item:<4} {p.label:<40} {fmt_s(p.a.wall):>9} {fmt_s(p.b.wall):>9} {p.ratio:>5.2f}x "
                     f"{f'({lo:.2f}-{hi:.2f})':>13} {target:>7}  {result}")
    if batch:
        lines.append(f"{'4':<4} {'throughput --jobs 2 / --jobs 1':<40} {fmt_s(batch['t2']):>9} {fmt_s(batch['t1']):>9} "
                     f"{batch['ratio']:>5.2f}x {'':>13} {'>=1.8x':>7}  {'ok' if batch['ok'] else 'MISS'}")
    if memory:
        lines.append(f"{'7':<4} {'grader peak, a max-size channel result':<40} {memory['mib']:>7.1f} MB "
                     f"{'':>9} {'':>6} {'':>13} {f'<{MEMORY_MB}MB':>7}  {'ok' if memory['ok'] else 'MISS'}")
    lines.append("")
    lines.append(f"medians of {reps} rounds (item 4: {len(batch[1]) if batch else 0} run(s) of each); "
                 "spread: the lowest and highest per-round ratio")
    lines.append("")
    lines.append(f"{'command':<42} {'wall median':>11} {'cpu median':>11}  (cpu: user+sys, with its children)")
    for c in used:
        lines.append(f"{c.shown:<42} {fmt_s(c.wall):>11} {fmt_s(c.cpu):>11}")
    if batch:
        files = batch["files"]
        lines.append(f"{f'drill grade DIR --jobs 1 ({files} files)':<42} {fmt_s(batch['t1']):>11} "
                     f"{fmt_s(batch['cpu1']):>11}  {files / batch['t1']:.2f} attempts/s")
        lines.append(f"{f'drill grade DIR --jobs 2 ({files} files)':<42} {fmt_s(batch['t2']):>11} "
                     f"{fmt_s(batch['cpu2']):>11}  {files / batch['t2']:.2f} attempts/s")
        exact = sorted(h for h, _ in batch.get("exact") or [] if h)
        maxrss = sorted(m for _, m in batch.get("exact") or [])
        if exact:
            lines.append(f"peak memory per attempt process (its VmHWM at its last line, {len(exact)} of the "
                         f"attempts, --jobs 2): median {statistics.median(exact) / 1024:.1f} MiB, "
                         f"max {exact[-1] / 1024:.1f} MiB")
        if maxrss:
            lines.append(f"  (wait4's ru_maxrss of the same: median {statistics.median(maxrss) / 1024:.1f} MiB, "
                         f"max {maxrss[-1] / 1024:.1f} MiB: it includes the grader's peak, see exact_peaks)")
        w = sorted(batch["workers"])
        if w:
            lines.append(f"peak memory per attempt process, sampled: median {statistics.median(w) / 1024:.1f} MiB, "
                         f"max {w[-1] / 1024:.1f} MiB, over {len(w)} processes "
                         f"(VmHWM sampled every 50 ms during the timed runs: a lower bound)")
        if batch["grader"]:
            lines.append(f"peak memory of the grading process itself (drill, its threads): "
                         f"max {max(batch['grader']) / 1024:.1f} MiB")
    floor = next((c for c in used if c.key == "floor"), None)
    pytest = next((c for c in used if c.key == "pytest"), None)
    if floor and pytest:
        lines.append("")
        lines.append(f"note: item 2 cannot go below floor / pytest = {floor.wall / pytest.wall:.2f}x "
                     "without training faster than the reference's own loop")
    return lines


def write_results(info, text, reps, files):
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    block = [BEGIN, f"Measured {stamp} by `python bench/run.py` ({reps} rounds, batch of {files}).", "",
             "Machine:", ""]
    block += [f"- {k}: {v}" for k, v in info.items()]
    block += ["", "```", text, "```", END]
    body = "\n".join(block)
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + body + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + body + "\n"
    RESULTS.write_text(new, encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
