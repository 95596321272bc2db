"""Every command works for every exercise: start, grade, hint, inject-bug, reveal, explain.

Nothing here names an exercise: the table of exercises comes from the catalogue, so a new
exercise is covered as soon as it ships.
"""
import difflib
import json

import numpy as np
import pytest
from click.testing import CliRunner

import verdicts
from grader import catalog
from grader.catalog import mutants as bug_code
from grader.catalog import stubgen
from grader.cli import main
from grader.judge.plan import probe_module

EXERCISES = sorted(catalog.exercises())


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def drill(*args):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def test_list_shows_every_exercise(here):
    result = drill("list")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == EXERCISES


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_start_grade_hint_then_the_reference_passes(here, exercise_id):
    exercise = catalog.exercise(exercise_id)
    result = drill("start", exercise_id)
    assert result.exit_code == 0, result.output
    stub = here / exercise.solution
    assert stub.read_text(encoding="utf-8") == exercise.stub_path.read_text(encoding="utf-8")
    assert "Blank links: " + ", ".join(b.name for b in exercise.blanks) in result.output

    graded = drill("grade", "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert (report["exercise"], report["score"], report["error"]) == (exercise_id, 0, None)

    first = exercise.blanks[0]
    hint = drill("hint")
    assert hint.exit_code == 0, hint.output
    assert f"Hint 1 of {len(first.hints)} for {first.name}" in hint.output

    stub.write_text(stubgen.strip_markers(exercise.solution_path.read_text(encoding="utf-8")))
    graded = drill("grade")
    assert graded.exit_code == 0, graded.output
    assert "Score: 100/100" in graded.output


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_inject_a_named_bug_and_grade_it(here, exercise_id):
    bug = next(b for b in catalog.bugs(exercise_id).values() if b.severity == "error")
    result = drill("inject-bug", exercise_id, "--bug", bug.id)
    assert result.exit_code == 0, result.output
    written = here / f"{exercise_id}_bug.py"
    # the reference without its markers, but for one line of the bug's link changed or gone
    lines = verdicts.unmarked(catalog.exercise(exercise_id).solution_path.read_text(encoding="utf-8"))
    matcher = difflib.SequenceMatcher(a=[line for line, _ in lines], autojunk=False,
                                      b=written.read_text(encoding="utf-8").splitlines())
    (edit,) = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    assert edit[0] in ("replace", "delete") and edit[2] - edit[1] == 1 and edit[4] - edit[3] <= 1, edit
    assert lines[edit[1]][1] == bug.link
    graded = drill("grade", written.name, "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert report["exercise"] == exercise_id
    assert bug.caught_by in [c["name"] for c in report["checks"] if not c["passed"]]
    assert bug.id in [d["bug"] for d in report["diagnosis"]]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_hidden_bug_is_revealed_and_explained(here, exercise_id):
    assert drill("inject-bug", exercise_id, "--seed", "1", "--out", "drill.py").exit_code == 0
    graded = json.loads(drill("grade", "drill.py", "--json").output)
    assert graded["injected"] == {"hidden": True, "fixed": False, "bug": None}
    assert not [d for d in graded["diagnosis"] if d["bug"]]  # naming it would spoil the drill
    revealed = drill("reveal", "drill.py")
    assert revealed.exit_code == 0, revealed.output
    bug_id = revealed.output.split(" has the bug ")[1].split(":")[0]
    assert catalog.bug(bug_id).exercise == exercise_id
    explained = drill("explain", bug_id)
    assert explained.exit_code == 0 and catalog.bug(bug_id).title in explained.output


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_bug_is_its_own_mutant(exercise_id):
    reference = stubgen.strip_markers(catalog.exercise(exercise_id).solution_path.read_text(encoding="utf-8"))
    bugs = catalog.bugs(exercise_id)
    mutants = {bug.id: bug_code.reference_mutant(bug) for bug in bugs.values()}
    assert len(mutants) >= 5
    assert reference not in mutants.values()
    assert len(set(mutants.values())) == len(mutants)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_in_every_probe_no_two_sizes_coincide(exercise_id):
    # what the README promises: a transpose that only works when two sizes coincide is caught
    probes = probe_module(catalog.exercise(exercise_id))
    every = [*probes.SIZES, probes.FD_SIZES]
    if hasattr(probes, "step_inputs"):  # the update step's own probe, told by its shapes
        params, grads, _ = probes.step_inputs(np.random.default_rng(0), probes.SIZES[1])  # shaped like a link probe
        (D, H), C = params["W1"].shape, params["W2"].shape[1]
        every.append({"N": grads["dz2"].shape[0], "D": D, "H": H, "C": C})
    assert len(every) >= 3
    for sizes in every:
        assert len(set(sizes.values())) == len(sizes), sizes
