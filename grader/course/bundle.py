"""Gradescope: the autograder zip, and what runs in each submission's container.

build() writes a zip with, at its root:

- setup.sh: run once when Gradescope builds the image. Installs python3 with venv and pip
  when missing (apt), makes a virtual environment and installs the wheel below into it;
  numpy, click and pyyaml come from PyPI.
- run_autograder: run once per submission. Grades the attempt in /autograder/submission
  and writes /autograder/results/results.json, also when nothing usable was submitted.
- wheels/backprop_drill-VERSION-py3-none-any.whl: this very backprop-drill, grader,
  exercises, solutions and bugs, written from the running installation, so the image
  grades exactly as the teacher's own `drill grade` does. (Written here with zipfile, not
  by a build backend: an installed package has no pyproject.toml to build from.)

Both scripts read AUTOGRADER_ROOT (default /autograder), so a test can run them against a
folder tree of its own; DRILL_VENV (default $AUTOGRADER_ROOT/drill-venv) is where setup.sh
installs, and DRILL_PYTHON (default its python) is what run_autograder runs.

Which file is the attempt (find_attempt): the `.py` file named like the exercise's
(mlp_backprop.py), the shallowest if several; else the only `.py` file submitted; else
none, and results.json says why (nothing submitted, or which files and what to rename).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import io
import json
import re
import sys
import traceback
import zipfile
from pathlib import Path

from grader.course import batch, formats
from grader import catalog, settings
from grader.catalog import paths
from grader import files
from grader.judge.report import Report, render_text
from grader.run.sandbox import Limits

DIST_NAME = "backprop-drill"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same drill makes the same zip

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs backprop-drill @VERSION@ from the wheel beside it into its own virtual environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${AUTOGRADER_ROOT:-/autograder}"
venv="${DRILL_VENV:-$root/drill-venv}"

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "backprop-drill needs Python 3.10 or newer; this image has $(python3 --version)" >&2
    exit 1
fi
python3 -m venv "$venv"
# The versions the bundle was built and tested with, when this Python can have them; else
# the newest that fit (numpy drops old Pythons), said in the build log.
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -c "$here/constraints.txt" "$here"/wheels/*.whl; then
    echo "drill: the pinned versions in constraints.txt do not install here; installing the newest that fit" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check "$here"/wheels/*.whl
fi
"$venv/bin/drill" --version
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission: grade it with backprop-drill @VERSION@,
# exercise @EXERCISE@, and write results.json (also when nothing usable was submitted).
root="${AUTOGRADER_ROOT:-/autograder}"
python="${DRILL_PYTHON:-${DRILL_VENV:-$root/drill-venv}/bin/python}"
mkdir -p "$root/results"
cd "$root" || exit 1
"$python" -m grader.course.bundle --root "$root" --exercise @EXERCISE@ --points @POINTS@ \
    --timeout @TIMEOUT@ --memory @MEMORY@ && exit 0
status=$?
# drill itself could not run: still leave Gradescope a results.json it can read.
if ! grep -q '"tests"' "$root/results/results.json" 2>/dev/null; then
    cat > "$root/results/results.json" <<'EOF'
{"score": 0, "output": "The autograder could not run (an error of the autograder, not of your code). Your instructor can see what went wrong in the autograder's output.", "stdout_visibility": "hidden", "tests": []}
EOF
fi
exit "$status"
"""


class BundleError(Exception):
    """The bundle cannot be made: where and why."""


# ------------------------------------------------------------------ the wheel

def _files_below(folder: Path, prefix: str) -> dict[str, bytes]:
    out = {}
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if f.is_file() and "__pycache__" not in rel.parts and not any(p.startswith(".") for p in rel.parts) \
                and f.suffix not in (".pyc", ".pyo"):
            out[f"{prefix}/{rel.as_posix()}"] = f.read_bytes()
    return out


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _zip(files: dict[str, bytes], executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buffer.getvalue()


def wheel() -> tuple[str, bytes]:
    """The file name and bytes of a wheel of the running backprop-drill (PEP 427)."""
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(f"{DIST_NAME} is not installed in this Python, so it cannot be packed; "
                          "install it first (pip install backprop-drill)") from None
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    info = f"{name}-{dist.version}.dist-info"
    package = Path(__file__).resolve().parent.parent  # grader/
    files = _files_below(package, "grader")
    if paths.data_root() != package / "_data":  # a source checkout: the data sits beside the package
        for folder in ("exercises", "solutions", "bugs"):
            files.update(_files_below(paths.data_root() / folder, f"grader/_data/{folder}"))
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or "").encode()
    files[f"{info}/entry_points.txt"] = (dist.read_text("entry_points.txt")
                                         or "[console_scripts]\ndrill = grader.cli:run\n").encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: backprop-drill {dist.version} (drill gradescope-bundle)\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    return f"{name}-{dist.version}-py3-none-any.whl", _zip(files)


