"""Run an attempt in a separate, bounded process and always come back with a plain result.

`run_isolated(argv, ...)` starts `argv` in its own session with resource limits, feeds it
`stdin_data`, reads its stdout, its stderr and a private result channel at the same time,
and, once the main process has exited (or has been stopped), kills everything it left
behind. Whatever the child does, the caller gets a `RunResult`; only a call that cannot
start at all (argv[0] or cwd not found, argv[0] not executable) raises, as
`subprocess.Popen` does: `FileNotFoundError`, `PermissionError` or another `OSError`.

The result channel: the write end of a pipe, passed to the child as the descriptor whose
number is in `$DRILL_RESULT_FD` (`os.fdopen(int(os.environ["DRILL_RESULT_FD"]), "wb")`).
Several threads may run attempts at once.

Choices, and why:

- Limits: RLIMIT_AS `memory_mb`, RLIMIT_FSIZE `file_mb`, RLIMIT_CORE 0, and RLIMIT_CPU
  ceil(timeout) + 1 s (SIGXCPU; the hard limit a second later is SIGKILL), each clamped
  to the grader's own hard limit. The hard limits are set too (equal to the soft ones but
  for CPU), so the child cannot raise them. The CPU limit is a backstop that ends a
  runaway even if the grader itself dies; a child that burns CPU on several threads can
  reach it before the wall clock, and that is reported as `timed_out`. They are set by
  `/bin/sh -c 'ulimit ...; exec "$@"'`, which then becomes the program (same pid):
  fork-safe, and cheap (see `_limited`). Without /bin/sh, by a `preexec_fn` that only
  calls `resource.setrlimit`.
- Ending: the grader makes itself a child subreaper (Linux `prctl`, once per process), so
  orphans of the attempt reparent to it rather than to init. When the main child exits
  (seen through a pidfd, without reaping it, so its pid, process group and session stay
  reserved), or the run is stopped, every descendant is found in /proc (its process group
  or session, a parent chain back to the child, or `DRILL_SANDBOX_ID` in its environ) and
  killed with SIGKILL, in rounds until none is left (at most `KILL_SECONDS`). Live ones
  are counted in `leftovers`. Zombies are reaped: the ones found, and any zombie the
  grader adopted from outside its own session that is not the main child of a run in
  progress (a dead process has no environ left to recognise it by). Then the pipes are
  read to EOF, for at most `DRAIN_SECONDS` more, and the main child is reaped.
  SIGTERM or SIGHUP to the grader during a run (in its main thread) raise SystemExit after
  this clean-up has run; the worker asks to be SIGKILLed if the grader dies outright.
  Not covered: a live descendant that has left the session, replaced its environment
  *and* lost its parent chain before the clean-up: that takes the walls of isolation.py
  (a PID namespace ends with its init; with `kill_uid`, every process of the run's own uid
  is killed too). By itself this module bounds a buggy or stubborn attempt; it is not a
  security boundary. The grader makes itself non-dumpable at its first run, so that no
  process of its user can read its memory or environ. Being a subreaper is process-wide: orphans of anything else the
  grader starts are adopted too (and would stay zombies if nobody reaps them).
- Floods: `output_bytes` of each stream is kept, the rest read and counted; a stream
  beyond `FLOOD_KILL_FACTOR * output_bytes` (65.5 MB by default) gets the child killed.
  That is far more than any useful print-debugging (the training loop printing `probs`
  every step writes about 17 MB) and is read in a fraction of a second. Result-channel
  data beyond `channel_bytes` also gets the child killed: its result is unusable anyway.
  `RunResult.stopped` says which of these ended a run (or the timeout); None when it exited.
- `memory_exceeded` (best effort): the run did not end cleanly, and either stderr (its
  kept head or its last 4 KiB) mentions MemoryError, "Unable to allocate", bad_alloc,
  "Cannot allocate memory", "out of memory" or "memory allocation", or the child died of a
  SIGKILL that the grader did not send (the kernel's OOM killer), with a peak resident
  size of at least half the limit. A segfault or an abort is a crash, not a memory error:
  under the address-space limit a failed allocation shows as MemoryError, and the peak
  size wait4 reports for a child started by vfork counts the grader's own pages too, so it
  cannot tell a large attempt from a large grader (a pytest run, a long batch).
"""

import contextlib
import errno
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from grader import settings

try:
    import resource
except ImportError:  # not a POSIX system: no limits
    resource = None

