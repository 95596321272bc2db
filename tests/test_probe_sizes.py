"""Probe sizes drawn afresh for every grade (issue 15): no probe is known by its shape, a
grade is replayed from its seed, and no correct attempt fails whatever the sizes."""
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

import verdicts
from grader import catalog, settings
from grader.cli import main
from grader.judge.grade import grade
from grader.judge.probes import _sizes
from grader.run import attempt

SEEDS = [11, 301, 2024, 987654321]
# every exercise's correct attempts in other styles, and the wrong ones whose verdicts must not
# depend on the sizes: file -> the checks it fails
ATTEMPTS = {
    "mlp_backprop": {"correct_loops.py": [], "correct_einsum.py": [], "correct_functional.py": [],
                     "relu_ge.py": [], "wrong_missing_n.py": ["dz2", "finite-difference", "convergence"],
                     "precision/unstable_global_max.py": ["stability"], "precision/correct_log_guard.py": []},
    "softmax_ce": {"correct_logsumexp.py": [], "correct_loops.py": [], "correct_log_guard.py": [],
                   "unstable_global_max.py": ["stability"]},
    "batchnorm_mlp": {"correct_compact.py": [], "correct_loops.py": [],
                      "wrong_backward_no_eps.py": ["dz1", "finite-difference"]},
    "attention_head": {"correct_einsum.py": [], "correct_loops.py": [], "unstable_global_max.py": ["stability"]},
}


def test_drawn_sizes_are_distinct_and_within_their_ranges():
    rng = np.random.default_rng(0)
    ranges = {"N": (5, 24), "D": (2, 7), "H": (3, 12), "C": (2, 6)}
    for _ in range(200):
        sizes = _sizes.draw(rng, ranges)
        assert len(set(sizes.values())) == 4
        assert all(lo <= sizes[k] <= hi for k, (lo, hi) in ranges.items())


@pytest.fixture(scope="module")
def graded():
    jobs = [(ex, name, seed) for ex, table in ATTEMPTS.items() for name in table for seed in SEEDS]

    def one(job):
        ex, name, seed = job
        return job, grade(verdicts.FIXTURES / ex / name, ex, seed=seed)

    with attempt.warm(), ThreadPoolExecutor(max_workers=2) as pool:  # as a batch grades: warm workers
        return dict(pool.map(one, jobs))


@pytest.mark.parametrize("exercise", list(ATTEMPTS))
def test_verdicts_hold_whatever_the_sizes(graded, exercise):
    every = [c.name for c in catalog.exercise(exercise).checks]
    for name, failing in ATTEMPTS[exercise].items():
        for seed in SEEDS:
            report = graded[(exercise, name, seed)]
            got = [c.name for c in report.checks if not c.passed]
            assert got == [c for c in every if c in failing], f"{name} with --seed {seed}: {report.to_json()}"


def test_every_probe_has_sizes_of_its_own_recorded_in_the_report(graded):
    sizes = [graded[("mlp_backprop", "correct_loops.py", seed)].probes for seed in SEEDS]
    assert [s["seed"] for s in sizes] == SEEDS
    shapes = [json.dumps(s["sizes"], sort_keys=True) for s in sizes]
    assert len(set(shapes)) == len(SEEDS)  # drawn afresh
    for s in sizes:  # the finite-difference probe is drawn like the others
        fd = s["sizes"]["finite-difference"]
        assert len(set(fd.values())) == 4


def test_the_canonical_seed_keeps_its_table_and_records_nothing():
    report = grade(verdicts.FIXTURES / "softmax_ce" / "correct_loops.py", "softmax_ce", seed=settings.PROBE_SEED)
    assert report.probes is None and "probes" not in report.to_dict()


def test_drill_grade_draws_a_seed_and_replays_one():
    path = str(verdicts.FIXTURES / "softmax_ce" / "wrong_missing_n.py")
    first = json.loads(CliRunner().invoke(main, ["grade", path, "--json"]).output)
    seed = first["probes"]["seed"]
    assert seed != settings.PROBE_SEED
    again = json.loads(CliRunner().invoke(main, ["grade", path, "--json", "--seed", str(seed)]).output)
    assert again["probes"] == first["probes"]
    assert [c["message"] for c in again["checks"]] == [c["message"] for c in first["checks"]]
