"""The user's workspace: the attempt files `drill start` writes and the state beside them.

A workspace is a folder holding `.drill/`; `drill grade` with no path finds the nearest one
from the current folder upwards, like git. Every write is atomic, and nothing the user
wrote is ever overwritten: a file is replaced only on request, and then the old one is kept
in `.drill/backups/` first. The state is changed only under `.drill/lock` (update_state),
so two drill commands at once cannot lose each other's update.

A `.drill/` folder can come from anywhere (a zip, a git clone, someone else's submission),
so nothing in it is trusted: a file under it is read only if it is a regular file reached
without a symbolic link, within a size bound (files.read_bounded: a pipe never hangs, a
device is never read), and what it says is validated before use (Attempt.load). A state
that fails any of that is ignored by the commands that only read it (problems() says why,
one line each, for the command to show) and moved aside, not overwritten, by the ones that
write it. No write goes through a symbolic link: `.drill` or `.drill/backups` being one
stops the write with a WorkspaceError; a link in place of a file is replaced itself.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from grader import catalog, files

STATE_DIR = ".drill"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
LOCK_SECONDS = 10.0  # how long a command waits for another one's lock before it gives up
MAX_STATE_BYTES = 4_000_000  # a state holds a few entries per drill: far below this
MAX_BACKUP_BYTES = 256_000_000  # a file bigger than this is no attempt of ours; it is not copied


class WorkspaceError(Exception):
    """A workspace file cannot be written or read; the message says which and why."""


class Occupied(WorkspaceError):
    """A file is already where a new one was to go, and replacing it was not asked for."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp() -> str:
    return now().strftime("%Y%m%d-%H%M%S-%f")


def _refused(exc: OSError) -> WorkspaceError:
    return WorkspaceError(str(exc) if isinstance(exc, files.Refused) else
                          f"cannot write {exc.filename}: {exc.strerror or exc}")


def backup(path: Path, workspace: Path) -> Path:
    """Copy path into the workspace's backups before it is replaced; returns the copy. A
    symbolic link is kept as a link (its target is not touched by replacing it); a pipe, a
    device or a folder cannot be kept, so WorkspaceError, and nothing is replaced."""
    target = workspace / STATE_DIR / "backups" / f"{path.stem}.{_stamp()}{path.suffix}"
    try:
        files.make_folders(workspace, target.parent)
        if os.path.islink(path):
            os.symlink(os.readlink(path), target)
        else:  # the bytes as they are, whatever they are
            files.write_atomic(target, files.read_bounded(path, MAX_BACKUP_BYTES), overwrite=False, root=workspace)
    except files.Refused as exc:
        raise WorkspaceError(f"cannot keep a copy of it, so it is left as it is: {exc}") from None
    except OSError as exc:
        raise WorkspaceError(f"cannot keep a copy of {path} in {target.parent}, so it is left as it is: "
                             f"{exc.strerror or exc}") from None
    return target


def place(path: Path, data: str | bytes, folder: Path, *, force: bool) -> Path | None:
    """Write a new file for the user at path without ever losing what is there.

    A `.drill` (or, with force, `.drill/backups`) that is a symbolic link stops it before
    anything is written; an existing file (a link included) stops it (Occupied) unless
    force, and with force it is first copied to the backups and then replaced (a link
    itself, never its target). Returns that copy, or None. Every failure is a WorkspaceError.
    """
    try:
        files.check_no_links(folder, folder / STATE_DIR / "backups" / "x")
    except files.Refused as exc:
        raise WorkspaceError(str(exc)) from None
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise WorkspaceError(f"{path} is a folder; move it away first")
    saved = None
    if mode is not None:
        if not force:
            raise Occupied(f"{path} already exists")
        saved = backup(path, folder)
    try:
        files.write_atomic(path, data, overwrite=force)
    except FileExistsError:
        raise WorkspaceError(f"{path} appeared while writing; it was left as it is") from None
    except OSError as exc:
        raise WorkspaceError(f"cannot write {path}: {exc.strerror or exc}") from None
    return saved


@dataclass
class Attempt:
    """What `drill start` recorded about one exercise's attempt in this workspace."""

    exercise: str
    file: str
    started_at: str
    links: list[str]
    timed_minutes: float | None = None
    interview: bool = False  # `drill start --interview`: terse feedback, no hints, until the time is up

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)

    @classmethod
    def load(cls, raw) -> "Attempt":
        """The attempt a state entry records; ValueError saying what is wrong with it."""
        if not isinstance(raw, dict):
            raise ValueError("is not an object")
        unknown = set(raw) - {"exercise", "file", "started_at", "links", "timed_minutes", "interview"}
        if unknown:
            raise ValueError(f"has unknown fields {sorted(unknown)}")
        attempt = cls(exercise=_known_exercise(raw.get("exercise")), file=_relative(raw.get("file")),
                      started_at=_instant(raw.get("started_at")), links=_names(raw.get("links")),
                      timed_minutes=_minutes(raw.get("timed_minutes")))
        interview = raw.get("interview", False)
        if not isinstance(interview, bool) or (interview and attempt.timed_minutes is None):
            raise ValueError(f"has an interview mark that is not true or false, or no time ({_short(interview)})")
        attempt.interview = interview
        return attempt


