"""PrairieLearn: its external-grading results, and a ready question folder.

results() turns a Report into PrairieLearn's results.json: `score` in [0, 1], `gradable`
(false, with `format_errors`, for a file that cannot be run at all: nothing submitted, a
syntax error, a file that fails to load), `message`, `output`, one entry of `tests` per
check (name, description, points, max_points, message, output) and, when matplotlib is
installed, the loss curve and decision boundary as a base64 PNG in `images`. The whole
stays under PrairieLearn's 1 MB (fit()).

question() writes a question folder for PrairieLearn's external grader:

- info.json: gradingMethod External, externalGradingOptions with the prairielearn/grader-python
  image, the entrypoint /grade/tests/run.sh and a timeout that fits --timeout (at most 600 s).
- question.html: the task, a pl-file-editor pre-filled with the stub (initial_code.py beside
  it, the stub as `drill start` writes it), and pl-external-grader-results.
- tests/run.sh: run in the grading container for each submission. It installs this very
  backprop-drill from tests/wheels (pure-Python wheels, unpacked into a folder on PYTHONPATH:
  no network, no pip; numpy is the image's) and runs `python -m grader.course.prairielearn`,
  which grades /grade/student/EXERCISE.py and writes /grade/results/results.json, also when
  nothing usable was submitted. GRADE_ROOT (default /grade), DRILL_PYTHON (default python3)
  and DRILL_SITE (default $GRADE_ROOT/drill-site) let a test run it against a folder of its own.
- tests/wheels/: backprop-drill (written from the running installation, as for Gradescope),
  click and PyYAML (their pure-Python parts: PyYAML without its C speed-up runs the same).
"""
from __future__ import annotations

import argparse
import base64
import html
import importlib.metadata
import json
import math
import re
import sys
import tempfile
import traceback
import uuid
from pathlib import Path

from grader import catalog, files, settings
from grader.catalog import stubgen
from grader.course import batch, bundle, formats, wheels
from grader.judge.report import Report, render_text
from grader.run.sandbox import Limits

IMAGE = "prairielearn/grader-python"
ENTRYPOINT = "/grade/tests/run.sh"
MAX_TIMEOUT = 600  # PrairieLearn stops any grading job after this many seconds
SETUP_SECONDS = 40  # unpacking the wheels, starting Python, cleaning up after the attempt
MAX_RESULTS_BYTES = 1_000_000  # PrairieLearn's limit on results.json
BUDGET_BYTES = 900_000  # what results() aims for, with room to spare
OUTPUT_CHARS = 20_000  # of each `output` before fit() needs to shorten anything
NOT_GRADABLE = ("syntax", "import", formats.NO_ATTEMPT)  # the file cannot be run at all
DEPENDENCIES = ("click", "pyyaml")
# What the checks that judge no blank of the stub test (SPEC §3); a blank's check says what its blanks compute.
CHECK_DESCRIPTIONS = {
    "step": "the update: params - lr * grads for every parameter",
    "finite-difference": "your gradients agree with central differences of your own loss",
    "convergence": "your functions train the network on the XOR set to the required accuracy",
    "purity": "no function changes its inputs",
    "stability": "the loss and probs stay finite and shift-invariant for very large logits",
}


class QuestionError(Exception):
    """The question folder cannot be written: where and why."""


# ------------------------------------------------------------------ results.json

def _description(report: Report, name: str) -> str:
    try:
        exercise = catalog.exercise(report.exercise)
    except KeyError:
        return CHECK_DESCRIPTIONS.get(name, name)
    blanks = [b for b in exercise.blanks if b.check == name]
    if blanks:
        return "; ".join(f"{b.name}: {b.what} {b.shape}" for b in blanks)
    return CHECK_DESCRIPTIONS.get(name, name)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit} more characters left out)"


