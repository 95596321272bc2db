"""Reading and writing files safely, for every layer: bounded, never through a link, atomic.

- read_bounded(): the bytes of a regular file, at most a bound; never blocks on a pipe or
  reads a device, never follows a symbolic link (unless asked to).
- write_atomic(): readers see the old file or the new one, never half; never clobbers
  unless asked; with a root, never writes through a symbolic link below that root.
- check_no_links(), make_folders(): the checks behind both, for callers that open files
  themselves (SQLite).

A path's last part that is a symbolic link is never written through: os.replace() puts the
new file in place of the link itself, and a no-clobber write refuses it like any file. A
root is the folder the caller owns (a workspace): every folder between it and the file
must be a real folder, not a link that leads elsewhere. The root itself may be reached
through links: that is the user's own doing.

The checks look before they write; they guard against links that are already there (a
workspace unpacked from a zip or cloned from git), not against another process of the
same user swapping one in at that instant, which could do anything to these files anyway.

A leaf module: it imports nothing of the grader.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class Refused(OSError):
    """A path that is not what it must be: a symbolic link where none may be, a pipe, a
    device, a folder, or a file over its size bound. str() says which and why."""

    def __init__(self, path: Path | str, why: str):
        super().__init__(errno.EINVAL, why, str(path))
        self.why = why

    def __str__(self) -> str:
        return f"{self.filename} {self.why}"


def kind(mode: int) -> str:
    """What a file of this st_mode is, in words."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def check_no_links(root: Path, path: Path) -> None:
    """Refused if path, or a folder between root and path, is a symbolic link (or path is
    not below root). Parts that do not exist yet are fine: make_folders() makes them."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        raise Refused(path, f"is not inside {root}") from None
    here = Path(root)
    for part in parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise Refused(here, "is a symbolic link; move it away (nothing is written through it)")


def make_folders(root: Path, folder: Path) -> None:
    """Make folder and the folders between root and it, none of them a link (Refused)."""
    check_no_links(root, folder)
    here = Path(root)
    for part in Path(folder).relative_to(root).parts:
        here = here / part
        try:
            os.mkdir(here)
        except FileExistsError:
            mode = os.lstat(here).st_mode
            if not stat.S_ISDIR(mode):
                raise Refused(here, f"is {kind(mode)}, not a folder") from None


def read_bounded(path: Path, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of the regular file at path; Refused when it is a symbolic link (unless
    follow), a pipe, a device, a folder, or larger than limit bytes. It is opened without
    blocking (a named pipe with no writer never hangs) and checked once open, so what is
    read is what was checked. OSError as open() for a file that is missing or unreadable."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(path, "is a symbolic link; it is not followed") from None
        raise
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd)
        if not stat.S_ISREG(mode.st_mode):
            raise Refused(path, f"is {kind(mode.st_mode)}, not a regular file")
        if mode.st_size > limit:
            raise Refused(path, f"is larger than {limit} bytes")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Refused(path, f"is larger than {limit} bytes")
    return data


def write_atomic(path: Path, text: str | bytes, *, overwrite: bool, root: Path | None = None) -> None:
    """Write text (UTF-8) or bytes to path in one step: readers see the old file or the new
    one, never half. The file gets the mode a plain open() would give it (0o666 less the umask).

    Without overwrite, fail with FileExistsError when path exists (a symbolic link
    included), even when another process creates it at the same moment (the new file is
    linked into place, not renamed; where the file system has no hard links, it is created
    exclusively and then written). With overwrite, a symbolic link at path is replaced by
    the file, its target left alone. With root, the folders between root and path are made
    as needed, and Refused if one of them is a symbolic link.
    """
    data = text.encode("utf-8") if isinstance(text, str) else text
    path = Path(path)
    if root is not None:
        make_folders(Path(root), path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes it 0600; give it the mode open() would
            os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # raises FileExistsError rather than replace
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                _write_exclusive(path, data)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def umask() -> int:
    """The process's umask, without changing it where the system can tell (Linux's /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back at once
    os.umask(mask)
    return mask


def _write_exclusive(path: Path, data: bytes) -> None:
    """Create path (FileExistsError if it exists, a link included) and write data: no-clobber
    without hard links."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def output_path(path: Path) -> Path:
    """path made absolute without following a symbolic link at its last part: writing there
    replaces the link, never its target. (Path.resolve() would follow it.)"""
    path = Path(path)
    return path.parent.resolve() / path.name