def _known_exercise(value) -> str:
    if not isinstance(value, str) or value not in catalog.exercises():
        raise ValueError(f"names no exercise this drill has ({_short(value)})")
    return value


def _relative(value) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("has no file name")
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"names a file outside the workspace ({_short(value)})")
    return value


def _instant(value) -> str:
    """An ISO 8601 time with its time zone (what now().isoformat() writes)."""
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"has a start time that is not a time ({_short(value)})") from None
    if at.tzinfo is None:
        raise ValueError(f"has a start time without a time zone ({_short(value)})")
    return value


def _names(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("has links that are not a list of names")
    return list(value)


def _minutes(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"has a time budget that is not a number of minutes ({_short(value)})")
    return float(value)


def _short(value) -> str:
    return repr(value)[:60].encode("ascii", "backslashreplace").decode("ascii")


def load_injected(raw) -> dict:
    """An entry of what `drill inject-bug` recorded ({"bug", "exercise", "at", "hidden"}, and
    "revealed_at" once revealed); ValueError saying what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError("is not an object")
    if not isinstance(raw.get("bug"), str) or not isinstance(raw.get("hidden"), bool):
        raise ValueError("has no bug, or does not say whether it is hidden")
    _known_exercise(raw.get("exercise"))
    _instant(raw.get("at"))
    return raw


def find(start: Path | None = None) -> Path | None:
    """The nearest workspace at or above start (the current folder by default): a folder
    holding `.drill` (a symbolic link there counts too, so that it is refused, not passed over)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        try:
            mode = os.lstat(folder / STATE_DIR).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
            return folder
    return None


def _state_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / STATE_FILE


def _empty() -> dict:
    return {"current": None, "attempts": {}}


def read_state(workspace: Path) -> tuple[dict, str | None]:
    """The state, and None; or, when the state file cannot be trusted, an empty state and
    one line saying why. Never raises, never blocks, never follows a link."""
    path = _state_path(workspace)
    try:
        files.check_no_links(workspace, path.parent)
        data = files.read_bounded(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return _empty(), None
    except OSError as exc:
        return _empty(), (str(exc) if isinstance(exc, files.Refused) else f"{path}: {exc.strerror or exc}")
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return _empty(), f"{path} is not JSON ({str(exc)[:80]})"
    if not isinstance(state, dict) or not isinstance(state.get("attempts"), dict):
        return _empty(), f"{path} is not a drill state (no \"attempts\" object)"
    if state.get("injected") is not None and not isinstance(state["injected"], dict):
        return _empty(), f"{path} is not a drill state (\"injected\" is not an object)"
    return state, None


def load_state(workspace: Path) -> dict:
    """The state; WorkspaceError when it cannot be trusted (read_state says why)."""
    state, problem = read_state(workspace)
    if problem:
        raise WorkspaceError(f"{problem}; move it away to start afresh")
    return state


def problems(workspace: Path) -> list[str]:
    """What in the workspace's state is ignored, and why: one line each (empty: nothing)."""
    state, problem = read_state(workspace)
    if problem:
        return [f"ignored {problem}"]
    found = []
    for section, load in (("attempts", Attempt.load), ("injected", load_injected)):
        for key, raw in (state.get(section) or {}).items():
            try:
                load(raw)
            except ValueError as exc:
                found.append(f"ignored the entry {_short(key)} of {_state_path(workspace)}: it {exc}")
    return found


def problems_around(path: Path) -> list[str]:
    """problems() of the workspace that path lies in, if any."""
    folder = find(Path(path).parent)
    return problems(folder) if folder is not None else []


def move_aside(path: Path) -> Path:
    """Rename path (a file, a link itself, a pipe: whatever it is) to path.damaged-STAMP
    beside it, so a fresh one can be written and nothing of the old one is lost."""
    aside = path.with_name(f"{path.name}.damaged-{_stamp()}")
    os.rename(path, aside)
    return aside


def save_state(workspace: Path, state: dict) -> None:
    """Write the whole state. To change it, use update_state: it reads and writes under the lock."""
    try:
        files.write_atomic(_state_path(workspace), json.dumps(state, indent=2, sort_keys=True) + "\n",
                           overwrite=True, root=workspace)
    except OSError as exc:
        raise _refused(exc) from None


_held = threading.local()  # the workspaces whose lock this thread holds


def _open_lock(folder: Path, notes: list[str] | None) -> int:
    """The lock file's descriptor: a regular file in `.drill`, made if missing; anything
    else in its place (a link, a pipe) is moved aside first."""
    path = folder / LOCK_FILE
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for _ in range(2):
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if not os.path.islink(path):
                raise WorkspaceError(f"cannot open {path}: {exc.strerror or exc}") from None
            fd = None
        if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        if fd is not None:
            os.close(fd)
        aside = move_aside(path)
        if notes is not None:
            notes.append(f"{path} was not a regular file; moved it aside to {aside.name}")
    raise WorkspaceError(f"cannot make {path} a regular file")


@contextlib.contextmanager
def locked(workspace: Path, notes: list[str] | None = None):
    """Hold the workspace's lock (`.drill/lock`, an flock) for a read-modify-write of its state.

    Reentrant within a thread; another process or thread waits for it, at most LOCK_SECONDS,
    then gets a WorkspaceError. Without fcntl (not POSIX) there is no lock. A `.drill` that
    is a symbolic link is a WorkspaceError: nothing is written through it.
    """
    root = workspace.resolve()
    with locked_in(root, root / STATE_DIR, notes):
        yield


@contextlib.contextmanager
def locked_in(root: Path, folder: Path, notes: list[str] | None = None):
    """Hold the lock file `lock` in folder (made, with the folders between root and it, none
    of them a link); locked() is this for a workspace's `.drill`, the history for its home."""
    held = _held.__dict__.setdefault("folders", set())
    if folder in held:
        yield
        return
    try:
        import fcntl  # noqa: F401 - is there a lock at all
    except ImportError:
        yield
        return
    try:
        root.mkdir(parents=True, exist_ok=True)  # the workspace (or the history's home) itself: the user's choice
        files.make_folders(root, folder)
    except OSError as exc:
        raise _refused(exc) from None
    fd = _open_lock(folder, notes)
    try:
        _flock(fd, folder / LOCK_FILE)
        held.add(folder)
        try:
            yield
        finally:
            held.discard(folder)
    finally:
        os.close(fd)  # releases the lock


def _flock(fd: int, path: Path) -> None:
    import fcntl

    end = time.monotonic() + LOCK_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > end:
                raise WorkspaceError(f"another drill command has held {path} for more than "
                                     f"{LOCK_SECONDS:g} s; try again when it is done") from None
            time.sleep(0.005)


def update_state(workspace: Path, change, notes: list[str] | None = None) -> object:
    """Read the state, let change(state) modify it in place, and write it, all under the lock;
    returns what change returned. Nothing is written if change raises. A state that cannot
    be trusted is moved aside (to state.json.damaged-STAMP) and a fresh one begun; notes
    gets a line saying so."""
    with locked(workspace, notes):
        state, problem = read_state(workspace)
        if problem:
            path = _state_path(workspace)
            try:
                aside = move_aside(path)
            except OSError as exc:
                raise WorkspaceError(f"{problem}, and it cannot be moved aside: {exc.strerror or exc}") from None
            if notes is not None:
                notes.append(f"{problem}; moved it aside to {aside.name} and began a fresh state")
        result = change(state)
        save_state(workspace, state)
        return result


def record_start(workspace: Path, attempt: Attempt, notes: list[str] | None = None) -> None:
    def change(state):
        state["current"] = attempt.exercise
        state["attempts"][attempt.exercise] = asdict(attempt)

    update_state(workspace, change, notes)


def current_attempt(workspace: Path, exercise: str | None = None) -> Attempt | None:
    """The attempt `drill start` made here (for exercise, or the latest one); WorkspaceError
    when the state, or that attempt's entry in it, cannot be trusted."""
    state = load_state(workspace)
    name = exercise or state.get("current")
    raw = state["attempts"].get(name) if isinstance(name, str) else None
    if raw is None:
        return None
    try:
        return Attempt.load(raw)
    except ValueError as exc:
        raise WorkspaceError(f"{_state_path(workspace)}: the entry for {_short(name)} {exc}; "
                             f"start it afresh with `drill start {name} --force`") from None


def attempt_for_file(path: Path) -> Attempt | None:
    """The recorded attempt whose file is path, if path lies in a workspace. An entry that
    cannot be trusted is passed over (problems() names it)."""
    workspace = find(path.parent)
    if workspace is None:
        return None
    state, _ = read_state(workspace)
    for raw in state["attempts"].values():
        try:
            attempt = Attempt.load(raw)
        except ValueError:
            continue
        if (workspace / attempt.file).resolve() == path.resolve():
            return attempt
    return None


def injected_for_file(path: Path) -> dict | None:
    """What `drill inject-bug` recorded for path ({"bug", "exercise", "at", "hidden"}), if
    anything trustworthy."""
    folder = find(path.parent)
    if folder is None:
        return None
    state, _ = read_state(folder)
    try:
        key = path.resolve().relative_to(folder).as_posix()
        return load_injected((state.get("injected") or {}).get(key))
    except ValueError:
        return None