def picture(report: Report) -> dict | None:
    """The loss curve and decision boundary as a PrairieLearn image, or None (no matplotlib,
    no training run in the report, or the picture cannot be drawn)."""
    if not (report.convergence or {}).get("losses"):
        return None
    from grader.course import plot

    try:
        with tempfile.TemporaryDirectory(prefix="drill-pl-") as folder:
            path = plot.convergence(report, Path(folder) / "convergence.png")
            data = path.read_bytes()
    except Exception:  # noqa: BLE001 - no matplotlib, or a picture that cannot be drawn: the results stand
        return None
    return {"label": "Training: loss per iteration and the learned decision boundary",
            "url": "data:image/png;base64," + base64.b64encode(data).decode("ascii")}


def results(report: Report, images: bool = True) -> dict:
    """PrairieLearn's results.json for one graded attempt (see the module docstring)."""
    gradable = not (report.error and report.error.get("kind") in NOT_GRADABLE)
    score = report.score / report.max_score if report.max_score else 0.0
    verdict = "passed" if report.passed else "not passed yet"
    out = {
        "gradable": gradable,
        "score": round(min(max(score, 0.0), 1.0), 4),
        "message": f"{report.score:g} of {report.max_score:g} points, {verdict}.",
        "output": _shorten(formats.summary_text(report, report.max_score or 1) + "\n\n"
                           + render_text(report, color=False), OUTPUT_CHARS),
        "tests": [{"name": c.name, "description": _description(report, c.name), "points": c.points,
                   "max_points": c.max_points, "message": _shorten(c.message, OUTPUT_CHARS),
                   "output": _shorten(formats.check_feedback(report, c), OUTPUT_CHARS)} for c in report.checks],
    }
    if not gradable:
        out["format_errors"] = [formats.error_line(report.error)]
        out["message"] = "Your file could not be run, so it was not graded: " + formats.error_line(report.error)
    if images and gradable and (image := picture(report)):
        out["images"] = [image]
    return fit(out)


def _size(results: dict) -> int:
    return len(json.dumps(results, allow_nan=False).encode("utf-8"))


def fit(results: dict, budget: int = BUDGET_BYTES) -> dict:
    """results, shortened until its JSON fits in budget bytes: first without pictures, then with
    every `output` and `message` cut shorter and shorter."""
    if _size(results) <= budget:
        return results
    results = {**results, "tests": [dict(t) for t in results.get("tests", [])]}
    results.pop("images", None)
    limit = OUTPUT_CHARS
    while _size(results) > budget and limit > 10:
        limit //= 2
        for holder in [results] + results["tests"]:
            for key in ("output", "message", "description"):
                if isinstance(holder.get(key), str):
                    holder[key] = _shorten(holder[key], limit)
        if isinstance(results.get("format_errors"), list):
            results["format_errors"] = [_shorten(e, limit) for e in results["format_errors"]]
    return results


# ------------------------------------------------------------------ the question folder

RUN_SH = r"""#!/usr/bin/env bash
# PrairieLearn runs this in the grading container (@IMAGE@) for each submission:
# it installs backprop-drill @VERSION@ from the wheels beside it, grades the student's
# @FILE@ as @EXERCISE@ and writes results.json (also when nothing usable was submitted).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${GRADE_ROOT:-/grade}"
python="${DRILL_PYTHON:-python3}"
site="${DRILL_SITE:-$root/drill-site}"
mkdir -p "$root/results" "$site"
# The wheels are pure Python: unpacking them onto PYTHONPATH installs them, without network or pip.
for wheel in @WHEELS@; do
    "$python" -m zipfile -e "$here/wheels/$wheel" "$site" || break
done
# The wheels and the grader's data hold the reference solution: readable by this user only,
# never by an attempt run as another user.
chmod -R go-rwx "$here" "$site/grader/_data" 2>/dev/null || true
PYTHONPATH="$site" "$python" -m grader.course.prairielearn --root "$root" --exercise @EXERCISE@ \
    --timeout @TIMEOUT@ --memory @MEMORY@ && exit 0
status=$?
# drill itself could not run: still leave PrairieLearn a results.json it can read.
if ! grep -q '"gradable"' "$root/results/results.json" 2>/dev/null; then
    cat > "$root/results/results.json" <<'EOF'
{"gradable": false, "score": 0, "tests": [], "message": "The autograder could not run; your submission was not graded.", "format_errors": ["The autograder could not run (an error of the autograder, not of your code). Your instructor can see what went wrong in the grading job's log."]}
EOF
fi
exit "$status"
"""


