"""Which wall this machine puts around an attempt, and the box each worker runs in (the grader's side).

Levels, strongest first (SPEC §4 `isolation`; box.py builds the walls in the worker):

- "uid": the grader runs as root. Each concurrent worker takes a slot (a lock file in a
  folder only root can reach, so that two `drill` processes never share one) and runs as
  that slot's own uid and gid (settings.SANDBOX_UID_BASE + slot), with no groups and
  no_new_privs, in new PID, mount, network and IPC namespaces with a minimal root, when
  the kernel lets root make them (else with the uid alone, and every process of the uid
  is killed after the run).
- "namespaces": not root, but user namespaces work: new user, PID, mount, network and IPC
  namespaces, the same minimal root, every capability dropped.
- "process": neither works; a separate process of the same user, with the worker's own
  guards only.

level() tells the level to use without starting anything (the first run at a level is its
probe: a box that cannot be built ends its worker with SETUP_FAILED before the attempt
runs, and the run is made again one level down); confirmed_level() probes with a
throwaway box first, and once require() has been called no run falls back to "process"
(`--require-isolation`). DRILL_ISOLATION=process forces the last level (for benchmarks
and for tests that need to see the attempt's own files and pids). A box (box()) is a fresh folder: lib/ holds
copies of the worker's scripts, work/ (the worker's cwd, HOME and TMPDIR, owned by the
slot's uid, mode 0700) a copy of the attempt's bytes under its own name, and of the
modules of its own folder it imports; the attempt never sees the user's path.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from grader import parse_ast, settings

LEVELS = ("namespaces", "uid", "process")
FORCE_VAR = "DRILL_ISOLATION"
HERE = Path(__file__).resolve().parent
SCRIPTS = ("worker.py", "wire.py", "partial.py", "box.py")
SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]
HELPERS_MAX = 32  # modules of the attempt's own folder copied beside it, at most
HELPER_BYTES = 1_000_000
SLOT_DIRS = ("/run/drill-slots", "/var/lock/drill-slots")


@dataclass
class Box:
    """One worker's box: where its files are, and how box.py is to wall it in."""

    level: str
    folder: Path
    work: Path
    lib: Path
    attempt: Path  # the copy the worker loads
    spec: dict | None = None  # for box.enter; None at level "process"
    uid: int | None = None  # the slot's uid, whose every process is killed after the run
    env: dict = field(default_factory=dict)
    runs: Path | None = None  # a warm worker's box: the folder of its attempts' own folders


# ---------------------------------------------------------------- the level

SETUP_FAILED = 125  # the worker's exit status when box.py could not build the walls
_state = {"level": None, "namespaces": True, "confirmed": False, "required": False}
_lock = threading.Lock()


def forced() -> bool:
    """Whether DRILL_ISOLATION=process asks for the level "process" whatever the machine offers."""
    return os.environ.get(FORCE_VAR, "").strip().lower() == "process"


def level() -> str:
    """The strongest level this process can use, or "process" when forced. Cheap: the first
    run at a level is its probe (fell_short() takes a level that failed back one step);
    confirmed_level() probes in a process of its own first."""
    if forced():
        return "process"
    with _lock:
        if _state["level"] is None:
            _state["level"] = _expected()
        return _state["level"]


def confirmed_level() -> str:
    """level(), after a throwaway box has shown that the walls hold here (probed once)."""
    if forced():
        return "process"
    with _lock:
        if not _state["confirmed"]:
            _state["level"], _state["namespaces"] = _probe()
            _state["confirmed"] = True
        return _state["level"]


def require() -> str:
    """confirmed_level(), and from now on no run falls back to the level "process"."""
    found = confirmed_level()
    with _lock:
        _state["required"] = True
    return found


def fell_short(box: Box) -> bool:
    """A worker could not build the walls of box's level: use the next weaker one from now on.
    False when there is none to use (the next is "process", and require() was called)."""
    with _lock:
        if (_state["level"], _state["namespaces"]) != (box.level, box.spec.get("namespaces", True)):
            return True  # another thread took it back already
        if box.level == "uid" and _state["namespaces"]:
            _state["namespaces"] = False
        elif _state.get("required"):
            return False
        else:
            _state["level"], _state["namespaces"] = "process", False
        return True


def succeeded(box: Box) -> None:
    """A worker ran behind the walls of box's level: no need to probe it again."""
    with _lock:
        if _state["level"] == box.level:
            _state["confirmed"] = True


