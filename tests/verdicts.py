"""Shared by the per-exercise tests: grade an exercise's fixture attempts, and check a verdict.

Each test file keeps its own table of verdicts (file -> the checks it must fail, the bugs
the diagnosis must name); "reference" and "stub" stand for the shipped solution and stub.
"""
import ast
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import catalog
from grader.catalog import stubgen
from grader.judge.grade import grade
from grader.run import attempt

FIXTURES = Path(__file__).parent / "fixtures"


def grade_fixtures(exercise: catalog.Exercise, names, folder: Path) -> dict:
    """The report of each named fixture of exercise (reference and stub written into folder)."""
    (folder / "reference").write_text(stubgen.strip_markers(exercise.solution_path.read_text(encoding="utf-8")))
    (folder / "stub").write_text(exercise.stub_path.read_text(encoding="utf-8"))
    paths = {n: folder / n if n in ("reference", "stub") else FIXTURES / exercise.id / n for n in names}
    with attempt.warm(), ThreadPoolExecutor(max_workers=2) as pool:  # as a batch grades: warm workers
        graded = list(pool.map(lambda n: grade(paths[n], exercise.id), names))
    return dict(zip(names, graded))


def fixture_names(exercise: catalog.Exercise) -> list[str]:
    return sorted(p.name for p in (FIXTURES / exercise.id).glob("*.py"))


def unmarked(solution: str) -> list[tuple[str, str | None]]:
    """The lines of a solution without its `# drill` markers, each with the blank it belongs
    to (None outside every blank): read with this module's own patterns, not the grader's."""
    lines, block = [], None
    for line in solution.splitlines():
        begin = re.fullmatch(r"\s*#\s*drill-begin:\s*([\w-]+)\s*", line)
        if begin or re.fullmatch(r"\s*#\s*drill-end\s*", line):
            block = begin and begin.group(1)
            continue
        one = re.search(r"\s*#\s*drill:\s*([\w-]+)\s*$", line)
        lines.append((line[:one.start()] if one else line, one.group(1) if one else block))
    return lines


def gradient_links(exercise: catalog.Exercise) -> list[str]:
    """The links of the exercise's backward pass, in chain order: the catalogue's blanks whose
    markers (`# drill: NAME`, `# drill-begin: NAME`) sit inside the solution's backward();
    none for an exercise without a backward()."""
    source = exercise.solution_path.read_text(encoding="utf-8")
    backward = next((node for node in ast.parse(source).body
                     if isinstance(node, ast.FunctionDef) and node.name == "backward"), None)
    if backward is None:
        return []
    lines = source.splitlines()[backward.lineno - 1:backward.end_lineno]
    inside = {m.group(1) for line in lines for m in [re.search(r"#\s*drill(?:-begin)?:\s*([\w-]+)", line)] if m}
    return [b.name for b in exercise.blanks if b.name in inside]


def assert_verdict(exercise: catalog.Exercise, name: str, report, failing: list[str], bugs: list[str]):
    """The report fails exactly `failing` (in report order), scores the rest (the catalogue's
    points), names `bugs`; the stub's failures are all 'open' (nothing written to judge),
    anyone else's are wrong answers."""
    every = [c.name for c in exercise.checks]
    assert report.error is None, report.to_json()
    assert [c.name for c in report.checks] == every
    assert [c.name for c in report.checks if not c.passed] == [c for c in every if c in failing], report.to_json()
    assert report.score == 100 - sum(c.points for c in exercise.checks if c.name in failing)
    assert report.passed == (not failing)
    assert [d.bug for d in report.diagnosis if d.bug] == bugs
    assert {c.status for c in report.checks if not c.passed} <= ({"open"} if name == "stub" else {"fail"})


def message(report, check: str) -> str:
    return next(c.message for c in report.checks if c.name == check)


def suite(exercise: catalog.Exercise, table: dict):
    """The module-scoped `reports` fixture and the two tests every exercise's table gets,
    for a test module to bind: `reports, test_every_fixture_has_a_verdict, test_verdict =
    verdicts.suite(EXERCISE, VERDICTS)`. table: file -> (checks it must fail, bugs named)."""
    @pytest.fixture(scope="module")
    def reports(tmp_path_factory):
        return grade_fixtures(exercise, list(table), tmp_path_factory.mktemp(exercise.id))

    def test_every_fixture_has_a_verdict():
        assert fixture_names(exercise) == sorted(n for n in table if n.endswith(".py"))

    @pytest.mark.parametrize("name", list(table))
    def test_verdict(reports, name):
        failing, bugs = table[name]
        assert_verdict(exercise, name, reports[name], failing, bugs)

    return reports, test_every_fixture_has_a_verdict, test_verdict
