"""Notebooks: `drill start --notebook` writes one from the stub, `drill grade FILE.ipynb` grades
its code cells and names cells and lines, batches take notebooks beside .py files."""
import ast
import json
import sys

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.catalog import stubgen
from grader.cli import main
from grader.judge import notebook

nbformat = pytest.importorskip("nbformat")


@pytest.fixture
def drill(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def write_notebook(path, cells):
    """cells: (cell_type, source) pairs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) if kind == "code"
                                         else nbformat.v4.new_markdown_cell(s) for kind, s in cells])
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def solved_notebook(path, exercise):
    """The notebook drill start writes, with every blank filled in by the reference."""
    solved = stubgen.stub_for(exercise, frozenset(b.name for b in exercise.blanks))
    path.write_text(notebook.from_stub(exercise, solved, path.name), encoding="utf-8")
    return path


def code_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    return [(i, c.source) for i, c in enumerate(nb.cells, start=1) if c.cell_type == "code"]


# ---------------------------------------------------------------- the conversion

def test_magics_and_shell_lines_are_left_out_and_every_line_keeps_its_cell():
    converted = notebook.convert_cells([
        ("markdown", "# title"),
        ("code", "import numpy as np\n%matplotlib inline"),
        ("code", "%%timeit\nx = 1"),
        ("code", "def f(x):\n    !ls\n    return x + 1"),
    ])
    assert converted.left_out == [(2, 2, "%matplotlib inline"), (3, 1, "%%timeit"), (4, 2, "!ls")]
    compile(converted.source, "converted.py", "exec")  # a shell line inside a block keeps the block
    lines = converted.source.splitlines()
    assert converted.where(lines.index("    return x + 1") + 1) == (4, 3)
    assert converted.where(1) == (2, 1) and "x = 1" not in converted.source
    kept = notebook.convert_cells([("code", "y = (7\n     % 3\n     != 1)")])  # continuations, not IPython
    assert kept.left_out == [] and kept.source == "y = (7\n     % 3\n     != 1)\n\n"


def test_lines_in_messages_and_tracebacks_name_the_cell():
    converted = notebook.convert_cells([("markdown", "m"), ("code", "a = 1\nb = 2"), ("code", "c = 3")])
    text = 'raised NameError at line 4: x; File "/tmp/drill-x/attempt.py", line 2, in f; File "/usr/lib/np.py", line 2'
    assert notebook.relabel_text(text, converted, "attempt.py") == (
        'raised NameError at cell 3, line 1: x; File "attempt.ipynb", cell 2, line 2, in f; '
        'File "/usr/lib/np.py", line 2')
    warning = "/tmp/drill-x/attempt.py:4: RuntimeWarning: overflow; /usr/lib/np.py:5: x"
    assert notebook.relabel_text(warning, converted, "attempt.py") == (
        "attempt.ipynb, cell 3, line 1: RuntimeWarning: overflow; /usr/lib/np.py:5: x")


# ---------------------------------------------------------------- drill start --notebook

def test_start_notebook_writes_the_task_a_cell_per_function_and_a_grading_cell(drill, tmp_path, exercise):
    result = drill("start", "--notebook")
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{exercise.id}.ipynb"
    assert f"Wrote {path.name}" in result.output and "run its last cell" in result.output
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and exercise.title in first.source
    assert all(f"`{b.name}`" in first.source for b in exercise.blanks)  # the chain, link by link
    assert last.cell_type == "code" and last.source == f"!drill grade {path.name}"
    cells = [source for _, source in code_cells(path)][:-1]
    for fn in exercise.functions:  # one cell per function, with its blanks
        (cell,) = [c for c in cells if f"def {fn}(" in c]
        assert "todo(" in cell
    # generated from the stub itself: the code cells are the stub without its docstring
    stub = ast.parse(stubgen.stub_for(exercise))
    stub.body = stub.body[1:]
    assert ast.dump(ast.parse("\n\n".join(cells))) == ast.dump(stub)
    again = drill("start", "--notebook")
    assert again.exit_code == 1 and "--force" in again.output


def test_the_untouched_notebook_scores_nothing_and_the_solved_one_passes(drill, tmp_path, exercise):
    assert drill("start", "--notebook").exit_code == 0
    result = drill("grade")  # the workspace's attempt is the notebook
    assert result.exit_code == 1, result.output
    assert "Score: 0/100" in result.output and "Traceback" not in result.output
    solved_notebook(tmp_path / f"{exercise.id}.ipynb", exercise)
    result = drill("grade", f"{exercise.id}.ipynb", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["passed"] and report["file"] == f"{exercise.id}.ipynb"
    assert not [d for d in report["diagnosis"] if "IPython" in d["message"]]  # the grading cell goes unsaid


def test_errors_name_the_cell_and_line(drill, tmp_path, exercise):
    path = solved_notebook(tmp_path / "hw.ipynb", exercise)
    nb = nbformat.read(str(path), as_version=4)
    cell = next(i for i, c in enumerate(nb.cells) if "def backward(" in c.source)
    lines = nb.cells[cell].source.splitlines()
    line = next(i for i, text in enumerate(lines) if text.strip().startswith("dz1 ="))
    lines[line] = lines[line].replace("dz1 = ", "dz1 = undefined_name + ")
    nb.cells[cell].source = "\n".join(lines)
    nb.cells.insert(1, nbformat.v4.new_code_cell("%matplotlib inline"))
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    report = json.loads(drill("grade", "hw.ipynb", "--exercise", exercise.id, "--json").output)
    dz1 = next(c for c in report["checks"] if c["name"] == "dz1")
    assert f"NameError at cell {cell + 2}, line {line + 1}" in dz1["message"]
    assert any("cell 2, line 1: %matplotlib inline" in d["message"] for d in report["diagnosis"])


def test_a_syntax_error_names_the_cell(drill, tmp_path, exercise):
    write_notebook(tmp_path / "hw.ipynb", [("markdown", "hi"), ("code", "import numpy as np"),
                                           ("code", "def forward(params, x):\n    return (")])
    result = drill("grade", "hw.ipynb", "--exercise", exercise.id, "--json")
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["kind"] == "syntax" and "at cell 3, line 2" in error["message"]


@pytest.mark.parametrize("content", ["not json", "{}", '{"cells": 3}', b"\xff\xfe\x00"])
def test_a_file_that_is_no_notebook_is_reported_not_a_traceback(drill, tmp_path, exercise, content):
    path = tmp_path / "hw.ipynb"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = drill("grade", "hw.ipynb", "--exercise", exercise.id, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["error"]["kind"] == "syntax" and "not a Jupyter notebook" in report["error"]["message"]
    assert report["score"] == 0


def test_a_notebook_of_too_many_cells_is_refused_before_nbformat_validates_it(tmp_path, monkeypatch):
    """nbformat validates each cell in the grader's own process, outside --timeout: 150,000 empty
    cells (15 MB, under MAX_NOTEBOOK_BYTES) took 34 s to read. Outputs and metadata, which
    grading never reads, are not given to it at all."""
    cell = {"cell_type": "code", "metadata": {"m": [0] * 50}, "execution_count": None, "source": "x = 1\n",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}] * 50}
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_CELLS", 5)  # 2000 in use: a fast test
    path = tmp_path / "hw.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [cell] * notebook.MAX_NOTEBOOK_CELLS}))
    assert len(notebook.read_cells(path)) == notebook.MAX_NOTEBOOK_CELLS
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [cell] * (notebook.MAX_NOTEBOOK_CELLS + 1)}))
    with pytest.raises(notebook.NotebookError, match="more than .* cells"):
        notebook.read_cells(path)


def test_without_nbformat_the_message_says_how_to_install_it(drill, tmp_path, monkeypatch):
    write_notebook(tmp_path / "hw.ipynb", [("code", "x = 1")])
    monkeypatch.setitem(sys.modules, "nbformat", None)  # import nbformat raises ImportError
    for args in (["grade", "hw.ipynb"], ["grade", "."], ["start", "--notebook"]):
        result = drill(*args)
        assert result.exit_code == 2, result.output
        assert notebook.INSTALL in result.output and "Traceback" not in result.output
    assert not (tmp_path / "mlp_backprop.ipynb").exists()


def test_a_batch_takes_notebooks_and_checkpoints_are_left_out(drill, tmp_path, exercise):
    for student in ("ann", "bob"):
        (tmp_path / "subs" / student / ".ipynb_checkpoints").mkdir(parents=True)
    solved_notebook(tmp_path / "subs" / "ann" / "hw.ipynb", exercise)
    (tmp_path / "subs" / "ann" / ".ipynb_checkpoints" / "hw-checkpoint.ipynb").write_text("{}")
    (tmp_path / "subs" / "bob" / "mlp_backprop.py").write_text(stubgen.stub_for(exercise))
    result = drill("grade", "subs", "--exercise", exercise.id, "--json")
    assert result.exit_code == 1, result.output
    rows = {r["file"]: r["passed"] for r in json.loads(result.output)["results"]}
    assert rows == {"subs/ann/hw.ipynb": True, "subs/bob/mlp_backprop.py": False}


@pytest.mark.parametrize("exercise_id", sorted(catalog.exercises()))
def test_every_exercise_works_as_a_notebook(tmp_path, exercise_id):
    exercise = catalog.exercise(exercise_id)
    solved = solved_notebook(tmp_path / f"{exercise.id}.ipynb", exercise)
    stub = tmp_path / "stub" / f"{exercise.id}.ipynb"
    stub.parent.mkdir()
    stub.write_text(notebook.from_stub(exercise, stubgen.stub_for(exercise), stub.name), encoding="utf-8")
    results = {path: CliRunner().invoke(main, ["grade", str(path), "--json"]) for path in (solved, stub)}
    assert results[solved].exit_code == 0, results[solved].output
    assert json.loads(results[stub].output)["score"] == 0
