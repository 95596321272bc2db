"""Shared fixtures: the default exercise and its reference solution, loaded from the shipped files."""
import importlib.util

import pytest

from grader import catalog
from grader.catalog import paths


def load_reference(exercise: catalog.Exercise):
    """The exercise's reference solution as a module, imported from the solutions folder."""
    path = paths.solutions_dir() / exercise.solution
    spec = importlib.util.spec_from_file_location(f"reference_{exercise.id}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trained_accuracy(exercise_id: str, seed: int) -> float:
    exercise = catalog.exercise(exercise_id)
    ref, t, sizes = load_reference(exercise), exercise.train, exercise.sizes
    x, y = ref.make_xor(n=t.n, seed=seed)
    params = ref.init_params(D=sizes["D"], H=sizes["H"], C=sizes["C"], seed=seed)
    return ref.accuracy(ref.train(params, x, y, lr=t.lr, iters=t.iters, log_every=0), x, y)


def trained_accuracies(exercise: catalog.Exercise, seeds) -> dict[int, float]:
    """The reference's accuracy on the XOR set after its exercise's training run, for each
    seed (data and initial parameters), trained in separate processes, one per CPU."""
    from concurrent.futures import ProcessPoolExecutor

    seeds = list(seeds)
    with ProcessPoolExecutor() as pool:
        return dict(zip(seeds, pool.map(_trained_accuracy, [exercise.id] * len(seeds), seeds)))


@pytest.fixture(scope="session")
def exercise() -> catalog.Exercise:
    return catalog.exercise()


@pytest.fixture(scope="session")
def reference(exercise):
    return load_reference(exercise)
