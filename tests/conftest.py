"""Shared fixtures: the default exercise and its reference solution, loaded from the shipped files."""
import importlib.util

import pytest

from grader import catalog, paths


def load_reference(exercise: catalog.Exercise):
    """The exercise's reference solution as a module, imported from the solutions folder."""
    path = paths.solutions_dir() / exercise.solution
    spec = importlib.util.spec_from_file_location(f"reference_{exercise.id}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def exercise() -> catalog.Exercise:
    return catalog.exercise()


@pytest.fixture(scope="session")
def reference(exercise):
    return load_reference(exercise)
