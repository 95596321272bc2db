"""grader.run.sandbox: whatever the child does, run_isolated comes back with a plain result."""

import os
import signal
import sys
import textwrap
import time

import pytest

from grader.run import sandbox
from grader.run.sandbox import Limits, RunResult, run_isolated

SHORT = Limits(timeout=2.0)


def run(code, limits=SHORT, **kwargs) -> RunResult:
    return run_isolated([sys.executable, "-c", textwrap.dedent(code)], limits=limits, **kwargs)


def gone(pid):
    """True when pid no longer exists, not even as a zombie of ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def write_pid(path):
    """Child code that writes its pid to `path` atomically: a reader never sees half of it."""
    return (f"open({str(path) + '.tmp'!r}, 'w').write(str(os.getpid())); "
            f"os.rename({str(path) + '.tmp'!r}, {str(path)!r})")


def wait_for_pid(path, seconds=5.0):
    """The pid a descendant wrote to `path` (a pathlib.Path)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"no pid written to {path}")


def our_zombies():
    """Pids of the dead children of this process that nobody has reaped."""
    zombies = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        state, ppid = stat[stat.rfind(b")") + 2:].split()[:2]
        if state == b"Z" and int(ppid) == os.getpid():
            zombies.append(int(name))
    return zombies


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


@pytest.fixture(autouse=True)
def reap_earlier_zombies():
    """Zombies that other tests' killed processes left to this (subreaper) process are not
    this file's business: reap them first, so each test sees only its own."""
    for pid in our_zombies():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def test_normal_exit_with_channel_data():
    r = run("""
        import os
        with os.fdopen(int(os.environ["DRILL_RESULT_FD"]), "wb") as channel:
            channel.write(b'{"ok": true}')
        print("hello")
    """)
    assert (r.returncode, r.signal, r.timed_out, r.memory_exceeded) == (0, None, False, False)
    assert r.channel == b'{"ok": true}' and r.stopped is None
    assert r.stdout == "hello\n" and r.stderr == ""
    assert r.leftovers == 0 and r.duration > 0


def test_channel_is_capped():
    r = run("""
        import os
        os.write(int(os.environ["DRILL_RESULT_FD"]), b"x" * 100_000)
    """, limits=Limits(timeout=2.0, channel_bytes=1000))
    assert r.channel == b"x" * 1000 and r.stopped == "channel"


def test_stdout_and_stderr_are_kept_up_to_the_cap_and_counted():
    r = run("""
        import sys
        sys.stdout.write("a" * 5000)
        sys.stderr.write("é" * 3000)
    """, limits=Limits(timeout=2.0, output_bytes=100))
    assert r.stdout == "a" * 100 and r.stdout_bytes == 5000
    assert r.stderr == "é" * 50 and r.stderr_bytes == 6000
    assert r.output_flooded and r.returncode == 0


def test_output_within_the_cap_is_not_a_flood():
    r = run("print('x' * 99)", limits=Limits(timeout=2.0, output_bytes=100))
    assert r.stdout_bytes == 100 and not r.output_flooded


LIMITS_REPORT = """
    import os, resource
    print(*(resource.getrlimit(getattr(resource, "RLIMIT_" + name))
            for name in ("AS", "FSIZE", "CORE", "CPU")), sep=";")
"""


@pytest.mark.parametrize("through_sh", [True, False])
def test_child_runs_under_its_limits(through_sh, monkeypatch):
    if not through_sh:
        monkeypatch.setattr(sandbox, "_SH", "/no/such/sh")  # falls back to a preexec_fn
    r = run(LIMITS_REPORT, limits=Limits(timeout=2.5, memory_mb=700, file_mb=3))
    assert r.stdout.strip().split(";") == [
        f"({700 << 20}, {700 << 20})", f"({3 << 20}, {3 << 20})", "(0, 0)", "(4, 5)"]


def test_child_gets_its_session_and_environment():
    r = run("""
        import os
        print(os.getsid(0) == os.getpid(),
              os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_NUM_THREADS"],
              os.environ["MKL_NUM_THREADS"], os.environ["PYTHONHASHSEED"],
              os.environ["PYTHONDONTWRITEBYTECODE"], len(os.environ["DRILL_SANDBOX_ID"]) > 8,
              os.environ["MINE"], os.getcwd())
    """, env={**os.environ, "MINE": "yes"}, cwd="/")
    assert r.stdout.split() == ["True", "1", "1", "1", "0", "1", "True", "yes", "/"]


