"""Where the shipped data lives: inside the installed package, or at the top of a source checkout."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_root() -> Path:
    """The folder that holds exercises/, solutions/ and bugs/."""
    installed = _PACKAGE / "_data"
    if (installed / "exercises").is_dir():
        return installed
    return _PACKAGE.parent


def exercises_dir() -> Path:
    return data_root() / "exercises"


def solutions_dir() -> Path:
    return data_root() / "solutions"


def bugs_dir() -> Path:
    return data_root() / "bugs"
