"""PrairieLearn: `drill grade --format prairielearn`, and `drill prairielearn-question` end to end.

The end-to-end tests lay out a folder like PrairieLearn's /grade (the question's tests/ in
/grade/tests, the student's file in /grade/student) and run the question's entrypoint,
tests/run.sh, with GRADE_ROOT pointing there: it unpacks the wheels of the question (not
this checkout) and writes /grade/results/results.json.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.catalog import stubgen
from grader.cli import main
from grader.course import prairielearn
from grader.judge.report import CheckResult, Report

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def check_schema(results):
    """PrairieLearn's results.json, as docs/externalGrading.md describes it."""
    assert isinstance(results["gradable"], bool)
    assert 0 <= results["score"] <= 1
    assert isinstance(results["message"], str)
    if not results["gradable"]:
        assert results["format_errors"] and all(isinstance(e, str) for e in results["format_errors"])
    for test in results["tests"]:
        assert set(test) == {"name", "description", "points", "max_points", "message", "output"}
        assert 0 <= test["points"] <= test["max_points"]
    for image in results.get("images", []):
        assert image["url"].startswith("data:image/png;base64,") and image["label"]
    assert len(json.dumps(results).encode()) < prairielearn.MAX_RESULTS_BYTES


# ---------------------------------------------------------------- drill grade --format prairielearn

def test_format_prairielearn_prints_the_results_of_one_file(tmp_path):
    shutil.copy(FIXTURES / "wrong_missing_n.py", tmp_path / "mlp_backprop.py")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "mlp_backprop.py"), "--format", "prairielearn"])
    assert result.exit_code == 1, result.output
    results = json.loads(result.output)
    check_schema(results)
    assert results["gradable"] and results["score"] == pytest.approx(0.74)
    assert [t["name"] for t in results["tests"]] == [c.name for c in catalog.exercise().checks]
    dz2 = next(t for t in results["tests"] if t["name"] == "dz2")
    assert dz2["points"] == 0 and "[missing-n]" in dz2["output"] and "logits z2" in dz2["description"]
    assert ("images" in results) == HAS_MATPLOTLIB


def test_a_file_that_cannot_run_is_not_gradable(tmp_path):
    shutil.copy(FIXTURES / "broken_syntax.py", tmp_path / "mlp_backprop.py")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "mlp_backprop.py"), "--format", "prairielearn"])
    assert result.exit_code == 1
    results = json.loads(result.output)
    check_schema(results)
    assert results["gradable"] is False and "syntax error at line" in results["format_errors"][0]
    assert "images" not in results


def test_format_prairielearn_is_for_one_file(tmp_path):
    for name in ("a.py", "b.py"):
        shutil.copy(FIXTURES / "correct_reference.py", tmp_path / name)
    result = CliRunner().invoke(main, ["grade", str(tmp_path), "--format", "prairielearn"])
    assert result.exit_code == 2 and "prairielearn-question" in result.output


def test_results_are_cut_to_fit_under_a_megabyte():
    flood = "x" * 400_000
    checks = [CheckResult(f"c{i}", False, 0, 10, flood) for i in range(10)]
    report = Report(exercise="mlp_backprop", file="a.py", checks=checks, output={"stdout": [flood] * 5})
    results = prairielearn.results(report, images=False)
    check_schema(results)
    big = {**results, "images": [{"label": "x", "url": "data:image/png;base64," + "A" * 2_000_000}]}
    fitted = prairielearn.fit(big)
    assert "images" not in fitted and len(json.dumps(fitted)) <= prairielearn.BUDGET_BYTES


# ---------------------------------------------------------------- drill prairielearn-question

