"""The user's workspace: the attempt files `drill start` writes and the state beside them.

A workspace is a folder holding `.drill/`; `drill grade` with no path finds the nearest one
from the current folder upwards, like git. Every write is atomic, and nothing the user
wrote is ever overwritten: a file is replaced only on request, and then the old one is kept
in `.drill/backups/` first. The state is changed only under `.drill/lock` (update_state),
so two drill commands at once cannot lose each other's update.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from grader.files import write_atomic

STATE_DIR = ".drill"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
LOCK_SECONDS = 10.0  # how long a command waits for another one's lock before it gives up


class WorkspaceError(Exception):
    """A workspace file cannot be written or read; the message says which and why."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def backup(path: Path, workspace: Path) -> Path:
    """Copy path into the workspace's backups before it is replaced; returns the copy."""
    stamp = now().strftime("%Y%m%d-%H%M%S-%f")
    target = workspace / STATE_DIR / "backups" / f"{path.stem}.{stamp}{path.suffix}"
    write_atomic(target, path.read_bytes(), overwrite=False)  # the bytes as they are, whatever they are
    return target


class Occupied(WorkspaceError):
    """A file is already where a new one was to go, and replacing it was not asked for."""


def place(path: Path, data: str | bytes, folder: Path, *, force: bool) -> Path | None:
    """Write a new file for the user at path without ever losing what is there.

    An unreadable workspace state stops it before anything is written; an existing file
    stops it (Occupied) unless force, and with force it is first copied to the backups.
    Returns that copy, or None. Every failure is a WorkspaceError with a clear message.
    """
    load_state(folder)
    if path.is_dir():
        raise WorkspaceError(f"{path} is a folder; move it away first")
    saved = None
    if path.exists():
        if not force:
            raise Occupied(f"{path} already exists")
        saved = backup(path, folder)
    try:
        write_atomic(path, data, overwrite=force)
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

    @property
    def started(self) -> datetime:
        return datetime.fromisoformat(self.started_at)


def find(start: Path | None = None) -> Path | None:
    """The nearest workspace at or above start (the current folder by default)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / STATE_DIR).is_dir():
            return folder
    return None


def _state_path(workspace: Path) -> Path:
    return workspace / STATE_DIR / STATE_FILE


def load_state(workspace: Path) -> dict:
    path = _state_path(workspace)
    if not path.exists():
        return {"current": None, "attempts": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("attempts"), dict):
            raise ValueError("not a state object")
        return state
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path} is unreadable ({exc}); move it away to start afresh") from None


def save_state(workspace: Path, state: dict) -> None:
    """Write the whole state. To change it, use update_state: it reads and writes under the lock."""
    write_atomic(_state_path(workspace), json.dumps(state, indent=2, sort_keys=True) + "\n", overwrite=True)


_held = threading.local()  # the workspaces whose lock this thread holds


@contextlib.contextmanager
def locked(workspace: Path):
    """Hold the workspace's lock (`.drill/lock`, an flock) for a read-modify-write of its state.

    Reentrant within a thread; another process or thread waits for it, at most LOCK_SECONDS,
    then gets a WorkspaceError. Without fcntl (not POSIX) there is no lock.
    """
    folder = (workspace / STATE_DIR).resolve()
    held = _held.__dict__.setdefault("folders", set())
    if folder in held:
        yield
        return
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        end = time.monotonic() + LOCK_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise WorkspaceError(f"another drill command has held {folder / LOCK_FILE} for more than "
                                         f"{LOCK_SECONDS:g} s; try again when it is done") from None
                time.sleep(0.005)
        held.add(folder)
        try:
            yield
        finally:
            held.discard(folder)
    finally:
        os.close(fd)  # releases the lock


def update_state(workspace: Path, change) -> object:
    """Read the state, let change(state) modify it in place, and write it, all under the lock;
    returns what change returned. Nothing is written if change raises."""
    with locked(workspace):
        state = load_state(workspace)
        result = change(state)
        save_state(workspace, state)
        return result


def record_start(workspace: Path, attempt: Attempt) -> None:
    def change(state):
        state["current"] = attempt.exercise
        state["attempts"][attempt.exercise] = attempt.__dict__

    update_state(workspace, change)


def current_attempt(workspace: Path, exercise: str | None = None) -> Attempt | None:
    """The attempt `drill start` made here (for exercise, or the latest one)."""
    state = load_state(workspace)
    name = exercise or state.get("current")
    raw = state["attempts"].get(name) if name else None
    if not isinstance(raw, dict):
        return None
    try:
        return Attempt(**raw)
    except TypeError:
        raise WorkspaceError(f"{_state_path(workspace)}: the entry for {name} is damaged") from None


def attempt_for_file(path: Path) -> Attempt | None:
    """The recorded attempt whose file is path, if path lies in a workspace."""
    workspace = find(path.parent)
    if workspace is None:
        return None
    try:
        state = load_state(workspace)
    except WorkspaceError:
        return None
    for raw in state["attempts"].values():
        if isinstance(raw, dict) and (workspace / str(raw.get("file", ""))).resolve() == path.resolve():
            try:
                return Attempt(**raw)
            except TypeError:
                return None
    return None


def injected_for_file(path: Path) -> dict | None:
    """What `drill inject-bug` recorded for path ({"bug", "exercise", "at", "hidden"}), if anything."""
    folder = find(path.parent)
    if folder is None:
        return None
    try:
        recorded = load_state(folder).get("injected")
        key = path.resolve().relative_to(folder).as_posix()
    except (WorkspaceError, ValueError):
        return None
    entry = recorded.get(key) if isinstance(recorded, dict) else None
    return entry if isinstance(entry, dict) else None