def test_program_is_looked_up_on_the_path():
    bindir = os.path.dirname(sys.executable)
    name = os.path.basename(sys.executable)
    r = run_isolated([name, "-c", "print('found')"], limits=SHORT, env={"PATH": bindir})
    assert r.returncode == 0 and r.stdout == "found\n"


@pytest.mark.parametrize("code, returncode", [
    ("raise SystemExit(4)", 4),
    ("import sys; sys.exit(3)", 3),
    ("import os; os._exit(7)", 7),
    ("raise ValueError('boom')", 1),
])
def test_exit_codes(code, returncode):
    r = run(code)
    assert (r.returncode, r.signal, r.timed_out) == (returncode, None, False)
    assert not r.memory_exceeded


def test_killed_by_a_signal():
    r = run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert r.returncode is None and r.signal == signal.SIGSEGV
    assert not r.timed_out and not r.memory_exceeded


def test_infinite_loop_times_out():
    r = run("while True: pass", limits=Limits(timeout=1.0))
    assert r.timed_out and r.signal == signal.SIGKILL and r.returncode is None


def test_ignoring_sigterm_and_sigint_still_ends():
    r = run("""
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """, limits=Limits(timeout=1.0))
    assert r.timed_out and r.signal == signal.SIGKILL


def test_threads_that_never_end_are_stopped():
    r = run("""
        import threading, time
        for _ in range(3):
            threading.Thread(target=time.sleep, args=(10**6,)).start()
        print("main done", flush=True)
    """, limits=Limits(timeout=1.0))
    assert r.timed_out and r.stdout == "main done\n"


def test_cancel_all_stops_the_runs_in_progress_and_resume_lets_the_next_run():
    import threading

    results = []
    thread = threading.Thread(target=lambda: results.append(run("import time; time.sleep(60)",
                                                                limits=Limits(timeout=60))))
    thread.start()
    time.sleep(0.5)
    sandbox.cancel_all()
    thread.join(timeout=20)
    sandbox.resume()
    assert not thread.is_alive() and results[0].stopped == "cancelled" and not results[0].timed_out
    assert run("print('again')").stdout == "again\n"


@linux_only
def test_setsid_grandchild_is_killed_after_the_child_exits(tmp_path):
    pidfile = tmp_path / "pid"
    r = run(f"""
        import os, signal, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # the grandchild: its own session, orphaned, stubborn
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(s, signal.SIG_IGN)
                {write_pid(pidfile)}
                while True:
                    pass
            os._exit(0)
        os.wait()
        while not os.path.exists({str(pidfile)!r}):
            time.sleep(0.01)
        print("child exits")
    """, limits=Limits(timeout=10.0))
    pid = wait_for_pid(pidfile)
    assert r.returncode == 0 and not r.timed_out and r.stdout == "child exits\n"
    assert r.leftovers >= 1
    assert gone(pid)
    assert our_zombies() == []


