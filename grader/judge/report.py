"""The grade report: the data of `drill grade --json`, its JSON and the text table people read.

The text is a table of SECTIONS, each a small function whose docstring shows what it writes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class CheckResult:
    name: str
    passed: bool
    points: float
    max_points: float
    message: str
    notes: list[str] = field(default_factory=list)
    open: bool = False  # failed because nothing could be judged (not written yet, not run)
    terse: str = ""  # where it is wrong, in a few words, for `--feedback terse` (judge/terse.py)

    @property
    def status(self) -> str:
        """pass, fail (judged wrong) or open (nothing to judge yet)."""
        return "pass" if self.passed else "open" if self.open else "fail"


@dataclass
class Diagnosis:
    bug: str | None
    link: str
    severity: str  # error or note
    message: str
    hint: str | None = None


@dataclass
class Report:
    exercise: str
    file: str
    checks: list[CheckResult]
    diagnosis: list[Diagnosis] = field(default_factory=list)
    error: dict | None = None
    seconds: float = 0.0
    elapsed: float | None = None  # seconds since `drill start`, when known
    output: dict = field(default_factory=dict)  # the attempt's stdout/stderr, shortened
    convergence: dict = field(default_factory=dict)  # final loss, accuracy, loss curve
    injected: dict | None = None  # spot-the-bug: {"hidden", "fixed", "bug" (None while hidden)}
    budget: dict | None = None  # a timed drill: {"minutes", "within"}
    isolation: str | None = None  # the wall around the attempt's process: namespaces, uid or process
    # the grade's seed and the probes' sizes drawn from it ({"seed", "sizes"}), so that
    # `drill grade --seed` replays it; None for the canonical seed (settings.PROBE_SEED)
    probes: dict | None = None

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 2)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks) and self.error is None

    @property
    def first_failure(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    def to_dict(self) -> dict:
        return {
            "exercise": self.exercise,
            "file": self.file,
            "passed": self.passed,
            "score": self.score,
            "checks": [{"name": c.name, "passed": c.passed, "points": c.points,
                        "max_points": c.max_points, "status": c.status, "message": c.message,
                        **({"notes": c.notes} if c.notes else {})} for c in self.checks],
            "diagnosis": [{"bug": d.bug, "link": d.link, "severity": d.severity, "message": d.message,
                           **({"hint": d.hint} if d.hint else {})} for d in self.diagnosis],
            "error": self.error,
            "elapsed_seconds": None if self.elapsed is None else round(self.elapsed, 1),
            "convergence": {k: v for k, v in self.convergence.items()
                            if k not in ("losses", "params")} or None,
            **({"injected": self.injected} if self.injected else {}),
            **({"budget": self.budget} if self.budget else {}),
            "isolation": self.isolation,
            **({"probes": self.probes} if self.probes else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, default=str)


ISOLATION_WORDS = {
    "namespaces": "the attempt ran in its own user, PID, mount and network namespaces",
    "uid": "the attempt ran as its own unprivileged user",
    "process": "the attempt ran as you, in a separate process: not a security boundary",
}


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def render_text(report: Report, color: bool = False) -> str:
    """The report as people read it: the SECTIONS, in order, each as many lines as it has."""
    return "\n".join(line for section in SECTIONS for line in section(report, color))


Section = Callable[[Report, bool], "list[str]"]
SECTIONS: list[Section] = []


def section(fn: Section) -> Section:
    SECTIONS.append(fn)
    return fn


@section
def heading(report: Report, color: bool) -> list[str]:
    """"attempt.py  (mlp_backprop)", then a blank line."""
    return [f"{report.file}  ({report.exercise})", ""]


@section
def error(report: Report, color: bool) -> list[str]:
    """"Error (timeout): the attempt was still running after 60 s, ...", when the run had one."""
    return [f"Error ({report.error['kind']}): {report.error['message']}", ""] if report.error else []


@section
def table(report: Report, color: bool) -> list[str]:
    """"  FAIL  dz2     0/10  dz2 is 4 times the expected value ...", a line per check and per note."""
    width = max((len(c.name) for c in report.checks), default=5)
    lines = []
    for c in report.checks:
        pts = f"{c.points:g}/{c.max_points:g}"
        lines.append(f"  {_mark(c.passed, color)}  {c.name:<{width}}  {pts:>6}  {c.message}")
        lines += [f"  {'':4}  {'':<{width}}  {'':>6}  note: {n}" for n in c.notes]
    return lines


def _mark(ok: bool, color: bool) -> str:
    text = "PASS" if ok else "FAIL"
    if not color:
        return text
    return f"\x1b[32m{text}\x1b[0m" if ok else f"\x1b[31m{text}\x1b[0m"


@section
def diagnosis(report: Report, color: bool) -> list[str]:
    """"  error: [missing-n] dz2: ...", with its hint below; not a note the table already shows."""
    noted = {n for c in report.checks for n in c.notes}
    lines = []
    for d in (d for d in report.diagnosis if d.bug or d.message not in noted):
        label = f"[{d.bug}] " if d.bug else ""
        where = f"{d.link}: " if d.link and d.link != "-" else ""  # "-": about the run, not a link
        lines.append(f"  {d.severity}: {label}{where}{d.message}")
        if d.hint:
            lines.append(f"         hint: {d.hint}")
    return [""] + lines if lines else []


@section
def score(report: Report, color: bool) -> list[str]:
    """"First failing check: dz2" (not when nothing could be run at all), then "Score: 90/100  ..."."""
    first = report.first_failure
    nothing_ran = report.error and all(c.message == "not run" for c in report.checks)
    return ["", *([f"First failing check: {first.name}"] if first is not None and not nothing_ran else []),
            f"Score: {report.score:g}/{report.max_score:g}  {'PASSED' if report.passed else 'not passed yet'}"]


@section
def elapsed(report: Report, color: bool) -> list[str]:
    """"Time since drill start: 4m 05s", when it is known."""
    return [] if report.elapsed is None else [f"Time since drill start: {duration(report.elapsed)}"]


@section
def isolation(report: Report, color: bool) -> list[str]:
    """"Isolation: uid (...)": the boundary that kept the attempt from the grader, when known."""
    if not report.isolation:
        return []
    return [f"Isolation: {report.isolation} ({ISOLATION_WORDS.get(report.isolation, '?')})"]


@section
def spot_the_bug(report: Report, color: bool) -> list[str]:
    """"Spot the bug: fixed (missing-n).", or that it is still there, for a file of `drill inject-bug`."""
    if not report.injected:
        return []
    bug, hidden = report.injected.get("bug"), report.injected["hidden"]
    named = f" ({bug})" if bug and not hidden else ""
    if report.injected["fixed"]:
        return [f"Spot the bug: fixed{named}." + (" `drill reveal` tells which bug it was." if hidden else "")]
    return [f"Spot the bug: the bug put in by `drill inject-bug`{named} is still there."
            + (" `drill reveal` tells which it is, if you give up." if hidden else "")]


@section
def output(report: Report, color: bool) -> list[str]:
    """"Your code's stdout (12 bytes), first lines:" and those lines, for each stream it wrote to."""
    lines = []
    for stream in ("stdout", "stderr"):
        shown = report.output.get(stream)
        if shown:
            lines += ["", f"Your code's {stream} ({report.output.get(stream + '_bytes', 0)} bytes), first lines:"]
            lines += [f"  | {line}" for line in shown]
    return lines