def _expected() -> str:
    """The level to try first, from what the machine says without starting anything."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setresuid"):
        return "process"
    if os.geteuid() == 0:
        return "uid"
    for knob, off in (("/proc/sys/user/max_user_namespaces", "0"), ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
                      ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1")):
        try:
            if Path(knob).read_text().strip() == off:
                return "process"
        except OSError:
            continue
    return "namespaces"


def _probe() -> tuple[str, bool]:
    if _expected() == "process":
        return "process", False
    if os.geteuid() == 0:
        for namespaces in (True, False):
            if _try("uid", namespaces):
                return "uid", namespaces
        return "process", False
    return ("namespaces", True) if _try("namespaces", True) else ("process", False)


def _try(level_: str, namespaces: bool) -> bool:
    """Whether box.py can build the walls of level_ here, and numpy can still be read inside."""
    try:
        with tempfile.TemporaryDirectory(prefix="drill-probe-") as folder, _slot(level_) as slot:
            folder = Path(folder)
            lib, work = _layout(folder, slot)
            spec = _spec(level_, namespaces, folder, lib, work, slot, [])
            argv = [sys.executable, "-I", "-S", str(lib / "box.py"), "--probe", json.dumps(spec)]
            done = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                                  cwd="/", env={"PATH": os.defpath})
            return done.returncode == 0
    except (OSError, subprocess.SubprocessError, ValueError):
        return False


def _numpy_init() -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("numpy")
    except (ImportError, ValueError):
        return None
    return spec.origin if spec else None


# ---------------------------------------------------------------- slots (level "uid")

def _slot_dir() -> Path:
    for name in SLOT_DIRS:
        path = Path(name)
        try:
            path.mkdir(mode=0o700, exist_ok=True)
            st = path.lstat()
            if st.st_uid == 0 and (st.st_mode & 0o077) == 0 and path.is_dir() and not path.is_symlink():
                return path
        except OSError:
            continue
    raise OSError("no folder for the sandbox's slot locks (/run or /var/lock)")


@contextlib.contextmanager
def _slot(level_: str):
    """A slot number held for the time of the with-block (level "uid"), or None."""
    if level_ != "uid":
        yield None
        return
    import fcntl

    folder = _slot_dir()
    for number in [*range(settings.SANDBOX_SLOTS), None]:
        wait = number is None  # every slot taken: wait for one
        number = threading.get_ident() % settings.SANDBOX_SLOTS if wait else number
        fd = os.open(folder / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield number
        finally:
            os.close(fd)
        return


# ---------------------------------------------------------------- the box

def _layout(folder: Path, slot: int | None) -> tuple[Path, Path]:
    """lib/ (the worker's scripts, read-only for the worker) and work/ (its private folder)."""
    folder.chmod(0o711)
    lib, work = folder / "lib", folder / "work"
    lib.mkdir(mode=0o755)
    for name in SCRIPTS:
        shutil.copyfile(HERE / name, lib / name)
        (lib / name).chmod(0o644)
    work.mkdir(mode=0o700)
    (folder / "root").mkdir(mode=0o755)  # where box.py mounts the new root
    if slot is not None:
        uid = settings.SANDBOX_UID_BASE + slot
        os.chown(work, uid, uid)
    return lib, work


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _readonly_paths(lib: Path) -> list[str]:
    """What the worker's Python and numpy need, each folder once (none inside another)."""
    wanted = list(SYSTEM)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        wanted += [prefix, os.path.realpath(prefix)]
    wanted.append(os.path.dirname(os.path.realpath(sys.executable)))
    numpy_init = _numpy_init()
    if numpy_init:
        wanted.append(os.path.dirname(os.path.dirname(os.path.realpath(numpy_init))))
    wanted.append(str(lib))
    out: list[str] = []
    for path in sorted({os.path.normpath(p) for p in wanted if p and os.path.isabs(p)}, key=len):
        if path != "/" and not _inside(path, [p for p in out if not os.path.islink(p)]):
            out.append(path)
    return out


def _hidden(protected) -> set[str]:
    """The protected folders, and the source checkout around a protected package (its bug
    catalogue, its tests, its .git), for a checkout that sits inside a folder Python needs."""
    out = set()
    for path in map(os.path.realpath, protected):
        out.add(path)
        parent = os.path.dirname(path)
        if os.path.basename(path) == "grader" and any(
                os.path.exists(os.path.join(parent, mark)) for mark in ("pyproject.toml", ".git")):
            out.add(parent)
    return out


def _spec(level_, namespaces, folder, lib, work, slot, protected) -> dict:
    ro = _readonly_paths(lib)
    masks = sorted((p for p in _hidden(protected) if _inside(p, ro)), key=len)
    uid = None if slot is None else settings.SANDBOX_UID_BASE + slot
    return {"level": level_, "namespaces": namespaces, "root": str(folder / "root"), "ro": ro,
            "masks": masks, "rw": [str(work)], "cwd": str(work), "uid": uid, "gid": uid,
            "parent": os.getpid(), "setup_failed": SETUP_FAILED, "processes": settings.SANDBOX_PROCESSES,
            "readable": [p for p in (os.__file__, _numpy_init()) if p]}


def _imports(source: bytes) -> set[str]:
    try:
        tree = parse_ast(source)
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def _copy_in(attempt: Path, work: Path, uid: int | None) -> Path:
    """Copy the attempt's bytes into work/ under its own name, and the modules of its own
    folder that it (or they) import: regular files only, never through a symbolic link."""
    source = attempt.read_bytes()
    copy = work / attempt.name
    todo, done = [(copy, source)], set()
    while todo and len(done) <= HELPERS_MAX:
        target, data = todo.pop()
        target.write_bytes(data)
        done.add(target.name)
        if uid is not None:
            os.chown(target, uid, uid)
        for name in sorted(_imports(data)):
            helper = attempt.parent / f"{name}.py"
            if f"{name}.py" in done or helper.is_symlink() or not helper.is_file():
                continue
            if helper.stat().st_size <= HELPER_BYTES:
                todo.append((work / helper.name, helper.read_bytes()))
    return copy


def _env(work: Path) -> dict:
    """The boxed worker's whole environment: nothing of the grader's (its tokens, its paths)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work)}
    for name in ("LANG", "LC_ALL", "LC_CTYPE", "TZ"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@contextlib.contextmanager
def box(attempt: Path, protected: list[Path], level_: str | None = None):
    """A Box for one run of the attempt at path `attempt`, removed afterwards."""
    level_ = level_ or level()
    with tempfile.TemporaryDirectory(prefix="drill-run-", ignore_cleanup_errors=True) as folder, \
            _slot(level_) as slot:
        folder = Path(folder)
        if level_ == "process":
            scratch = folder / "work"
            scratch.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            env["TMPDIR"] = str(scratch)
            yield Box("process", folder, scratch, HERE, Path(attempt).resolve(), env=env)
            return
        lib, work = _layout(folder, slot)
        copy = _copy_in(Path(attempt), work, None if slot is None else settings.SANDBOX_UID_BASE + slot)
        spec = _spec(level_, _state["namespaces"], folder, lib, work, slot, protected)
        kill_uid = None if spec["namespaces"] else spec["uid"]  # a PID namespace ends with its init
        yield Box(level_, folder, work, lib, copy, spec, kill_uid, _env(work))


# ---------------------------------------------------------------- a warm worker's box

def warm_level() -> str | None:
    """The level a warm worker can run at here: one with namespaces (each attempt gets PID,
    mount, network and IPC namespaces of its own inside the worker's), else None (cold starts)."""
    found = level()
    with _lock:
        namespaces = _state["namespaces"]
    return found if found in ("uid", "namespaces") and namespaces else None


@contextlib.contextmanager
def server_box(protected: list[Path], level_: str):
    """The box of a warm worker at level_ (a slot held for its life): its scripts, runs/ (one
    folder per attempt, run_folder()), and the spec that makes box.py keep it privileged and
    leave work/ as the mount point of each attempt's own folder."""
    with tempfile.TemporaryDirectory(prefix="drill-warm-", ignore_cleanup_errors=True) as folder, \
            _slot(level_) as slot:
        folder = Path(folder)
        lib, work = _layout(folder, slot)
        runs = folder / "runs"
        runs.mkdir(mode=0o711)
        spec = _spec(level_, True, folder, lib, work, slot, protected)
        spec.update(rw=[str(runs)], mountpoints=[str(work)], runs=str(runs), serve=True)
        yield Box(level_, folder, work, lib, work, spec, spec["uid"], _env(work), runs)


_run_numbers = iter(range(1, 1 << 62))


@contextlib.contextmanager
def run_folder(server: Box, attempt: Path):
    """A fresh folder in the warm box `server` for one attempt (its copy and helpers, owned by
    the slot's uid, mode 0700), removed afterwards: (its name, the copy's path as the attempt
    sees it, on the work/ mount point)."""
    with _lock:
        name = str(next(_run_numbers))
    folder = server.runs / name
    folder.mkdir(mode=0o700)
    try:
        copy = _copy_in(Path(attempt), folder, server.uid)
        if server.uid is not None:
            os.chown(folder, server.uid, server.uid)
        yield name, server.work / copy.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)
