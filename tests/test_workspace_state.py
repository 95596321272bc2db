"""The workspace's files: writes are atomic and never clobber, and concurrent updates of the state all land."""
import os
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from grader import files
from grader.practice import workspace

UPDATES = 40


def _adder(folder, who):
    """A program that adds UPDATES keys of its own to the state, one locked update at a time."""
    return textwrap.dedent(f"""
        from pathlib import Path
        from grader.practice import workspace
        for i in range({UPDATES}):
            workspace.update_state(Path({str(folder)!r}),
                                   lambda state: state.setdefault("seen", {{}}).__setitem__("{who}-%d" % i, i))
    """)


def test_two_processes_updating_the_state_at_once_lose_nothing(tmp_path):
    (tmp_path / workspace.STATE_DIR).mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _adder(tmp_path, who)]) for who in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    seen = workspace.load_state(tmp_path)["seen"]
    assert sorted(seen) == sorted(f"{who}-{i}" for who in "ab" for i in range(UPDATES))


def test_threads_updating_the_state_at_once_lose_nothing(tmp_path):
    def add(who):
        for i in range(UPDATES):
            workspace.update_state(tmp_path, lambda state: state.setdefault("seen", {}).__setitem__(f"{who}-{i}", i))

    threads = [threading.Thread(target=add, args=(who,)) for who in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(workspace.load_state(tmp_path)["seen"]) == 2 * UPDATES


def test_start_and_inject_recorded_at_once_both_stay(tmp_path):
    """record_start and an injection's record (the two writers of the state) do not undo each other."""
    attempt = workspace.Attempt(exercise="mlp_backprop", file="mlp_backprop.py", started_at=workspace.now().isoformat(),
                                links=["dz2"])
    inject = threading.Thread(target=lambda: [workspace.update_state(
        tmp_path, lambda s: s.setdefault("injected", {}).__setitem__(f"bug{i}.py", {"bug": "missing-n"}))
        for i in range(UPDATES)])
    inject.start()
    for _ in range(UPDATES):
        workspace.record_start(tmp_path, attempt)
    inject.join()
    state = workspace.load_state(tmp_path)
    assert state["current"] == "mlp_backprop" and len(state["injected"]) == UPDATES


def test_the_lock_is_reentrant_and_a_failed_change_writes_nothing(tmp_path):
    workspace.update_state(tmp_path, lambda s: s.__setitem__("x", 1))
    with workspace.locked(tmp_path):
        workspace.update_state(tmp_path, lambda s: s.__setitem__("x", 2))  # same thread: no deadlock

    def broken(state):
        state["x"] = 3
        raise ValueError("no")

    with pytest.raises(ValueError):
        workspace.update_state(tmp_path, broken)
    assert workspace.load_state(tmp_path)["x"] == 2


def test_a_held_lock_times_out_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(workspace, "LOCK_SECONDS", 0.2)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with workspace.locked(tmp_path):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(workspace.WorkspaceError, match="another drill command"):
            workspace.update_state(tmp_path, lambda s: None)
    finally:
        release.set()
        holder.join()


def test_write_atomic_never_clobbers_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "attempt.py"
    path.write_text("my work\n")
    with pytest.raises(FileExistsError):
        files.write_atomic(path, "the stub\n", overwrite=False)
    assert path.read_text() == "my work\n"
    assert [p.name for p in tmp_path.iterdir()] == ["attempt.py"]
    files.write_atomic(path, b"\xff new bytes\n", overwrite=True)
    assert path.read_bytes() == b"\xff new bytes\n"


def test_write_atomic_without_hard_links_still_refuses_to_clobber(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(workspace.os, "link", no_links)
    path = tmp_path / "new.py"
    files.write_atomic(path, "first\n", overwrite=False)
    with pytest.raises(FileExistsError):
        files.write_atomic(path, "second\n", overwrite=False)
    assert path.read_text() == "first\n"


def test_a_backup_keeps_the_bytes_of_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "attempt.py"
    path.write_bytes(b"# caf\xe9 \x00\xff\n")
    copy = workspace.backup(path, tmp_path)
    assert copy.read_bytes() == path.read_bytes()


@pytest.fixture
def umask():
    """Set the process's umask for a test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_a_plain_write_gives(tmp_path, umask, mask, mode):
    umask(mask)
    assert files.umask() == mask
    new, replaced = tmp_path / "new.py", tmp_path / "replaced.py"
    replaced.write_text("old\n")
    files.write_atomic(new, "text\n", overwrite=False)
    files.write_atomic(replaced, "text\n", overwrite=True)
    copy = workspace.backup(replaced, tmp_path)
    for path in (new, replaced, copy):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
