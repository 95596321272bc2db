"""Reports in the formats other tools read, and the table a teacher reads after a batch.

- gradescope(): Gradescope's autograder results.json, one test per check.
- junit(): JUnit XML, a <testsuite> per attempt and a <testcase> per check, for CI
  services and classroom autograding.
- write_csv(): one row per attempt, a points column per check, for a gradebook.
- batch_table(): the summary of a batch on the terminal.
"""
from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, TextIO

from grader import settings
from grader.judge.report import CheckResult, Report

DEFAULT_POINTS = settings.GRADESCOPE_POINTS
NO_ATTEMPT = "no-attempt"  # the error kind of a submission with no file to grade (Gradescope)


def check_feedback(report: Report, check: CheckResult) -> str:
    """What a check says, with its notes and the diagnosis of the same link."""
    lines = [check.message] + [f"note: {n}" for n in check.notes]
    for d in report.diagnosis:
        if d.link == check.name and d.message not in check.notes:
            lines.append(f"{d.severity}: {f'[{d.bug}] ' if d.bug else ''}{d.message}")
            if d.hint:
                lines.append(f"hint: {d.hint}")
    if report.error and not check.passed:
        lines.append(error_line(report.error))
    return "\n".join(lines)


def error_line(error: dict) -> str:
    if error["kind"] == NO_ATTEMPT:
        return error["message"]
    return f"The attempt could not be run to the end ({error['kind']}): {error['message']}"


SYNTAX_LINE = re.compile(r"^syntax error at line (\d+)\b")
EXCERPT_CONTEXT = 2  # lines shown before and after the line of a syntax error


def syntax_excerpt(report: Report) -> list[str]:
    """The lines around a syntax error of a .py attempt, numbered, the line of the error
    marked with '>', as the student wrote them (escaped); [] for any other report."""
    from grader.judge.source import source_text

    match = SYNTAX_LINE.match((report.error or {}).get("message", "")) if report.file else None
    if match is None or (report.error or {}).get("kind") != "syntax" or not report.file.endswith(".py"):
        return []
    lines = source_text(Path(report.file)).splitlines()
    at = int(match.group(1))
    if not 1 <= at <= len(lines):
        return []
    first, last = max(1, at - EXCERPT_CONTEXT), min(len(lines), at + EXCERPT_CONTEXT)
    width = len(str(last))
    return [f"{'>' if n == at else ' '} {n:>{width}} | {escaped(lines[n - 1][:200], keep=chr(9))}"
            for n in range(first, last + 1)]


def summary_text(report: Report, points: float = DEFAULT_POINTS) -> str:
    """A few lines about the whole attempt: score, first failure, error (with the lines of a
    syntax error), what it printed."""
    score = report.score * points / report.max_score if report.max_score else 0.0
    verdict = "passed" if report.passed else "not passed yet"
    what = f"{Path(report.file).name} ({report.exercise})" if report.file else report.exercise
    lines = [f"{what}: {score:g} of {points:g} points, {verdict}."]
    first = report.first_failure
    if report.error:
        lines.append(error_line(report.error))
        excerpt = syntax_excerpt(report)
        lines += ["", "Your file there:"] + excerpt if excerpt else []
    elif first is not None:
        lines.append(f"First failing check: {first.name}: {first.message}")
    shown = report.output.get("stdout")
    if shown:
        lines += ["", "Your code printed (first lines):"] + [f"  | {line}" for line in shown]
    return "\n".join(lines)


def _scaled(value: float, scale: float) -> float:
    return round(value * scale, 4)


GRADESCOPE_TEXT = {"output_format": "text", "test_output_format": "text", "test_name_format": "text"}