class QuestionUsageError(QuestionError):
    """The command was used wrongly: an unknown exercise, a time limit PrairieLearn cannot give."""


def grading_timeout(limits: Limits) -> int:
    """The timeout of the grading job: the attempt's own limit and time to set up, at most 600 s."""
    needed = math.ceil(limits.timeout + SETUP_SECONDS)
    if needed > MAX_TIMEOUT:
        raise QuestionUsageError(f"--timeout {limits.timeout:g} does not fit: PrairieLearn stops a grading job "
                                 f"after {MAX_TIMEOUT} s, and drill needs about {SETUP_SECONDS} s besides the "
                                 f"attempt's own; give at most --timeout {MAX_TIMEOUT - SETUP_SECONDS}")
    return needed


def dependency_wheel(name: str) -> tuple[str, bytes]:
    """A wheel of the installed distribution name, its pure-Python files only."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise QuestionError(f"{name} is not installed in this Python, so it cannot be packed") from None
    skipped = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
    content: dict[str, bytes] = {}
    for f in dist.files or []:
        if f.parts[0] == ".." or "__pycache__" in f.parts or f.suffix in (".pyc", ".so", ".pyd") \
                or (f.parts[0].endswith(".dist-info") and f.name in skipped):
            continue
        content[f.as_posix()] = Path(dist.locate_file(f)).read_bytes()
    info = next((f.parts[0] for f in dist.files or [] if f.parts[0].endswith(".dist-info")), None)
    if info is None:
        raise QuestionError(f"{name} is installed without its metadata, so it cannot be packed")
    normalized = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    return f"{normalized}-{dist.version}-py3-none-any.whl", wheels.zip_files(wheels.with_record(content, info))


def _text(value: str) -> str:
    """Text for question.html: HTML-escaped, and no `{{` for PrairieLearn's mustache templates."""
    return html.escape(value).replace("{{", "&#123;&#123;").replace("}}", "&#125;&#125;")


def question_html(exercise: catalog.Exercise) -> str:
    chain = "\n".join(f"    <li><code>{_text(b.name)}</code>: {_text(b.what)}; {_text(b.shape)}</li>"
                      for b in exercise.blanks)
    return (f"<pl-question-panel>\n  <p><strong>{_text(exercise.title)}</strong></p>\n"
            f"  <pre>{_text(exercise.description.rstrip())}</pre>\n"
            f"  <p>The links to fill in, in chain order; each is a <code>todo()</code> in the file below:</p>\n"
            f"  <ol>\n{chain}\n  </ol>\n"
            "  <p>Each link is graded on its own, given your own upstream values; then finite differences "
            "and a training run check the whole.</p>\n"
            f'  <pl-file-editor file-name="{_text(exercise.solution)}" ace-mode="ace/mode/python" '
            'source-file-name="initial_code.py"></pl-file-editor>\n'
            "</pl-question-panel>\n\n<pl-submission-panel>\n"
            "  <pl-external-grader-results></pl-external-grader-results>\n"
            "  <pl-file-preview></pl-file-preview>\n</pl-submission-panel>\n")