RESULT_FD_VAR = "DRILL_RESULT_FD"
SANDBOX_ID_VAR = "DRILL_SANDBOX_ID"
CHILD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}

FLOOD_KILL_FACTOR = 1024  # a stream beyond this many times output_bytes gets the child killed
KILL_SECONDS = 5.0  # the longest the clean-up keeps finding and killing descendants
DRAIN_SECONDS = 0.25  # how long the pipes are still read once every descendant is dead
STDERR_TAIL = 4096  # the end of stderr kept (internally) to recognise a MemoryError
MEMORY_SIGNS = (b"memoryerror", b"unable to allocate", b"bad_alloc",
                b"cannot allocate memory", b"out of memory", b"memory allocation")
_CHUNK = 65536


@dataclass(frozen=True)
class Limits:
    timeout: float = settings.TIMEOUT_SECONDS  # wall-clock seconds for the whole run
    memory_mb: int = settings.MEMORY_MB  # RLIMIT_AS of the child and what it forks
    output_bytes: int = settings.OUTPUT_BYTES  # kept of stdout and of stderr, each
    file_mb: int = settings.FILE_MB  # RLIMIT_FSIZE: largest file the child may write
    channel_bytes: int = 64 * 1024 * 1024  # cap on the result-channel data
    line_bytes: int = 16 * 1024 * 1024  # cap on one line of it, when it is read line by line (a sink)


@dataclass
class RunResult:
    returncode: int | None  # exit code if it exited normally
    signal: int | None  # signal number if it was killed by a signal
    timed_out: bool  # the wall clock ran out, or the CPU-time limit killed it
    memory_exceeded: bool  # best effort, see the module docstring
    output_flooded: bool  # stdout or stderr exceeded output_bytes
    stdout: str  # kept head, decoded with errors="replace"
    stderr: str
    stdout_bytes: int  # total bytes the child wrote, kept or not
    stderr_bytes: int
    channel: bytes  # what the child wrote to the result channel (capped)
    duration: float
    leftovers: int  # stray descendant processes killed after the run
    stopped: str | None = None  # why the grader stopped it: "timeout", "flood" or "channel"; None: it exited
    isolation: str | None = None  # the wall it ran behind (attempt.Worker sets it): namespaces, uid or process


class _Capture:
    """One pipe being read: keeps the first `cap` bytes (and optionally the last few); or, with
    a sink, hands it each whole line as it comes and keeps only the line not yet ended (at
    most line_cap bytes of it: beyond, `overlong`), so that a large result is never held twice."""

    def __init__(self, fd, cap, tail=0):
        self.fd, self.cap, self.tail_size = fd, cap, tail
        self.kept = bytearray()
        self.tail = b""
        self.total = 0
        self.sink, self.line_cap, self.overlong = None, cap, False
        self.ident = _pipe_of(fd)  # what fd is: read and closed only while it still is that

    def feed(self, data):
        self.total += len(data)
        if self.sink is not None:
            self._lines(data)
            return
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        if self.tail_size:
            self.tail = (self.tail + data)[-self.tail_size:]

    def _lines(self, data):
        start = 0
        while not self.overlong:
            end = data.find(b"\n", start)
            if end < 0:
                self.kept += data[start:]
                self.overlong = len(self.kept) > self.line_cap
                return
            self.kept += data[start:end]
            line = bytes(self.kept)
            self.kept.clear()
            self.sink.line(line)
            start = end + 1

    def finish(self):
        """The end of the pipe: a line left without its newline was cut short."""
        if self.sink is not None and (self.kept or self.overlong):
            self.kept.clear()
            self.sink.cut()

    def text(self):
        return self.kept.decode("utf-8", errors="replace")


def _captures(out_r, err_r, chan_r, limits) -> tuple[_Capture, _Capture, _Capture]:
    """The captures of a run's stdout, stderr (with its tail) and result channel."""
    return (_Capture(out_r, limits.output_bytes), _Capture(err_r, limits.output_bytes, tail=STDERR_TAIL),
            _Capture(chan_r, limits.channel_bytes))


def _begin_serving(run, stdin_data: bytes, sink, pidfd) -> "_Pipes":
    """What communicate() does first, for a cold run (Started) and a forked one (Forked) alike:
    once only; the channel's sink and line cap; stdin closed at once when there is nothing to
    feed; then the run's pipes, served by one selector, with pidfd telling when it ends."""
    assert not run.served, "communicate() runs once"
    run.served = True
    run.chan.sink, run.chan.line_cap = sink, run.limits.line_bytes
    if not stdin_data:
        os.close(run.in_w)
        run.in_w = None
    return _Pipes(run.in_w, stdin_data, run.out, run.err, run.chan, pidfd)


