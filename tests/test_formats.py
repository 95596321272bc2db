"""The output formats (Gradescope results.json, JUnit XML, CSV, the batch table) and the pictures.

Schema tests run on real reports of a few fixture attempts, graded once, and on made-up
reports for what no fixture prints (control characters, formula-like names).
"""
import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grader.course import batch, formats
from grader import catalog, settings
from grader.cli import main
from grader.judge.report import CheckResult, Diagnosis, Report

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"
NAMES = ["correct_reference.py", "wrong_missing_n.py", "broken_syntax.py", "broken_missing_function.py"]
GRADESCOPE_STATUSES = {"passed", "failed"}
GRADESCOPE_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def reports():
    # the canonical seed: the messages below name its sizes (a batch draws its own otherwise)
    graded = batch.run([FIXTURES / n for n in NAMES], jobs=2, seed=settings.PROBE_SEED)
    return dict(zip(NAMES, graded.reports))


def made_up(file="=HYPERLINK(1)&<x>.py", stdout=("\x1b[31mred\x1b[0m", "nul \x00 here")) -> Report:
    checks = [CheckResult(c.name, c.name != "dz2", 0 if c.name == "dz2" else c.points, c.points,
                          "dz2 is wrong \x07 where z1 < 0" if c.name == "dz2" else "fine")
              for c in catalog.exercise().checks]
    return Report(exercise="mlp_backprop", file=file, checks=checks, seconds=1.25,
                  diagnosis=[Diagnosis("missing-n", "dz2", "error", "N times too large", hint="ratio?")],
                  output={"stdout": list(stdout), "stderr": []})


# ---------------------------------------------------------------- Gradescope

@pytest.mark.parametrize("name", NAMES)
def test_gradescope_results_json_schema(reports, name):
    report = reports[name]
    data = json.loads(json.dumps(formats.gradescope(report), allow_nan=False))
    assert {"score", "execution_time", "output", "tests", "stdout_visibility"} <= set(data)
    assert isinstance(data["score"], float) and 0 <= data["score"] <= 100
    assert isinstance(data["execution_time"], (int, float)) and data["execution_time"] >= 0
    assert isinstance(data["output"], str) and data["output"]
    assert data["stdout_visibility"] in GRADESCOPE_VISIBILITY
    # Gradescope's spec: "text", "html", "simple_format", "md" or "ansi"; an attempt's output must never be markup
    assert data["output_format"] == data["test_output_format"] == data["test_name_format"] == "text"
    assert [t["name"] for t in data["tests"]] == [c.name for c in report.checks]
    for test, check in zip(data["tests"], report.checks):
        assert set(test) == {"name", "score", "max_score", "status", "output", "output_format", "visibility"}
        assert test["output_format"] == "text"
        assert test["status"] in GRADESCOPE_STATUSES and (test["status"] == "passed") == check.passed
        assert test["visibility"] in GRADESCOPE_VISIBILITY
        assert 0 <= test["score"] <= test["max_score"] and isinstance(test["output"], str)
    assert math.isclose(sum(t["score"] for t in data["tests"]), data["score"], abs_tol=1e-3)
    assert math.isclose(sum(t["max_score"] for t in data["tests"]), 100, abs_tol=1e-3)
    assert data["extra_data"]["passed"] is report.passed


def test_gradescope_scales_to_the_assignment_points(reports):
    data = formats.gradescope(reports["wrong_missing_n.py"], points=20)
    assert data["score"] == pytest.approx(reports["wrong_missing_n.py"].score / 5)
    assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(20)
    assert "of 20 points" in data["output"]


def test_gradescope_test_output_is_the_check_message_with_its_diagnosis(reports):
    tests = {t["name"]: t for t in formats.gradescope(reports["wrong_missing_n.py"])["tests"]}
    dz2 = tests["dz2"]["output"]
    assert "factor of N" in dz2 and "[missing-n]" in dz2 and "hint:" in dz2
    assert "[missing-n]" not in tests["dW2"]["output"]


def test_gradescope_says_why_a_broken_attempt_scores_nothing(reports):
    data = formats.gradescope(reports["broken_syntax.py"])
    assert data["score"] == 0 and "syntax error at line" in data["output"]
    assert all("could not be run to the end (syntax)" in t["output"] for t in data["tests"])