class Elements(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.found = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def question(tmp_path_factory):
    out = tmp_path_factory.mktemp("course") / "questions" / "backprop"
    result = CliRunner().invoke(main, ["prairielearn-question", "--out", str(out), "--timeout", "100"])
    assert result.exit_code == 0, result.output
    assert f"Wrote the PrairieLearn question {out}" in result.output
    return out


def test_the_question_folder_is_what_prairielearn_reads(question, exercise):
    info = json.loads((question / "info.json").read_text())
    assert info["gradingMethod"] == "External" and info["type"] == "v3" and len(info["uuid"]) == 36
    options = info["externalGradingOptions"]
    assert options["enabled"] and options["image"] == "prairielearn/grader-python"
    assert options["entrypoint"] == "/grade/tests/run.sh" and 100 < options["timeout"] <= 600
    elements = dict(Elements((question / "question.html").read_text()).found)
    assert elements["pl-file-editor"]["file-name"] == exercise.solution
    assert (question / elements["pl-file-editor"]["source-file-name"]).read_text() == stubgen.stub_for(exercise)
    assert {"pl-question-panel", "pl-submission-panel", "pl-external-grader-results"} <= set(elements)
    run = question / "tests" / "run.sh"
    assert run.stat().st_mode & 0o111 and subprocess.run(["bash", "-n", str(run)]).returncode == 0
    assert "--timeout 100" in run.read_text() and "@" not in run.read_text().replace("$@", "")
    wheels = sorted(p.name.split("-")[0] for p in (question / "tests" / "wheels").glob("*.whl"))
    assert wheels == ["backprop_drill", "click", "pyyaml"]


def test_the_question_is_never_overwritten_without_force(question):
    before = (question / "info.json").read_bytes()
    result = CliRunner().invoke(main, ["prairielearn-question", "--out", str(question)])
    assert result.exit_code == 1 and "--force" in result.output
    assert (question / "info.json").read_bytes() == before


@pytest.mark.parametrize("args, says", [(["nope"], "no exercise called 'nope'"),
                                        (["--timeout", "590"], "at most --timeout 560")])
def test_usage_errors_write_nothing(tmp_path, args, says):
    result = CliRunner().invoke(main, ["prairielearn-question", *args, "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and says in result.output
    assert not (tmp_path / "q").exists()


def grade_in_container(question, tmp_path, submitted: dict, python=sys.executable):
    """Lay out a fake /grade for one submission and run the question's entrypoint in it."""
    root = tmp_path / "grade"
    shutil.copytree(question / "tests", root / "tests")
    (root / "student").mkdir(parents=True)
    for name, content in submitted.items():
        target = root / "student" / name
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"GRADE_ROOT": str(root), "DRILL_PYTHON": str(python)})
    run = subprocess.run(["bash", str(root / "tests" / "run.sh")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    results_file = root / "results" / "results.json"
    assert results_file.stat().st_size < prairielearn.MAX_RESULTS_BYTES
    return run, json.loads(results_file.read_text()), root


def test_a_correct_submission_scores_one(question, tmp_path, exercise):
    run, results, root = grade_in_container(question, tmp_path, {exercise.solution: FIXTURES / "correct_reference.py"})
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert results["gradable"] and results["score"] == 1
    assert [t["name"] for t in results["tests"]] == [c.name for c in exercise.checks]
    assert all(t["points"] == t["max_points"] for t in results["tests"])
    assert "Score: 100/100" in run.stdout  # the staff's view in the job's log
    solution = root / "drill-site" / "grader" / "_data" / "solutions" / exercise.solution
    assert solution.exists()  # from the wheel
    for private in (root / "tests" / "wheels", solution.parent.parent):  # the reference is in there
        assert private.stat().st_mode & 0o077 == 0


def test_a_wrong_submission_gets_partial_credit_and_the_diagnosis(question, tmp_path, exercise):
    run, results, _ = grade_in_container(question, tmp_path, {exercise.solution: FIXTURES / "wrong_missing_n.py"})
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert 0 < results["score"] < 1
    assert "[missing-n]" in next(t for t in results["tests"] if t["name"] == "dz2")["output"]


@pytest.mark.parametrize("submitted, says", [
    ({}, "No Python file"),
    ({"mlp_backprop.py": FIXTURES / "broken_syntax.py"}, "syntax error at line"),
])
def test_what_cannot_be_run_is_not_gradable(question, tmp_path, submitted, says):
    run, results, _ = grade_in_container(question, tmp_path, submitted)
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert results["gradable"] is False and says in results["format_errors"][0]


def test_when_drill_cannot_start_prairielearn_still_gets_results(question, tmp_path):
    run, results, _ = grade_in_container(question, tmp_path, {"mlp_backprop.py": "x = 1"}, python="/bin/false")
    assert run.returncode != 0
    assert results["gradable"] is False and "error of the autograder" in results["format_errors"][0]