class _Pipes:
    """The child's stdin, stdout, stderr and result channel, all served by one selector."""

    def __init__(self, stdin_fd, stdin_data, out, err, chan, pidfd):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.out, self.err, self.chan = out, err, chan
        for cap in (out, err, chan):
            self.sel.register(cap.fd, selectors.EVENT_READ, cap)
        self.stdin_fd, self.pending = stdin_fd, memoryview(stdin_data)
        if stdin_fd is not None:
            os.set_blocking(stdin_fd, False)
            self.sel.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
        self.pidfd = pidfd
        if pidfd is not None:
            self.sel.register(pidfd, selectors.EVENT_READ, "exit")

    def run(self, root, limits, deadline):
        """Serve the pipes until the child exits or must be stopped; say which."""
        flood_at = FLOOD_KILL_FACTOR * limits.output_bytes
        poll = 0.001
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return "timeout"
            if _cancelled.is_set():
                return "cancelled"
            wait = min(wait, CANCEL_POLL_SECONDS)
            if self.pidfd is None:  # no pidfd: look at the child now and then
                wait, poll = min(wait, poll), min(poll * 2, 0.05)
            exited = self._serve(wait)
            if self.chan.total > limits.channel_bytes or self.chan.overlong:
                return "channel"
            if self.out.total > flood_at or self.err.total > flood_at:
                return "flood"
            if exited or (self.pidfd is None and _has_exited(root)):
                return "exit"

    def drain(self, seconds):
        """Read what is left until every pipe is at EOF, for at most `seconds`."""
        self._close("stdin_fd")
        self._close("pidfd")
        end = time.monotonic() + seconds
        while self.sel.get_map() and time.monotonic() < end:
            self._serve(end - time.monotonic())

    def close(self):
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fd)
            if isinstance(key.data, _Capture):
                _close_own(key.fd, key.data.ident)
            else:
                os.close(key.fd)
        self.sel.close()

    def _serve(self, wait):
        exited = False
        for key, _ in self.sel.select(wait):
            if key.data == "exit":
                exited = True
            elif key.data == "stdin":
                self._write()
            else:
                self._read(key.data)
        return exited

    def _write(self):
        try:
            self.pending = self.pending[os.write(self.stdin_fd, self.pending[:_CHUNK]):]
        except BlockingIOError:
            return
        except OSError:  # the child closed its stdin: the rest is not wanted
            self.pending = self.pending[:0]
        if not self.pending:
            self._close("stdin_fd")

    def _read(self, cap):
        try:
            data = os.read(cap.fd, _CHUNK) if _pipe_of(cap.fd) == cap.ident else b""
        except OSError:
            data = b""
        if data:
            cap.feed(data)
        else:
            self.sel.unregister(cap.fd)
            _close_own(cap.fd, cap.ident)

    def _close(self, name):
        fd = getattr(self, name)
        if fd is not None:
            self.sel.unregister(fd)
            os.close(fd)
            setattr(self, name, None)


CANCEL_POLL_SECONDS = 0.25  # how soon a run in progress notices cancel_all()
_cancelled = threading.Event()


def cancel_all() -> None:
    """Stop every run in progress, in every thread, as soon as it notices (a batch's Ctrl-C);
    their processes are killed and cleaned up as after a timeout. resume() ends this."""
    _cancelled.set()


def resume() -> None:
    _cancelled.clear()


def run_isolated(argv: list[str], stdin_data: bytes = b"", limits: Limits = Limits(),
                 cwd: str | None = None, env: dict[str, str] | None = None) -> RunResult:
    """Run argv bounded by `limits`; see the module docstring for what that means."""
    with started(argv, limits, cwd, env) as run:
        return run.communicate(stdin_data)


@contextlib.contextmanager
def started(argv: list[str], limits: Limits = Limits(), cwd: str | None = None,
            env: dict[str, str] | None = None, kill_uid: int | None = None):
    """Start argv bounded by `limits` and yield the Started run: the caller may prepare the
    child's input while it starts up, then calls communicate(stdin_data) once. Leaving the
    block without it (an exception while preparing) stops the child and everything it
    started. Raises like `subprocess.Popen` when argv cannot start at all.
    kill_uid: a uid that only this run's processes have (isolation's slot): every process
    of it is killed too, before the result is read back."""
    with _terminable():
        for tries in range(3):
            try:
                run = Started(argv, limits, cwd, env, kill_uid)
                break
            except Crossed:
                if tries == 2:
                    raise
        try:
            yield run
        finally:
            if not run.served:  # communicate() was never called: nobody has cleaned up
                run.abandon()


