"""`drill gradescope-bundle`: the zip, the wheel inside it, and run_autograder end to end.

The end-to-end tests unpack the zip into a fake /autograder tree under tmp_path and run
its run_autograder with AUTOGRADER_ROOT pointing there, importing backprop-drill from the
wheel in the zip (not from this checkout), with this Python's numpy; one test runs setup.sh
itself too (a virtual environment, numpy from the package index: about ten seconds).
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.course import bundle
from grader import catalog
from grader.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"
POINTS = 20


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The zip drill gradescope-bundle writes, and a folder with it unpacked."""
    folder = tmp_path_factory.mktemp("bundle")
    out = folder / "autograder.zip"
    result = CliRunner().invoke(main, ["gradescope-bundle", "--out", str(out), "--points", str(POINTS)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output
    source = folder / "source"
    with zipfile.ZipFile(out) as z:
        z.extractall(source)
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
    (wheel,) = (source / "wheels").glob("*.whl")
    site = folder / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return {"zip": out, "source": source, "modes": modes, "wheel": wheel, "site": site}


def test_the_zip_holds_setup_run_autograder_and_the_wheel_at_its_root(built):
    names = set(built["modes"])
    assert {"setup.sh", "run_autograder", "constraints.txt"} <= names
    import numpy

    pins = (built["source"] / "constraints.txt").read_text().splitlines()
    assert f"numpy=={numpy.__version__}" in pins and any(p.startswith("click==") for p in pins)
    assert "-c \"$here/constraints.txt\"" in (built["source"] / "setup.sh").read_text()
    assert [n for n in names if n.startswith("wheels/")] == [f"wheels/{built['wheel'].name}"]
    assert built["modes"]["setup.sh"] & 0o111 and built["modes"]["run_autograder"] & 0o111
    run = (built["source"] / "run_autograder").read_text()
    assert "--exercise mlp_backprop" in run and f"--points {POINTS}" in run and "@" not in run
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(built["source"] / script)]).returncode == 0


def test_the_wheel_is_a_complete_installable_backprop_drill(built):
    with zipfile.ZipFile(built["wheel"]) as z:
        names = set(z.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(f"{info}/METADATA").decode()
        record = z.read(f"{info}/RECORD").decode().splitlines()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if digest:
                data = z.read(path)
                want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (want, len(data)), path
        assert {line.split(",")[0] for line in record} == names
    assert built["wheel"].name.startswith("backprop_drill-") and built["wheel"].name.endswith("-py3-none-any.whl")
    assert "Name: backprop-drill" in metadata and "Requires-Dist: numpy" in metadata
    assert "drill = grader.cli:run" in entry_points
    exercise = catalog.exercise()
    for needed in ("grader/cli/__init__.py", "grader/run/worker.py", "grader/cli/grade.py",
                   f"grader/_data/exercises/{exercise.id}.yaml", f"grader/_data/solutions/{exercise.solution}",
                   "grader/_data/bugs/mlp_backprop.yaml"):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_bundle_is_never_overwritten_without_force(built):
    before = built["zip"].read_bytes()
    result = CliRunner().invoke(main, ["gradescope-bundle", "--out", str(built["zip"])])
    assert result.exit_code == 1 and "--force" in result.output
    assert built["zip"].read_bytes() == before
    again = CliRunner().invoke(main, ["gradescope-bundle", "--out", str(built["zip"]), "--points", str(POINTS),
                                      "--force"])
    assert again.exit_code == 0
    with zipfile.ZipFile(built["zip"]) as z:  # the same drill makes the same zip (dates fixed)
        assert [(i.filename, i.date_time) for i in z.infolist()] == [(n, bundle.ZIP_DATE) for n in built["modes"]]
        assert z.read("run_autograder") == (built["source"] / "run_autograder").read_bytes()


def test_unknown_exercise_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["gradescope-bundle", "nope", "--out", str(tmp_path / "a.zip")])
    assert result.exit_code == 2 and "no exercise called 'nope'" in result.output
    assert not (tmp_path / "a.zip").exists()


# ---------------------------------------------------------------- run_autograder, end to end

