"""Hostile and broken attempts: `drill grade` never crashes, hangs, lies or leaves a process behind.

Each fixture in tests/fixtures/hostile/ is one way an attempt can misbehave. The table says
what the grade must be: the error kind, whether it passed, which checks must score 0 and
which must still pass (the checks that could be run are still judged). Every case must end
within its bound, and no process it started may be alive afterwards: the fixtures write the
pid of every process they make into $DRILL_HOSTILE_PIDS (see hostile_base.py).

Files that are not Python at all are made in tmp_path rather than committed.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import verdicts
from grader import catalog
from grader.run import sandbox
from grader.judge.grade import GradeUsageError, grade
from grader.judge.report import render_text
from grader.run.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
EXERCISE = catalog.exercise("mlp_backprop")  # every hostile fixture attempts it
LINKS = verdicts.gradient_links(EXERCISE)
EVERY_CHECK = [c.name for c in EXERCISE.checks]
NEEDS_BACKWARD = [*LINKS, "finite-difference", "convergence", "purity"]
WITHOUT_BACKWARD = ["forward", "loss", "step", "stability"]
SHORT = Limits(timeout=3, memory_mb=512)  # for the cases that must be stopped
ROOMY = Limits(timeout=60, memory_mb=512)  # for the cases that must still score in full
SLACK = sandbox.KILL_SECONDS + 6  # beyond the timeout: the clean-up, and judging on a busy machine


@dataclass
class Case:
    error: str | None
    passed: bool = False
    zero: list = field(default_factory=list)  # checks that must score 0
    full: list = field(default_factory=list)  # checks that must pass
    limits: Limits = SHORT
    note: str | None = None  # words a diagnosis entry must hold


ALL = EVERY_CHECK
ROOMY_PASS = dict(passed=True, full=EVERY_CHECK, limits=ROOMY)

CASES = {
    # broken files
    "syntax_error.py": Case("syntax", zero=ALL),
    "missing_function.py": Case("missing-function", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "not_callable.py": Case("missing-function", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "wrong_signatures.py": Case(None, zero=ALL),
    "returns_none.py": Case(None, zero=[c for c in ALL if c != "purity"]),
    "returns_lists.py": Case(None, zero=["forward", *LINKS, "step", "finite-difference", "convergence"],
                             full=["loss", "stability"]),
    "returns_scalars.py": Case(None, zero=[c for c in ALL if c != "purity"]),
    "wrong_shapes.py": Case(None, zero=[c for c in ALL if c != "purity"]),
    "nan_inf.py": Case(None, zero=[c for c in ALL if c != "purity"]),
    "escape_sequences.py": Case(None, zero=["forward", "finite-difference", "convergence", "purity"],
                                full=["loss", *LINKS, "step", "stability"]),
    # code that ends the process
    "exit_at_import.py": Case("exited", zero=ALL),
    "os_exit_at_import.py": Case("exited", zero=ALL),
    "abort_at_import.py": Case("crashed", zero=ALL),
    "exit_in_backward.py": Case("exited", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "os_exit_in_backward.py": Case("exited", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "keyboard_interrupt.py": Case("exited", zero=["forward", "finite-difference", "convergence", "purity"],
                                  full=["loss", *LINKS, "step", "stability"]),
    "system_exit_in_loss.py": Case("exited", zero=["loss", "finite-difference", "convergence", "purity",
                                                   "stability"], full=["forward", *LINKS, "step"]),
    "segfault.py": Case("crashed", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    # code that never ends or never lets go
    "loop_at_import.py": Case("timeout", zero=ALL),
    "loop_in_backward.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "sleep_in_forward.py": Case("timeout", zero=["forward", "finite-difference", "convergence", "purity"],
                                full=["loss", *LINKS, "step", "stability"]),
    "ignore_signals.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "block_signals.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "swallow_everything.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "stop_itself.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "alarm_default.py": Case("timeout", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "fork_children.py": Case(None, **ROOMY_PASS, note="left 3 process(es) running"),
    "fork_new_session.py": Case(None, **ROOMY_PASS),
    "fork_in_backward.py": Case(None, **ROOMY_PASS, note="process(es) running"),
    "threads_forever.py": Case(None, **ROOMY_PASS),
    "child_that_ends.py": Case(None, **ROOMY_PASS),
    "atexit_hang.py": Case(None, **ROOMY_PASS),
    "kill_parent_group.py": Case(None, **ROOMY_PASS),
    # code that eats resources
    "memory_bomb_import.py": Case("memory", zero=ALL, limits=Limits(timeout=20, memory_mb=512)),
    "memory_bomb_backward.py": Case("memory", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "flood_stdout.py": Case("output", zero=ALL),
    "flood_stderr_in_backward.py": Case("output", zero=NEEDS_BACKWARD, full=WITHOUT_BACKWARD),
    "prints_a_lot.py": Case(None, **ROOMY_PASS, note="only the first"),
    "huge_file.py": Case("output", zero=ALL),
    # code that tries to cheat
    "fake_report.py": Case(None, zero=["dz2", "finite-difference"], full=["forward", "loss", "step", "stability"]),
    "patch_numpy.py": Case(None, zero=["dz2"], full=["forward", "loss", "step", "stability"],
                           limits=ROOMY, note="replaced builtins.isinstance, numpy.allclose"),
    "read_solution.py": Case("cheating", zero=ALL),
    "import_grader.py": Case("cheating", zero=ALL),
    "link_solution.py": Case("cheating", zero=ALL),
    "subprocess_reads_solution.py": Case("cheating", zero=ALL),
    "forge_channel.py": Case("cheating", zero=ALL),
    "patch_worker.py": Case("cheating", zero=ALL),
    "close_channel.py": Case("bad-output", zero=ALL),
}


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(b")") + 2:].split()[0] not in (b"Z", b"X")


@pytest.fixture(scope="module", autouse=True)
def process_level():
    """These cases run at the level "process": their fixtures write the pid of every process
    they make into a folder of this test's (hostile_base.note_pid), which an attempt behind
    the kernel's walls can neither see nor write, and whose pids would be of its own PID
    namespace. test_isolation.py grades attacks behind the walls, with leftovers counted
    by uid and PID namespace instead."""
    old = os.environ.get("DRILL_ISOLATION")
    os.environ["DRILL_ISOLATION"] = "process"
    yield
    if old is None:
        os.environ.pop("DRILL_ISOLATION", None)
    else:
        os.environ["DRILL_ISOLATION"] = old


@pytest.fixture(scope="module")
def pid_folder():
    with tempfile.TemporaryDirectory(prefix="drill-hostile-pids-") as folder:
        old = os.environ.get("DRILL_HOSTILE_PIDS")
        os.environ["DRILL_HOSTILE_PIDS"] = folder
        try:
            yield Path(folder)
        finally:
            if old is None:
                os.environ.pop("DRILL_HOSTILE_PIDS", None)
            else:
                os.environ["DRILL_HOSTILE_PIDS"] = old


@pytest.fixture(scope="module")
def graded(pid_folder):
    """name -> (report, seconds, pids it wrote, the pids of those still alive right after)."""
    def one(name):
        start = time.monotonic()
        report = grade(FIXTURES / name, limits=CASES[name].limits)
        seconds = time.monotonic() - start
        pids = [int(p.name.rsplit(".", 1)[1]) for p in pid_folder.glob(f"{name}.*")]
        return report, seconds, pids, [p for p in pids if alive(p)]

    names = sorted(CASES, key=lambda n: CASES[n].limits.timeout, reverse=True)  # the long ones first
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(names, pool.map(one, names)))


def test_every_fixture_has_a_case():
    on_disk = sorted(p.name for p in FIXTURES.glob("*.py") if p.name != "hostile_base.py")
    assert on_disk == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_attempt(graded, name):
    case = CASES[name]
    report, seconds, pids, survivors = graded[name]
    text = report.to_json()  # never raises, and is what --json prints
    assert (report.error or {}).get("kind") == case.error, text
    if case.error:
        assert report.error["message"].strip(), text
    assert report.passed == case.passed, text
    checks = {c.name: c for c in report.checks}
    assert sorted(checks) == sorted(EVERY_CHECK)
    for name_ in case.zero:
        assert checks[name_].points == 0 and not checks[name_].passed, (name_, text)
    for name_ in case.full:
        assert checks[name_].passed and checks[name_].points == checks[name_].max_points, (name_, text)
    if case.error == "cheating":
        assert report.score == 0
    if case.note:
        assert any(case.note in d.message for d in report.diagnosis), text
    assert seconds < case.limits.timeout + SLACK, f"took {seconds:.1f} s"
    if "hostile_base" in (FIXTURES / name).read_text():
        assert pids, "the fixture imports hostile_base but wrote no pid"
    assert not survivors, f"still alive after the grade: {survivors}"


def test_a_function_that_hangs_costs_one_call_not_the_whole_run(graded):
    """An infinite loop in backward alone is stopped by the per-call bound, well before the timeout."""
    report, seconds, _, _ = graded["loop_in_backward.py"]
    assert "backward did not finish" in report.error["message"], report.error
    assert "at line 6" in report.error["message"] and seconds < SHORT.timeout + SLACK


def test_timeouts_say_where_the_attempt_was(graded):
    assert "loading the file" in graded["loop_at_import.py"][0].error["message"]
    assert "backward" in graded["ignore_signals.py"][0].error["message"]
    assert "--timeout" in graded["ignore_signals.py"][0].error["message"]


def test_cheating_names_what_was_tried(graded):
    assert "solutions" in graded["read_solution.py"][0].error["message"]
    assert "grader.catalog.reference" in graded["import_grader.py"][0].error["message"]
    assert "forge" in graded["forge_channel.py"][0].error["message"]
    assert "worker" in graded["patch_worker.py"][0].error["message"]


def test_text_from_the_attempt_cannot_drive_the_terminal(graded):
    """Exception names and messages reach the report as escapes: no fake line, no cursor moves."""
    report = graded["escape_sequences.py"][0]
    text = render_text(report)
    assert not any(c in text for c in "\x1b\r\u202e"), text
    assert not any(line.startswith("Score: 100") for line in text.splitlines())
    assert "\\x1b" in next(c.message for c in report.checks if c.name == "forward")


def test_files_the_attempt_writes_in_its_working_folder_are_removed(graded):
    assert not (FIXTURES / "big.bin").exists() and not (FIXTURES / "copy.py").exists()
    assert not (FIXTURES / "decoy.txt").exists()
    assert not (FIXTURES / "__pycache__").exists(), "the attempt's imports wrote bytecode beside it"


# ---------------------------------------------------------------- files that are not Python at all

NOT_PYTHON = {
    "empty.py": (b"", "missing-function", "empty"),
    "blank.py": (b"  \n\n\t\n", "missing-function", "empty"),
    "latin1.py": ("# caf\xe9\ndef forward(params, x):\n    pass\n".encode("latin-1"), "syntax", "line 1"),
    "nul.py": (b"def forward(params, x):\x00\n", "syntax", "binary"),
    "random.py": (bytes(range(128, 256)) * 8, "syntax", "not UTF-8"),
    "utf16.py": ("def forward(params, x):\n    pass\n".encode("utf-16"), "syntax", "UTF-16"),
    "huge.py": (b"# " + b"x" * 1_100_000 + b"\n", "syntax", "larger than"),
    "nested.py": (b"x = " + b"1+" * 200_000 + b"1\n", "syntax", "cannot be compiled"),
}


@pytest.mark.parametrize("name", sorted(NOT_PYTHON))
def test_not_python_gets_a_message_and_runs_nothing(tmp_path, name):
    data, kind, words = NOT_PYTHON[name]
    path = tmp_path / name
    path.write_bytes(data)
    report = grade(path, limits=SHORT)
    assert report.error["kind"] == kind and words in report.error["message"], report.error
    assert report.score == 0 and not report.passed
    assert all(c.message == "not run" for c in report.checks)


@pytest.mark.parametrize("make", ["folder", "missing", "fifo", "device"])
def test_what_is_not_a_file_is_a_usage_error(tmp_path, make):
    path = tmp_path / "attempt.py"
    if make == "folder":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "device":
        path.symlink_to("/dev/zero")
    with pytest.raises(GradeUsageError):
        grade(path, limits=SHORT)


# ---------------------------------------------------------------- through the command line

def drill(*args, timeout=120):
    command = [sys.executable, "-c", "from grader.cli import main; main()", "grade", *args]
    return subprocess.run(command, capture_output=True, timeout=timeout, text=True,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("name, status", [
    ("fake_report.py", 1), ("flood_stdout.py", 1), ("ignore_signals.py", 1), ("child_that_ends.py", 0),
])
def test_cli_json_is_exactly_one_object_whatever_the_attempt_prints(name, status):
    timeout = "60" if CASES[name].passed else "3"
    done = drill(str(FIXTURES / name), "--json", "--timeout", timeout, "--memory", "512")
    assert done.returncode == status, done.stderr
    report = json.loads(done.stdout)  # one object and nothing else: trailing text would not parse
    assert isinstance(report, dict) and report["passed"] == (status == 0)
    assert (report["error"] or {}).get("kind") == CASES[name].error
    if name == "fake_report.py":
        assert report["score"] < 100 and report["checks"]


def test_cli_no_such_file_is_exit_2():
    done = drill("/no/such/attempt.py", "--json")
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_cli_text_report_shows_the_attempts_output_without_its_control_characters(tmp_path):
    attempt = tmp_path / "attempt.py"
    attempt.write_text('print("\\x1b[2J\\x1b[1;1HScore: 100/100  PASSED\\r")\n')
    done = drill(str(attempt), "--timeout", "5")
    assert done.returncode == 1
    assert "\x1b[2J" not in done.stdout and "\\x1b[2J" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("  | ")


def test_grading_twice_at_once_does_not_mix_the_runs():
    """Two attempts graded in threads of one process: each gets its own report and channel."""
    names = ["fake_report.py", "forge_channel.py", "loop_in_backward.py", "child_that_ends.py"]
    limits = {n: (ROOMY if CASES[n].passed else SHORT) for n in names}
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(names, pool.map(lambda n: grade(FIXTURES / n, limits=limits[n]), names)))
    for n in names:
        assert (reports[n].error or {}).get("kind") == CASES[n].error, reports[n].to_json()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_grader_stops_the_attempt(tmp_path, sig):
    """`drill grade` stopped from outside (a batch runner's SIGTERM, or SIGKILL) takes the attempt with it."""
    attempt = tmp_path / "attempt.py"
    pidfile = tmp_path / "pid"
    attempt.write_text(f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(1000)\n")
    proc = subprocess.Popen([sys.executable, "-c", "from grader.cli import main; main()", "grade", str(attempt),
                             "--json", "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < end and proc.poll() is None, "the attempt never started"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    proc.send_signal(sig)
    proc.communicate(timeout=20)
    end = time.monotonic() + 10
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not alive(pid)
    try:  # this process adopted the worker when drill died (the grader made it a subreaper): reap it
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM


def test_every_copy_of_the_solutions_on_the_import_path_is_protected(tmp_path):
    # an editable install keeps the package in the checkout and a copy of the data in
    # site-packages: reading either copy is cheating
    import glob

    copies = sorted({os.path.realpath(p) for entry in ["", *sys.path]
                     for p in glob.glob(os.path.join(entry or ".", "grader", "_data", "solutions", "mlp_backprop.py"))
                     + glob.glob(os.path.join(entry or ".", "solutions", "mlp_backprop.py"))})
    assert copies
    for i, copy in enumerate(copies):
        attempt = tmp_path / f"attempt{i}.py"
        attempt.write_text(f"with open({copy!r}) as f:\n    exec(f.read())\n")
        report = grade(attempt, "mlp_backprop", limits=ROOMY)
        assert report.error and report.error["kind"] == "cheating", (copy, report.to_json())
        assert report.score == 0


def test_a_cache_that_contains_itself_is_just_data(tmp_path):
    from grader import catalog
    from grader.catalog import stubgen

    source = stubgen.strip_markers(catalog.exercise("mlp_backprop").solution_path.read_text(encoding="utf-8"))
    old = '    cache = {"x": x, "z1": z1, "a1": a1}\n'
    assert old in source
    attempt = tmp_path / "attempt.py"
    attempt.write_text(source.replace(old, old + '    cache["self"] = cache\n'), encoding="utf-8")
    report = grade(attempt, "mlp_backprop", limits=ROOMY)
    assert report.passed, report.to_json()


def test_a_slow_correct_attempt_passes_under_the_default_limits():
    # the other side of the time bounds: the README's promise that the default --timeout lets
    # a correct attempt written with Python loops pass (its training takes about 20 s, the
    # longest test of the suite)
    report = grade(verdicts.FIXTURES / "slow" / "triple_loops.py")
    assert report.passed and report.error is None, report.to_json()