def question_files(exercise: catalog.Exercise, limits: Limits) -> dict[str, bytes]:
    """Every file of the question folder, by its path in the folder."""
    timeout = grading_timeout(limits)
    packed = dict([bundle.wheel()] + [dependency_wheel(name) for name in DEPENDENCIES])
    version = next(iter(packed)).split("-")[1]
    values = {"@IMAGE@": IMAGE, "@VERSION@": version, "@FILE@": exercise.solution, "@EXERCISE@": exercise.id,
              "@TIMEOUT@": f"{limits.timeout:g}", "@MEMORY@": str(limits.memory_mb), "@WHEELS@": " ".join(packed)}
    run_sh = RUN_SH
    for key, value in values.items():
        run_sh = run_sh.replace(key, value)
    info = {"uuid": str(uuid.uuid4()), "title": exercise.title, "topic": "Backpropagation",
            "tags": ["backprop-drill", exercise.id], "type": "v3", "singleVariant": True, "gradingMethod": "External",
            "externalGradingOptions": {"enabled": True, "image": IMAGE, "entrypoint": ENTRYPOINT, "timeout": timeout}}
    out = {"info.json": (json.dumps(info, indent=2) + "\n").encode(),
           "question.html": question_html(exercise).encode(),
           "initial_code.py": stubgen.stub_for(exercise).encode(),
           "tests/run.sh": run_sh.encode()}
    out.update({f"tests/wheels/{name}": data for name, data in packed.items()})
    return out


def question(out: Path, exercise_id: str | None = None, limits: Limits | None = None, force: bool = False) -> Path:
    """Write the question folder at out (see the module docstring); nothing in it is replaced
    without force, and nothing is written when something would be."""
    try:
        exercise = catalog.exercise(exercise_id)
    except KeyError as exc:
        raise QuestionUsageError(exc.args[0]) from None
    content = question_files(exercise, limits or Limits())
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QuestionError(f"{out} is a file; name a folder for the question")
    taken = [name for name in content if (out / name).exists() or (out / name).is_symlink()]
    if taken and not force:
        raise QuestionError(f"{out} already holds {', '.join(taken[:4])}{', ...' if len(taken) > 4 else ''}; "
                            "pass --force to replace them")
    try:
        for name, data in content.items():
            files.write_atomic(out / name, data, overwrite=force)
        (out / "tests" / "run.sh").chmod(0o755)
    except FileExistsError as exc:
        raise QuestionError(f"{exc.filename or out} appeared while writing; it was left as it is") from None
    except OSError as exc:
        raise QuestionError(f"cannot write the question into {out}: {exc.strerror or exc}") from None
    return out


# ------------------------------------------------------------------ in the grading container

def autograde(root: Path, exercise_id: str | None = None, limits: Limits | None = None) -> tuple[dict, Report]:
    """Grade root/student and write root/results/results.json; returns it and the report."""
    exercise = catalog.exercise(exercise_id)
    path, problem = bundle.find_attempt(root / "student", exercise)
    if path is None:
        report = batch.unrun_report("", exercise, formats.NO_ATTEMPT, problem)
    else:
        report = batch.grade_one(path, exercise.id, limits or Limits())
    out = results(report)
    _write_results(root, out)
    return out, report


def _write_results(root: Path, out: dict) -> None:
    files.write_atomic(root / "results" / "results.json", json.dumps(out, indent=1, allow_nan=False),
                       overwrite=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.course.prairielearn`: what tests/run.sh runs. Exit 0 once results.json is written."""
    parser = argparse.ArgumentParser(prog="python -m grader.course.prairielearn", description=main.__doc__)
    parser.add_argument("--root", type=Path, default=Path("/grade"))
    parser.add_argument("--exercise", default=None)
    parser.add_argument("--timeout", type=float, default=settings.TIMEOUT_SECONDS)
    parser.add_argument("--memory", type=int, default=settings.MEMORY_MB)
    args = parser.parse_args(argv)
    try:
        _, report = autograde(args.root, args.exercise, Limits(timeout=args.timeout, memory_mb=args.memory))
    except Exception:  # noqa: BLE001 - the student must still get a results.json
        traceback.print_exc()
        _write_results(args.root, {
            "gradable": False, "score": 0, "tests": [],
            "format_errors": ["The autograder failed on this submission (an error of the autograder, not of "
                              "your code). Your instructor can see what went wrong in the grading job's log."],
            "message": "The autograder failed on this submission; it was not graded."})
        return 1
    print(render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