@linux_only
def test_setsid_grandchild_is_killed_on_timeout(tmp_path):
    pidfile = tmp_path / "pid"
    r = run(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            {write_pid(pidfile)}
            while True:
                time.sleep(1)
        while True:
            time.sleep(1)
    """, limits=Limits(timeout=1.0))
    assert r.timed_out and r.leftovers >= 1
    assert gone(wait_for_pid(pidfile))
    assert our_zombies() == []


@linux_only
def test_background_child_holding_the_pipes_does_not_keep_the_run_open(tmp_path):
    pidfile = tmp_path / "pid"
    r = run(f"""
        import os, time
        if os.fork() == 0:  # keeps stdout, stderr and the channel open, in the same group
            {write_pid(pidfile)}
            time.sleep(60)
            os._exit(0)
        while not os.path.exists({str(pidfile)!r}):
            time.sleep(0.01)
    """, limits=Limits(timeout=10.0))
    assert r.returncode == 0 and not r.timed_out and r.leftovers == 1
    assert gone(wait_for_pid(pidfile))


def test_stdout_flood_is_bounded():
    r = run("""
        import os
        block = b"x" * (1 << 20)
        for _ in range(1024):  # 1 GiB
            os.write(1, block)
    """, limits=Limits(timeout=20.0, output_bytes=1000))
    assert r.output_flooded and not r.timed_out
    assert len(r.stdout) == 1000 and r.stdout_bytes > 1000
    assert r.signal == signal.SIGKILL  # stopped well before the whole gigabyte


def test_stderr_flood_is_flagged():
    r = run("import sys; sys.stderr.write('e' * 200_000)",
            limits=Limits(timeout=2.0, output_bytes=1000))
    assert r.output_flooded and r.stderr == "e" * 1000 and r.stderr_bytes == 200_000


@pytest.mark.parametrize("code", [
    "bytearray(10**11)",
    "blocks = []\nwhile True: blocks.append(bytearray(10**7))",
])
def test_memory_bomb_fails_inside_the_limit(code):
    r = run(code, limits=Limits(timeout=10.0, memory_mb=400))
    assert r.memory_exceeded and r.returncode == 1 and not r.timed_out
    assert "MemoryError" in r.stderr


def test_big_file_write_stops_at_the_file_limit(tmp_path):
    target = tmp_path / "big"
    r = run(f"""
        with open({str(target)!r}, "wb") as f:
            for _ in range(10):
                f.write(b"x" * (1 << 20))
    """, limits=Limits(timeout=5.0, file_mb=2))
    # Python ignores SIGXFSZ, so the write fails with EFBIG; other programs get the signal.
    assert r.signal == signal.SIGXFSZ or (r.returncode == 1 and "File too large" in r.stderr)
    assert target.stat().st_size <= 2 << 20


def test_stdin_is_delivered():
    data = bytes(range(256)) * 4000  # more than a pipe holds
    r = run("""
        import os, sys
        data = sys.stdin.buffer.read()
        os.write(int(os.environ["DRILL_RESULT_FD"]), data)
    """, stdin_data=data)
    assert r.returncode == 0 and r.channel == data


def test_child_that_never_reads_stdin_is_fine():
    r = run("pass", stdin_data=b"x" * 1_000_000)
    assert r.returncode == 0 and not r.timed_out


def test_missing_program_raises_a_clear_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_isolated(["/no/such/program"])
    with pytest.raises(FileNotFoundError):
        run_isolated(["no-such-program-anywhere"])
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        run_isolated([str(script)])


@linux_only
def test_no_zombies_are_left():
    r = run("""
        import os, time
        if os.fork() == 0:  # exits at once, never waited for
            os._exit(0)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # leaves the session, is orphaned, dies on its own
                time.sleep(0.2)
                os._exit(0)
            os._exit(0)
        time.sleep(0.6)
    """)
    assert r.returncode == 0
    assert our_zombies() == []


def test_cpu_time_limit_counts_as_a_timeout():
    r = run("""
        import resource
        resource.setrlimit(resource.RLIMIT_CPU, (1, 2))
        while True:
            pass
    """, limits=Limits(timeout=10.0))
    assert r.signal == signal.SIGXCPU and r.timed_out and not r.memory_exceeded


@linux_only
def test_without_pidfd_the_child_is_polled(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "_pidfd_open", lambda pid: None)
    pidfile = tmp_path / "pid"
    r = run(f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            {write_pid(pidfile)}
            time.sleep(60)
        while not os.path.exists({str(pidfile)!r}):
            time.sleep(0.01)
        os.write(int(os.environ["DRILL_RESULT_FD"]), b"done")
        sys.exit(5)
    """, limits=Limits(timeout=10.0))
    assert (r.returncode, r.channel, r.timed_out, r.leftovers) == (5, b"done", False, 1)
    assert gone(wait_for_pid(pidfile))


def test_runs_in_parallel_threads_keep_their_own_results():
    from concurrent.futures import ThreadPoolExecutor
    leave_one = """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        os.wait()
        sys.exit({code})
    """
    codes = range(1, 13)
    sources = [leave_one.format(code=c) if c % 3 == 0 else f"raise SystemExit({c})"
               for c in codes]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda src: run(src, limits=Limits(timeout=10.0)), sources))
    assert [r.returncode for r in results] == list(codes)
    assert [r.leftovers for r in results] == [1 if c % 3 == 0 else 0 for c in codes]
    if sys.platform.startswith("linux"):
        assert our_zombies() == []


def test_stdin_made_while_the_child_starts():
    code = "import sys; print(sys.stdin.read())"
    with sandbox.started([sys.executable, "-c", code], Limits(timeout=10.0)) as child:
        made = b"made later"  # the child is already running while this is prepared
        r = child.communicate(made)
    assert r.stdout == "made later\n" and r.returncode == 0