class Started:
    """A child started by started(): it runs until communicate() has served it to its end."""

    def __init__(self, argv, limits, cwd, env, kill_uid=None):
        import subprocess

        _become_subreaper()
        self.limits, self.kill_uid = limits, kill_uid
        self.served = False  # communicate() has run (and, whatever happened, cleaned up)
        self.marker = marker = os.urandom(16).hex()
        chan_r, chan_w = os.pipe()
        if chan_w <= 2:  # the grader runs without stdio: keep the channel clear of 0-2
            import fcntl
            low, chan_w = chan_w, fcntl.fcntl(chan_w, fcntl.F_DUPFD_CLOEXEC, 3)
            os.close(low)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        child_env = dict(os.environ if env is None else env)
        child_env.update(CHILD_ENV)
        child_env[RESULT_FD_VAR] = str(chan_w)
        child_env[SANDBOX_ID_VAR] = marker
        self.start = time.monotonic()
        pairs = [(chan_r, chan_w), (out_r, out_w), (err_r, err_w), (in_r, in_w)]
        made = [_pipe_of(fd) for pair in pairs for fd in pair]
        try:
            command, preexec_fn = _limited(argv, _rlimits(limits), child_env, cwd)
            with _spawning:
                _same_pipes(pairs, made)  # no other code closed one of ours and reused its number
                self.proc = subprocess.Popen(
                    command, stdin=in_r, stdout=out_w, stderr=err_w, pass_fds=(chan_w,),
                    cwd=cwd, env=child_env, start_new_session=True, preexec_fn=preexec_fn)
                _roots.add(self.proc.pid)
                crossed = not _child_holds(self.proc.pid, {0: made[6], 1: made[2], 2: made[4], chan_w: made[0]})
            if crossed:  # its pipes are not ours: it must not run (started() makes new ones)
                self._discard()
                raise Crossed(errno.EBADF, "the child's pipes were not the ones made for it")
        except BaseException:
            for fd, ident in zip((chan_r, out_r, err_r, in_w), made[::2][:3] + [made[7]]):
                _close_own(fd, ident)
            raise
        finally:
            for fd, ident in zip((chan_w, out_w, err_w, in_r), (made[1], made[3], made[5], made[6])):
                _close_own(fd, ident)
        self.root = self.proc.pid
        self.root_start = _start_time(self.root)
        self.in_w = in_w
        self.out, self.err, self.chan = _captures(out_r, err_r, chan_r, limits)

    def _discard(self) -> None:
        """Kill the child just started, and every process of its session, and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        _reap(self.proc)
        _roots.discard(self.proc.pid)

    def communicate(self, stdin_data: bytes = b"", sink=None) -> RunResult:
        """Feed stdin_data, serve the pipes until the child ends or must be stopped, kill
        every process it left, and say what happened. Once only. sink: an object whose
        line(bytes) takes each whole line of the result channel as it comes, and cut() a last
        one cut short (RunResult.channel is then empty); each line at most limits.line_bytes."""
        pipes = _begin_serving(self, stdin_data, sink, _pidfd_open(self.root))
        reason = "error"  # why the run ended: exit, timeout, flood, channel (error: we raised)
        try:
            reason = pipes.run(self.root, self.limits, self.start + self.limits.timeout)
        finally:
            leftovers = _stop_all(self.root, self.root_start, self.marker)
            leftovers += _kill_uid(self.kill_uid, self.root)
            if reason != "error":
                pipes.drain(DRAIN_SECONDS)
            pipes.close()
            status, usage = _reap(self.proc)
            _roots.discard(self.root)
        self.chan.finish()
        return _result(self, reason, status, usage, leftovers)

    def abandon(self) -> None:
        """Stop the child and everything it started, unread (the caller could not go on)."""
        try:
            _stop_all(self.root, self.root_start, self.marker)
            _kill_uid(self.kill_uid, self.root)
            _reap(self.proc)
        finally:
            _roots.discard(self.root)
            for fd in (self.in_w, self.out.fd, self.err.fd, self.chan.fd):
                os.close(fd)


WARM_START_SECONDS = 60.0  # the longest a warm worker may take to fork an attempt (its first: its own start)


class WarmFailed(OSError):
    """The warm worker could not run this attempt (it is gone, or could not fork it behind its
    walls): run the attempt cold instead. Never a verdict."""


class Server:
    """A warm worker: one process started once (worker.py --serve, behind its walls, numpy
    imported) that forks a fresh process for each attempt (Forked). It runs no attempt code;
    this end talks to it over a socket pair, and passes each attempt's pipes with SCM_RIGHTS."""

    def __init__(self, argv: list[str], env: dict, cwd: str):
        import socket
        import subprocess

        _become_subreaper()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with _spawning:
                self.proc = subprocess.Popen(
                    [*argv, "--serve", str(theirs.fileno())], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                    cwd=cwd, env=env, start_new_session=True)
                _roots.add(self.proc.pid)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.sock = mine
        self.broken = False

    def receive(self, seconds: float) -> tuple[dict, list[int]]:
        """The next message and the descriptors that came with it; WarmFailed when none comes."""
        import json
        import socket

        self.sock.settimeout(max(seconds, 0.001))
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 4096, 1)
            message = json.loads(data) if data else None
        except (OSError, ValueError) as exc:
            self.broken = True
            raise WarmFailed(f"the warm worker did not answer: {exc}") from None
        if not isinstance(message, dict):
            self.broken = True
            for fd in fds:
                os.close(fd)
            raise WarmFailed("the warm worker has ended")
        return message, fds

    def close(self) -> None:
        """End the warm worker at once: it holds nothing to save, and SIGKILL of its outer
        process ends the rest (each level dies with its parent; its namespace with its init)."""
        self.sock.close()
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _reap(self.proc)
        finally:
            _roots.discard(self.proc.pid)


