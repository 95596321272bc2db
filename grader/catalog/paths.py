"""Where the shipped data lives: inside the installed package, or at the top of a source checkout."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # grader/, above this catalog/


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


def protected_dirs() -> list[Path]:
    """Every folder an attempt must not read: the solutions this grader uses, the grader
    package, and any other copy of them on the import path (an editable install keeps the
    package in the checkout and a copy of the data in site-packages)."""
    import sys

    found = [solutions_dir(), _PACKAGE]
    for entry in sys.path:
        package = Path(entry or ".") / "grader"
        if (package / "_data" / "solutions").is_dir() or (package / "run" / "worker.py").is_file():
            found.append(package.resolve())
    return list(dict.fromkeys(found))
