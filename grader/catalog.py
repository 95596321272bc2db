"""The one typed loader for the catalogues: exercises (and their rubric) as dataclasses.

Every YAML file is checked field by field; a bad one is rejected with a message that
names the file and the field, so a catalogue mistake never surfaces as a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import paths


class CatalogError(Exception):
    """A catalogue file is missing, unreadable or has a bad field."""


class Fields:
    """Reads typed fields out of one YAML mapping, naming file and field in every error."""

    def __init__(self, data: Any, source: Path | str, where: str = ""):
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping, not {type(data).__name__}")
        self.data = data

    def fail(self, name: str, problem: str):
        field_name = f"{self.where}.{name}" if self.where and name else (self.where or name)
        raise CatalogError(f"{self.source}: field '{field_name}' {problem}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if name not in self.data:
            if default is ...:
                self.fail(name, "is missing")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(name, f"must be {names}, not {type(value).__name__}")
        return value

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default)
        if isinstance(value, str) and not value.strip():
            self.fail(name, "must not be empty")
        return value

    def strings(self, name: str, default: Any = ...) -> list[str]:
        value = self.get(name, list, default)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.fail(f"{name}[{i}]", "must be a non-empty string")
        return value

    def items(self, name: str) -> list["Fields"]:
        return [Fields(item, self.source, f"{name}[{i}]") for i, item in enumerate(self.get(name, list))]

    def child(self, name: str) -> "Fields":
        return Fields(self.get(name, dict), self.source, name)

    def check_known(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(str(key), f"is not a known field (known: {', '.join(sorted(allowed))})")


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: is not valid YAML: {exc}") from None


@dataclass(frozen=True)
class Blank:
    """One blank of the stub: a link the user writes.

    name: the marker name in the solution (`# drill: NAME`); check: the check that judges it;
    shape: its expected shape, as the user should read it; what: what it computes (no formula);
    hints: progressive hints, a nudge first and the formula last; assigns: the names the blank's
    code assigns, for multi-line blanks (a single-line blank assigns its own target).
    """

    name: str
    check: str
    shape: str
    what: str
    hints: tuple[str, ...]
    assigns: str | None = None


@dataclass(frozen=True)
class CheckSpec:
    """One check of `drill grade` and its points in the rubric."""

    name: str
    points: float


@dataclass(frozen=True)
class TrainSpec:
    """The convergence run: n points, iters full-batch steps at rate lr, pass at min_accuracy."""

    n: int
    iters: int
    lr: float
    min_accuracy: float
    seed: int = 0


@dataclass(frozen=True)
class Exercise:
    """An exercise: its reference solution, the stub's blanks and the rubric.

    id: the name users type; solution: the file name in solutions/ (the stub in exercises/
    has the same name); functions: what an attempt must define; sizes: the default sizes;
    blanks: in chain order; checks: in report order, with points summing to 100.
    """

    id: str
    title: str
    summary: str
    description: str
    solution: str
    functions: tuple[str, ...]
    sizes: dict[str, int]
    blanks: tuple[Blank, ...]
    checks: tuple[CheckSpec, ...]
    train: TrainSpec | None
    source: Path = field(compare=False)

    @property
    def solution_path(self) -> Path:
        return paths.solutions_dir() / self.solution

    @property
    def stub_path(self) -> Path:
        return paths.exercises_dir() / self.solution

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)

    def blank(self, name: str) -> Blank:
        for b in self.blanks:
            if b.name == name:
                return b
        raise KeyError(name)


_EXERCISE_FIELDS = {"id", "title", "summary", "description", "solution", "functions", "sizes",
                    "blanks", "checks", "train"}
_BLANK_FIELDS = {"name", "check", "shape", "what", "hints", "assigns"}


def _load_blank(f: Fields) -> Blank:
    f.check_known(_BLANK_FIELDS)
    hints = f.strings("hints")
    if len(hints) < 2:
        f.fail("hints", "needs at least two levels (a nudge, then the formula)")
    return Blank(name=f.text("name"), check=f.text("check"), shape=f.text("shape"),
                 what=f.text("what"), hints=tuple(hints), assigns=f.text("assigns", None))


def load_exercise_file(path: Path) -> Exercise:
    f = Fields(read_yaml(path), path)
    f.check_known(_EXERCISE_FIELDS)
    sizes = f.get("sizes", dict)
    for key, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            f.fail(f"sizes.{key}", "must be a positive whole number")
    checks = []
    for c in f.items("checks"):
        c.check_known({"name", "points"})
        points = c.get("points", float)
        if points < 0:
            c.fail("points", "must not be negative")
        checks.append(CheckSpec(c.text("name"), points))
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        f.fail("checks", "names a check twice")
    total = sum(c.points for c in checks)
    if abs(total - 100.0) > 1e-9:
        f.fail("checks", f"points must add up to 100, not {total:g}")
    blanks = tuple(_load_blank(b) for b in f.items("blanks"))
    for i, b in enumerate(blanks):
        if b.check not in names:
            f.fail(f"blanks[{i}].check", f"names no check of this exercise: {b.check!r}")
    if len({b.name for b in blanks}) != len(blanks):
        f.fail("blanks", "names a blank twice")
    train = None
    if "train" in f.data:
        t = f.child("train")
        t.check_known({"n", "iters", "lr", "min_accuracy", "seed"})
        train = TrainSpec(n=t.get("n", int), iters=t.get("iters", int), lr=t.get("lr", float),
                          min_accuracy=t.get("min_accuracy", float), seed=t.get("seed", int, 0))
    exercise_id = f.text("id")
    if exercise_id != path.stem:
        f.fail("id", f"must match the file name {path.stem!r}")
    solution = f.text("solution")
    if not (paths.solutions_dir() / solution).is_file():
        f.fail("solution", f"names no file in solutions/: {solution!r}")
    return Exercise(
        id=exercise_id, title=f.text("title"), summary=f.text("summary"),
        description=f.text("description"), solution=solution,
        functions=tuple(f.strings("functions")), sizes=dict(sizes), blanks=blanks,
        checks=tuple(checks), train=train, source=path,
    )


@lru_cache(maxsize=None)
def exercises() -> dict[str, Exercise]:
    """Every exercise shipped with the tool, by id, in name order."""
    folder = paths.exercises_dir()
    if not folder.is_dir():
        raise CatalogError(f"{folder}: the exercises folder is missing; reinstall backprop-drill")
    return {p.stem: load_exercise_file(p) for p in sorted(folder.glob("*.yaml"))}


DEFAULT_EXERCISE = "mlp_backprop"


def exercise(name: str | None = None) -> Exercise:
    """The exercise called name (the default one when None); KeyError lists what exists."""
    table = exercises()
    name = name or DEFAULT_EXERCISE
    if name not in table:
        raise KeyError(f"no exercise called {name!r}; there is: {', '.join(table)}")
    return table[name]