class Forked:
    """One attempt forked by a warm worker: used as Started is (communicate once). Its process,
    and every process it starts, live in a PID namespace whose init A' this end holds a pidfd
    of: killing A' ends them all, and A' is seen to end only once they have."""

    def __init__(self, server: Server, request: dict, limits: Limits):
        import json
        import socket

        self.server, self.limits, self.served = server, limits, False
        self.marker = marker = os.urandom(16).hex()
        self.start = time.monotonic()
        pairs = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, channel
        (in_r, in_w), (out_r, out_w), (err_r, err_w), (chan_r, chan_w) = pairs
        request = {**request, "rlimits": _rlimits(limits),
                   "env": {**request.get("env", {}), **CHILD_ENV, RESULT_FD_VAR: "3", SANDBOX_ID_VAR: marker}}
        try:
            try:
                socket.send_fds(server.sock, [json.dumps(request).encode()], [in_r, out_w, err_w, chan_w])
            except OSError as exc:
                server.broken = True
                raise WarmFailed(f"the warm worker is gone: {exc}") from None
            message, fds = server.receive(WARM_START_SECONDS)
            if "started" not in message or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                self._ended(message)
                raise WarmFailed("the warm worker could not fork the attempt")
        except BaseException:
            for fd in (in_w, out_r, err_r, chan_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w, chan_w):
                os.close(fd)
        self.pidfd = fds[0]
        self.in_w = in_w
        self.out, self.err, self.chan = _captures(out_r, err_r, chan_r, limits)

    def _ended(self, first: dict | None = None) -> tuple:
        """(wait status, rusage, leftovers) once C and the warm worker have reported the end."""
        import types

        status = leftovers = None
        message = first
        end = time.monotonic() + KILL_SECONDS + WARM_START_SECONDS * (first is not None)
        while True:
            if message is None:
                message, fds = self.server.receive(end - time.monotonic())
                for fd in fds:
                    os.close(fd)
            if "status" in message:
                status, leftovers = message["status"], int(message.get("leftovers") or 0)
            elif "ended" in message:
                usage = message.get("usage") or [0.0, 0.0, 0]
                usage = types.SimpleNamespace(ru_utime=usage[0], ru_stime=usage[1], ru_maxrss=usage[2])
                return (status if status is not None else message["ended"]), usage, leftovers or 0
            message = None

    def communicate(self, stdin_data: bytes = b"", sink=None) -> RunResult:
        """Started.communicate for the forked attempt; WarmFailed when the warm worker did not
        report its end (the caller runs the attempt again, cold)."""
        pipes = _begin_serving(self, stdin_data, sink, os.dup(self.pidfd))
        reason = "error"
        try:
            reason = pipes.run(None, self.limits, self.start + self.limits.timeout)
        finally:
            self._kill()
            if reason != "error":
                pipes.drain(DRAIN_SECONDS)
            pipes.close()
        status, usage, leftovers = self._ended()
        if status is None:
            raise WarmFailed("the warm worker did not report the attempt's end")
        self.chan.finish()
        return _result(self, reason, status, usage, leftovers)

    def _kill(self) -> None:
        """SIGKILL A' (the attempt's namespace dies with it) and wait until it has ended."""
        import select

        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass  # ended already
        try:
            select.select([self.pidfd], [], [], KILL_SECONDS)
        finally:
            os.close(self.pidfd)

    def abandon(self) -> None:
        """Stop the attempt unread (the caller could not go on)."""
        self._kill()
        for fd in (self.in_w, self.out.fd, self.err.fd, self.chan.fd):
            os.close(fd)
        try:
            self._ended()
        except WarmFailed:
            pass


