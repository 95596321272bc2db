"""Runs first in the worker's process, before any of the attempt: puts it behind the kernel's walls.

Standalone (standard library only): worker.py loads it with exec and calls enter(spec)
before it imports numpy or reads its plan; `python -I -S box.py --probe SPEC` tries the
same walls once and exits 0 when they hold (isolation.probe). The grader's side, which
decides the spec, is isolation.py. Linux only.

enter(spec) turns this one process P into three:

    P  (the grader's child; outside the new PID namespace)  waits for A, then ends as B ended
    A  (PID 1 of a new PID namespace; new mount, network and IPC namespaces too)
       builds a new root, then waits for B and reaps orphans; when A ends the kernel
       kills every process left in the namespace
    B  (PID 2: the worker)  unprivileged: the slot's uid with no groups ("uid"), or the
       caller's own uid in a new user namespace with every capability dropped
       ("namespaces"); no_new_privs. enter() returns in B only.

The new root (A, in its own mount namespace): an empty tmpfs holding read-only bind
mounts of what Python and numpy need (spec "ro"), empty read-only tmpfs over what must
stay hidden inside those (spec "masks"), /dev with null, zero, full, random and urandom,
a fresh /proc that shows only this namespace, the private working folder (spec "rw")
writable, and nothing else: no home, no /tmp of the machine, no checkout, no sockets.
pivot_root makes it /, and the old root is detached.

"uid" without the right to make namespaces (a container without CAP_SYS_ADMIN): P
drops to the slot's uid and goes on as the worker; what it can read is then up to the
files' permissions, and the grader kills every process of that uid afterwards.
"""
import ctypes
import errno
import json
import os
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWIPC = 0x40000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096  # and noatime, nodiratime, relatime
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 1, 24, 38, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
DEVICES = ("null", "zero", "full", "random", "urandom")
SETUP_FAILED = 125  # P's exit status when the walls could not be built (the message is on stderr)

_libc = ctypes.CDLL(None, use_errno=True)


class BoxError(OSError):
    """A wall could not be built."""


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise BoxError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda s: None if s is None else os.fsencode(s))
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source or ''} on {target}")


def _prctl(option, arg):
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def _syscall(table, *args):
    number = table.get(os.uname().machine)
    if number is None:
        raise BoxError(errno.ENOSYS, f"this machine ({os.uname().machine}) is not supported")
    return _libc.syscall(number, *args)


# ---------------------------------------------------------------- A: the new root

def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _bind(source, target, readonly):
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            _write(target, "")
    _mount(source, target, None, MS_BIND | MS_REC)
    if readonly:  # keep the flags the mount has (a user namespace may not clear them)
        kept = os.statvfs(target).f_flag & KEPT_FLAGS
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _place(root, path, readonly):
    """Make path of the old root visible at the same place in the new one."""
    inside = root + path
    if os.path.islink(path) and os.path.dirname(path) == "/":  # /bin -> usr/bin (merged /usr)
        if not os.path.lexists(inside):
            os.symlink(os.readlink(path), inside)
        return
    if os.path.exists(path):
        _bind(path, inside, readonly)


