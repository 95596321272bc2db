"""What is being graded: the attempt file's text, read without running it, and its exercise.

Owns: reading an attempt safely (never a pipe or a device, never more than MAX_FILE_BYTES),
the error of a file that cannot be Python at all, and telling an unnamed file's exercise.
May import: catalog.
"""
from __future__ import annotations

from pathlib import Path

from grader import catalog

MAX_FILE_BYTES = 1_000_000


def guess_exercise(path: Path, text: str | None = None) -> catalog.Exercise:
    """The exercise of a file nobody named one for: the one it is named after (mlp_backprop.py,
    as `drill start` names it), else the one whose functions it defines, else the one its
    name mentions (my_softmax_ce_try.py), see catalog.guess; else the default one. text: the
    file's text when the caller has read it already (source_text)."""
    ids = sorted(catalog.exercises(), key=len, reverse=True)
    if path.stem in ids:  # the name `drill start` gives an attempt
        return catalog.exercise(path.stem)
    named = next((i for i in ids if i in path.stem), None)
    return catalog.guess(source_text(path) if text is None else text, named) or catalog.exercise(named)


def source_text(path: Path) -> str:
    """The text of the attempt at path as far as it can be read ('' if not): never opens a
    pipe or a device (reading it could block), never reads more than MAX_FILE_BYTES."""
    if not path.is_file():
        return ""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def unreadable(path: Path, exercise: catalog.Exercise) -> dict | None:
    """An error for a file that cannot be Python at all, found without running it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return {"kind": "import", "message": f"cannot read the file: {exc.strerror or exc}"}
    if len(data) > MAX_FILE_BYTES:
        return {"kind": "syntax", "message": f"the file is larger than {MAX_FILE_BYTES} bytes; "
                                             "an attempt is a short Python file"}
    if not data.strip():
        return {"kind": "missing-function", "message": "the file is empty: it defines none of "
                                                       + ", ".join(exercise.functions)}
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return {"kind": "syntax", "message": "the file is UTF-16 text; save it as UTF-8"}
    if b"\x00" in data:
        return {"kind": "syntax", "message": "the file holds binary data (NUL bytes), not Python source"}
    problem = _undecodable(data)
    if problem:
        return {"kind": "syntax", "message": problem}
    try:
        compile(data, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        if "decode" in str(exc.msg) or "utf-8" in str(exc.msg).lower():
            return {"kind": "syntax", "message": f"the file is not UTF-8 text{where}"}
        return {"kind": "syntax", "message": f"syntax error{where}: {exc.msg}"}
    except (ValueError, MemoryError, RecursionError) as exc:
        return {"kind": "syntax", "message": f"the file cannot be compiled: {exc}"}
    return None


def _undecodable(data: bytes) -> str | None:
    """Why data is not text in the encoding Python would read it with (UTF-8 unless declared)."""
    import io
    import tokenize

    encoding = "utf-8"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except SyntaxError as exc:  # an unknown encoding declared, or the first lines undecodable
        if "unknown encoding" in str(exc):
            return f"the file declares an encoding Python does not know ({exc})"
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as undecodable:
            return _undecodable_at(data, undecodable, "UTF-8")
        return "the file's encoding declaration does not match its bytes"
    except UnicodeDecodeError as exc:
        return _undecodable_at(data, exc, encoding)
    return None


def _undecodable_at(data: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    line = data.count(b"\n", 0, exc.start) + 1
    return f"the file is not {encoding} text: byte 0x{data[exc.start]:02x} at line {line} is not valid"