@contextlib.contextmanager
def forked(server: Server, request: dict, limits: Limits = Limits()):
    """started(), for an attempt that the warm worker `server` forks (Forked); request: the run
    folder ("run") and the environment ("env") of the attempt. WarmFailed when it cannot."""
    with _terminable():
        run = Forked(server, request, limits)
        try:
            yield run
        finally:
            if not run.served:
                run.abandon()


def _result(run: Started, reason: str, status, usage, leftovers: int) -> RunResult:
    limits, out, err, chan = run.limits, run.out, run.err, run.chan
    returncode = sig = None
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    elif status is not None:
        returncode = os.waitstatus_to_exitcode(status)
    killed_by_us = reason != "exit"
    cpu_used = usage.ru_utime + usage.ru_stime if usage else 0.0
    timed_out = (reason == "timeout" or sig == signal.SIGXCPU
                 or (sig == signal.SIGKILL and not killed_by_us
                     and cpu_used >= _cpu_seconds(limits.timeout)))
    stderr_seen = (bytes(err.kept) + err.tail).lower()
    memory_exceeded = returncode != 0 and not timed_out and (
        any(sign in stderr_seen for sign in MEMORY_SIGNS)
        or (sig == signal.SIGKILL and not killed_by_us
            and _peak_rss_mb(usage) >= limits.memory_mb / 2))
    return RunResult(
        returncode=returncode,
        signal=sig,
        timed_out=timed_out,
        memory_exceeded=memory_exceeded,
        output_flooded=max(out.total, err.total) > limits.output_bytes,
        stdout=out.text(),
        stderr=err.text(),
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        channel=bytes(chan.kept),
        duration=time.monotonic() - run.start,
        leftovers=leftovers,
        stopped=reason if reason in ("timeout", "flood", "channel", "cancelled") else None,
    )


class Crossed(OSError):
    """A child was started with descriptors that are not the pipes made for it (a number closed
    twice elsewhere in this process and reused): it is killed before it runs anything."""


def _child_holds(pid, wanted):
    """Whether the just-started child pid has, at each fd of wanted, the pipe wanted names
    ((device, inode)); an fd it has already closed is no sign of a mix-up."""
    for fd, (_, ino) in wanted.items():
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed already, or no /proc: nothing to compare
        if link != f"pipe:[{ino}]":
            return False
    return True


def _close_own(fd, ident):
    """Close fd if it still is the pipe ident names; a number that now is another's is left alone."""
    if fd is None:
        return
    try:
        if _pipe_of(fd) != ident:
            return
    except OSError:
        return
    os.close(fd)


