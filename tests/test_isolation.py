"""The kernel's walls around an attempt: each attack succeeds at the level "process" and is held behind them.

Each attack is a correct attempt with a few lines of hostile code in front, which print on
stdout what they reached ("ATTACK name: ok ..." or "ATTACK name: held ..."); the report
keeps the attempt's stdout. Every attack is graded twice: with DRILL_ISOLATION=process
(the worker's own guards only: the attack must get through, or the test proves nothing)
and at the strongest level this machine offers (uid as root, namespaces otherwise: the
attack must be held). Run as root, test_the_walls_hold_for_an_unprivileged_user runs
this same file again as `nobody`, where the level is namespaces. A test skips, saying
why, only where the machine lacks the mechanism.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import catalog
from grader.catalog import paths, stubgen
from grader.judge.grade import grade
from grader.run import isolation
from grader.run.sandbox import Limits

LIMITS = Limits(timeout=60, memory_mb=1024)
LEVEL = isolation.confirmed_level()
EXPECTED = os.environ.get("DRILL_TEST_EXPECT_LEVEL")  # set by the run as nobody
SURVIVOR = "31.4159"  # the argument of the `sleep` an attack leaves behind
PLANTED = "drill_isolation_planted.py"

needs_walls = pytest.mark.skipif(LEVEL == "process", reason="this machine offers no kernel wall (not root, and "
                                                            "no unprivileged user namespaces)")


def correct_source() -> str:
    exercise = catalog.exercise("mlp_backprop")
    return stubgen.strip_markers(exercise.solution_path.read_text(encoding="utf-8"))


def attempt(tmp_path: Path, name: str, attack: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(attack) + "\n" + correct_source(), encoding="utf-8")
    path.chmod(0o644)
    return path


@contextlib.contextmanager
def at_level(level: str):
    """DRILL_ISOLATION=process for level "process", else unset (the machine's best), put back after."""
    old = os.environ.get(isolation.FORCE_VAR)
    if level == "process":
        os.environ[isolation.FORCE_VAR] = "process"
    else:
        os.environ.pop(isolation.FORCE_VAR, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(isolation.FORCE_VAR, None)
        else:
            os.environ[isolation.FORCE_VAR] = old


def graded(path: Path, level: str):
    with at_level(level):
        return grade(path, "mlp_backprop", limits=LIMITS)


def outcomes(report) -> dict:
    """name -> "ok" or "held", from the attempt's ATTACK lines."""
    out = {}
    for line in report.output.get("stdout", []):
        if line.startswith("ATTACK "):
            name, _, rest = line[len("ATTACK "):].partition(": ")
            out[name] = rest.split()[0]
    return out


def test_the_level_is_probed_and_reported(tmp_path):
    if EXPECTED:
        assert LEVEL == EXPECTED
    if os.geteuid() == 0 and not isolation.forced():
        assert LEVEL in ("uid", "process")
    report = graded(attempt(tmp_path, "plain", ""), LEVEL)
    assert report.passed and report.isolation == LEVEL
    assert report.to_dict()["isolation"] == LEVEL


# ---------------------------------------------------------------- one attempt, many attacks

ATTACKS = '''\
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)

def _attack(name, fn):
    try:
        print(f"ATTACK {{name}}: ok {{str(fn())[:60]!r}}")
    except BaseException as exc:
        print(f"ATTACK {{name}}: held {{type(exc).__name__}}")

def _read(path, needle=b""):  # through libc: the worker's audit hook does not see it
    fd = libc.open(path.encode(), 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), path)
    buf = ctypes.create_string_buffer(65536)
    n = libc.read(fd, buf, 65536)
    libc.close(fd)
    if n <= 0 or needle not in buf.raw[:n]:
        raise ValueError("nothing")
    return n

def _plant():
    with open(os.path.join({bin!r}, {planted!r}), "w") as f:
        f.write("PLANTED = True\\n")

_attack("read-reference", lambda: _read({solution!r}, b"def backward"))
_attack("list-solutions", lambda: [n for n in os.listdir({solutions!r}) if n.endswith(".py")] or 1 / 0)
_attack("grader-environ", lambda: _read("/proc/{grader}/environ"))
_attack("grader-mem", lambda: open("/proc/{grader}/mem", "rb").close())
_attack("signal-grader", lambda: os.kill({grader}, 0))
_attack("same-user-environ", lambda: _read("/proc/{sibling}/environ", b"DRILL_SECRET"))
_attack("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).close())
_attack("plant-module", _plant)
'''
# The grader is non-dumpable: a process of the same user cannot read its memory or environ
# at any level; a process of root (the level "process" forced as root) can.
ALWAYS_HELD = {"grader-environ", "grader-mem"} if os.geteuid() != 0 else set()


@pytest.fixture(scope="module")
def attacks(tmp_path_factory):
    """level -> {attack: ok or held}, for the one attempt that tries every attack (the level
    "process" only where the control test is to run: not in the run as nobody)."""
    folder = tmp_path_factory.mktemp("attacks")
    folder.chmod(0o755)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    sibling = subprocess.Popen(["sleep", "120"], env={**os.environ, "DRILL_SECRET": "1"})
    bin_dir = os.path.dirname(sys.executable)  # where the `drill` console script is
    source = ATTACKS.format(solution=str(paths.solutions_dir() / "mlp_backprop.py"),
                            solutions=str(paths.solutions_dir()), grader=os.getpid(), sibling=sibling.pid,
                            port=listener.getsockname()[1], bin=bin_dir, planted=PLANTED)
    path = attempt(folder, "attacker", source)
    try:
        levels = ([] if EXPECTED else ["process"]) + ([LEVEL] if LEVEL != "process" else [])
        found = {}
        for level in levels:
            report = graded(path, level)
            found[level] = outcomes(report)
            found[level]["planted"] = os.path.exists(os.path.join(bin_dir, PLANTED))
            found[level]["writable"] = os.access(bin_dir, os.W_OK)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(bin_dir, PLANTED))
        return found
    finally:
        sibling.kill()
        sibling.wait()
        listener.close()


def test_without_the_walls_the_attacks_get_through(attacks):
    """The control: at the level "process" each attack reaches what it aims at (else the
    test below would prove nothing), but for the grader's own memory and environ, which
    a user other than root cannot read at any level (the grader is non-dumpable)."""
    seen = dict(attacks["process"])
    writable, planted = seen.pop("writable"), seen.pop("planted")
    assert set(seen) >= {"read-reference", "network", "plant-module"}, seen
    if not writable:  # the user running the tests may not write there anyway
        assert seen.pop("plant-module") == "held" and not planted
    else:
        assert planted
    for name, result in seen.items():
        assert result == ("held" if name in ALWAYS_HELD else "ok"), (name, seen)


@needs_walls
def test_behind_the_walls_every_attack_is_held(attacks):
    seen = dict(attacks[LEVEL])
    assert not seen.pop("planted")
    seen.pop("writable")
    assert sorted(seen) == sorted(re.findall(r'_attack\("([^"]+)"', ATTACKS)), seen
    assert all(result == "held" for result in seen.values()), seen


# ---------------------------------------------------------------- leftovers

SURVIVE = f'''\
import os
if os.fork() == 0:  # a chain of fork + setsid, without the sandbox's marker or a parent
    os.setsid()
    if os.fork() == 0:
        os.execve("/bin/sleep", ["sleep", "{SURVIVOR}"], {{}})
    os._exit(0)
'''


def survivors() -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if f.read() == f"sleep\0{SURVIVOR}\0".encode():
                    found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


def _kill(pids):
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


@pytest.mark.parametrize("level", [pytest.param("process", id="unwalled"),
                                   pytest.param(LEVEL, id="walls", marks=needs_walls)])
def test_a_process_that_leaves_the_session_does_not_outlive_the_grade(tmp_path, level):
    _kill(survivors())
    report = graded(attempt(tmp_path, "survivor", SURVIVE), level)
    time.sleep(0.2)
    left = survivors()
    _kill(left)
    assert report.passed, report.to_json()
    if level == "process":
        assert left, "the control: the worker's own clean-up misses this one"
    else:
        assert not left


# ---------------------------------------------------------------- a sibling in a batch

SIBLING = '''\
import os, time
seen, wrote = set(), 0
end = time.time() + 3
while time.time() < end:  # look for the other worker, and write junk into its pipes
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:  # a sibling only: its grader's, never another's
                if int(f.read().rsplit(b")", 1)[1].split()[1]) != os.getppid():
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"worker.py" not in f.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                f.read()
            seen.add(pid)
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:") and int(fd) > 2:
                    with open(f"/proc/{pid}/fd/{fd}", "wb") as f:
                        f.write(b"1 forged {}\\n")
                    wrote += 1
        except OSError:
            continue
    time.sleep(0.05)
print(f"ATTACK sibling: {'ok' if seen else 'held'} saw {len(seen)} wrote {wrote}")
'''


@pytest.mark.parametrize("level", [pytest.param("process", id="unwalled"),
                                   pytest.param(LEVEL, id="walls", marks=needs_walls)])
def test_a_sibling_in_a_batch_cannot_reach_another_worker(tmp_path, level):
    """Two attempts graded at once (as by `drill grade --jobs 2`): the attacker looks for the
    other's worker in /proc, reads its environ and writes into its pipes."""
    attacker = attempt(tmp_path, "attacker", SIBLING)
    honest = attempt(tmp_path, "honest", "import time\ntime.sleep(2.5)\n")
    with at_level(level), ThreadPoolExecutor(max_workers=2) as pool:  # the environment set once, for both
        bad, good = pool.map(lambda p: grade(p, "mlp_backprop", limits=LIMITS), [attacker, honest])
    result = outcomes(bad).get("sibling")
    if level == "process":
        assert result == "ok", bad.output  # the control: it saw the other worker
    else:
        assert result == "held", bad.output
        assert good.passed and good.error is None, good.to_json()


GRADE_ALONE = """
import json, os, sys, time
os.environ["DRILL_ISOLATION"] = "process"
from grader.judge.grade import grade
from grader.run.sandbox import Limits
kinds, end = [], time.time() + float(sys.argv[2])
while time.time() < end:
    r = grade(sys.argv[1], "mlp_backprop", limits=Limits(timeout=60, memory_mb=1024))
    kinds.append((r.error or {}).get("kind"))
print(json.dumps(kinds))
"""


def test_the_unwalled_sibling_attack_reaches_no_other_graders_worker(tmp_path):
    """The cause of correct attempts scored `cheating` while two test runs shared a machine:
    the sibling attack above, graded without walls, wrote its junk into every worker.py of the
    user, another grader's too (another checkout's test run, a benchmark). It keeps to the
    workers of its own grader now: a grader in another process, grading meanwhile at the level
    "process", gets no forged line."""
    honest = attempt(tmp_path, "alone", "")
    other = subprocess.Popen([sys.executable, "-c", GRADE_ALONE, str(honest), "4"], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    try:
        time.sleep(0.5)
        attacker = attempt(tmp_path, "attacker", SIBLING)
        with at_level("process"), ThreadPoolExecutor(max_workers=2) as pool:
            bad, _ = pool.map(lambda p: grade(p, "mlp_backprop", limits=LIMITS),
                              [attacker, attempt(tmp_path, "honest", "import time\ntime.sleep(2.5)\n")])
        assert outcomes(bad).get("sibling") == "ok", bad.output  # it did write into its sibling's pipes
        kinds = json.loads(other.communicate(timeout=120)[0])
    finally:
        other.kill()
        other.wait()
    assert kinds and set(kinds) == {None}, kinds


@pytest.mark.parametrize("required", [False, True], ids=["fallback", "required"])
def test_where_the_walls_cannot_be_built_grading_falls_back_and_says_so(tmp_path, monkeypatch, required):
    """A box that cannot be built (here: its root folder is missing) ends the worker before the
    attempt runs; the run is made again one level down, the next run starts there, and the
    report names the level it really ran at. Once isolation.require() was called (drill grade
    --require-isolation), never down to the level process: the grade says the worker could
    not start."""
    real = isolation._spec

    def broken(*args):
        spec = real(*args)
        spec["root"] = "/nonexistent/drill-root"
        return spec

    monkeypatch.setattr(isolation, "_spec", broken)
    monkeypatch.setattr(isolation, "_state", {"level": None, "namespaces": True, "confirmed": False,
                                              "required": required})
    monkeypatch.delenv(isolation.FORCE_VAR, raising=False)
    if isolation.level() == "process":
        pytest.skip("this machine offers no level to fall back from")
    report = grade(attempt(tmp_path, "plain", ""), "mlp_backprop", limits=LIMITS)
    if required:
        assert report.isolation != "process" != isolation._state["level"], report.to_json()
        if not report.passed:
            assert report.error["kind"] == "crashed" and "sandbox could not be set up" in report.error["message"]
        return
    assert report.passed, report.to_json()
    assert isolation._state["level"] in ("uid", "process")
    if os.geteuid() != 0:
        assert report.isolation == "process" == isolation.level()
    else:  # the uid alone, where the slot can read Python and numpy without a namespace
        assert report.isolation == isolation.level()
        assert not isolation._state["namespaces"]


# ---------------------------------------------------------------- the box itself

@needs_walls
def test_the_worker_sees_a_copy_in_a_private_folder_and_little_else(tmp_path, monkeypatch):
    monkeypatch.setenv("DRILL_SECRET_TOKEN", "1")
    checkout = Path(__file__).resolve().parent.parent
    secret = [str(tmp_path), str(checkout / "solutions"), str(checkout / "tests"), str(paths.solutions_dir()),
              str(Path(catalog.__file__).parent), "/home", os.path.expanduser("~/.ssh")]
    spy = f'''\
    import os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    print("HERE", oct(os.stat(here).st_mode & 0o777), os.listdir(here))
    print("PROC", sorted(int(p) for p in os.listdir("/proc") if p.isdigit())[:5])
    print("SEEN", [p for p in {secret!r} if os.path.exists(p) and (not os.path.isdir(p) or os.listdir(p))])
    print("ENV", sorted(os.environ))
    '''
    report = graded(attempt(tmp_path, "spy", spy), LEVEL)
    lines = {line.split(" ", 1)[0]: line for line in report.output["stdout"]}
    assert lines["HERE"] == "HERE 0o700 ['spy.py']", lines
    assert lines["PROC"] == "PROC [1, 2]", lines  # its own init, and itself
    assert lines["SEEN"] == "SEEN []", lines
    assert "DRILL_SECRET_TOKEN" not in lines["ENV"] and "'HOME'" in lines["ENV"], lines


def test_the_attempts_own_helper_modules_are_copied_beside_it(tmp_path):
    (tmp_path / "helpers_for_me.py").write_text("from math import pi as PI\n")
    (tmp_path / "unrelated.py").write_text("X = 1\n")
    path = attempt(tmp_path, "uses_helper", "from helpers_for_me import PI\nprint('PI', PI)\n"
                   "import os\nprint('FILES', sorted(os.listdir(os.path.dirname(os.path.abspath(__file__)))))\n")
    report = graded(path, LEVEL)
    assert report.passed, report.to_json()
    if LEVEL != "process":
        assert "FILES ['helpers_for_me.py', 'uses_helper.py']" in report.output["stdout"], report.output


# ---------------------------------------------------------------- as nobody: the level namespaces

# As nobody: the walls only (the controls at the level "process" ran as root already).
NOBODY_SELECTION = "not unprivileged_user and not unwalled and not without_the_walls"


def _reachable_script(needed: list[str], hold: str) -> str:
    """sh lines that, in a mount namespace of root's own, make each needed path reachable by
    any user: an ancestor that others may not enter is covered with an empty tmpfs, and the
    needed paths under it are bound back."""
    lines, blocked = [], {}
    for path in needed:
        parts = Path(path).parts
        for i in range(2, len(parts)):
            ancestor = str(Path(*parts[:i]))
            if not os.stat(ancestor).st_mode & 0o001:
                blocked.setdefault(ancestor, []).append(path)
                break
    for n, (ancestor, under) in enumerate(blocked.items()):
        for m, path in enumerate(under):
            lines += [f"mkdir -p {hold}/{n}-{m}", f"mount --bind '{path}' {hold}/{n}-{m}"]
        lines.append(f"mount -t tmpfs -o mode=755 drill-test '{ancestor}'")
        for m, path in enumerate(under):
            lines += [f"mkdir -p '{path}'", f"mount --bind {hold}/{n}-{m} '{path}'"]
    return "\n".join(lines)


@pytest.mark.skipif(os.geteuid() != 0, reason="run as a user already: this file's tests are the namespaces level")
def test_the_walls_hold_for_an_unprivileged_user():
    """This file again, as nobody (setpriv), where the level must be namespaces."""
    if not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("util-linux setpriv and unshare are needed to run as nobody")
    probe = subprocess.run(check=False, args=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--user",
                            "--map-root-user", "--pid", "--fork", "--mount", "--net", "--mount-proc", "true"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip(f"unprivileged user namespaces are not available here: {probe.stderr.decode()[-200:]}")
    checkout = Path(__file__).resolve().parent.parent
    needed = sorted({sys.prefix, os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable)),
                     str(checkout)} | {os.path.dirname(p) for p in map(os.path.realpath, [paths.__file__])})
    with tempfile.TemporaryDirectory() as hold, tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o1777)
        command = (f"exec setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/bin:/bin HOME={tmp} "
                   f"TMPDIR={tmp} DRILL_TEST_EXPECT_LEVEL=namespaces '{sys.executable}' -m pytest -q -x -rs "
                   f"-p no:cacheprovider -k '{NOBODY_SELECTION}' '{Path(__file__).resolve()}'")
        script = "\n".join(["set -e", _reachable_script(needed, hold), f"cd '{checkout}'", command])
        done = subprocess.run(["unshare", "--mount", "sh", "-c", script], check=False, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert " passed" in last and " failed" not in last, done.stdout[-1000:]
    skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", done.stdout)
    assert all("only the level uid" in why for why in skipped), skipped  # as nobody, only the uid-only test skips


@pytest.mark.skipif(LEVEL != "uid", reason="the process limit is per uid: only the level uid has a uid of its own")
def test_a_fork_bomb_meets_the_slots_process_limit(tmp_path):
    bomb = '''\
    import os
    made = 0
    try:
        for _ in range(2000):
            if os.fork() == 0:
                import time
                time.sleep(30)
                os._exit(0)
            made += 1
    except OSError as exc:
        print("BOMB stopped", made, exc.errno)
    '''
    report = graded(attempt(tmp_path, "bomb", bomb), LEVEL)
    line = next(line for line in report.output["stdout"] if line.startswith("BOMB"))
    assert int(line.split()[2]) < 2000 and report.passed, report.to_json()


def test_require_isolation_refuses_the_level_process(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    monkeypatch.setenv(isolation.FORCE_VAR, "process")
    done = CliRunner().invoke(main, ["grade", str(attempt(tmp_path, "plain", "")), "--require-isolation"])
    assert done.exit_code == 2 and "--require-isolation" in done.output and "DRILL_ISOLATION" in done.output


# ---------------------------------------------------------------- warm workers (issue 19)

WARM = Path(__file__).parent / "fixtures" / "warm"


def _warm_batch(tmp_path: Path, names: list[str]) -> list:
    """Grade the attacks of tests/fixtures/warm (each in front of a correct attempt) in this
    order, as a batch of one slot (--jobs 1): every attempt after the first is forked from the
    warm worker the first ran in."""
    from grader.course import batch

    files = [attempt(tmp_path, f"{i:02d}_{name}", (WARM / f"{name}.py").read_text()) for i, name in enumerate(names)]
    return batch.run(files, "mlp_backprop", Limits(timeout=30, memory_mb=1024), jobs=1).reports


@needs_walls
def test_nothing_an_attempt_leaves_reaches_the_next_one_forked_from_the_same_warm_worker(tmp_path):
    """leave_state.py patches numpy and builtins, plants modules, paths, environment variables,
    signal handlers, atexit hooks and files, leaves a thread and a detached process writing
    forged lines into every descriptor they can open and killing what they see, and kills its
    parent; detect_state.py, forked next from the same warm worker, fails if it sees any of it."""
    reports = _warm_batch(tmp_path, ["leave_state", "detect_state", "leave_state", "detect_state"])
    for r in reports:
        assert r.isolation in ("uid", "namespaces"), r.isolation
        assert (r.score, r.error) == (100, None), (r.file, r.error, r.output)
    assert all("LEAKED" not in "".join(r.output.get("stdout", [])) for r in reports if r.output)


@needs_walls
def test_the_state_detector_sees_the_state_when_it_shares_the_attempts_process(tmp_path):
    """The test above has teeth: in one process (what a warm worker without a fork per attempt
    would be), detect_state.py sees what leave_state.py left, and fails."""
    both = attempt(tmp_path, "both", (WARM / "leave_state.py").read_text() + "\n" + (WARM / "detect_state.py").read_text())
    r = grade(both, "mlp_backprop", LIMITS)
    stdout = "".join(r.output.get("stdout", [])) if r.output else ""
    assert r.score == 0 and r.error["kind"] in ("import", "cheating"), r.error
    for leak in ("np.dot patched", "numpy print options", "a builtin", "sys.modules", "sys.path",
                 "an environment variable", "a signal handler", "the recursion limit", "a file", "a thread"):
        assert leak in stdout, (leak, stdout)


@needs_walls
def test_a_warm_worker_that_dies_is_replaced_and_every_verdict_stays_right(tmp_path):
    """Killed between two attempts (or gone in any other way), the warm worker is started
    again or the attempt is run cold: never a wrong verdict."""
    from grader.run import attempt as run_attempt

    fixtures = Path(__file__).parent / "fixtures" / "mlp_backprop"
    cold = {name: grade(fixtures / name, "mlp_backprop", LIMITS) for name in ("correct_reference.py", "wrong_onehot.py")}
    with run_attempt.warm():
        for round_ in range(3):
            for name, expected in cold.items():
                r = grade(fixtures / name, "mlp_backprop", LIMITS)
                assert (r.score, r.error, r.isolation) == (expected.score, expected.error, expected.isolation), name
                assert [c.passed for c in r.checks] == [c.passed for c in expected.checks], name
            workers = list(run_attempt._warm["workers"].values())  # noqa: SLF001 - the test kills them
            assert workers, "no warm worker was used"
            for worker in workers:
                os.kill(worker.server.proc.pid, signal.SIGKILL if round_ else signal.SIGSTOP)
                if not round_:  # stopped: it cannot answer; then it dies with its box
                    os.kill(worker.server.proc.pid, signal.SIGKILL)
