"""The drill history: one per learner, `history.sqlite` in home(), owned by this module alone.

Where: $DRILL_HOME when set, else the platform's folder for a user's data
($XDG_DATA_HOME/backprop-drill, ~/.local/share/backprop-drill when unset; ~/Library/Application
Support/backprop-drill on macOS; %LOCALAPPDATA%\backprop-drill on Windows). A learner who
practises in a new folder every day keeps one history. Each row still says which workspace
it came from (events.workspace). A workspace's own `.drill/history.sqlite`, where earlier
drills kept it, is merged in once by the first command that records or reads there (see
_adopt and practice/merge.py): a marker (table merged) keeps a second run from copying it
again, and each merged event carries the digest of what it says (events.origin, unique), so
a copy of the same workspace elsewhere adds nothing twice. The workspace file is left in
place; a damaged one costs one warning line and is moved aside, never merged in part.

Every start, grade, hint, injected bug and solution view is one row of `events` (kind,
exercise, time, a JSON payload) plus a row in a typed table that makes the stats easy.
Each record is one transaction in WAL mode, so two commands writing at once (from two
terminals, in two workspaces) wait for each other (busy_timeout, and the lock file beside the
database) and a command killed mid-write leaves the history as it was before.

Recording is best effort: the record_* functions never stop a command. They return None
when the row is written, else the one-line warning for the command to show. The query
functions raise HistoryError, whose message names the file and says what to do.

The database and SQLite's -wal, -shm and -journal files beside it are opened only as regular
files reached without a symbolic link below home() (SQLite is told `nofollow` as well): a
pipe or a device there is refused, never opened, and no write goes through a link. SQLite
reads it page by page, so its size needs no bound.

Who may unlock `drill solution` (has_passed): only a pass this grader recorded, of that
exercise, in any workspace (the history is the learner's, and so are the passes in it). Each grade
row carries an HMAC-SHA256 of what it says (exercise, source, time, score, verdict...),
keyed with a secret kept outside the workspace, in a file of the user's own
(key_path(): $DRILL_KEY_FILE, else $XDG_CONFIG_HOME/backprop-drill/history.key, else
~/.config/...; made on first use, mode 0600, owned by the user). A row without a MAC that
matches is still history (stats count it) but never unlocks the reference.

Why that holds: a row is only as good as the hand that could compute its MAC. An attempt
graded behind the isolation boundary (`namespaces` or `uid`) sees neither the workspace nor
the key; a history shipped in a zip, cloned, or copied from another user was keyed with
another secret (or none); rows written or edited with the sqlite3 shell have no MAC; and
changing a row's verdict, exercise or source breaks its MAC. What it does not protect
against: code that runs as the user and can read the key, i.e. the user (who may pass
--force anyway: the gate is a practice aid, not a secret) or an attempt graded with
`process` isolation (the same user, no private folder), which can read the key and forge a
row. Copying one's own history between one's own workspaces keeps its passes: they are the
user's own.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
import sys
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader import files
from grader.practice import workspace

FILE_NAME = "history.sqlite"
HOME_ENV = "DRILL_HOME"
SCHEMA_VERSION = 3  # 2: grades.mac; 3: one history per learner (events.workspace, events.origin,
# table merged) and interview drills (attempts.interview, grades.interview)
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
    error_kind TEXT,
    mac TEXT                       -- HMAC of the row (grade_mac), NULL when the key was not at hand
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
# What schema 3 adds to schema 2 (a new history is made as 2, then this): events.workspace, the
# folder it happened in; events.origin, for an event merged from a workspace's own history the
# digest of what it says (unique); attempts.interview and grades.interview, 1 for an interview drill.
_V2_TO_V3 = """
ALTER TABLE events ADD COLUMN workspace TEXT;
ALTER TABLE events ADD COLUMN origin TEXT;
ALTER TABLE attempts ADD COLUMN interview INTEGER;
ALTER TABLE grades ADD COLUMN interview INTEGER;
CREATE TABLE merged (               -- the workspace histories merged in (see _adopt)
    path TEXT PRIMARY KEY,
    signature TEXT NOT NULL,       -- merge.signature of the file when it was merged
    at TEXT NOT NULL,
    events INTEGER NOT NULL        -- how many events it added
);
CREATE UNIQUE INDEX events_by_origin ON events (origin);
"""


class HistoryError(Exception):
    """The history cannot be read or written; the message names the file and what to do."""


def home() -> Path:
    """The folder of the learner's history (see the module's docstring)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    user = Path(os.path.expanduser("~"))
    if sys.platform == "darwin":
        return user / "Library" / "Application Support" / "backprop-drill"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or user / "AppData" / "Local") / "backprop-drill"
    return Path(os.environ.get("XDG_DATA_HOME") or user / ".local" / "share") / "backprop-drill"