def _pipe_of(fd):
    """What fd refers to: (device, inode), shared by both ends of one pipe."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _same_pipes(pairs, made):
    """OSError unless every fd of pairs still refers to the pipe it was made for, both ends of
    each the same one: a descriptor number closed by other code and reused (by another
    thread's pipe) would hand this run's child another run's channel."""
    now = [_pipe_of(fd) for pair in pairs for fd in pair]
    if now != made or any(now[i] != now[i + 1] for i in range(0, len(now), 2)):
        raise OSError(errno.EBADF, "the sandbox's pipes changed under it (a descriptor closed twice)")


# --- limits ---------------------------------------------------------------------------

_SH = "/bin/sh"
# The ulimit option for each limit, and its unit in bytes (or seconds), in a POSIX sh.
_ULIMIT = {"RLIMIT_AS": ("-v", 1024), "RLIMIT_FSIZE": ("-f", 512),
           "RLIMIT_CORE": ("-c", 512), "RLIMIT_CPU": ("-t", 1)}


def _cpu_seconds(timeout):
    return math.ceil(timeout) + 1


def _rlimits(limits):
    """(name, soft, hard) of each limit for the child, clamped to what the parent may grant."""
    if resource is None:
        return []
    cpu = _cpu_seconds(limits.timeout)
    wanted = [
        ("RLIMIT_AS", limits.memory_mb << 20, limits.memory_mb << 20),
        ("RLIMIT_FSIZE", limits.file_mb << 20, limits.file_mb << 20),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_CPU", cpu, cpu + 1),
    ]
    triples = []
    for name, soft, hard in wanted:
        try:
            _, cap = resource.getrlimit(getattr(resource, name))
        except (AttributeError, OSError, ValueError):  # this system has no such limit
            continue
        if cap != resource.RLIM_INFINITY:
            soft, hard = min(soft, cap), min(hard, cap)
        triples.append((name, soft, hard))
    return triples


def _limited(argv, rlimits, env, cwd):
    """(argv, preexec_fn) that start `argv` under `rlimits`.

    Normally through /bin/sh, whose ulimit sets them before it execs the program in the
    same process: nothing but async-signal-safe code runs between fork and exec, and the
    parent can vfork (a preexec_fn forces a full fork: 2-7 ms more per run, measured). The
    program is looked up here, so that a missing one raises like `subprocess.Popen`.
    Without /bin/sh, a preexec_fn that calls setrlimit and nothing else.
    """
    if not rlimits:
        return argv, None
    if not os.path.exists(_SH):
        return argv, _preexec(rlimits)
    steps = []
    for name, soft, hard in rlimits:
        flag, unit = _ULIMIT[name]
        steps.append(f"ulimit -S {flag} {soft // unit} 2>/dev/null; "
                     f"ulimit -H {flag} {hard // unit} 2>/dev/null; ")
    script = "".join(steps) + 'exec "$@"'
    return [_SH, "-c", script, "drill-sandbox", _find_program(argv[0], env, cwd),
            *argv[1:]], None


def _find_program(program, env, cwd):
    """The path exec would run for `program`, or FileNotFoundError / PermissionError."""
    if os.sep in program:
        candidates = [os.path.join(cwd or "", program)]
    else:
        candidates = [os.path.join(d, program) for d in os.get_exec_path(env)]
    denied = None
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = denied or path
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), denied)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _preexec(rlimits):
    pairs = [(getattr(resource, name), (soft, hard)) for name, soft, hard in rlimits]
    setrlimit = resource.setrlimit

    def set_limits():  # runs in the child between fork and exec: setrlimit calls only
        for res, pair in pairs:
            try:
                setrlimit(res, pair)
            except (OSError, ValueError):
                pass

    return set_limits


# --- processes ------------------------------------------------------------------------

class _Terminated(SystemExit):
    """SIGTERM or SIGHUP reached the grader while a run was in progress."""


