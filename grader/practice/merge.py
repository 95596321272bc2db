"""A workspace's own `.drill/history.sqlite`, where drill kept the history before it followed
the learner (schema 1 and 2): read once, as untrusted input, for history to merge it into
the learner's one history.

The file may have come with the workspace from anywhere (a zip, a clone, someone else's
folder), so it is read only as a regular file reached without a symbolic link, at most
MAX_BYTES with its -wal (files.read_bounded: a pipe never hangs), copied into a private
temporary folder and opened there (SQLite replays what its WAL holds; the original is never
opened by SQLite and never written). The copy must pass SQLite's quick_check and carry a
schema this drill knows, at most MAX_ROWS rows a table, and every row must hold the types
its column says (JSON where JSON is kept, texts within MAX_TEXT): else Damaged, and nothing
of it is merged. A row's MAC is copied as it is, so a pass this user's grader signed still
unlocks `drill solution`, and a forged one still does not.

May import: files.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
from pathlib import Path

from grader import files

MAX_BYTES = 256 << 20  # a history of thousands of grades is a few tens of MB
MAX_ROWS = 500_000
MAX_TEXT = 1 << 20  # a grade's payload (its report) is a few KB
NEWEST_SCHEMA = 3

# Each table's columns as "name:kind"; kind ends in "?" when NULL is allowed (and the column
# may be missing: schema 1 had no grades.mac).
TABLES = {
    "events": ("id:int", "kind:str", "exercise:str?", "at:str", "payload:object"),
    "attempts": ("event_id:int", "exercise:str", "started_at:str", "links:names", "timed_minutes:number?"),
    "grades": ("event_id:int", "exercise:str", "at:str", "file:str", "source:str", "attempt:str?", "links:names?",
               "timed_minutes:number?", "bug:str?", "injected_at:str?", "hidden:int?", "score:number",
               "max_score:number", "passed:int", "elapsed:number?", "error_kind:str?", "mac:str?"),
    "grade_checks": ("event_id:int", "name:str", "status:str"),
    "hints": ("event_id:int", "exercise:str", "attempt:str", "link:str", "level:int"),
    "injections": ("event_id:int", "exercise:str", "file:str", "injected_at:str", "bug:str", "hidden:int"),
}


class Damaged(Exception):
    """The file is no drill history this drill can trust; the message says why, in a few words."""


class Newer(Exception):
    """The file was written by a newer drill: it is left as it is."""


def signature(db: Path) -> str:
    """What the file and its -wal are now (kind, size, time): the same signature, nothing new
    to merge. FileNotFoundError when there is no file."""
    parts = []
    for suffix in ("", "-wal"):
        try:
            st = os.lstat(db.with_name(db.name + suffix))
        except FileNotFoundError:
            if not suffix:
                raise
            parts.append("-")
            continue
        parts.append(f"{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def read(db: Path) -> dict[str, list[dict]]:
    """Every row of the history at db, by table, validated; Damaged or Newer."""
    with tempfile.TemporaryDirectory(prefix="drill-merge-") as tmp:
        copy = Path(tmp) / "history.sqlite"
        total = 0
        for suffix in ("", "-wal"):
            try:
                data = files.read_bounded(db.with_name(db.name + suffix), MAX_BYTES - total)
            except FileNotFoundError:
                if not suffix:
                    raise Damaged("is gone") from None
                continue
            except OSError as exc:
                why = exc.why if isinstance(exc, files.Refused) else f"cannot be read ({exc.strerror or exc})"
                raise Damaged(f"has a -wal file that {why}" if suffix else why) from None
            total += len(data)
            copy.with_name(copy.name + suffix).write_bytes(data)
        conn = sqlite3.connect(copy)
        try:
            return _tables(conn)
        except (sqlite3.Error, OverflowError) as exc:
            raise Damaged(f"is not an SQLite database drill can read ({str(exc)[:80]})") from None
        finally:
            conn.close()


def _tables(conn: sqlite3.Connection) -> dict[str, list[dict]]:
    if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise Damaged("fails SQLite's quick_check")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > NEWEST_SCHEMA:
        raise Newer(f"written by a newer drill (schema {version}); upgrade backprop-drill to merge it")
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0:
        if present:
            raise Damaged("holds tables of some other program")
        return {table: [] for table in TABLES}
    return {table: _rows(conn, table, spec, present) for table, spec in TABLES.items()}


def _rows(conn: sqlite3.Connection, table: str, spec: tuple[str, ...], present: set[str]) -> list[dict]:
    if table not in present:
        raise Damaged(f"has no table {table}")
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    names, selected = [], []
    for item in spec:
        name, kind = item.split(":")
        if name not in have and not kind.endswith("?"):
            raise Damaged(f"has no column {table}.{name}")
        names.append(name)
        selected.append(name if name in have else "NULL")
    found = conn.execute(f"SELECT {', '.join(selected)} FROM {table} LIMIT {MAX_ROWS + 1}").fetchall()
    if len(found) > MAX_ROWS:
        raise Damaged(f"has more than {MAX_ROWS} rows in {table}")
    kinds = [item.split(":")[1] for item in spec]
    for row in found:
        for name, kind, value in zip(names, kinds, row):
            if not _valid(kind, value):
                raise Damaged(f"has a value in {table}.{name} that is not {kind.rstrip('?')}")
    return [dict(zip(names, row)) for row in found]


def _valid(kind: str, value) -> bool:
    if value is None:
        return kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "int":
        return isinstance(value, int) and abs(value) < 2**53
    if kind == "number":
        return isinstance(value, (int, float)) and math.isfinite(value)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return False
    if kind == "str":
        return len(value) <= 4096
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return False
    if kind == "object":
        return isinstance(parsed, dict)
    return isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)  # names