def test_leaving_before_communicate_stops_the_child():
    with pytest.raises(ValueError, match="no plan"):
        with sandbox.started([sys.executable, "-c", "import time; time.sleep(30)"], Limits(timeout=20)) as child:
            pid = child.root
            raise ValueError("no plan")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] in ("Z", "X")
    assert our_zombies() == []


# ---------------------------------------------------------------- the channel cut short; the walls' helpers

def test_a_result_cut_at_the_channels_cap_is_bad_output_not_cheating():
    """An oversized result: the channel's cap stops the run mid-line. That last line is
    unreadable, never forged, and the run's error is bad-output."""
    from grader.judge import errors
    from grader.run.channel import read_channel

    key = "ab" * 32
    r = run("""
        import os
        os.write(int(os.environ["DRILL_RESULT_FD"]), b"123 " + b"f" * 64 + b" {" + b"x" * 100_000)
    """, limits=Limits(timeout=2.0, channel_bytes=1000))
    channel = read_channel(r.channel, key)
    assert r.stopped == "channel" and channel.forged == 0 and channel.unreadable == 1
    channel.events["ready"] = {"event": "ready"}
    error = errors.run_error(r, channel, Limits(channel_bytes=1000), {})
    assert error["kind"] == "bad-output", error


class Lines:
    """A sink: the lines a run's channel handed over, and how many were cut short."""

    def __init__(self):
        self.lines, self.cuts = [], 0

    def line(self, data):
        self.lines.append(data)

    def cut(self):
        self.cuts += 1


@pytest.mark.parametrize("tail, stopped, cuts", [('b"last\\n"', None, 0), ('b"cut"', None, 1),
                                                 ('b"x" * 300_000', "channel", 1)])
def test_a_sink_gets_each_line_as_it_comes_and_one_line_is_bounded(tail, stopped, cuts):
    """Read line by line (communicate's sink), the channel keeps nothing but the line not yet
    ended: whole lines go to the sink, a last line without its newline is cut, and a line
    longer than limits.line_bytes stops the run as the channel's cap does."""
    sink = Lines()
    code = f"""
        import os
        fd = int(os.environ["DRILL_RESULT_FD"])
        for i in range(3):
            os.write(fd, b"line %d\\n" % i + b"y" * 50_000 + b"\\n")
        os.write(fd, {tail})
    """
    with sandbox.started([sys.executable, "-c", textwrap.dedent(code)],
                         Limits(timeout=10.0, channel_bytes=1_000_000, line_bytes=100_000)) as started:
        r = started.communicate(b"", sink)
    assert (r.stopped, r.channel, sink.cuts) == (stopped, b"", cuts)
    assert sink.lines[:6] == [b"line 0", b"y" * 50_000, b"line 1", b"y" * 50_000, b"line 2", b"y" * 50_000]
    assert sink.lines[6:] == ([b"last"] if "last" in tail else [])


def test_a_whole_line_without_the_key_is_still_forged():
    from grader.run.channel import read_channel

    assert read_channel(b"123 " + b"0" * 64 + b" {}\n", "ab" * 32).forged == 1


def test_an_authentic_line_the_attempt_wrote_is_checked_before_it_is_kept():
    """The attempt shares the worker's process, so it can sign lines with the worker's own HMAC
    state (tests/fixtures/isolation/worker_hijack.py reaches the worker the same way). Nesting
    past Python's recursion limit, an error that is not a dict, names that are not a list, a
    dict sent as a list, and terminal escapes: unreadable or made printable, never a traceback."""
    import hashlib
    import hmac

    from grader.judge import errors
    from grader.run.channel import read_channel

    key = "ab" * 32

    def signed(body: bytes) -> bytes:
        return b"7 " + hmac.new(bytes.fromhex(key), b"7 " + body, hashlib.sha256).hexdigest().encode() + b" " + body + b"\n"

    bad = [b"[" * 100_000 + b"]" * 100_000, b'{"event": "load", "error": "x"}',
           b'{"event": "load", "error": null, "missing": 5}', b'{"id": "f/0", "result": {"__dict__": []}}',
           b'{"id": "f/1", "error": {"type": "X", "where": "line 3"}}',
           b'{"id": "f/2", "result": ' + b'{"__list__": [' * 400 + b'1' + b']}' * 400 + b'}']
    channel = read_channel(b"".join(signed(b) for b in [b'{"event": "ready"}', *bad,
                                                          b'{"id": "f/3", "error": {"type": "\\u001b]0;x\\u0007"}}',
                                                          b'{"event": "done"}']), key)
    assert channel.forged == 0 and channel.unreadable == len(bad) and list(channel.results) == ["f/3"]
    assert channel.results["f/3"]["error"]["type"] == "\\x1b]0;x\\x07"
    done = RunResult(0, None, False, False, False, "", "", 0, 0, b"", 0.0, 0)
    error = errors.run_error(done, channel, Limits(), {})
    assert error["kind"] == "bad-output", error


