"""catalog: the exercises and the bugs, as data, and the code made from them.

Owns: the one typed loader of the YAML catalogues (this module: exercises, their rubric,
bugs, as dataclasses), where the shipped data lives (paths), stubs made from the reference
(stubgen), the reference loaded and traced (reference), the mutation operators (mutate)
and a bug's mutant (mutants).
May import: settings, files.

Every YAML file is checked field by field; a bad one is rejected with a message that
names the file and the field, so a catalogue mistake never surfaces as a traceback.
The dataclasses are the one statement of the fields: a file's known keys, their types and
their defaults are read off them (read, keys), and each file says its format_version.
"""
from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from grader.catalog import paths


class CatalogError(Exception):
    """A catalogue file is missing, unreadable or has a bad field."""


class Fields:
    """Reads typed fields out of one YAML mapping, naming file and field in every error."""

    def __init__(self, data: Any, source: Path | str, where: str = ""):
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            kind = "empty" if data is None else type(data).__name__
            self.fail("", f"must be a mapping of fields, not {kind}")
        self.data = data

    def fail(self, name: str, problem: str):
        field_name = f"{self.where}.{name}" if self.where and name else (self.where or name)
        if not field_name:
            raise CatalogError(f"{self.source}: the file {problem}")
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
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when built in: 10x faster
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: is not valid YAML: {exc}") from None


FORMAT_VERSION = 1  # of exercises/*.yaml and bugs/*.yaml; a file without one is in format 1


def check_format(f: "Fields") -> None:
    """A file in a format this drill cannot read is rejected, not half-read."""
    version = f.get("format_version", int, FORMAT_VERSION)
    if version != FORMAT_VERSION:
        f.fail("format_version", f"is {version}, a format this drill cannot read (it reads format "
                                 f"{FORMAT_VERSION}); a newer backprop-drill may")


# How a field of each type is read: (fields, name, default or ...) -> value
READERS: dict[Any, Callable[["Fields", str, Any], Any]] = {
    str: lambda f, name, default: f.text(name, default),
    str | None: lambda f, name, default: f.text(name, default),
    int: lambda f, name, default: f.get(name, int, default),
    float: lambda f, name, default: f.get(name, float, default),
    tuple[str, ...]: lambda f, name, default: tuple(f.strings(name, default)),
    dict[str, int]: lambda f, name, default: dict(f.get(name, dict, default)),
}


def keys(cls) -> set[str]:
    """The YAML keys of a catalogue dataclass: its fields, but those the loader fills (source)."""
    return {x.name for x in fields(cls) if x.metadata.get("yaml", True)}


def values(cls, f: "Fields", *given: str) -> dict[str, Any]:
    """The fields of the catalogue dataclass cls read from f, but those given (the loader makes
    them): each by its type (READERS), with the dataclass's default when it has one."""
    types = typing.get_type_hints(cls)
    return {x.name: READERS[types[x.name]](f, x.name, ... if x.default is MISSING else x.default)
            for x in fields(cls) if x.name not in given and x.metadata.get("yaml", True)}


def read(cls, f: "Fields", **given):
    """An instance of cls: its fields read from f (values), and those given."""
    return cls(**values(cls, f, *given), **given)


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
    source: Path = field(compare=False, metadata={"yaml": False})  # the file it was read from

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


def _load_blank(f: Fields) -> Blank:
    f.check_known(keys(Blank))
    blank = read(Blank, f)
    if len(blank.hints) < 2:
        f.fail("hints", "needs at least two levels (a nudge, then the formula)")
    return blank


def _load_check(f: Fields) -> CheckSpec:
    f.check_known(keys(CheckSpec))
    check = read(CheckSpec, f)
    if check.points < 0:
        f.fail("points", "must not be negative")
    return check


def _load_checks(f: Fields) -> tuple[CheckSpec, ...]:
    checks = tuple(_load_check(c) for c in f.items("checks"))
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        f.fail("checks", "names a check twice")
    total = sum(c.points for c in checks)
    if abs(total - 100.0) > 1e-9:
        f.fail("checks", f"points must add up to 100, not {total:g}")
    return checks


def _load_blanks(f: Fields, checks: tuple[CheckSpec, ...]) -> tuple[Blank, ...]:
    blanks = tuple(_load_blank(b) for b in f.items("blanks"))
    for i, b in enumerate(blanks):
        if b.check not in {c.name for c in checks}:
            f.fail(f"blanks[{i}].check", f"names no check of this exercise: {b.check!r}")
    if len({b.name for b in blanks}) != len(blanks):
        f.fail("blanks", "names a blank twice")
    return blanks