@contextlib.contextmanager
def _terminable():
    """In the main thread, make SIGTERM and SIGHUP (while their handlers are the default ones)
    raise SystemExit(128 + signal) for the time of a run, so that the run's clean-up still
    kills the attempt's processes before the grader goes; the handlers are put back after.
    A SIGKILL of the grader cannot be caught: the worker asks the kernel to kill it then."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) is signal.SIG_DFL:
                saved[sig] = signal.signal(sig, _terminate)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _terminate(signum, frame):
    for sig in (signal.SIGTERM, signal.SIGHUP):  # once: a second one must not cut the clean-up short
        signal.signal(sig, signal.SIG_IGN)
    raise _Terminated(128 + signum)


_subreaper = False
_roots = set()  # pids of the main children of the runs in progress (in any thread)
_spawning = threading.Lock()  # held from fork until the new main child is in _roots


def _become_subreaper():
    """Make this process adopt the orphans of its descendants, and make it non-dumpable, so
    that no process of the same user can read or write its memory through /proc/<pid>/mem
    or ptrace, nor read its environ (Linux only; once)."""
    global _subreaper
    if _subreaper or not sys.platform.startswith("linux"):
        return
    _subreaper = True
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except (OSError, AttributeError):
        pass


def _uids(pid):
    """The real, effective, saved and filesystem uids of pid (an empty list if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return [int(u) for u in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def _kill_uid(uid, root):
    """SIGKILL every process whose real or effective uid is uid, in rounds until none is
    left (at most KILL_SECONDS); reap the ones this process adopted, but root (the run's
    main child, reaped by _reap for its status). How many were killed, root aside."""
    if uid is None:
        return 0
    killed = set()
    end = time.monotonic() + KILL_SECONDS
    while time.monotonic() < end:
        found = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != root and uid in _uids(n)]
        alive = [p for p in found if (_stat(p) or (b"X",))[0] not in (b"Z", b"X")]
        for pid in found:
            if pid not in alive:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
        if not alive:
            break
        for pid in alive:
            killed.add(pid)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    return len(killed)


def _pidfd_open(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_exited(pid):
    """Whether pid has exited, without reaping it (its ids stay reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _stat(pid):
    """(state, ppid, pgrp, session, start time) of pid from /proc, or None."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _start_time(pid):
    info = _stat(pid)
    return info[4] if info else None


def _has_marker(pid, marker):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read()
    except OSError:
        return False


def _descendants(root, root_start, marker):
    """{pid: stat} of every process the run at `root` left behind (not root itself)."""
    if root_start is None:
        return {}
    later = _started_since(root, root_start)
    if later is None:
        return {}
    found = _of_the_run(root, marker, later)
    grew = True
    while grew:  # add the descendants of what was found
        more = {pid for pid, info in later.items() if pid not in found and info[1] in found}
        found |= more
        grew = bool(more)
    return {pid: later[pid] for pid in found}


def _started_since(root, root_start):
    """{pid: stat} of the processes (not root, not this one) started no earlier than root:
    the only ones that can descend from it; None when /proc cannot be listed."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    me = os.getpid()
    later = {}
    for name in names:
        if name.isdigit() and int(name) not in (root, me):
            info = _stat(name)
            if info and info[4] >= root_start:
                later[int(name)] = info
    return later


def _of_the_run(root, marker, later):
    """The pids among `later` tied to the run itself: root is their parent, process group or
    session, or `marker` is in their environ, or they are dead orphans it must have left."""
    me, my_session = os.getpid(), os.getsid(0)
    tag = f"{SANDBOX_ID_VAR}={marker}".encode()
    found = {pid for pid, (state, ppid, pgrp, sid, _) in later.items()
             if root in (ppid, pgrp, sid) or (state != b"Z" and _has_marker(pid, tag))}
    # A dead orphan this process adopted from outside its own session, and not the main
    # child of another run, came from a sandbox: it has no environ left to show which.
    with _spawning:  # so that a main child forked meanwhile is already in _roots
        found |= {pid for pid, (state, ppid, _, sid, _) in later.items()
                  if state == b"Z" and ppid == me and sid != my_session and pid not in _roots}
    return found


def _kill(pid, start):
    """SIGKILL pid if it is still the process that started at `start`."""
    pidfd = _pidfd_open(pid)  # holds the process, so its pid cannot be reused meanwhile
    try:
        info = _stat(pid)
        if info and info[4] == start:
            if pidfd is None:
                os.kill(pid, signal.SIGKILL)
            else:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _stop_all(root, root_start, marker):
    """Kill root, its process group and every descendant; reap the zombies this adopts.

    Returns how many descendants were still alive and had to be killed. Root must not
    have been reaped yet, so that its pid and process group cannot have been reused.
    """
    me = os.getpid()
    seen = {}  # pid: start time of every descendant found so far, until it is gone
    killed = set()
    end = time.monotonic() + KILL_SECONDS
    pause = 0.001
    for round_ in range(1000):
        found = _descendants(root, root_start, marker)
        seen.update((pid, info[4]) for pid, info in found.items())
        for pid, start in list(seen.items()):
            info = _stat(pid)
            if info is None or info[4] != start:  # gone (reaped by its parent, or by us)
                del seen[pid]
            elif info[0] not in (b"Z", b"X"):
                killed.add((pid, start))
                _kill(pid, start)
            elif info[1] == me:  # an orphan this process adopted (as a subreaper)
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        del seen[pid]
                except ChildProcessError:
                    del seen[pid]
        if round_ == 0:  # after the first look, so that `killed` counts the group too
            for kill in (os.kill, os.killpg):
                try:
                    kill(root, signal.SIGKILL)
                except OSError:
                    pass
        if not seen or time.monotonic() > end:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return len(killed)


def _reap(proc):
    """Wait for the (killed or exited) main child: (wait status, rusage), or (None, None)."""
    end = time.monotonic() + KILL_SECONDS
    pause = 0.0005
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return None, None
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > end:  # stuck in the kernel; subprocess reaps it later
            return None, None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _peak_rss_mb(usage):
    if usage is None:
        return 0.0
    scale = 1 << 20 if sys.platform == "darwin" else 1 << 10  # bytes there, KiB on Linux
    return usage.ru_maxrss / scale