# ------------------------------------------------------------------ the bundle

RUNTIME = ("numpy", "click", "pyyaml")  # what the wheel needs at run time


def constraints() -> str:
    """pip constraints: the versions of the runtime dependencies this drill runs with, so the
    container grades with what the bundle was built (and tested) with."""
    from importlib import metadata

    lines = ["# the versions backprop-drill was bundled with (pip install -c constraints.txt)"]
    for name in RUNTIME:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def build(out: Path, exercise_id: str | None = None, points: float = formats.DEFAULT_POINTS,
          limits: Limits | None = None, force: bool = False) -> Path:
    """Write the autograder zip to out; never replaces a file without force."""
    try:
        exercise = catalog.exercise(exercise_id)
    except KeyError as exc:
        raise BundleError(exc.args[0]) from None
    limits = limits or Limits()
    wheel_name, wheel_data = wheel()
    values = {"@VERSION@": wheel_name.split("-")[1], "@EXERCISE@": exercise.id, "@POINTS@": f"{points:g}",
              "@TIMEOUT@": f"{limits.timeout:g}", "@MEMORY@": str(limits.memory_mb)}

    def filled(template: str) -> bytes:
        for key, value in values.items():
            template = template.replace(key, value)
        return template.encode()

    data = _zip({"setup.sh": filled(SETUP_SH), "run_autograder": filled(RUN_AUTOGRADER),
                 "constraints.txt": constraints().encode(),
                 f"wheels/{wheel_name}": wheel_data}, executable=("setup.sh", "run_autograder"))
    out = Path(out)
    try:
        if out.is_dir():
            raise BundleError(f"{out} is a folder; name the zip file to write")
        files.write_atomic(out, data, overwrite=force)
    except FileExistsError:
        raise BundleError(f"{out} exists; pass --force to replace it") from None
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


# ------------------------------------------------------------------ in the container

def find_attempt(submission: Path, exercise: catalog.Exercise) -> tuple[Path | None, str | None]:
    """The attempt among the submitted files, or None and what the student should do."""
    wanted = exercise.solution
    if not submission.is_dir():
        return None, f"Nothing was submitted. Submit your attempt as one file named {wanted}."
    candidates = batch.attempt_files(submission)
    named = sorted((p for p in candidates if p.name == wanted), key=lambda p: (len(p.parts), p))
    if named:
        return named[0], None
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        others = sorted(str(p.relative_to(submission)) for p in submission.rglob("*") if p.is_file())
        seen = f" (the submission holds: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
        return None, f"No Python file was submitted{seen}. Submit your attempt as one file named {wanted}."
    listed = ", ".join(str(p.relative_to(submission)) for p in candidates[:6]) + (", ..." if len(candidates) > 6 else "")
    return None, (f"{len(candidates)} Python files were submitted ({listed}) and none is named {wanted}: "
                  f"name your attempt {wanted}, or submit only that one file.")


def autograde(root: Path, exercise_id: str | None = None, points: float = formats.DEFAULT_POINTS,
              limits: Limits | None = None) -> tuple[dict, Report]:
    """Grade root/submission and write root/results/results.json; returns it and the report."""
    exercise = catalog.exercise(exercise_id)
    path, problem = find_attempt(root / "submission", exercise)
    if path is None:
        report = batch.unrun_report("", exercise, formats.NO_ATTEMPT, problem)
    else:
        report = batch.grade_one(path, exercise.id, limits or Limits())
    results = formats.gradescope(report, points)
    _write_results(root, results)
    return results, report


def _write_results(root: Path, results: dict) -> None:
    files.write_atomic(root / "results" / "results.json", json.dumps(results, indent=2, allow_nan=False),
                           overwrite=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.course.bundle`: what run_autograder runs. Exit 0 once results.json is written."""
    parser = argparse.ArgumentParser(prog="python -m grader.course.bundle", description=main.__doc__)
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--exercise", default=None)
    parser.add_argument("--points", type=float, default=formats.DEFAULT_POINTS)
    parser.add_argument("--timeout", type=float, default=settings.TIMEOUT_SECONDS)
    parser.add_argument("--memory", type=int, default=settings.MEMORY_MB)
    args = parser.parse_args(argv)
    try:
        _, report = autograde(args.root, args.exercise, args.points,
                              Limits(timeout=args.timeout, memory_mb=args.memory))
    except Exception:  # noqa: BLE001 - the student must still get a results.json
        traceback.print_exc()
        _write_results(args.root, {
            "score": 0, "stdout_visibility": "hidden", "tests": [],
            "output": "The autograder failed on this submission (an error of the autograder, not of your "
                      "code). Your instructor can see what went wrong in the autograder's output."})
        return 1
    print(render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
