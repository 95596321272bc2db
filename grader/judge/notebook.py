"""Jupyter notebooks as attempts: the code cells graded as one Python file, lines named by cell.

Owns the notebook format both ways: writing an exercise's stub as a notebook (`drill start
--notebook`: a markdown cell with the task and the chain, a code cell per function of the
stub, a last cell that grades), and reading one back (`drill grade FILE.ipynb`): its code
cells become plain Python, with IPython magics (`%...`, a `%%` cell) and shell lines
(`!...`) left out, and a line map, so every message of the report that names a line of
that Python names the cell and its line instead (`at cell 4, line 3`).

The attempt's process never sees the notebook: judge() writes the converted code to a
temporary .py file and hands that to the judge of plain files.

Notebooks are read and written with nbformat, the format's own library: the optional
extra `notebook` (require() says how to install it).
May import: catalog, judge.report.
"""
from __future__ import annotations

import ast
import json
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader import parse_ast
from grader.judge.report import CheckResult, Diagnosis, Report

SUFFIX = ".ipynb"
MAX_NOTEBOOK_BYTES = 20_000_000  # a notebook keeps its outputs (pictures): larger than a .py file
# nbformat validates every cell, in the grader's own process and outside --timeout (about 0.25 ms
# a cell): 150,000 empty cells (15 MB) took 34 s. An exercise's notebook has a dozen.
MAX_NOTEBOOK_CELLS = 2_000
INSTALL = "python3 -m pip install 'backprop-drill[notebook]'"
GRADE_CELL = "!drill grade {name}"


class NotebookUnavailable(Exception):
    """nbformat is not installed: the message says how to install it."""


class NotebookError(Exception):
    """The file is not a notebook that can be read: the message says why."""


def is_notebook(path: Path | str) -> bool:
    return Path(path).suffix.lower() == SUFFIX


def require():
    """The nbformat module, or NotebookUnavailable with the command that installs it."""
    try:
        import nbformat
    except ImportError:
        raise NotebookUnavailable(f"notebooks are read and written with nbformat, which is not installed: "
                                  f"{INSTALL}") from None
    return nbformat


# ---------------------------------------------------------------- reading: notebook -> Python

@dataclass
class Converted:
    """The code cells of a notebook as one Python source, and where each of its lines came from."""

    source: str
    lines: list[tuple[int, int] | None]  # line k of source (lines[k-1]) is (cell, line), or None
    left_out: list[tuple[int, int, str]] = field(default_factory=list)  # (cell, line, text)

    def where(self, line: int) -> tuple[int, int] | None:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else None


def _ipython_only(stripped: str) -> bool:
    return stripped.startswith(("%", "!")) and not stripped.startswith("!=")