def run_autograder(built, tmp_path, submitted: dict, python=sys.executable):
    """Lay out a fake /autograder for one submission, run the bundle's run_autograder in it."""
    root = tmp_path / "autograder"
    shutil.copytree(built["source"], root / "source")
    (root / "submission").mkdir(parents=True)
    for name, content in submitted.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "DRILL_PYTHON": str(python),
           "PYTHONPATH": str(built["site"])}
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    results = json.loads((root / "results" / "results.json").read_text())
    return run, results


def check_schema(results):
    assert {"score", "output", "tests"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert test["status"] in ("passed", "failed")


def test_the_grader_that_runs_is_the_one_in_the_wheel(built, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(built["site"])}
    where = subprocess.run([sys.executable, "-c", "import grader.catalog.paths as p; print(p.__file__, p.data_root())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert Path(where[0]).is_relative_to(built["site"]) and where[1] == str(built["site"] / "grader" / "_data")


def test_a_correct_submission_scores_the_assignment_points(built, tmp_path):
    run, results = run_autograder(built, tmp_path, {"mlp_backprop.py": FIXTURES / "correct_reference.py",
                                                    "notes.txt": "hello"})
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert results["score"] == POINTS and "passed" in results["output"]
    assert [t["name"] for t in results["tests"]] == [c.name for c in catalog.exercise().checks]
    assert all(t["status"] == "passed" for t in results["tests"])
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(POINTS)
    assert "Score: 100/100" in run.stdout  # the staff's view: the full text report


def test_the_only_py_file_is_the_attempt_whatever_its_name(built, tmp_path):
    run, results = run_autograder(built, tmp_path, {"hw3/my_attempt.py": FIXTURES / "wrong_missing_n.py"})
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert 0 < results["score"] < POINTS
    dz2 = next(t for t in results["tests"] if t["name"] == "dz2")
    assert dz2["status"] == "failed" and "[missing-n]" in dz2["output"]


def test_the_file_named_like_the_exercise_wins_and_a_broken_one_is_explained(built, tmp_path):
    run, results = run_autograder(built, tmp_path, {"src/mlp_backprop.py": FIXTURES / "broken_syntax.py",
                                                    "helper.py": FIXTURES / "correct_reference.py"})
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert results["score"] == 0 and "syntax error at line" in results["output"]


@pytest.mark.parametrize("submitted, says", [
    ({}, "No Python file was submitted. Submit your attempt as one file named mlp_backprop.py."),
    ({"answer.ipynb": "{}"}, "No Python file was submitted (the submission holds: answer.ipynb)"),
    ({"a.py": "x = 1", "b.py": "y = 2"}, "2 Python files were submitted (a.py, b.py) and none is named mlp_backprop.py"),
])
def test_no_usable_submission_still_gets_a_valid_results_json(built, tmp_path, submitted, says):
    run, results = run_autograder(built, tmp_path, submitted)
    assert run.returncode == 0, run.stderr
    check_schema(results)
    assert results["score"] == 0 and says in results["output"]
    assert len(results["tests"]) == len(catalog.exercise().checks)


def test_when_drill_cannot_start_gradescope_still_gets_results(built, tmp_path):
    run, results = run_autograder(built, tmp_path, {"mlp_backprop.py": "x = 1"}, python="/bin/false")
    assert run.returncode != 0
    assert results["score"] == 0 and results["tests"] == [] and "error of the autograder" in results["output"]


def test_find_attempt_prefers_the_shallowest_named_file(tmp_path, exercise):
    for name in ("deep/er/mlp_backprop.py", "deep/mlp_backprop.py", "other.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert bundle.find_attempt(tmp_path, exercise) == (tmp_path / "deep" / "mlp_backprop.py", None)


def test_setup_sh_installs_the_wheel_and_run_autograder_uses_it(built, tmp_path):
    root = tmp_path / "autograder"
    shutil.copytree(built["source"], root / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DRILL_PYTHON", "DRILL_VENV")}
    env["AUTOGRADER_ROOT"] = str(root)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True,
                           timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    (root / "submission").mkdir()
    shutil.copy(FIXTURES / "correct_reference.py", root / "submission" / "mlp_backprop.py")
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((root / "results" / "results.json").read_text())["score"] == POINTS
