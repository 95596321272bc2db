"""The drill history: `.drill/history.sqlite` in the workspace, owned by this module alone.

Every start, grade, hint, injected bug and solution view is one row of `events` (kind,
exercise, time, a JSON payload) plus a row in a typed table that makes the stats easy.
Each record is one transaction in WAL mode, so two commands writing at once wait for each
other (busy_timeout) and a command killed mid-write leaves the history as it was before.

Recording is best effort: the record_* functions never stop a command. When the history
cannot be written they print one warning on stderr and return False. The query functions
raise HistoryError, whose message names the file and says what to do.
"""
from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.practice import workspace

FILE_NAME = "history.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

# Check statuses kept per grade: the check passed, it judged a wrong value, or it judged
# nothing (the link is not written yet, depends on an unwritten one, or did not run).
PASS, WRONG, OPEN = "pass", "wrong", "open"

_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- start, grade, hint, inject, reveal, solution
    exercise TEXT,
    at TEXT NOT NULL,              -- ISO 8601, UTC
    payload TEXT NOT NULL          -- JSON
);
CREATE TABLE attempts (
    event_id INTEGER NOT NULL REFERENCES events(id),
    exercise TEXT NOT NULL,
    started_at TEXT NOT NULL,      -- the attempt's key, as in state.json
    links TEXT NOT NULL,           -- JSON list of the blanks left open
    timed_minutes REAL,
    PRIMARY KEY (exercise, started_at)
);
CREATE TABLE grades (
    event_id INTEGER PRIMARY KEY REFERENCES events(id),
    exercise TEXT NOT NULL,
    at TEXT NOT NULL,
    file TEXT NOT NULL,
    source TEXT NOT NULL,          -- attempt (written by drill start), injected, or file
    attempt TEXT,                  -- started_at of the attempt, for source attempt
    links TEXT,                    -- JSON list of the attempt's open blanks
    timed_minutes REAL,
    bug TEXT,                      -- for source injected
    injected_at TEXT,              -- for source injected
    hidden INTEGER,                -- for source injected: the bug was not named
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    passed INTEGER NOT NULL,
    elapsed REAL,                  -- seconds since drill start (or since the injection)
    error_kind TEXT
);
CREATE TABLE grade_checks (
    event_id INTEGER NOT NULL REFERENCES grades(event_id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,          -- pass, wrong, open
    PRIMARY KEY (event_id, name)
);
CREATE TABLE hints (
    event_id INTEGER PRIMARY KEY REFERENCES events(id),
    exercise TEXT NOT NULL,
    attempt TEXT NOT NULL,
    link TEXT NOT NULL,
    level INTEGER NOT NULL
);
CREATE TABLE injections (
    event_id INTEGER NOT NULL REFERENCES events(id),
    exercise TEXT NOT NULL,
    file TEXT NOT NULL,            -- relative to the workspace
    injected_at TEXT NOT NULL,
    bug TEXT NOT NULL,
    hidden INTEGER NOT NULL,
    PRIMARY KEY (file, injected_at)
);
CREATE INDEX grades_by_attempt ON grades (exercise, attempt);
CREATE INDEX hints_by_attempt ON hints (exercise, attempt, link);
"""


class HistoryError(Exception):
    """The history cannot be read or written; the message names the file and what to do."""


def path_of(folder: Path) -> Path:
    return folder / workspace.STATE_DIR / FILE_NAME


def _fail(db: Path, exc: Exception) -> HistoryError:
    return HistoryError(f"the history {db} is unreadable ({exc}); move it away to start a new one")


def _connect(folder: Path, create: bool) -> sqlite3.Connection:
    db = path_of(folder)
    if not create and not db.exists():
        raise FileNotFoundError(db)
    if create:
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise _fail(db, exc) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Only a writer (holding the workspace lock) may switch the journal mode: the switch
        # takes an exclusive lock that SQLite does not wait for, so two racing switches fail.
        if create and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a crash never corrupts
        _migrate(conn, db, create)
    except HistoryError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise _fail(db, exc) from None
    return conn


def _migrate(conn: sqlite3.Connection, db: Path, create: bool) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise HistoryError(f"the history {db} was written by a newer drill (schema {version}, "
                           f"this one reads {SCHEMA_VERSION}); upgrade backprop-drill")
    if not create:
        return  # an empty history, read only: nothing to migrate
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:  # not made by another process meanwhile
            if conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                raise HistoryError(f"the history {db} holds tables of some other program; "
                                   "move it away to start a new one")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _write(folder: Path, rows) -> None:
    """Run rows(conn) in one transaction of the history in folder.

    Writers take turns on the workspace lock as well as in SQLite: creating the history and
    switching it to WAL are not covered by SQLite's busy wait, and two commands doing that at
    once made one of them fail with "database is locked".
    """
    try:
        with workspace.locked(folder):
            _write_locked(folder, rows)
    except workspace.WorkspaceError as exc:
        raise HistoryError(str(exc)) from None


def _write_locked(folder: Path, rows) -> None:
    conn = _connect(folder, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _fail(path_of(folder), exc) from None
    finally:
        conn.close()


def _event(conn: sqlite3.Connection, kind: str, exercise: str | None, at: str, payload: dict) -> int:
    cur = conn.execute("INSERT INTO events (kind, exercise, at, payload) VALUES (?, ?, ?, ?)",
                       (kind, exercise, at, json.dumps(payload, default=str)))
    return cur.lastrowid


def _stamp(at: datetime | None) -> str:
    return (at or workspace.now()).isoformat()


def _best_effort(record):
    """Make a writer report a failure on stderr and return False instead of raising."""
    def wrapper(*args, **kwargs) -> bool:
        try:
            record(*args, **kwargs)
        except (HistoryError, OSError, sqlite3.Error, ValueError) as exc:
            print(f"drill: warning: not recorded in the history: {exc}", file=sys.stderr)
            return False
        return True
    wrapper.__name__, wrapper.__doc__ = record.__name__, record.__doc__
    return wrapper


# ------------------------------------------------------------------------ writing

@_best_effort
def record_start(folder: Path, attempt: workspace.Attempt) -> None:
    """`drill start` wrote attempt in the workspace folder."""
    def rows(conn):
        event = _event(conn, "start", attempt.exercise, attempt.started_at,
                       {"file": attempt.file, "links": attempt.links, "timed_minutes": attempt.timed_minutes})
        conn.execute("INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?)",
                     (event, attempt.exercise, attempt.started_at, json.dumps(attempt.links),
                      attempt.timed_minutes))
    _write(folder, rows)


def check_status(check) -> str:
    """pass, wrong, or open (nothing was judged: not written yet, or could not be checked)."""
    if check.passed:
        return PASS
    return OPEN if check.open else WRONG


@dataclass
class Graded:
    """What record_grade found out about the graded file."""

    folder: Path
    source: str  # attempt, injected, file
    attempt: workspace.Attempt | None = None
    injected: dict | None = None
    elapsed: float | None = None  # since drill start or since the injection


def _since(stamp: str | None, at: datetime) -> float | None:
    try:
        return (at - datetime.fromisoformat(str(stamp))).total_seconds()
    except (TypeError, ValueError):
        return None


def classify(path: Path, at: datetime | None = None) -> Graded | None:
    """The workspace of path and what path is to it; None outside any workspace."""
    path = Path(path).resolve()
    folder = workspace.find(path.parent)
    if folder is None:
        return None
    at = at or workspace.now()
    attempt = workspace.attempt_for_file(path)
    if attempt is not None:
        return Graded(folder, "attempt", attempt=attempt, elapsed=_since(attempt.started_at, at))
    injected = workspace.injected_for_file(path)
    if injected is not None:
        return Graded(folder, "injected", injected=injected, elapsed=_since(injected.get("at"), at))
    return Graded(folder, "file")


@_best_effort
def record_grade(path: Path, report, at: datetime | None = None) -> None:
    """`drill grade` graded path; recorded in the workspace around path (if there is one)."""
    at = at or workspace.now()
    graded = classify(path, at)
    if graded is None:
        return
    if graded.source == "attempt" and report.elapsed is not None:
        # the instant the grade measured its time (and its budget) at, not the end of grading:
        # `drill stats` must give the verdict on the budget that `drill grade` gave
        graded.elapsed = report.elapsed
    attempt, injected = graded.attempt, graded.injected or {}
    try:
        shown = Path(path).resolve().relative_to(graded.folder).as_posix()
    except ValueError:
        shown = str(path)
    statuses = {c.name: check_status(c) for c in report.checks}

    def rows(conn):
        payload = report.to_dict()
        payload.update(source=graded.source, statuses=statuses, elapsed_seconds=graded.elapsed)
        event = _event(conn, "grade", report.exercise, at.isoformat(), payload)
        conn.execute(
            "INSERT INTO grades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event, report.exercise, at.isoformat(), shown, graded.source,
             attempt.started_at if attempt else None, json.dumps(attempt.links) if attempt else None,
             attempt.timed_minutes if attempt else None, injected.get("bug"), injected.get("at"),
             int(bool(injected.get("hidden"))) if injected else None,
             report.score, report.max_score, int(report.passed), graded.elapsed,
             (report.error or {}).get("kind")))
        conn.executemany("INSERT INTO grade_checks VALUES (?, ?, ?)",
                         [(event, name, status) for name, status in statuses.items()])
    _write(graded.folder, rows)


@_best_effort
def record_hint(folder: Path, attempt: workspace.Attempt, link: str, level: int,
                at: datetime | None = None) -> None:
    """`drill hint` showed hint number level (from 1) for link."""
    def rows(conn):
        event = _event(conn, "hint", attempt.exercise, _stamp(at),
                       {"attempt": attempt.started_at, "link": link, "level": level})
        conn.execute("INSERT INTO hints VALUES (?, ?, ?, ?, ?)",
                     (event, attempt.exercise, attempt.started_at, link, level))
    _write(folder, rows)


@_best_effort
def record_inject(folder: Path, file: str, entry: dict) -> None:
    """`drill inject-bug` wrote file (relative to folder); entry is its state.json record."""
    def rows(conn):
        event = _event(conn, "inject", entry.get("exercise"), str(entry.get("at") or _stamp(None)),
                       {"file": file, **entry})
        conn.execute("INSERT OR REPLACE INTO injections VALUES (?, ?, ?, ?, ?, ?)",
                     (event, entry.get("exercise"), file, str(entry.get("at")), str(entry.get("bug")),
                      int(bool(entry.get("hidden")))))
    _write(folder, rows)


@_best_effort
def record_reveal(folder: Path, file: str, exercise: str, injected_at: str, at: datetime | None = None) -> None:
    """`drill reveal` named the bug injected into file at injected_at: that hunt is given up."""
    _write(folder, lambda conn: _event(conn, "reveal", exercise, _stamp(at),
                                       {"file": file, "injected_at": injected_at}))


@_best_effort
def record_solution_view(folder: Path, exercise: str, forced: bool, at: datetime | None = None) -> None:
    """`drill solution` showed the reference of exercise (forced: before passing it)."""
    _write(folder, lambda conn: _event(conn, "solution", exercise, _stamp(at), {"forced": forced}))


# ------------------------------------------------------------------------ reading

@dataclass
class Rows:
    """The whole history as plain rows (dicts), oldest first; empty when there is none."""

    path: Path
    exists: bool
    attempts: list[dict] = field(default_factory=list)
    grades: list[dict] = field(default_factory=list)  # each with "checks": {name: status}, and
    # "messages": {name: message} and "diagnosis": [{"bug", "link", "severity"}] of the report
    hints: list[dict] = field(default_factory=list)
    injections: list[dict] = field(default_factory=list)
    reveals: list[dict] = field(default_factory=list)  # {"at", "file", "injected_at"}: hunts given up
    solutions: list[dict] = field(default_factory=list)


def _read(folder: Path, query):
    """query(conn) on the history of folder; None when there is no history yet."""
    db = path_of(folder)
    try:
        conn = _connect(folder, create=False)
    except FileNotFoundError:
        return None
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            return None  # created but never written
        conn.row_factory = sqlite3.Row
        return query(conn)
    except sqlite3.Error as exc:
        raise _fail(db, exc) from None
    finally:
        conn.close()


def _dicts(conn, sql: str, *args) -> list[dict]:
    return [dict(r) for r in conn.execute(sql, args)]


def read(folder: Path) -> Rows:
    """Everything recorded in the workspace folder."""
    def query(conn):
        rows = Rows(path=path_of(folder), exists=True)
        conn.execute("BEGIN")  # one consistent snapshot
        rows.attempts = _dicts(conn, "SELECT * FROM attempts ORDER BY started_at")
        rows.grades = _dicts(conn, "SELECT g.*, e.payload FROM grades g JOIN events e ON e.id = g.event_id "
                                   "ORDER BY g.at, g.event_id")
        checks: dict[int, dict] = {}
        for r in conn.execute("SELECT event_id, name, status FROM grade_checks"):
            checks.setdefault(r["event_id"], {})[r["name"]] = r["status"]
        rows.hints = _dicts(conn, "SELECT h.*, e.at FROM hints h JOIN events e ON e.id = h.event_id "
                                  "ORDER BY e.at, h.event_id")
        rows.injections = _dicts(conn, "SELECT * FROM injections ORDER BY injected_at")
        solutions = _dicts(conn, "SELECT exercise, at, payload FROM events WHERE kind = 'solution' ORDER BY at")
        reveals = _dicts(conn, "SELECT at, payload FROM events WHERE kind = 'reveal' ORDER BY at")
        conn.execute("COMMIT")
        for g in rows.grades:
            g["checks"] = checks.get(g["event_id"], {})
            g.update(_findings(g.pop("payload")))
            g["links"] = json.loads(g["links"]) if g["links"] else None
        for a in rows.attempts:
            a["links"] = json.loads(a["links"])
        rows.solutions = [{"exercise": s["exercise"], "at": s["at"],
                           "forced": bool(json.loads(s["payload"]).get("forced"))} for s in solutions]
        rows.reveals = [{"at": r["at"], **json.loads(r["payload"])} for r in reveals]
        return rows

    try:
        found = _read(folder, query)
    except (ValueError, TypeError) as exc:  # a payload that is not JSON
        raise _fail(path_of(folder), exc) from None
    return found or Rows(path=path_of(folder), exists=False)


def hints_given(folder: Path, attempt: workspace.Attempt, link: str) -> int:
    """How many hints for link this attempt has had."""
    found = _read(folder, lambda conn: conn.execute(
        "SELECT count(*) FROM hints WHERE exercise = ? AND attempt = ? AND link = ?",
        (attempt.exercise, attempt.started_at, link)).fetchone()[0])
    return found or 0


def _findings(payload: str | None) -> dict:
    """What a grade's report said beyond the statuses: each check's message and the diagnosis."""
    report = json.loads(payload) if payload else {}
    if not isinstance(report, dict):
        raise ValueError("a grade's payload is not a JSON object")
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    found = [d for d in report.get("diagnosis") or [] if isinstance(d, dict)]
    return {"messages": {str(c.get("name")): str(c.get("message") or "") for c in checks},
            "diagnosis": [{"bug": d.get("bug"), "link": d.get("link"), "severity": d.get("severity")}
                          for d in found]}


def last_grade(folder: Path, attempt: workspace.Attempt) -> dict | None:
    """The attempt's latest grade: {"checks": {name: status}, "messages", "diagnosis"} as in
    read(); None if it was never graded."""
    def query(conn):
        row = conn.execute("SELECT g.event_id, e.payload FROM grades g JOIN events e ON e.id = g.event_id "
                           "WHERE g.exercise = ? AND g.attempt = ? ORDER BY g.at DESC, g.event_id DESC LIMIT 1",
                           (attempt.exercise, attempt.started_at)).fetchone()
        if row is None:
            return None
        statuses = {r["name"]: r["status"] for r in
                    conn.execute("SELECT name, status FROM grade_checks WHERE event_id = ?", (row["event_id"],))}
        return {"checks": statuses, **_findings(row["payload"])}

    try:
        return _read(folder, query)
    except (ValueError, TypeError) as exc:  # a payload that is not JSON
        raise _fail(path_of(folder), exc) from None


def has_passed(folder: Path, exercise: str) -> bool:
    """Whether an attempt of exercise written from the stub has ever passed in this workspace."""
    return bool(_read(folder, lambda conn: conn.execute(
        "SELECT 1 FROM grades WHERE exercise = ? AND source = 'attempt' AND passed = 1 LIMIT 1",
        (exercise,)).fetchone()))
