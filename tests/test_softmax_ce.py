"""softmax_ce: the reference, the stub, fixture attempts in other styles, and every command on it."""
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import load_reference
from grader import catalog, inject, stubgen
from grader.cli import main
from grader.grade import grade

EXERCISE = catalog.exercise("softmax_ce")
FIXTURES = Path(__file__).parent / "fixtures" / "softmax_ce"
STUB = EXERCISE.solution
EVERY_CHECK = [c.name for c in EXERCISE.checks]

# file -> (the checks it must fail, the bug the diagnosis must name or None)
VERDICTS = {
    "reference": ([], None),
    "stub": (EVERY_CHECK, None),
    "correct_logsumexp.py": ([], None),
    "correct_loops.py": ([], None),
    "wrong_missing_n.py": (["dz", "finite-difference"], "ce-missing-n"),
    "wrong_normalise_axis.py": (["softmax", "finite-difference"], "ce-normalise-wrong-axis"),
    "wrong_loss_sum.py": (["loss", "finite-difference"], "ce-loss-sum"),
    "unstable.py": (["stability"], "ce-no-max-shift"),
    "inplace_probs.py": (["purity"], "ce-inplace-probs"),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("softmax_ce")
    (folder / "reference").write_text(stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8")))
    (folder / "stub").write_text(stubgen.stub_for(EXERCISE))
    paths = {name: folder / name if name in ("reference", "stub") else FIXTURES / name for name in VERDICTS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        graded = list(pool.map(lambda name: grade(paths[name], EXERCISE.id), VERDICTS))
    return dict(zip(VERDICTS, graded))


def test_every_fixture_has_a_verdict():
    assert sorted(p.name for p in FIXTURES.glob("*.py")) == sorted(n for n in VERDICTS if n.endswith(".py"))


@pytest.mark.parametrize("name", list(VERDICTS))
def test_verdict(reports, name):
    failing, bug = VERDICTS[name]
    report = reports[name]
    assert report.error is None
    assert [c.name for c in report.checks] == EVERY_CHECK
    assert [c.name for c in report.checks if not c.passed] == failing
    assert report.score == 100 - sum(c.max_points for c in report.checks if c.name in failing)
    assert report.passed == (not failing)
    assert [d.bug for d in report.diagnosis if d.bug] == ([bug] if bug else [])
    # a todo() still there is nothing judged yet; a wrong answer is a failure
    assert {c.status for c in report.checks if not c.passed} <= ({"open"} if name == "stub" else {"fail"})


def message(report, check):
    return next(c.message for c in report.checks if c.name == check)


def test_messages_say_what_and_where(reports):
    assert "a factor of N = 8" in message(reports["wrong_missing_n.py"], "dz")
    assert "a factor of N = 8" in message(reports["wrong_loss_sum.py"], "loss")
    assert "NaN or infinite" in message(reports["unstable.py"], "stability")
    assert "changed its input probs" in message(reports["inplace_probs.py"], "purity")
    assert "dz disagrees with central differences" in message(reports["wrong_missing_n.py"], "finite-difference")
    assert "shift is not written yet" in message(reports["stub"], "softmax")


def test_a_wrong_softmax_leaves_the_loss_judged_on_its_own_probs(reports):
    # the columns of these probs sum to 1; the loss of exactly these probs is still right
    assert message(reports["wrong_normalise_axis.py"], "loss").startswith("right for every probe")


def test_every_bug_is_its_own_mutant():
    reference = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    mutants = {bug.id: inject.reference_mutant(bug) for bug in catalog.bugs(EXERCISE.id).values()}
    assert len(mutants) >= 5
    assert reference not in mutants.values()
    assert len(set(mutants.values())) == len(mutants)
    assert {b.caught_by for b in catalog.bugs(EXERCISE.id).values()} >= {"softmax", "loss", "dz", "stability", "purity"}


def test_the_reference_runs_as_a_script_would():
    ref = load_reference(EXERCISE)
    z, y = ref.make_logits(N=7, C=4, seed=3)
    assert ref.gradient_check(z, y) < 1e-4
    loss, probs = ref.softmax_cross_entropy(z, y)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert ref.softmax_cross_entropy(z + 1000.0, y)[0] == pytest.approx(loss, rel=1e-9)
    fitted = ref.descend(z, y, log_every=0)
    assert ref.softmax_cross_entropy(fitted, y)[0] < 0.1 * loss


# --- the commands ----------------------------------------------------------------------

@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def drill(*args):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def test_list_shows_the_exercise(here):
    result = drill("list")
    assert result.exit_code == 0 and "softmax_ce" in result.output


def test_start_grade_hint_then_the_reference_passes(here):
    result = drill("start", "softmax_ce")
    assert result.exit_code == 0, result.output
    assert (here / STUB).read_text(encoding="utf-8") == EXERCISE.stub_path.read_text(encoding="utf-8")
    assert "Blank links: shift, probs, loss, dz" in result.output

    graded = drill("grade", "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert (report["exercise"], report["score"], report["error"]) == ("softmax_ce", 0, None)

    hint = drill("hint")
    assert hint.exit_code == 0, hint.output
    assert "Hint 1 of 3 for shift" in hint.output

    (here / STUB).write_text(stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8")))
    graded = drill("grade")
    assert graded.exit_code == 0, graded.output
    assert "Score: 100/100" in graded.output


def test_inject_a_named_bug_and_grade_it(here):
    result = drill("inject-bug", "softmax_ce", "--bug", "ce-onehot-off-by-one")
    assert result.exit_code == 0, result.output
    written = here / "softmax_ce_bug.py"
    assert written.read_text(encoding="utf-8") == inject.reference_mutant("ce-onehot-off-by-one")
    graded = drill("grade", "softmax_ce_bug.py", "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert report["exercise"] == "softmax_ce"
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["dz", "finite-difference"]
    assert [d["bug"] for d in report["diagnosis"]] == ["ce-onehot-off-by-one"]


def test_a_hidden_bug_is_revealed_and_explained(here):
    assert drill("inject-bug", "softmax_ce", "--seed", "1", "--out", "drill.py").exit_code == 0
    revealed = drill("reveal", "drill.py")
    assert revealed.exit_code == 0, revealed.output
    bug_id = revealed.output.split(" has the bug ")[1].split(":")[0]
    assert catalog.bug(bug_id).exercise == "softmax_ce"
    explained = drill("explain", bug_id)
    assert explained.exit_code == 0 and catalog.bug(bug_id).title in explained.output