def test_the_grader_is_not_dumpable_once_it_has_run_a_child():
    run("pass")
    with open("/proc/self/status") as f:
        assert "\nUid:" in f.read()
    import ctypes
    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run a child as another uid")
def test_every_process_of_the_runs_uid_is_killed():
    """With kill_uid (the level uid without a PID namespace), a process of that uid that left
    the session, replaced its environment and lost its parent is still found and killed."""
    import tempfile
    from pathlib import Path

    uid = 61999  # not a slot of the sandbox's, so that no other run shares it
    folder = Path(tempfile.mkdtemp(prefix="drill-uid-test-"))
    folder.chmod(0o777)
    pidfile = folder / "pid"
    code = f"""
        import os
        os.setgid({uid}); os.setuid({uid})
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                {write_pid(pidfile)}
                os.execve("/bin/sleep", ["sleep", "60"], {{}})
            os._exit(0)
        os.wait()
        import time; time.sleep(0.5)
    """
    with sandbox.started([sys.executable, "-c", textwrap.dedent(code)], SHORT, kill_uid=uid) as started:
        result = started.communicate()
    pid = wait_for_pid(pidfile)
    import shutil
    shutil.rmtree(folder)
    assert result.leftovers >= 1 and result.returncode == 0
    for _ in range(100):
        if gone(pid):
            break
        time.sleep(0.01)
    assert gone(pid)


@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="the children are bash one-liners")
def test_many_concurrent_runs_each_read_only_their_own_pipes():
    """The stress test of a bug seen under load (a correct attempt scored `cheating` with
    another worker's whole channel in its own): many runs started and ended at once in
    threads, some feeding stdin, some leaving a child that holds the pipes, each child
    writing its own marker on its channel, stdout and stderr. Every run must read exactly its
    own, and no descriptor of the grader may be left open or closed twice."""
    from concurrent.futures import ThreadPoolExecutor

    script = ('[ "$1" = 2 ] && (sleep 0.2 &) ; read -r -t 1 line; '
              'echo "$DRILL_SANDBOX_ID" >&"$DRILL_RESULT_FD"; echo "out-$DRILL_SANDBOX_ID"; '
              'echo "err-$DRILL_SANDBOX_ID" >&2')
    before = set(os.listdir("/proc/self/fd"))
    wrong = []

    def one(i):
        with sandbox.started(["/bin/bash", "-c", script, "drill-stress", str(i % 3)], Limits(timeout=20.0)) as run:
            r = run.communicate(b"line\n" * (i % 2) * 20000)
        got = (r.channel.decode().split(), r.stdout.split(), r.stderr.split())
        if got != ([run.marker], [f"out-{run.marker}"], [f"err-{run.marker}"]):
            wrong.append((i, got))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(240)))
    assert wrong == []
    assert set(os.listdir("/proc/self/fd")) <= before | {str(fd) for fd in range(3)}


def test_a_child_whose_pipes_are_not_its_own_is_killed_and_started_again(monkeypatch):
    """Should a child ever get descriptors that are not the pipes made for it (a number closed
    twice elsewhere and reused by another run), it is killed before it runs, and started() makes
    new pipes and starts it again: it never writes into another run's channel."""
    checks = []
    real = sandbox._child_holds

    def once_crossed(pid, wanted):
        checks.append(pid)
        return real(pid, wanted) and len(checks) > 1

    monkeypatch.setattr(sandbox, "_child_holds", once_crossed)
    r = run("import os; os.write(int(os.environ['DRILL_RESULT_FD']), b'mine')")
    assert (r.returncode, r.channel, len(checks)) == (0, b"mine", 2)
    assert gone(checks[0])


def test_a_number_that_now_is_another_pipe_is_not_closed():
    r1, w1 = os.pipe()
    ident = sandbox._pipe_of(r1)
    os.close(r1)
    os.close(w1)
    r2, w2 = os.pipe()  # the same numbers, another pipe
    try:
        sandbox._close_own(r2, ident)
        os.fstat(r2)  # still open
    finally:
        os.close(r2)
        os.close(w2)