def test_drill_grade_format_gradescope_prints_results_json():
    result = CliRunner().invoke(main, ["grade", str(FIXTURES / "broken_syntax.py"), "--format", "gradescope",
                                       "--points", "10"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["score"] == 0 and sum(t["max_score"] for t in data["tests"]) == pytest.approx(10)


# ---------------------------------------------------------------- JUnit

def test_junit_schema_a_suite_per_attempt_a_case_per_check(reports):
    chosen = [reports[n] for n in NAMES]
    root = ET.fromstring(formats.junit(chosen).encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [r.file for r in chosen]
    total_failures = 0
    for suite, report in zip(suites, chosen):
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == [c.name for c in report.checks]
        assert all(c.get("classname") == report.file.removesuffix(".py").replace(".", "_") for c in cases)
        tag = "error" if report.error else "failure"  # could not be run to the end: errors
        failed = [c.get("name") for c in cases if c.find(tag) is not None]
        assert failed == [c.name for c in report.checks if not c.passed]
        for case in cases:
            failure = case.find(tag)
            assert failure is None or (failure.get("message") and failure.get("type") and failure.text)
            assert failure is None or failure.get("type") == (report.error["kind"] if report.error else "check-failed")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("errors" if report.error else "failures")) == len(failed)
        assert int(suite.get("failures" if report.error else "errors")) == 0 and float(suite.get("time")) >= 0
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["passed"] == str(report.passed).lower() and float(props["score"]) == report.score
        total_failures += len(failed)
    assert int(root.get("tests")) == sum(len(r.checks) for r in chosen)
    assert int(root.get("failures")) + int(root.get("errors")) == total_failures


def test_junit_is_valid_xml_whatever_the_attempt_printed():
    text = formats.junit([made_up()])
    root = ET.fromstring(text.encode())  # control characters replaced, & < > escaped
    suite = root.find("testsuite")
    assert suite.get("name") == "=HYPERLINK(1)&<x>.py"
    assert "red" in suite.find("system-out").text and "\x00" not in text and "\x1b" not in text
    assert "[missing-n]" in suite.find("testcase[@name='dz2']/failure").text


def test_drill_grade_format_junit_on_one_file():
    result = CliRunner().invoke(main, ["grade", str(FIXTURES / "broken_syntax.py"), "--format", "junit"])
    assert result.exit_code == 1
    suite = ET.fromstring(result.stdout.encode()).find("testsuite")
    assert suite.get("errors") == "14" and suite.get("failures") == "0"
    assert suite.find("testcase/error").get("type") == "syntax"


# ---------------------------------------------------------------- CSV and the table

def test_csv_one_row_per_attempt_a_column_per_check(reports):
    out = io.StringIO()
    formats.write_csv([reports[n] for n in NAMES], out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["file"] for r in rows] == [reports[n].file for n in NAMES]
    checks = [c.name for c in catalog.exercise().checks]
    assert list(rows[0]) == formats.CSV_FIELDS + checks
    for row, name in zip(rows, NAMES):
        report = reports[name]
        assert float(row["score"]) == report.score and row["passed"] == str(report.passed).lower()
        assert sum(float(row[c]) for c in checks) == pytest.approx(report.score)
    assert rows[2]["error_kind"] == "syntax" and rows[1]["first_failure"] == "dz2"


def test_csv_cells_never_start_a_spreadsheet_formula():
    out = io.StringIO()
    formats.write_csv([made_up()], out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["file"] == "'=HYPERLINK(1)&<x>.py"


def test_batch_table_lists_every_attempt_then_the_totals(reports):
    chosen = [reports[n] for n in NAMES]
    summary = batch.Batch(chosen, seconds=3.0, jobs=2).summary()
    table = formats.batch_table(chosen, summary).splitlines()
    assert len(table) == 1 + len(chosen) + 4
    assert " PASS " in table[1] and " syntax " in table[3]
    assert "dz2: dz2 is 16 times" in table[2]
    assert table[6].startswith("4 attempts graded in 3.0 s with 2 jobs: 1 passed, 3 not passed (2 could not")
    assert table[8].startswith("Checks failed most: ")


# ---------------------------------------------------------------- pictures

def test_plot_without_matplotlib_says_how_to_install_it_before_grading(monkeypatch, tmp_path):
    import grader.practice.grading  # noqa: F401 - imported now, it would keep the stand-in judge below

    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    monkeypatch.setattr("grader.judge.grade.judge", lambda *a, **k: pytest.fail("graded before failing"))
    monkeypatch.setattr("grader.practice.grading.judge", lambda *a, **k: pytest.fail("graded before failing"))
    result = CliRunner().invoke(main, ["grade", str(FIXTURES / "correct_reference.py"), "--plot",
                                       str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert "pip install 'backprop-drill[plot]'" in result.output and "Traceback" not in result.output


@pytest.fixture
def figures(monkeypatch):
    """Every matplotlib Figure saved while the test runs, to look at what was drawn."""
    from matplotlib.figure import Figure

    saved, save = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def pixels(path: Path):
    """The picture as an (h, w, 3) array of floats in [0, 1]."""
    from matplotlib.image import imread

    return imread(str(path))[..., :3]


def reddish_and_bluish(rgb) -> tuple[float, float]:
    """The shares of pixels clearly more red than blue, and clearly more blue than red."""
    red, blue = rgb[..., 0], rgb[..., 2]
    return float((red > blue + 0.05).mean()), float((blue > red + 0.05).mean())


def test_the_convergence_picture_shows_the_loss_curve_and_the_learned_boundary(tmp_path, reference, exercise,
                                                                                figures):
    from matplotlib.contour import ContourSet

    from grader.course import plot

    train = exercise.train
    x, y = reference.make_xor(n=train.n, seed=train.seed)
    params, losses = reference.init_params(seed=train.seed), []
    for _ in range(train.iters):
        z2, cache = reference.forward(params, x)
        loss, probs = reference.softmax_cross_entropy(z2, y)
        losses.append(loss)
        params = reference.sgd_step(params, reference.backward(params, cache, probs, y), train.lr)
    as_lists = {k: v.tolist() for k, v in params.items()}  # as a JSON report would carry them
    out = plot.draw_convergence(tmp_path / "c.png", losses, x, y, params=as_lists, forward=reference.forward,
                                accuracy=reference.accuracy(params, x, y), title="mine.py")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    assert fig.get_suptitle() == "mine.py"
    ax_loss, ax_xy = fig.axes
    # left: the loss of every iteration, falling, on a log scale
    assert (ax_loss.get_title(), ax_loss.get_xlabel(), ax_loss.get_yscale()) == (
        "loss during training", "iteration", "log")
    assert "loss" in ax_loss.get_ylabel()
    (curve,) = ax_loss.lines
    steps, drawn = curve.get_data()
    assert list(steps) == list(range(1, train.iters + 1)) and list(drawn) == losses
    assert ax_loss.get_legend() is None  # nothing stopped the run
    ticks = [t for t in ax_loss.get_xticks() if 1 <= t <= train.iters]
    assert ticks and all(float(t).is_integer() for t in ticks)  # whole iterations only
    # the classes are named: a legend of the points' labels
    assert [t.get_text() for t in ax_xy.get_legend().get_texts()] == ["class 0", "class 1"]
    # right: the classes as filled regions, the boundary line between them, the 200 points
    assert ax_xy.get_title() == f"learned decision boundary (accuracy {reference.accuracy(params, x, y):.3f})"
    assert (ax_xy.get_xlabel(), ax_xy.get_ylabel()) == ("x[:, 0]", "x[:, 1]")
    filled, boundary = [c for c in ax_xy.collections if isinstance(c, ContourSet)]
    assert filled.filled and all(len(p.vertices) > 10 for p in filled.get_paths())  # both classes have a region
    assert not boundary.filled and list(boundary.levels) == [0.5]
    assert sum(len(p.vertices) for p in boundary.get_paths()) > 20  # XOR's boundary is no point
    (points,) = [c for c in ax_xy.collections if not isinstance(c, ContourSet)]
    assert (points.get_offsets() == x).all()
    # and in the picture itself: the right half shows both classes' colours, the left is the curve on white
    rgb = pixels(out)
    width = rgb.shape[1]
    red, blue = reddish_and_bluish(rgb[:, width // 2:])
    assert red > 0.15 and blue > 0.15, (red, blue)
    assert max(reddish_and_bluish(rgb[:, :width // 2])) < 0.02


def test_a_picture_of_a_run_that_stopped_says_so(tmp_path, reference, exercise, figures):
    from grader.course import plot

    x, y = reference.make_xor(n=exercise.train.n, seed=exercise.train.seed)
    losses = [0.7 - 0.01 * i for i in range(9)] + [float("nan")]
    # an attempt's params may fit no network, and a loss may stop being finite: still a picture
    odd = plot.draw_convergence(tmp_path / "odd.png", losses, x, y,
                                params={"W1": [[1.0, 2.0]], "b1": [0.0]}, forward=reference.forward)
    assert odd.stat().st_size > 0
    ax_loss, ax_xy = figures[-1].axes
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["stopped at iteration 9"]
    assert len(ax_loss.lines[0].get_xdata()) == 9  # the finite losses
    assert list(ax_loss.lines[1].get_xdata()) == [9, 9]  # the marker at the iteration it names
    assert ax_loss.get_yscale() == "linear"  # 0.7 to 0.62: less than a decade, a log axis would hide it
    assert ax_xy.get_title() == "XOR points (the trained params do not fit\nthe network, so no decision boundary)"
    assert len(ax_xy.collections) == 1  # the points only
    # no 2-D data: the loss alone
    plot.draw_convergence(tmp_path / "loss_only.png", losses)
    (ax,) = figures[-1].axes
    assert ax.get_title() == "loss during training" and len(ax.lines) == 2  # the curve and the stop
    # no loss at all: a sentence instead of an empty plot
    plot.draw_convergence(tmp_path / "none.png", [])
    (ax,) = figures[-1].axes
    assert "no loss was recorded" in ax.texts[0].get_text() and not ax.lines


@pytest.mark.parametrize("exercise_id", [e.id for e in catalog.exercises().values() if e.train is not None])
def test_the_decision_boundary_classifies_the_training_points_as_training_did(exercise_id):
    # batch norm's forward uses its batch's statistics: the grid must not be one batch of its own
    from grader.course import plot
    from grader.catalog import reference

    ex = catalog.exercise(exercise_id)
    ref = reference.load(ex.solution_path.read_text(encoding="utf-8"), str(ex.solution_path))
    if not hasattr(ref, "make_xor"):
        pytest.skip("no 2-D points to draw")
    x, y = ref.make_xor(n=ex.train.n, seed=ex.train.seed)
    params = ref.init_params(seed=ex.train.seed)
    for _ in range(300):
        z2, cache = ref.forward(params, x)
        _, probs = ref.softmax_cross_entropy(z2, y)
        params = ref.sgd_step(params, ref.backward(params, cache, probs, y), ex.train.lr)
    predicted = ref.forward(params, x)[0].argmax(axis=1)
    gx, gy, classes, n_classes = plot.grid_classes(ref.forward, params, x)
    assert n_classes == 2 and classes.shape == gx.shape == gy.shape
    # the grid cell of each training point gives the class training gave it (cells are coarse)
    col = abs(gx[0][None, :] - x[:, :1]).argmin(axis=1)
    row = abs(gy[:, 0][None, :] - x[:, 1:]).argmin(axis=1)
    assert (classes[row, col] == predicted).mean() >= 0.95


def test_the_heatmap_counts_only_the_checks_of_each_attempts_exercise(reports):
    from grader.course import plot

    ce = catalog.exercise("softmax_ce")
    other = Report(exercise=ce.id, file="ce.py",
                   checks=[CheckResult(c.name, True, c.points, c.points, "right") for c in ce.checks])
    names, passed = plot.heat_matrix([reports["correct_reference.py"], other])
    assert names[:2] == ["forward", "loss"] and "dz" in names
    assert passed[0, names.index("dz")] != passed[0, names.index("dz")]  # NaN: not an mlp check
    assert passed[1, names.index("forward")] != passed[1, names.index("forward")]
    assert passed[0, names.index("forward")] == 1 and passed[1, names.index("dz")] == 1
    assert int((passed == 0).sum()) == 0  # nothing failed, nothing counted as failing


def test_drill_grade_plot_draws_one_attempt_and_a_batch_heatmap(tmp_path, reports, figures):
    from grader.course import plot

    chosen = [reports[n] for n in NAMES] + [made_up()]
    heat = plot.heatmap(chosen, tmp_path / "heat.svg")
    assert b"<svg" in heat.read_bytes()[:400]
    fig = figures[-1]
    (ax,) = fig.axes
    assert fig.get_suptitle() == f"Which checks fail: mlp_backprop, {len(chosen)} attempts, 1 passed"
    ordered = plot.by_score(chosen)  # lowest score on top
    assert [r.score for r in ordered] == sorted(r.score for r in chosen) and ordered[-1].passed
    names, passed = plot.heat_matrix(ordered)
    (image,) = ax.images
    assert (image.get_array().filled(-1) == np.where(np.isnan(passed), -1, passed)).all()
    # a file that could not be run is grey (not run), never red (wrong): it is not counted as failing
    syntax = next(i for i, r in enumerate(ordered) if r.error and r.error["kind"] == "syntax")
    assert (passed[syntax] == plot.NOT_RUN).all()
    made = next(i for i, r in enumerate(ordered) if r.file.startswith("=HYPERLINK"))
    assert passed[made, names.index("dz2")] == plot.WRONG and passed[made, names.index("dW2")] == plot.PASSED
    # a column per check with the attempts that got it wrong counted, then the score; a row per attempt
    wrong = [sum(not c.passed and not c.open for r in chosen for c in r.checks if c.name == n) for n in names]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{n} ({k})" for n, k in zip(names, wrong)] + ["score"]
    assert [t.get_text() for t in ax.texts] == [f"{r.score:g}/{r.max_score:g}" for r in ordered]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == len(chosen) and rows[syntax].endswith("broken_syntax.py  (syntax)")
    assert "grey: not run" in ax.get_xlabel() and "dark red: wrong" in ax.get_xlabel()

    result = CliRunner().invoke(main, ["grade", str(FIXTURES / "broken_missing_function.py"),
                                       "--plot", str(tmp_path / "one.png")])
    assert result.exit_code == 1 and (tmp_path / "one.png").read_bytes()[:4] == b"\x89PNG"
    fig = figures[-1]
    # the student's path as it was given, and the convergence check's message
    assert fig.get_suptitle().startswith(str(FIXTURES / "broken_missing_function.py") + "\n")
    ax_loss, ax_xy = fig.axes
    assert "no loss was recorded" in ax_loss.texts[0].get_text()
    assert ax_xy.get_title().startswith("XOR points (no trained params")
    bad = CliRunner().invoke(main, ["grade", str(FIXTURES / "correct_reference.py"), "--plot",
                                    str(tmp_path / "one.xyz")])
    assert bad.exit_code == 2 and "cannot draw" in bad.output


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r", " =", "\t=", "\r=", "\n="])
def test_csv_quotes_every_formula_start_and_escapes_control_characters(lead):
    out = io.StringIO()
    report = made_up(file=f"{lead}cmd|' /C calc'!A0.py")
    report.error = {"kind": "crashed", "message": f"{lead}1+1 \x1b[2J\x07 and\nmore"}
    formats.write_csv([report], out)
    text = out.getvalue()
    assert not any(c in text for c in "\x1b\x07\r\t"), text
    row = next(csv.DictReader(io.StringIO(text)))
    for cell in (row["file"], row["error"]):
        assert cell.startswith(("'", "\\")), cell  # quoted, or begins with a visible escape
    assert "\\x1b[2J" in row["error"] and "\\n" in row["error"]
    assert len(text.splitlines()) == 2  # a line break in a message never splits its row


def test_junit_and_the_table_escape_control_characters_in_names_and_messages():
    report = made_up(file="evil\x1b[2J\u202ename.py")
    report.error = {"kind": "crashed", "message": "boom \x1b[31m\r"}
    text = formats.junit([report])
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J" in text and "\\u202e" in text
    table = formats.batch_table([report], batch.Batch([report], seconds=1.0, jobs=1).summary())
    assert "\x1b" not in table and "\r" not in table and "\\x1b[31m" in table


def test_plot_replaces_a_link_and_never_writes_through_it(tmp_path, reports):
    pytest.importorskip("matplotlib")
    from grader.course import plot

    precious = tmp_path / "precious.png"
    precious.write_bytes(b"mine")
    (tmp_path / "failures.png").symlink_to(precious)
    plot.heatmap(list(reports.values()), tmp_path / "failures.png")
    assert precious.read_bytes() == b"mine" and not (tmp_path / "failures.png").is_symlink()
    assert (tmp_path / "failures.png").read_bytes().startswith(b"\x89PNG")
