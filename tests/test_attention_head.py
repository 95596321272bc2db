"""attention_head: the reference, the stub, fixture attempts in other styles, and every command on it."""
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
from grader.probes import attention_head as probes

EXERCISE = catalog.exercise("attention_head")
FIXTURES = Path(__file__).parent / "fixtures" / "attention_head"
STUB = EXERCISE.solution
EVERY_CHECK = [c.name for c in EXERCISE.checks]
REFERENCE_MAX_RATIO = 0.1  # final / starting loss on every seed, against the check's 0.2: never flaky

# file -> (the checks it must fail, the bugs the diagnosis must name)
VERDICTS = {
    "reference": ([], []),
    "stub": (EVERY_CHECK, []),
    "correct_einsum.py": ([], []),
    "correct_loops.py": ([], []),
    "wrong_dk_from_ds.py": (["dK", "finite-difference"], ["attn-dk-missing-transpose"]),
    "wrong_ds_diagonal.py": (["dS", "finite-difference"], ["attn-ds-missing-subtraction"]),
    "wrong_softmax_columns.py": (["weights", "finite-difference", "convergence"], ["attn-softmax-wrong-axis"]),
    "wrong_scores_transposed.py": (["scores", "finite-difference"], ["attn-scores-transposed"]),
    "wrong_no_scale_anywhere.py": (["scores", "dQ", "dK"],
                                   ["attn-missing-scale", "attn-dq-missing-scale", "attn-dk-missing-scale"]),
    "unstable_softmax.py": (["stability"], ["attn-softmax-no-max-shift"]),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attention_head")
    (folder / "reference").write_text(stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8")))
    (folder / "stub").write_text(EXERCISE.stub_path.read_text(encoding="utf-8"))
    paths = {name: folder / name if name in ("reference", "stub") else FIXTURES / name for name in VERDICTS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        graded = list(pool.map(lambda name: grade(paths[name], EXERCISE.id), VERDICTS))
    return dict(zip(VERDICTS, graded))


def test_the_committed_stub_is_what_the_generator_makes():
    assert EXERCISE.stub_path.read_text(encoding="utf-8") == stubgen.stub_for(EXERCISE), (
        "run `python -m grader.stubgen` and commit exercises/attention_head.py")


def test_every_fixture_has_a_verdict():
    assert sorted(p.name for p in FIXTURES.glob("*.py")) == sorted(n for n in VERDICTS if n.endswith(".py"))


@pytest.mark.parametrize("name", list(VERDICTS))
def test_verdict(reports, name):
    failing, bugs = VERDICTS[name]
    report = reports[name]
    assert report.error is None
    assert [c.name for c in report.checks] == EVERY_CHECK
    assert [c.name for c in report.checks if not c.passed] == failing, report.to_json()
    assert report.score == 100 - sum(c.max_points for c in report.checks if c.name in failing)
    assert report.passed == (not failing)
    assert [d.bug for d in report.diagnosis if d.bug] == bugs
    assert {c.status for c in report.checks if not c.passed} <= ({"open"} if name == "stub" else {"fail"})


def message(report, check):
    return next(c.message for c in report.checks if c.name == check)


def test_messages_say_what_and_where(reports):
    assert message(reports["wrong_scores_transposed.py"], "scores").startswith(
        "S holds the expected values transposed: its entry [i, j] is the one expected at [j, i]")
    assert message(reports["wrong_no_scale_anywhere.py"], "scores").startswith("S is 2 times the expected value")
    assert "dWk disagrees with central differences" in message(reports["wrong_dk_from_ds.py"], "finite-difference")
    assert message(reports["unstable_softmax.py"], "stability").startswith("with every score shifted by +1000, ")
    assert message(reports["stub"], "projections") == "Q is not written yet"
    assert message(reports["stub"], "dS") == "dS is not written yet"
    assert message(reports["reference"], "finite-difference").startswith("analytic gradients agree")
    assert message(reports["reference"], "convergence").startswith(f"after {probes.TRAIN['iters']} steps the loss")


def test_links_are_judged_on_their_own_inputs(reports):
    """A wrong dK leaves dWk and dX right given it; a wrong S leaves A and O right given it."""
    passed = {name: {c.name: c.passed for c in r.checks} for name, r in reports.items()}
    assert passed["wrong_dk_from_ds.py"]["dWk"] and passed["wrong_dk_from_ds.py"]["dX"]
    assert passed["wrong_scores_transposed.py"]["weights"] and passed["wrong_scores_transposed.py"]["output"]
    assert all(passed["wrong_softmax_columns.py"][link] for link in probes.LINKS)


def test_every_bug_is_its_own_mutant():
    reference = stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8"))
    bugs = catalog.bugs(EXERCISE.id).values()
    mutants = {bug.id: inject.reference_mutant(bug) for bug in bugs}
    assert len(mutants) >= 5
    assert reference not in mutants.values()
    assert len(set(mutants.values())) == len(mutants)
    assert {b.link for b in bugs} >= {"S", "A", "softmax", "dV", "dS", "dK"}


def test_the_description_states_the_convergence_run():
    """The run's numbers live in the probes; the YAML description tells them to the user."""
    text = " ".join(EXERCISE.description.split())
    t = probes.TRAIN
    assert f"lr {t['lr']:g}" in text and f"within {t['iters']} steps" in text
    assert f"falls below {t['fraction']:g} of its starting value" in text
    assert f"T={EXERCISE.sizes['T']} inputs" in text


def loss_ratio(ref, seed: int) -> float:
    """The convergence run of the probes on other seeds: final loss over starting loss."""
    s, t = EXERCISE.sizes, probes.TRAIN
    X, target = ref.make_teacher_task(s["T"], s["d_model"], s["d_k"], s["d_v"], seed=seed)
    params = ref.init_params(s["d_model"], s["d_k"], s["d_v"], seed=seed + t["student_offset"])
    start = ref.mse_loss(ref.forward(params, X)[0], target)
    params = ref.train(params, X, target, lr=t["lr"], iters=t["iters"], log_every=0)
    return ref.mse_loss(ref.forward(params, X)[0], target) / start


def test_reference_fits_the_teacher_on_20_seeds():
    ref = load_reference(EXERCISE)
    ratios = {seed: loss_ratio(ref, seed) for seed in range(20)}
    high = {seed: r for seed, r in ratios.items() if not r < REFERENCE_MAX_RATIO}
    assert not high, f"final/starting loss above {REFERENCE_MAX_RATIO} after {probes.TRAIN['iters']} steps: {high}"


@pytest.mark.parametrize("seed", range(5))
def test_reference_gradients_match_central_differences(seed):
    """Every gradient of the reference, dX included, against central differences, on sizes that all differ."""
    ref = load_reference(EXERCISE)
    rng = np.random.default_rng(seed)
    T, d_model, d_k, d_v = rng.permutation(np.arange(2, 9))[:4]
    params = ref.init_params(d_model, d_k, d_v, seed=seed)
    X, target = rng.normal(size=(T, d_model)), rng.normal(size=(T, d_v))
    O, cache = ref.forward(params, X)
    grads = ref.backward(params, cache, O, target)
    assert np.allclose(grads["dS"].sum(axis=1), 0.0)  # a softmax row ignores a shift of its scores
    inputs = {**params, "X": X}

    def loss(values):
        return ref.mse_loss(ref.forward({k: values[k] for k in params}, values["X"])[0], target)

    for name, value in inputs.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1.0, -1.0):
                trial = {k: v.copy() for k, v in inputs.items()}
                trial[name][index] += sign * 1e-6
                numeric[index] += sign * loss(trial) / 2e-6
        assert np.allclose(grads["d" + name], numeric, rtol=1e-5, atol=1e-8), (name, seed)


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
    assert result.exit_code == 0 and "attention_head" in result.output


def test_start_grade_hint_then_the_reference_passes(here):
    result = drill("start", "attention_head")
    assert result.exit_code == 0, result.output
    assert (here / STUB).read_text(encoding="utf-8") == EXERCISE.stub_path.read_text(encoding="utf-8")
    assert "Blank links: softmax, Q, K, V, S, A, O, loss, dO, dA, dV, dS, dQ, dK, dWq, dWk, dWv, dX" in result.output

    graded = drill("grade", "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert (report["exercise"], report["score"], report["error"]) == ("attention_head", 0, None)

    for level in (1, 2, 3):
        hint = drill("hint", "dS")
        assert hint.exit_code == 0, hint.output
        assert f"Hint {level} of 3 for dS" in hint.output
    assert "dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))" in hint.output

    (here / STUB).write_text(stubgen.strip_markers(EXERCISE.solution_path.read_text(encoding="utf-8")))
    graded = drill("grade")
    assert graded.exit_code == 0, graded.output
    assert "Score: 100/100" in graded.output


def test_inject_a_named_bug_and_grade_it(here):
    result = drill("inject-bug", "attention_head", "--bug", "attn-dv-missing-transpose")
    assert result.exit_code == 0, result.output
    written = here / "attention_head_bug.py"
    assert written.read_text(encoding="utf-8") == inject.reference_mutant("attn-dv-missing-transpose")
    assert "dV = A @ dO" in written.read_text(encoding="utf-8")
    graded = drill("grade", "attention_head_bug.py", "--json")
    assert graded.exit_code == 1, graded.output
    report = json.loads(graded.output)
    assert report["exercise"] == "attention_head"
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["dV", "finite-difference"]
    assert [d["bug"] for d in report["diagnosis"]] == ["attn-dv-missing-transpose"]


def test_a_hidden_bug_is_revealed_and_explained(here):
    assert drill("inject-bug", "attention_head", "--seed", "1", "--out", "drill.py").exit_code == 0
    revealed = drill("reveal", "drill.py")
    assert revealed.exit_code == 0, revealed.output
    bug_id = revealed.output.split(" has the bug ")[1].split(":")[0]
    assert catalog.bug(bug_id).exercise == "attention_head"
    explained = drill("explain", bug_id)
    assert explained.exit_code == 0 and catalog.bug(bug_id).title in explained.output