def db_path() -> Path:
    return home() / FILE_NAME


def workspace_file(folder: Path) -> Path:
    """Where a workspace kept its own history before drill kept one per learner."""
    return folder / workspace.STATE_DIR / FILE_NAME


def _fail(db: Path, exc: Exception) -> HistoryError:
    return HistoryError(f"the history {db} is unreadable ({exc}); move it away to start a new one")


def _check_files() -> None:
    """HistoryError unless the database and SQLite's files beside it are regular files (or
    missing) reached without a link below home(): never a link, a pipe or a device."""
    db = db_path()
    try:
        files.check_no_links(db.parent, db)
        for suffix in ("", "-wal", "-shm", "-journal"):
            part = db.with_name(db.name + suffix)
            try:
                mode = os.lstat(part).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise files.Refused(part, f"is {files.kind(mode)}, not a regular file")
    except OSError as exc:
        raise _fail(db, exc) from None


def _connect(create: bool) -> sqlite3.Connection:
    db = db_path()
    _check_files()
    if not create and not db.exists():
        raise FileNotFoundError(db)
    try:
        if create:
            db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        uri = "file:" + urllib.parse.quote(str(db)) + "?nofollow=1"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        raise _fail(db, exc) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Only a writer (holding the history's lock) may switch the journal mode: the switch
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
        return  # read only: an empty history, or an older one read as it is
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated it
        if version == 0:
            if conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                raise HistoryError(f"the history {db} holds tables of some other program; "
                                   "move it away to start a new one")
            steps = _SCHEMA + _V2_TO_V3
        else:  # 1: older passes unlock nothing (no mac); 2: rows written before 3 stay as they are
            steps = ("ALTER TABLE grades ADD COLUMN mac TEXT;" if version == 1 else "") + _V2_TO_V3
        for statement in steps.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _locked():
    """The history's lock (`lock` in home()): writers take turns on it as well as in SQLite,
    because creating the history and switching it to WAL are not covered by SQLite's busy
    wait, and two commands doing that at once made one of them fail with "database is locked"."""
    return workspace.locked_in(home(), home())  # home() itself may be a link: the learner's choice


def _write(folder: Path | None, rows) -> str | None:
    """Run rows(conn) in one transaction of the history, after merging in the history of the
    workspace folder if it has one not merged yet; returns a warning about that merge, or None."""
    try:
        with _locked():
            note = _adopt(folder) if folder is not None else None
            _write_locked(rows)
    except workspace.WorkspaceError as exc:
        raise HistoryError(str(exc)) from None
    return note


def _write_locked(rows) -> None:
    conn = _connect(create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _fail(db_path(), exc) from None
    finally:
        conn.close()


# ------------------------------------------------------------------------ merging a workspace's own history

def _adopt(folder: Path) -> str | None:
    """Merge the workspace's own history (workspace_file) into this one, once; under the lock.
    None when there was nothing new to merge, else one line for the command to show."""
    from grader.practice import merge

    folder = Path(folder).resolve()
    old = workspace_file(folder)
    try:
        files.check_no_links(folder, old.parent)  # a `.drill` that is a link: workspace.problems() says so
        signature = merge.signature(old)
        if os.path.lexists(db_path()) and os.path.samefile(old, db_path()):
            return None  # DRILL_HOME is this workspace's `.drill`: it is the history itself
    except OSError:
        return None
    conn = _connect(create=True)
    try:
        done = conn.execute("SELECT signature FROM merged WHERE path = ?", (str(old),)).fetchone()
        if done is not None and done[0] == signature:
            return None
        try:
            tables = merge.read(old)
        except merge.Newer as exc:
            _mark_merged(conn, old, signature, 0)
            return f"left {old} as it is, not merged into your history: {exc}"
        except merge.Damaged as exc:
            return _set_aside(old, str(exc))
        return _insert(conn, folder, old, signature, tables)
    except sqlite3.Error as exc:
        raise _fail(db_path(), exc) from None
    finally:
        conn.close()


def _set_aside(old: Path, why: str) -> str:
    try:
        aside = workspace.move_aside(old)
        for suffix in ("-wal", "-shm"):
            if os.path.lexists(old.with_name(old.name + suffix)):
                os.rename(old.with_name(old.name + suffix), aside.with_name(aside.name + suffix))
    except OSError as exc:
        return f"{old} {why}, and it cannot be moved aside ({exc.strerror or exc}): nothing of it was merged"
    return f"{old} {why}: nothing of it was merged into your history; it is kept as {aside.name}"


def _mark_merged(conn: sqlite3.Connection, old: Path, signature: str, events: int) -> None:
    conn.execute("INSERT OR REPLACE INTO merged VALUES (?, ?, ?, ?)",
                 (str(old), signature, workspace.now().isoformat(), events))


def _insert(conn: sqlite3.Connection, folder: Path, old: Path, signature: str, tables: dict) -> None:
    """Every row of tables (merge.read) into the history, in one transaction: an event it
    holds already (the same origin) is skipped with its rows, so nothing is copied twice."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = {}
        for e in tables["events"]:
            origin = hashlib.sha256(json.dumps([e["kind"], e["exercise"], e["at"], e["payload"]]).encode()).hexdigest()
            cur = conn.execute("INSERT OR IGNORE INTO events (kind, exercise, at, payload, workspace, origin) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (e["kind"], e["exercise"], e["at"], e["payload"],
                                                             str(folder), origin))
            if cur.rowcount:
                ids[e["id"]] = cur.lastrowid
        for table in ("attempts", "grades", "grade_checks", "hints", "injections"):
            for row in tables[table]:
                if row["event_id"] in ids:
                    row = {**row, "event_id": ids[row["event_id"]]}
                    conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(row)}) "
                                 f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        _mark_merged(conn, old, signature, len(ids))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _event(conn: sqlite3.Connection, kind: str, exercise: str | None, at: str, payload: dict,
           folder: Path | None) -> int:
    cur = conn.execute("INSERT INTO events (kind, exercise, at, payload, workspace) VALUES (?, ?, ?, ?, ?)",
                       (kind, exercise, at, json.dumps(payload, default=str),
                        str(Path(folder).resolve()) if folder is not None else None))
    return cur.lastrowid


def _stamp(at: datetime | None) -> str:
    return (at or workspace.now()).isoformat()


def _best_effort(record):
    """Make a writer return None when it wrote, else a one-line warning, instead of raising.
    (A writer may return a warning of its own: something was recorded, not all of it.)"""
    def wrapper(*args, **kwargs) -> str | None:
        try:
            return record(*args, **kwargs)
        except (HistoryError, OSError, sqlite3.Error, ValueError) as exc:
            return f"not recorded in the history: {exc}"
    wrapper.__name__, wrapper.__doc__ = record.__name__, record.__doc__
    return wrapper


# ------------------------------------------------------------------------ the key

KEY_ENV = "DRILL_KEY_FILE"
KEY_BYTES = 32
_MAC_FIELDS = ("exercise", "at", "file", "source", "attempt", "score", "max_score", "passed", "error_kind")


def key_path() -> Path:
    """Where the user's history key is kept: outside every workspace, in the user's own files."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "backprop-drill" / "history.key"


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # made by another command meanwhile
        return
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")


def user_key(create: bool) -> bytes | None:
    """The user's history key (made first when missing and create); None when there is none.
    HistoryError when the file is not a private regular file of this user's."""
    path = key_path()
    try:
        if create and not os.path.lexists(path):
            _make_key(path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HistoryError(f"the history key {path} cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd)
        if not stat.S_ISREG(mode.st_mode) or mode.st_mode & 0o077 or mode.st_uid != os.getuid():
            raise HistoryError(f"the history key {path} is not a private file of yours (mode 0600); "
                               "remove it, and a new one is made (earlier passes then unlock nothing)")
        text = f.read(4 * KEY_BYTES).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise HistoryError(f"the history key {path} is damaged; remove it, and a new one is made")
    return key


def grade_mac(key: bytes, row: dict) -> str:
    """The HMAC of a grade row: of its fields in _MAC_FIELDS, as canonical JSON."""
    row = {**row, "score": float(row["score"]), "max_score": float(row["max_score"]), "passed": int(row["passed"])}
    message = json.dumps([row.get(name) for name in _MAC_FIELDS], separators=(",", ":"), default=str)
    return hmac.new(key, b"drill-grade-1\x00" + message.encode("utf-8"), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------ writing

@_best_effort
def record_start(folder: Path, attempt: workspace.Attempt) -> str | None:
    """`drill start` wrote attempt in the workspace folder."""
    def rows(conn):
        event = _event(conn, "start", attempt.exercise, attempt.started_at,
                       {"file": attempt.file, "links": attempt.links, "timed_minutes": attempt.timed_minutes,
                        "interview": attempt.interview}, folder)
        conn.execute("INSERT OR REPLACE INTO attempts (event_id, exercise, started_at, links, timed_minutes, "
                     "interview) VALUES (?, ?, ?, ?, ?, ?)",
                     (event, attempt.exercise, attempt.started_at, json.dumps(attempt.links),
                      attempt.timed_minutes, int(attempt.interview)))
    return _write(folder, rows)


_GRADE_COLUMNS = ("event_id, exercise, at, file, source, attempt, links, timed_minutes, bug, injected_at, hidden, "
                  "score, max_score, passed, elapsed, error_kind, mac, interview")


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


def _grade_key() -> tuple[bytes | None, str | None]:
    """The key to sign a grade with, or None and why not."""
    try:
        return user_key(create=True), None
    except (HistoryError, OSError) as exc:
        return None, str(getattr(exc, "strerror", None) or exc)


DIGEST_MAX_BYTES = 1 << 20  # past this (the judge refuses such a file anyway) only the start counts


def file_digest(path: Path) -> str | None:
    """The SHA-256 of the file at path, recorded with each grade: `drill hint` regrades a file
    whose content is no longer the one its latest grade judged. None if it cannot be read."""
    try:
        return hashlib.sha256(files.read_bounded(Path(path), DIGEST_MAX_BYTES + 1, follow=True)).hexdigest()
    except OSError:
        return None


def grade_view(report) -> dict:
    """A report as last_grade() gives a recorded grade: statuses, messages, diagnosis."""
    return {"checks": {c.name: check_status(c) for c in report.checks},
            "messages": {c.name: c.message for c in report.checks},
            "diagnosis": [{"bug": d.bug, "link": d.link, "severity": d.severity} for d in report.diagnosis]}


@_best_effort
def record_grade(path: Path, report, at: datetime | None = None) -> str | None:
    """`drill grade` graded path; recorded in the workspace around path (if there is one),
    signed with the user's key (see the module's docstring) when it is at hand."""
    at = at or workspace.now()
    graded = classify(path, at)
    if graded is None:
        return None
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
    signed = {"exercise": report.exercise, "at": at.isoformat(), "file": shown, "source": graded.source,
              "attempt": attempt.started_at if attempt else None, "score": report.score,
              "max_score": report.max_score, "passed": int(report.passed),
              "error_kind": (report.error or {}).get("kind")}
    key, why = _grade_key()

    def rows(conn):
        payload = report.to_dict()
        payload.update(source=graded.source, statuses=statuses, elapsed_seconds=graded.elapsed,
                       file_sha256=file_digest(path))
        event = _event(conn, "grade", report.exercise, signed["at"], payload, graded.folder)
        conn.execute(
            f"INSERT INTO grades ({_GRADE_COLUMNS}) VALUES ({', '.join('?' * 18)})",
            (event, report.exercise, signed["at"], shown, graded.source, signed["attempt"],
             json.dumps(attempt.links) if attempt else None,
             attempt.timed_minutes if attempt else None, injected.get("bug"), injected.get("at"),
             int(bool(injected.get("hidden"))) if injected else None,
             report.score, report.max_score, signed["passed"], graded.elapsed, signed["error_kind"],
             grade_mac(key, signed) if key else None, int(bool(attempt and attempt.interview))))
        conn.executemany("INSERT INTO grade_checks VALUES (?, ?, ?)",
                         [(event, name, status) for name, status in statuses.items()])
    note = _write(graded.folder, rows)
    if key is None and report.passed and graded.source == "attempt":
        return f"this pass is recorded, but cannot unlock `drill solution`: {why}"
    return note


@_best_effort
def record_hint(folder: Path, attempt: workspace.Attempt, link: str, level: int,
                at: datetime | None = None) -> str | None:
    """`drill hint` showed hint number level (from 1) for link."""
    def rows(conn):
        event = _event(conn, "hint", attempt.exercise, _stamp(at),
                       {"attempt": attempt.started_at, "link": link, "level": level}, folder)
        conn.execute("INSERT INTO hints VALUES (?, ?, ?, ?, ?)",
                     (event, attempt.exercise, attempt.started_at, link, level))
    return _write(folder, rows)


@_best_effort
def record_inject(folder: Path, file: str, entry: dict) -> str | None:
    """`drill inject-bug` wrote file (relative to folder); entry is its state.json record."""
    def rows(conn):
        event = _event(conn, "inject", entry.get("exercise"), str(entry.get("at") or _stamp(None)),
                       {"file": file, **entry}, folder)
        conn.execute("INSERT OR REPLACE INTO injections VALUES (?, ?, ?, ?, ?, ?)",
                     (event, entry.get("exercise"), file, str(entry.get("at")), str(entry.get("bug")),
                      int(bool(entry.get("hidden")))))
    return _write(folder, rows)


@_best_effort
def record_reveal(folder: Path, file: str, exercise: str, injected_at: str,
                  at: datetime | None = None) -> str | None:
    """`drill reveal` named the bug injected into file at injected_at: that hunt is given up."""
    return _write(folder, lambda conn: _event(conn, "reveal", exercise, _stamp(at),
                                              {"file": file, "injected_at": injected_at}, folder))


@_best_effort
def record_solution_view(folder: Path | None, exercise: str, forced: bool,
                         at: datetime | None = None) -> str | None:
    """`drill solution` showed the reference of exercise (forced: before passing it)."""
    return _write(folder, lambda conn: _event(conn, "solution", exercise, _stamp(at), {"forced": forced}, folder))


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
    warnings: list[str] = field(default_factory=list)  # merging the workspace's own history: one line each


def _merge_first(folder: Path | None) -> str | None:
    """Before a read: merge the workspace's own history, if it has one (see _adopt)."""
    if folder is None or not os.path.lexists(workspace_file(Path(folder))):
        return None
    try:
        with _locked():
            return _adopt(folder)
    except workspace.WorkspaceError as exc:
        raise HistoryError(str(exc)) from None


def _read(folder: Path | None, query, notes: list[str] | None = None):
    """query(conn) on the history, once the workspace folder's own is merged in (notes gets
    a line about that merge, if any); None when there is no history yet."""
    db = db_path()
    note = _merge_first(folder)
    if note and notes is not None:
        notes.append(note)
    try:
        conn = _connect(create=False)
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


def read(folder: Path | None = None) -> Rows:
    """Everything recorded, in every workspace (folder: a workspace whose own history is
    merged in first, if it has one)."""
    def query(conn):
        rows = Rows(path=db_path(), exists=True)
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

    notes: list[str] = []
    try:
        found = _read(folder, query, notes)
    except (ValueError, TypeError) as exc:  # a payload that is not JSON
        raise _fail(db_path(), exc) from None
    found = found or Rows(path=db_path(), exists=False)
    found.warnings = notes
    return found


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
    read(), and "file_sha256", the file it judged (None before grades recorded it); None if
    it was never graded."""
    def query(conn):
        row = conn.execute("SELECT g.event_id, e.payload FROM grades g JOIN events e ON e.id = g.event_id "
                           "WHERE g.exercise = ? AND g.attempt = ? ORDER BY g.at DESC, g.event_id DESC LIMIT 1",
                           (attempt.exercise, attempt.started_at)).fetchone()
        if row is None:
            return None
        statuses = {r["name"]: r["status"] for r in
                    conn.execute("SELECT name, status FROM grade_checks WHERE event_id = ?", (row["event_id"],))}
        found = _findings(row["payload"])  # a payload that is no JSON object raises here
        digest = json.loads(row["payload"]).get("file_sha256") if row["payload"] else None
        return {"checks": statuses, **found, "file_sha256": digest}

    try:
        return _read(folder, query)
    except (ValueError, TypeError) as exc:  # a payload that is not JSON
        raise _fail(db_path(), exc) from None


def has_passed(folder: Path | None, exercise: str) -> bool:
    """Whether an attempt of exercise written from the stub has passed, in any workspace, by
    a grade this grader recorded: its row's MAC matches under the user's key (see the
    module's docstring). HistoryError when the history or the key cannot be read."""
    key = user_key(create=False)
    if key is None:
        return False

    def query(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] < 2:
            return False  # written before rows were signed: nothing to go on
        rows = conn.execute("SELECT exercise, at, file, source, attempt, score, max_score, passed, error_kind, mac "
                            "FROM grades WHERE exercise = ? AND source = 'attempt' AND passed = 1 "
                            "AND mac IS NOT NULL", (exercise,))
        return any(hmac.compare_digest(grade_mac(key, dict(r)), str(r["mac"])) for r in rows)

    return bool(_read(folder, query))