def _is_python(text: str) -> bool:
    """Whether a cell compiles as it is: then a line that starts with % or ! is a continuation
    (`    % n` inside brackets), not a magic, and the cell is kept whole."""
    try:
        compile(text, "<cell>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def convert_cells(cells: list[tuple[str, str]]) -> Converted:
    """(cell_type, source) pairs, in notebook order, as one Python file. Cells are numbered from
    1 counting every cell (markdown too), as a notebook shows them top to bottom. In a cell that
    is not Python as it stands, a magic or shell line becomes `pass` at its indentation (a block
    stays a block); a `%%` cell is left out whole."""
    out: list[str] = []
    lines: list[tuple[int, int] | None] = []
    left_out: list[tuple[int, int, str]] = []
    for number, (kind, text) in enumerate(cells, start=1):
        if kind != "code" or not text.strip():
            continue
        if text.lstrip().startswith("%%"):  # a cell magic: the whole cell is IPython's
            left_out.append((number, 1, text.lstrip().splitlines()[0]))
            continue
        python = _is_python(text)
        for i, line in enumerate(text.splitlines(), start=1):
            stripped = line.lstrip()
            if not python and _ipython_only(stripped):
                left_out.append((number, i, stripped))
                line = line[:len(line) - len(stripped)] + "pass"
            out.append(line)
            lines.append((number, i))
        out.append("")
        lines.append(None)
    return Converted("\n".join(out) + ("\n" if out else ""), lines, left_out)


def read_cells(path: Path) -> list[tuple[str, str]]:
    """The (cell_type, source) of every cell of the notebook at path (nbformat reads it)."""
    nbformat = require()
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise NotebookError(f"cannot read the notebook: {exc.strerror or exc}") from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
    try:
        text = _sources_only(data.decode("utf-8"))
        notebook = nbformat.reads(text, as_version=4, capture_validation_error={})
        return [(str(cell.get("cell_type", "")), str(cell.get("source", ""))) for cell in notebook.cells]
    except UnicodeDecodeError:
        raise NotebookError("the file is not a Jupyter notebook: it is not UTF-8 text") from None
    except NotebookError:
        raise
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a file that is no notebook
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise NotebookError(f"the file is not a Jupyter notebook nbformat can read ({reason})") from None


def _sources_only(text: str) -> str:
    """The notebook's JSON with what grading never reads (outputs, attachments, metadata) left
    out, so that nbformat validates little; NotebookError past MAX_NOTEBOOK_CELLS cells. Text that
    is not a notebook's JSON is given back as it is, for nbformat to say what is wrong."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(raw, dict):
        return text
    worksheets = raw.get("worksheets")  # nbformat 3 keeps its cells in worksheets
    sheets = [raw, *(w for w in worksheets if isinstance(w, dict))] if isinstance(worksheets, list) else [raw]
    cells = [c for w in sheets if isinstance(w.get("cells"), list) for c in w["cells"]]
    if len(cells) > MAX_NOTEBOOK_CELLS:
        raise NotebookError(f"the notebook has more than {MAX_NOTEBOOK_CELLS} cells")
    if raw.get("nbformat") == 4:
        raw["metadata"] = {}
    for cell in cells:
        if isinstance(cell, dict):
            cell["metadata"] = {}
            cell.pop("attachments", None)
            if "outputs" in cell:
                cell["outputs"] = []
    return json.dumps(raw)


def convert(path: Path) -> Converted:
    return convert_cells(read_cells(path))


def code_text(path: Path) -> str:
    """The Python of the notebook's code cells, '' when it cannot be read (to tell its exercise)."""
    try:
        return convert(path).source
    except (NotebookError, NotebookUnavailable):
        return ""


# ---------------------------------------------------------------- grading

def judge(target, judge_file) -> Report:
    """Grade the notebook of target (a judge.grade.Target) with judge_file, the judge of a plain
    .py file: its code cells are converted into a temporary file, and the report says cells."""
    started = time.perf_counter()
    try:
        converted = convert(target.path)
    except (NotebookError, NotebookUnavailable) as exc:
        unread = ({"kind": "import", "message": str(exc)} if isinstance(exc, NotebookUnavailable)
                  else {"kind": "syntax", "message": str(exc)})
        checks = [CheckResult(c.name, False, 0, c.points, "not run", open=True) for c in target.exercise.checks]
        return Report(exercise=target.exercise.id, file=str(target.path), checks=checks,
                      error=unread, seconds=time.perf_counter() - started)
    with tempfile.TemporaryDirectory(prefix="drill-notebook-") as folder:
        python = Path(folder) / f"{target.path.stem}.py"
        python.write_text(converted.source, encoding="utf-8")
        report = judge_file(replace(target, path=python))
    relabel(report, converted, python.name)
    report.file = str(target.path)
    note = left_out_note(converted)
    if note:
        report.diagnosis.append(Diagnosis(bug=None, link="-", severity="note", message=note))
    return report


def left_out_note(converted: Converted) -> str | None:
    """What of the notebook was not graded (the grading cell itself goes without saying)."""
    shown = [(c, n, t) for c, n, t in converted.left_out if not t.startswith("!drill ")]
    if not shown:
        return None
    where = "; ".join(f"cell {c}, line {n}: {t[:60]}" for c, n, t in shown[:5]) + ("; ..." if len(shown) > 5 else "")
    return (f"{len(shown)} IPython line{'s' if len(shown) != 1 else ''} (magics %, shell lines !) "
            f"{'were' if len(shown) != 1 else 'was'} left out: the grader runs the code cells as plain "
            f"Python ({where})")


_AT_LINE = re.compile(r"\bat line (\d+)")
_FRAME = re.compile(r'File "([^"]*)", line (\d+)')  # a traceback's frame
_WARNING = re.compile(r'([^\s:"]+):(\d+):')  # a warning's origin, path:line:


def relabel_text(text: str, converted: Converted, python_name: str) -> str:
    """text with every line of the converted file named as a cell and a line of the notebook."""
    def at(match):
        found = converted.where(int(match[1]))
        return f"at cell {found[0]}, line {found[1]}" if found else match[0]

    def frame(match):
        found = converted.where(int(match[2]))
        if Path(match[1]).name != python_name or found is None:
            return match[0]
        return f'File "{Path(python_name).stem}{SUFFIX}", cell {found[0]}, line {found[1]}'

    def origin(match):
        found = converted.where(int(match[2]))
        if Path(match[1]).name != python_name or found is None:
            return match[0]
        return f"{Path(python_name).stem}{SUFFIX}, cell {found[0]}, line {found[1]}:"

    return _WARNING.sub(origin, _FRAME.sub(frame, _AT_LINE.sub(at, text)))


def relabel(report: Report, converted: Converted, python_name: str) -> None:
    """Every message of report that names a line of the converted file names a cell instead."""
    def fix(text):
        return relabel_text(text, converted, python_name) if isinstance(text, str) else text

    if report.error:
        report.error = {**report.error, "message": fix(report.error.get("message"))}
    for c in report.checks:
        c.message, c.notes = fix(c.message), [fix(n) for n in c.notes]
    for d in report.diagnosis:
        d.message, d.hint = fix(d.message), fix(d.hint)
    for stream in ("stdout", "stderr"):
        if isinstance(report.output.get(stream), list):
            report.output[stream] = [fix(line) for line in report.output[stream]]


# ---------------------------------------------------------------- writing: stub -> notebook

def stub_cells(stub: str) -> list[str]:
    """The stub's code split into cells: one per top-level function or class (with the comments
    above it), the other statements between them kept together; the module docstring left out."""
    tree = parse_ast(stub)
    lines = stub.splitlines()
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    ends: list[tuple[bool, int]] = []  # (a function or class of its own, its last line)
    for node in body:
        own = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if own or not ends or ends[-1][0]:
            ends.append((own, node.end_lineno))
        else:  # a statement between functions joins the ones before it
            ends[-1] = (False, node.end_lineno)
    cells = []
    start = tree.body[0].end_lineno if len(body) < len(tree.body) else 0
    for _, end in ends:
        cells.append("\n".join(lines[start:end]).strip("\n"))
        start = end
    return [c for c in cells if c.strip()]


def _task(exercise) -> str:
    chain = "\n".join(f"{i}. `{b.name}`: {b.what}; {b.shape}" for i, b in enumerate(exercise.blanks, start=1))
    return (f"# {exercise.title}\n\n{exercise.description.rstrip()}\n\n"
            f"## The chain, link by link\n\n{chain}\n\n"
            "Each link is a `todo()` in the cells below: replace it with your own code. "
            f"When you are done, **save the notebook** and run the last cell: `drill grade` reads the saved "
            "file, grades every link on its own, and names each problem by its cell and line.")


def from_stub(exercise, stub: str, name: str) -> str:
    """The notebook (JSON text) for exercise, made from its stub: the task, a code cell per
    function, and a last cell that grades the notebook saved as name."""
    nbformat = require()
    v4 = nbformat.v4
    cells = [v4.new_markdown_cell(_task(exercise))]
    cells += [v4.new_code_cell(code) for code in stub_cells(stub)]
    cells += [v4.new_markdown_cell("## Grade it\n\nSave the notebook first (Ctrl-S): the grader reads the file."),
              v4.new_code_cell(GRADE_CELL.format(name=name))]
    for number, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{number}"  # fixed ids: the same stub makes the same notebook
    notebook = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    return nbformat.writes(notebook) + "\n"