def _load_train(f: Fields) -> TrainSpec | None:
    if "train" not in f.data:
        return None
    t = f.child("train")
    t.check_known(keys(TrainSpec))
    return read(TrainSpec, t)


def load_exercise_file(path: Path) -> Exercise:
    f = Fields(read_yaml(path), path)
    f.check_known(keys(Exercise) | {"format_version"})
    check_format(f)
    checks = _load_checks(f)
    ex = read(Exercise, f, checks=checks, blanks=_load_blanks(f, checks), train=_load_train(f), source=path)
    for key, value in ex.sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            f.fail(f"sizes.{key}", "must be a positive whole number")
    if ex.id != path.stem:
        f.fail("id", f"must match the file name {path.stem!r}")
    if not (paths.solutions_dir() / ex.solution).is_file():
        f.fail("solution", f"names no file in solutions/: {ex.solution!r}")
    return ex


def _exercise_files() -> dict[str, Path]:
    folder = paths.exercises_dir()
    if not folder.is_dir():
        raise CatalogError(f"{folder}: the exercises folder is missing; reinstall backprop-drill")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


@lru_cache(maxsize=None)
def _load_exercise(name: str) -> Exercise:
    return load_exercise_file(_exercise_files()[name])


def exercises() -> dict[str, Exercise]:
    """Every exercise shipped with the tool, by id, in name order."""
    return {name: _load_exercise(name) for name in _exercise_files()}


DEFAULT_EXERCISE = "mlp_backprop"


def no_such(what: str, name: str, known, listing: str = "", where: str = "") -> str:
    """The message for an unknown name: the close matches first when there are any, and every
    known name while the list is short (else the command that lists them)."""
    import difflib

    known = list(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    message = f"no {what} called {name!r}{where}"
    if close:
        message += f"; did you mean {' or '.join(close)}?"
    if len(known) <= 12 or not listing:
        return message + f"{' ' if close else '; '}there is: {', '.join(known)}"
    return message + f" (`{listing}` lists them all)"


def exercise(name: str | None = None) -> Exercise:
    """The exercise called name (the default one when None); KeyError lists what exists.
    Only that exercise's file is read: `drill grade` pays for one, not for all."""
    files = _exercise_files()
    name = name or DEFAULT_EXERCISE
    if name not in files:
        raise KeyError(no_such("exercise", name, files))
    return _load_exercise(name)


def defined_names(source: str) -> set[str]:
    """The names a module defines at its top level (functions, imports, assignments), blocks
    such as `if` and `try` included, functions and classes' insides not."""
    import ast
    import re

    from grader import parse_ast

    try:
        todo = list(parse_ast(source).body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not Python, or nested too deep
        return set(re.findall(r"^\s*def\s+([A-Za-z_][A-Za-z_0-9]*)\s*\(", source, re.MULTILINE))
    names = set()
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in getattr(node, "targets", None) or [node.target]:  # a, b = ...; a: T = ...
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, None) or [])
    return names


def guess(source: str, named: str | None = None) -> Exercise | None:
    """The exercise a file attempts, told from its text (and named, an exercise its file
    name mentions); None when it defines none of any exercise's functions.

    An exercise whose functions the file all defines (or imports) wins, the one with most
    functions first (an MLP attempt may define softmax_ce's helpers too); then the one its
    name mentions; then the one most of whose functions it defines. Ties (mlp_backprop and
    batchnorm_mlp ask for the same four) go to the one most of whose blank names (z1,
    dgamma, ...) the text mentions, then to the default exercise.
    """
    import re

    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", source))
    defined = defined_names(source)
    best, best_key = None, None
    for ex in exercises().values():
        has = sum(f in defined for f in ex.functions)
        if not has and ex.id != named:
            continue
        names = [b.name for b in ex.blanks]
        found = sum(n in words for n in names)
        complete = has == len(ex.functions)
        key = (complete, complete and has, ex.id == named, has / len(ex.functions), round(found / len(names), 2),
               found, ex.id == DEFAULT_EXERCISE)
        if best_key is None or key > best_key:
            best, best_key = ex, key
    return best


# --- the bug catalogue: bugs/*.yaml ----------------------------------------------------

SEVERITIES = ("error", "note")


@dataclass(frozen=True)
class Mutation:
    """Where a bug goes in working code, for grader/catalog/mutate.py.

    operator: a name in mutate.OPERATORS; function: the function it lives in; target: the
    variable whose assigning statements are searched; occurrence: which of the operator's
    sites among those statements, counted from 0 in source order.
    """

    operator: str
    function: str
    target: str
    occurrence: int = 0