def build_root(spec):
    """In A: the new root at spec["root"], then pivot_root into it."""
    root = spec["root"]
    os.umask(0o022)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours propagates back
    _mount("drill-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path in spec["ro"]:
        _place(root, path, True)
    for path in spec["masks"]:  # what must stay hidden inside the folders bound above
        if os.path.isdir(root + path):
            _mount("drill-mask", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=0,mode=0555")
        elif os.path.exists(root + path):
            _mount("/dev/null", root + path, None, MS_BIND)
    os.makedirs(root + "/dev")
    for name in DEVICES:
        _bind("/dev/" + name, root + "/dev/" + name, False)
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/tmp", exist_ok=True)
    for path in spec["rw"]:
        _bind(path, root + path, False)
    for path in spec.get("mountpoints", []):  # where each forked attempt mounts its own folder
        os.makedirs(root + path, exist_ok=True)
    os.chdir(root)
    _check(_syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


# ---------------------------------------------------------------- B: no privileges

def _drop_capabilities():
    """Every capability gone, for good: bounding set, then the sets themselves."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable (x2), all 0
    _check(_syscall(SYS_CAPSET, header, data), "capset")


def become_unprivileged(spec):
    if spec["level"] == "uid":
        import resource  # the slot's uid has no other process: this bounds a fork bomb

        processes = spec.get("processes", 256)
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])  # every capability goes with it
    else:
        _drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by setresuid: set again
    os.chdir(spec["cwd"])


# ---------------------------------------------------------------- P, A and B

def _map_own_ids():
    uid, gid = os.geteuid(), os.getegid()
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _end_as(status):
    """End this process the way the one whose wait status this is ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _quiet(keep):
    """Close stdin, stdout, the channel and every other inherited descriptor but keep."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def _wait_for_a(pid, status_r):
    """P: wait for A; end as B ended (A passes B's wait status on), or as A ended."""
    _quiet(status_r)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    data = os.read(status_r, 64)
    _end_as(int(data) if data.strip().isdigit() else status)


def _reap_until(b):
    """As a namespace's init: reap every orphan until b ends; b's wait status."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == b:
            return status


def _init(b, status_w):
    """A, PID 1: reap every orphan until B has ended, then pass its status to P and go."""
    _quiet(status_w)
    os.write(status_w, str(_reap_until(b)).encode())
    os._exit(0)  # the kernel kills what is left in the namespace


_SPEC = {}


def _fail(exc):
    os.write(2, f"drill: the sandbox could not be set up: {exc}\n".encode())
    os._exit(_SPEC.get("setup_failed", SETUP_FAILED))


def _check_readable(spec):
    """In B: Python and numpy can still be read (the slot's uid may not enter their folders)."""
    for path in spec.get("readable", []):
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            _fail(f"{path} cannot be read inside: {exc.strerror}")


def enter(spec):
    """Put this process behind the walls spec describes; returns in B only (see the docstring)."""
    _SPEC.update(spec)
    if spec["level"] == "uid" and not spec.get("namespaces", True):
        try:
            become_unprivileged(spec)
        except OSError as exc:
            _fail(exc)
        _check_readable(spec)
        return
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # P dies with the grader
    except OSError as exc:
        _fail(exc)
    if spec.get("parent") and os.getppid() != spec["parent"]:
        os._exit(1)
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
    try:
        _check(_libc.unshare((CLONE_NEWUSER if spec["level"] == "namespaces" else 0) | flags), "unshare")
        if spec["level"] == "namespaces":
            _map_own_ids()
    except OSError as exc:
        _fail(exc)
    status_r, status_w = os.pipe()
    a = os.fork()
    if a:
        os.close(status_w)
        _wait_for_a(a, status_r)
    os.close(status_r)
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # (P, outside this PID namespace, is not its ppid here)
        os.setsid()  # B's process group is A's: a killpg from inside reaches nothing outside
        build_root(spec)
    except OSError as exc:
        _fail(exc)
    b = os.fork()
    if b:
        _init(b, status_w)
    os.close(status_w)
    try:
        if spec.get("serve"):  # a warm worker keeps its privileges: each attempt drops them in its own fork
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            _prctl(PR_SET_DUMPABLE, 0)
        else:
            become_unprivileged(spec)
    except OSError as exc:
        _fail(exc)
    if not spec.get("serve"):
        _check_readable(spec)


# ---------------------------------------------------------------- a warm worker's attempts

def fork_attempt(spec, request, fds, sock):
    """In a warm worker W (spec "serve"): fork one attempt behind walls of its own; the pid of C
    in W, None in B' (the attempt's process, which goes on as a cold worker's B would).

        C   (W's child)  new PID, mount, network and IPC namespaces; sends the grader a pidfd
            of A' on sock, waits for A', sends B's wait status and the processes left, ends
        A'  (PID 1 there)  a fresh /proc; the attempt's own folder (spec "runs"/request "run")
            bound on spec "cwd", the other runs unmounted; waits for B', counts what is left
        B'  (PID 2)  fds (stdin, stdout, stderr, channel) as 0-3 and nothing else, the run's
            rlimits, then unprivileged as in enter(); the environment request "env"

    Nothing of one attempt reaches W or the next attempt: B' is a fresh copy of W, W is in a
    PID namespace B' cannot see, W never runs the attempt's code, and the namespaces of the
    attempt (with every process in them, its mounts, IPC and sockets) end with A'."""
    pid = os.fork()
    if pid:
        return pid
    try:
        _attempt_c(spec, request, fds, sock)
    except BaseException:  # noqa: BLE001 - never back into W's loop from a child
        os._exit(SETUP_FAILED)
    return None


def _attempt_c(spec, request, fds, sock):
    import socket as _socket

    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    except OSError as exc:
        _fail(exc)
    status_r, status_w = os.pipe()
    a = os.fork()
    if a:
        os.close(status_w)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(a)
        _socket.send_fds(sock, [b'{"started": 1}'], [pidfd])
        os.close(pidfd)
        status = _wait(a)
        data = os.read(status_r, 64).split()
        b_status = int(data[0]) if data and data[0].isdigit() else status
        left = int(data[1]) if len(data) > 1 and data[1].isdigit() else 0
        sock.send(json.dumps({"status": b_status, "leftovers": left}).encode())
        os._exit(0)
    os.close(status_r)
    sock.close()
    _attempt_a(spec, request, fds, status_w)


def _wait(pid):
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _attempt_a(spec, request, fds, status_w):
    run = str(request["run"])
    try:
        if not run.isdigit():
            raise BoxError(errno.EINVAL, "bad run folder")
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(PR_SET_DUMPABLE, 0)
        os.setsid()
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _mount(os.path.join(spec["runs"], run), spec["cwd"], None, MS_BIND)
        _check(_libc.umount2(os.fsencode(spec["runs"]), MNT_DETACH), "umount the other runs")
    except OSError as exc:
        _fail(exc)
    b = os.fork()
    if b:
        for fd in fds:
            os.close(fd)
        _quiet(status_w)
        _count_and_go(b, status_w)
    os.close(status_w)
    _attempt_b(spec, request, fds)


def _count_and_go(b, status_w):
    """A': reap until B' ends; pass its status on with the number of processes still alive."""
    status = _reap_until(b)
    left = 0
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1":
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    left += f.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
            except (OSError, IndexError):
                pass
    os.write(status_w, f"{status} {left}".encode())
    os._exit(0)  # the kernel kills what is left in the namespace


def _attempt_b(spec, request, fds):
    import fcntl
    import resource

    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(len(high), 65536)
    try:
        for name, soft, hard in request.get("rlimits", []):
            resource.setrlimit(getattr(resource, name), (soft, hard))
        become_unprivileged(spec)
    except (OSError, ValueError, AttributeError) as exc:
        _fail(exc)
    _check_readable(spec)
    os.environ.clear()
    os.environ.update(request.get("env", {}))


def _probe(spec):
    """The walls hold if enter() returns (in B): exit 0."""
    enter(spec)
    os._exit(0)


if __name__ == "__main__" and sys.argv[1:2] == ["--probe"]:
    _probe(json.loads(sys.argv[2]))