def gradescope(report: Report, points: float = DEFAULT_POINTS, hidden: Iterable[str] = ()) -> dict:
    """Gradescope's results.json for one attempt, scaled to an assignment worth `points`. The
    checks named in hidden are shown to the student only after the due date."""
    hidden = set(hidden)
    scale = points / report.max_score if report.max_score else 0.0
    return {
        "score": _scaled(report.score, scale),
        "execution_time": round(report.seconds, 2),
        "output": summary_text(report, points),
        # what the attempt printed, and its file's name, are shown as text: never rendered as HTML or Markdown
        **GRADESCOPE_TEXT,
        "stdout_visibility": "hidden",
        "tests": [{"name": c.name, "score": _scaled(c.points, scale), "max_score": _scaled(c.max_points, scale),
                   "status": "passed" if c.passed else "failed", "output": check_feedback(report, c),
                   "output_format": "text", "visibility": "after_due_date" if c.name in hidden else "visible"}
                  for c in report.checks],
        "extra_data": report.to_dict(),
    }


def escaped(text: str, keep: str = "") -> str:
    """text with whatever a terminal or a viewer would act on (control characters, line
    breaks, lone surrogates, bidi overrides) written as a visible escape (\\x1b, \\n,
    \\u202e), except the characters in keep. Names and messages may come from strangers'
    files and what their code printed: every text format shows them through here."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(c: str) -> str:
    return c.encode("unicode_escape").decode("ascii") if c != "'" else c


def _xml_text(text: str) -> str:
    """Text for XML 1.0, which cannot hold most control characters: escaped, line breaks and
    tabs of a multi-line message kept."""
    return escaped(text, keep="\t\n")


def _xml_name(text: str) -> str:
    """A name (a file, a kind) for an XML attribute: every control character escaped."""
    return escaped(text)


def junit_classname(file: str) -> str:
    """The file as a JUnit class name: no '.py' and no other dots (CI tools split at dots)."""
    return _xml_name(str(Path(file).with_suffix("")).replace(".", "_"))


def junit(reports: list[Report]) -> str:
    """JUnit XML: <testsuites> of one <testsuite> per attempt, one <testcase> per check. A check
    that fails because the attempt could not be run to the end (a syntax error, a crash, a
    timeout: the report's error) is an <error> of that kind; any other a <failure>."""
    def counts(r: Report) -> tuple[int, int]:
        failing = sum(not c.passed for c in r.checks)
        return (0, failing) if r.error else (failing, 0)

    root = ET.Element("testsuites", {
        "name": "drill grade", "tests": str(sum(len(r.checks) for r in reports)),
        "failures": str(sum(counts(r)[0] for r in reports)), "errors": str(sum(counts(r)[1] for r in reports)),
        "time": f"{sum(r.seconds for r in reports):.3f}"})
    for r in reports:
        failures, errors = counts(r)
        suite = ET.SubElement(root, "testsuite", {
            "name": _xml_name(r.file), "tests": str(len(r.checks)), "failures": str(failures),
            "errors": str(errors), "skipped": "0", "time": f"{r.seconds:.3f}"})
        props = ET.SubElement(suite, "properties")
        for name, value in (("exercise", r.exercise), ("score", f"{r.score:g}"), ("max_score", f"{r.max_score:g}"),
                            ("passed", str(r.passed).lower()), ("error", (r.error or {}).get("kind", ""))):
            ET.SubElement(props, "property", {"name": name, "value": _xml_name(value)})
        for c in r.checks:
            case = ET.SubElement(suite, "testcase", {"name": c.name, "classname": junit_classname(r.file)})
            if not c.passed:
                tag, kind = ("error", r.error["kind"]) if r.error else ("failure", "check-failed")
                element = ET.SubElement(case, tag, {"message": _xml_name(c.message), "type": _xml_name(kind)})
                element.text = _xml_text(check_feedback(r, c))
        for stream, tag in (("stdout", "system-out"), ("stderr", "system-err")):
            if r.output.get(stream):
                ET.SubElement(suite, tag).text = _xml_text("\n".join(r.output[stream]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


CSV_FIELDS = ["student", "file", "exercise", "score", "max_score", "passed", "error_kind", "error", "first_failure", "seconds"]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (OWASP)


def _cell(value):
    """A CSV cell that is safe to open: control characters escaped (a tab, a CR or a line
    break included), and text that a spreadsheet would take for a formula, even after
    leading blanks, quoted with a leading apostrophe."""
    if not isinstance(value, str):
        return value
    text = escaped(value)
    if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS) or value.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _number(value: float) -> str:
    """Points and scores written alike: 8, 0, 7.5 (never 8.0 beside 0)."""
    return f"{value:g}"


def _student(file: str) -> str:
    """Whose a report is when the batch did not say (one file graded): batch.student_name."""
    from grader.course.batch import Submission, student_name

    return student_name(Submission(Path(file), named=True)) if file else ""


def csv_rows(reports: list[Report], students: dict[str, str] | None = None) -> tuple[list[str], list[dict]]:
    """The header and one row per attempt: the fields above, then the points of each check.
    students: whose each report's file is (Batch.students); else told from the file's name."""
    students = students or {}
    checks: list[str] = []
    for r in reports:
        checks += [c.name for c in r.checks if c.name not in checks]
    rows = []
    for r in reports:
        first = r.first_failure
        row = {"student": students.get(r.file) or _student(r.file), "file": r.file, "exercise": r.exercise,
               "score": _number(r.score), "max_score": _number(r.max_score),
               "passed": str(r.passed).lower(), "error_kind": (r.error or {}).get("kind", ""),
               "error": (r.error or {}).get("message", ""), "first_failure": first.name if first else "",
               "seconds": round(r.seconds, 2)}
        row.update({c.name: _number(c.points) for c in r.checks})
        rows.append({k: _cell(v) for k, v in row.items()})
    return CSV_FIELDS + checks, rows


def write_csv(reports: list[Report], stream: TextIO, students: dict[str, str] | None = None) -> None:
    header, rows = csv_rows(reports, students)
    writer = csv.DictWriter(stream, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def batch_table(reports: list[Report], summary: dict, color: bool = False) -> str:
    """One line per attempt (score, verdict, first problem), then the totals."""
    def verdict(r: Report) -> str:
        text = ("PASS" if r.passed else (r.error["kind"] if r.error else "FAIL")).ljust(16)
        return f"\x1b[{32 if r.passed else 31}m{text}\x1b[0m" if color else text

    from grader.run.wire import printable

    files = [printable(r.file, 400) for r in reports]  # a newline in a name must not split its row
    width = max([len(f) for f in files] + [4])
    mixed = len({r.exercise for r in reports}) > 1  # files drill start made for other exercises
    ex_width = max([len(r.exercise) for r in reports] + [8])
    exercise_head = f"{'exercise':<{ex_width}}  " if mixed else ""
    lines = [f"{'score':>6}  {'result':<16}  {exercise_head}{'file':<{width}}  first problem"]
    for r, file in zip(reports, files):
        first = r.first_failure
        problem = r.error["message"] if r.error else (f"{first.name}: {first.message}" if first else "")
        exercise = f"{r.exercise:<{ex_width}}  " if mixed else ""
        lines.append(f"{r.score:>6g}  {verdict(r)}  {exercise}{file:<{width}}  {_short(escaped(problem), 70)}")
    s = summary
    lines += [""]
    if s.get("exercise"):
        how = {"given": "as --exercise says", "most students": "the exercise most of the students attempt; "
               "--exercise chooses another", "default": "the default; --exercise chooses another"}
        lines.append(f"Graded as {s['exercise']} ({how.get(s.get('exercise_chosen'), '')})"
                     + (", except files drill start made for another exercise." if mixed else "."))
    lines += [f"{s['files']} attempts graded in {s['seconds']:.1f} s with {s['jobs']} "
                  f"job{'s' if s['jobs'] != 1 else ''}: {s['passed']} passed, {s['not_passed']} not passed "
                  f"({s['errors']} could not be run to the end)."]
    if s["files"]:
        lines.append(f"Score: mean {s['mean_score']:g}, median {s['median_score']:g} of {s['max_score']:g}.")
    failing = sorted(((n, k) for n, k in s["failed_checks"].items() if k), key=lambda item: -item[1])
    if failing:
        lines.append("Checks failed most: " + ", ".join(f"{name} {count}" for name, count in failing))
    return "\n".join(lines)
