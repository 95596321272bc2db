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


@pytest.fixture(autouse=True, scope="session")
def _private_history_key(tmp_path_factory):
    """The key that signs recorded grades lives in a folder of the test session, never in the
    home folder of whoever runs the tests (subprocesses inherit it through the environment)."""
    import os

    from grader.practice import history

    key = tmp_path_factory.mktemp("history-key") / "history.key"
    old = os.environ.get(history.KEY_ENV)
    os.environ[history.KEY_ENV] = str(key)
    yield key
    if old is None:
        os.environ.pop(history.KEY_ENV, None)
    else:
        os.environ[history.KEY_ENV] = old


@pytest.fixture(autouse=True)
def _private_history_home(tmp_path_factory, monkeypatch):
    """Each test's drill history lives in a folder of its own (DRILL_HOME), never in the data
    folder of whoever runs the tests (subprocesses inherit it through the environment)."""
    from grader.practice import history

    monkeypatch.setenv(history.HOME_ENV, str(tmp_path_factory.mktemp("drill-home")))
