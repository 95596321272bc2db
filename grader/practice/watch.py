"""`drill watch`: grade the attempt again every time it is saved.

Polls the file's modification time and size (stdlib only). A change is graded once the
file has stayed the same for one more poll, so an editor's save in several writes, or
a delete-and-rename, is graded once, when it is complete.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from grader.practice import workspace
from grader.run import attempt
from grader.judge.report import Report, duration

INTERVAL = 0.5  # seconds between polls


class WatchError(Exception):
    """There is nothing to watch; the message says why and what to do."""


def attempt_path(exercise_id: str | None = None, start: Path | None = None) -> Path:
    """The attempt `drill start` wrote in the workspace around start (the current folder)."""
    found = workspace.find(start)
    if found is None:
        raise WatchError("no PATH given and no workspace here: run `drill start` first, or name the file")
    try:
        attempt = workspace.current_attempt(found, exercise_id)
    except workspace.WorkspaceError as exc:
        raise WatchError(str(exc)) from None
    if attempt is None:
        raise WatchError(f"the workspace {found} has no attempt to watch; run `drill start`")
    return found / attempt.file


def stamp(path: Path) -> tuple[int, int] | None:
    """What changes when the file is saved: (mtime in ns, size); None while it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def watch(path: Path, grade: Callable[[Path], Report], show: Callable[[Report], None], *,
          interval: float = INTERVAL, stop: threading.Event | None = None,
          max_grades: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Grade path now and after every completed save; returns how many grades were made.

    Runs until stop is set or max_grades grades are made (forever when neither is given).
    """
    stop = stop or threading.Event()
    graded = 0
    seen = None  # the stamp last graded
    pending = None  # a changed stamp waiting to settle
    with attempt.warm():  # the session's warm worker: each re-grade forks it instead of starting cold
        while not stop.is_set() and (max_grades is None or graded < max_grades):
            now = stamp(path)
            if now is not None and now != seen:
                if now == pending or seen is None and graded == 0:
                    show(grade(path))
                    graded += 1
                    seen, pending = now, None
                    continue
                pending = now
            else:
                pending = None
            sleep(interval)
    return graded


def compact(report: Report, budget: str | None = None, clock: str | None = None) -> str:
    """A one-screen report: the score, the error if any, and only the checks that fail."""
    verdict = "PASSED" if report.passed else "not passed yet"
    head = f"[{clock or time.strftime('%H:%M:%S')}] {Path(report.file).name}: " \
           f"{report.score:g}/{report.max_score:g} {verdict}"
    if report.elapsed is not None:
        head += f"  ({duration(report.elapsed)} since drill start)"
    lines = [head]
    if report.error:
        lines.append(f"  Error ({report.error['kind']}): {report.error['message']}")
    failing = [c for c in report.checks if not c.passed]
    width = max((len(c.name) for c in failing), default=0)
    lines += [f"  FAIL  {c.name:<{width}}  {c.message}" for c in failing]
    for d in report.diagnosis:
        if d.severity == "note":
            lines.append(f"  note  {d.link}: {d.message}")
    if budget:
        lines.append(f"  {budget}")
    return "\n".join(lines)