@dataclass(frozen=True)
class Bug:
    """One catalogued bug.

    id: the name users type (`drill explain missing-n`); exercise: the exercise it belongs
    to; link: the blank of that exercise it lives in; title: one line; explanation: what goes
    wrong; symptom: what the user sees; hint: how to spot it, without the fix; caught_by: the
    check expected to fail (or to note it); severity: "error", or "note" for a bug that is
    reported but does not fail the attempt; mutation: how to put it into working code.
    """

    id: str
    exercise: str
    link: str
    title: str
    explanation: str
    symptom: str
    hint: str
    caught_by: str
    severity: str
    mutation: Mutation
    source: Path = field(compare=False, metadata={"yaml": False})  # the file it was read from


def _load_mutation(f: Fields, exercise: Exercise) -> Mutation:
    from grader.catalog import mutate  # only when a bugs file is read

    f.check_known(keys(Mutation))
    m = read(Mutation, f)
    if m.operator not in mutate.OPERATORS:
        f.fail("operator", f"names no mutation operator: {m.operator!r} (there is: {', '.join(mutate.OPERATORS)})")
    if m.function not in exercise.functions:
        f.fail("function", f"names no function of {exercise.id}: {m.function!r} "
                           f"(there is: {', '.join(exercise.functions)})")
    if not m.target.isidentifier():
        f.fail("target", f"must be a variable name, not {m.target!r}")
    if m.occurrence < 0:
        f.fail("occurrence", "must not be negative")
    return m


def _load_bug(f: Fields, path: Path) -> Bug:
    f.check_known(keys(Bug))
    v = values(Bug, f, "mutation")
    if not all(part.isalnum() for part in v["id"].split("-")) or v["id"] != v["id"].lower():
        f.fail("id", f"must be lower-case words joined by '-', not {v['id']!r}")
    table = exercises()
    if v["exercise"] not in table:
        f.fail("exercise", f"names no exercise: {v['exercise']!r} (there is: {', '.join(table)})")
    ex = table[v["exercise"]]
    if v["link"] not in {b.name for b in ex.blanks}:
        f.fail("link", f"names no blank of {ex.id}: {v['link']!r} (there is: {', '.join(b.name for b in ex.blanks)})")
    if v["caught_by"] not in {c.name for c in ex.checks}:
        f.fail("caught_by", f"names no check of {ex.id}: {v['caught_by']!r} "
                            f"(there is: {', '.join(c.name for c in ex.checks)})")
    if v["severity"] not in SEVERITIES:
        f.fail("severity", f"must be one of {', '.join(SEVERITIES)}, not {v['severity']!r}")
    mutation = _load_mutation(Fields(f.get("mutation", dict), path, f"{f.where}.mutation"), ex)
    return Bug(**v, mutation=mutation, source=path)


def load_bugs_file(path: Path) -> list[Bug]:
    """The bugs of one catalogue file, in file order: a mapping with a `bugs` list."""
    f = Fields(read_yaml(path), path)
    f.check_known({"bugs", "format_version"})
    check_format(f)
    found = [_load_bug(item, path) for item in f.items("bugs")]
    ids = [b.id for b in found]
    for i, bug_id in enumerate(ids):
        if bug_id in ids[:i]:
            f.fail(f"bugs[{i}].id", f"repeats the id {bug_id!r}")
    return found


@lru_cache(maxsize=None)
def _all_bugs() -> dict[str, Bug]:
    folder = paths.bugs_dir()
    if not folder.is_dir():
        raise CatalogError(f"{folder}: the bugs folder is missing; reinstall backprop-drill")
    table: dict[str, Bug] = {}
    for path in sorted(folder.glob("*.yaml")):
        for bug in load_bugs_file(path):
            if bug.id in table:
                raise CatalogError(f"{path}: field 'id' repeats {bug.id!r}, already in {table[bug.id].source}")
            table[bug.id] = bug
    return table


@lru_cache(maxsize=None)
def bugs(exercise_id: str | None = None) -> dict[str, Bug]:
    """Every catalogued bug by id, in file order; only exercise_id's when given."""
    return {k: b for k, b in _all_bugs().items() if exercise_id is None or b.exercise == exercise_id}


def bug(bug_id: str) -> Bug:
    """The bug called bug_id; KeyError lists what exists."""
    table = _all_bugs()
    if bug_id not in table:
        raise KeyError(no_such("bug", bug_id, table, "drill bugs"))
    return table[bug_id]
