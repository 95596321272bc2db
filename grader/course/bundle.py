"""Gradescope: the autograder zip, and what runs in each submission's container.

build() writes a zip with, at its root:

- setup.sh: run once, as root, when Gradescope builds the image. Installs python3 with venv
  and pip when missing (apt), creates the users the grader runs attempts as (drill-slot0,
  drill-slot1, ...: uid and gid settings.SANDBOX_UID_BASE + slot, no login shell, no home),
  makes a virtual environment and installs the wheel below into it with its extra
  `notebook` (numpy, click, pyyaml and nbformat from PyPI, pinned by constraints.txt), then removes the wheel and makes the installed
  package and the bundle's folder readable by root only: no attempt can read the reference
  solutions or the catalogue there, or run the tool's own commands to print them.
- run_autograder: run once per submission. Runs `drill gradescope-run --require-isolation`,
  which grades the attempt in /autograder/submission behind the kernel's wall (each attempt
  as a slot user: SPEC §7) and writes /autograder/results/results.json only once every
  process of the attempt is gone, also when nothing usable was submitted. It starts from
  the virtual environment's folder (root's, not writable by an attempt): never the
  submission folder, nor /autograder, so nothing an attempt writes is on the grader's
  import path. The checks given to build(hidden=...) are passed on as --hidden: the student
  sees their results only after the due date.
- constraints.txt: the versions of numpy, click, pyyaml and nbformat the bundle was built with, and for
  numpy, the newest release that still installs where the image's Python is older than the
  one building (Ubuntu 22.04's Python 3.10: numpy 2.3 and later need 3.11).
- wheels/backprop_drill-VERSION-py3-none-any.whl: this very backprop-drill, grader,
  exercises, solutions and bugs, written from the running installation, so the image
  grades exactly as the teacher's own `drill grade` does. (Written here with zipfile, not
  by a build backend: an installed package has no pyproject.toml to build from.)

Both scripts read AUTOGRADER_ROOT (default /autograder), so a test can run them against a
folder tree of its own; DRILL_VENV (default $AUTOGRADER_ROOT/drill-venv) is where setup.sh
installs, and DRILL_PYTHON (default its python) is what run_autograder runs.

Memory: Gradescope gives a container 768 MB unless the assignment asks for more. The
attempt's --memory (an address-space limit) is kept below what the container's cgroup
allows (memory.max, cgroup v2; memory.limit_in_bytes, v1), less GRADER_RESERVE_MB for the
grader itself, so an attempt that allocates too much fails its own allocation and is
reported as `memory`, instead of the kernel's out-of-memory killer taking the grader.

Which file is the attempt (find_attempt): the `.py` file or notebook named like the
exercise's (mlp_backprop.py, mlp_backprop.ipynb), the shallowest if several; else the only
`.py` or `.ipynb` file submitted; else none, and results.json says why (nothing submitted,
or which files and what to rename). Notebooks are read by the grader with nbformat, which
setup.sh installs with the wheel (its extra `notebook`); the attempt's process never sees
the notebook, only its code cells (judge.notebook).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Iterable

from grader.course import batch, formats, wheels
from grader import catalog, settings
from grader.catalog import paths
from grader import files
from grader.judge.report import Report
from grader.run.sandbox import Limits

DIST_NAME = "backprop-drill"
SLOT_UID_BASE = getattr(settings, "SANDBOX_UID_BASE", 61000)  # the grader's slot users (grader/run)
SLOT_USERS = getattr(settings, "SANDBOX_SLOTS", 64)
SLOT_USER = "drill-slot"  # drill-slot0, drill-slot1, ...
GRADER_RESERVE_MB = 256  # of the container's memory, kept for the grader itself
MIN_ATTEMPT_MB = 256  # the least --memory accepts
# The newest release of a runtime dependency that still installs on an older Python than the
# one building the bundle (pip download --python-version X --only-binary=:all: finds it):
# name -> (the first Python it no longer supports, the last release before that).
LAST_FOR_OLD_PYTHON = {"numpy": ("3.11", "2.2.6")}  # numpy 2.3 needs Python 3.11; Ubuntu 22.04 has 3.10

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs backprop-drill @VERSION@ from the wheel beside it into its own virtual environment,
# creates the unprivileged users attempts run as, and locks the grader's files away from them.
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

# The users attempts run as: one per concurrent worker slot, uid = gid = @UID_BASE@ + slot,
# no home, no login shell, no supplementary groups. (drill needs no entry for them in
# /etc/passwd; these keep the ids reserved, and name them in ps and the logs.)
nologin="$(command -v nologin || echo /usr/sbin/nologin)"
for slot in $(seq 0 $((@SLOTS@ - 1))); do
    id=$((@UID_BASE@ + slot))
    getent group "$id" >/dev/null || groupadd --system --gid "$id" "@USER@$slot"
    getent passwd "$id" >/dev/null || useradd --system --uid "$id" --gid "$id" --no-create-home \
        --home-dir /nonexistent --shell "$nologin" "@USER@$slot"
done

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# The versions the bundle was built and tested with (numpy: the newest this Python can have
# when it is older); else the newest that fit, said in the build log.
# The extra "notebook" (nbformat) lets the grader read a submitted .ipynb.
wheel=("$here"/wheels/*.whl)
if ! "$venv/bin/python" -m pip install --disable-pip-version-check -c "$here/constraints.txt" "${wheel[0]}[notebook]"; then
    echo "drill: the pinned versions in constraints.txt do not install here; installing the newest that fit" >&2
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check "${wheel[0]}[notebook]"; then
        echo "drill: nbformat does not install here: submitted notebooks (.ipynb) cannot be graded, .py files can" >&2
        "$venv/bin/python" -m pip install --disable-pip-version-check "${wheel[0]}"
    fi
fi
"$venv/bin/drill" --version

# Nothing an attempt can read may hold the answers: the wheel goes, the installed package
# (the reference solutions, the catalogue, the tool that prints them) and this folder are
# root's alone. numpy and the rest of the environment stay readable: attempts need them.
rm -rf "$here/wheels"
cd /  # -I too: the installed package is found, never a grader/ folder of the working folder
site="$("$venv/bin/python" -I -c 'import grader, os; print(os.path.dirname(os.path.dirname(grader.__file__)))')"
case "$site" in "$venv"/*) ;; *) echo "drill: grader is not installed in $venv but in $site" >&2; exit 1;; esac
chmod -R go-rwx "$site/grader" "$site"/backprop_drill-*.dist-info "$venv/bin/drill" "$here"
chmod 755 "$venv"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission: grade it with backprop-drill @VERSION@,
# exercise @EXERCISE@, and write results.json (also when nothing usable was submitted).
root="${AUTOGRADER_ROOT:-/autograder}"
venv="${DRILL_VENV:-$root/drill-venv}"
python="${DRILL_PYTHON:-$venv/bin/python}"
# Attempts run behind the kernel's wall or not at all (DRILL_REQUIRE_ISOLATION=0: for tests only).
require=--require-isolation
[ "${DRILL_REQUIRE_ISOLATION:-1}" = 0 ] && require=
mkdir -p "$root/results"
# Start from a folder of root's that no attempt can write (the grader's working folder is on
# its import path): never $root, where Gradescope starts us, nor the submission.
mkdir -p "$venv" && cd "$venv" || exit 1
"$python" -c 'from grader.cli import run; run()' gradescope-run --root "$root" --exercise @EXERCISE@ \
    --points @POINTS@ --hidden @HIDDEN@ --timeout @TIMEOUT@ --memory @MEMORY@ --cgroup "${DRILL_CGROUP:-/sys/fs/cgroup}" $require && exit 0
status=$?
# drill itself could not run: still leave Gradescope a results.json it can read.
if ! grep -q '"tests"' "$root/results/results.json" 2>/dev/null; then
    cat > "$root/results/results.json" <<'EOF'
{"score": 0, "output": "The autograder could not run (an error of the autograder, not of your code). Your instructor can see what went wrong in the autograder's output.", "output_format": "text", "stdout_visibility": "hidden", "tests": []}
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
    return f"{name}-{dist.version}-py3-none-any.whl", wheels.zip_files(wheels.with_record(files, info))


# ------------------------------------------------------------------ the bundle

RUNTIME = ("numpy", "click", "pyyaml", "nbformat")  # what the wheel needs at run time (nbformat: notebooks)


def _version_tuple(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version)[:3])


def constraints() -> str:
    """pip constraints: the versions of the runtime dependencies this drill runs with, so the
    container grades with what the bundle was built (and tested) with. Where that version
    needs a newer Python than an image may have (LAST_FOR_OLD_PYTHON), a second line with an
    environment marker pins the last release for the older ones."""
    from importlib import metadata

    lines = ["# the versions backprop-drill was bundled with (pip install -c constraints.txt)"]
    for name in RUNTIME:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        old = LAST_FOR_OLD_PYTHON.get(name)
        if old and _version_tuple(version) > _version_tuple(old[1]):
            lines.append(f'{name}=={version}; python_version >= "{old[0]}"')
            lines.append(f'{name}=={old[1]}; python_version < "{old[0]}"')
        else:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def hidden_checks(exercise: catalog.Exercise, hidden: Iterable[str]) -> tuple[str, ...]:
    """The checks of exercise named in hidden, in check order; BundleError for a name it has not."""
    hidden = [h for h in hidden if h]
    names = [c.name for c in exercise.checks]
    unknown = [h for h in hidden if h not in names]
    if unknown:
        raise BundleError(f"{exercise.id} has no check called {', '.join(repr(u) for u in unknown)}; "
                          f"its checks: {', '.join(names)}")
    return tuple(n for n in names if n in hidden)


def build(out: Path, exercise_id: str | None = None, points: float = formats.DEFAULT_POINTS,
          limits: Limits | None = None, force: bool = False, hidden: Iterable[str] = ()) -> Path:
    """Write the autograder zip to out; never replaces a file without force. The checks named
    in hidden are shown to students only after the due date."""
    try:
        exercise = catalog.exercise(exercise_id)
    except KeyError as exc:
        raise BundleError(exc.args[0]) from None
    hidden = hidden_checks(exercise, hidden)
    limits = limits or Limits()
    wheel_name, wheel_data = wheel()
    values = {"@VERSION@": wheel_name.split("-")[1], "@EXERCISE@": exercise.id, "@POINTS@": f"{points:g}",
              "@HIDDEN@": shlex.quote(",".join(hidden)),
              "@TIMEOUT@": f"{limits.timeout:g}", "@MEMORY@": str(limits.memory_mb),
              "@UID_BASE@": str(SLOT_UID_BASE), "@SLOTS@": str(SLOT_USERS), "@USER@": SLOT_USER}

    def filled(template: str) -> bytes:
        for key, value in values.items():
            template = template.replace(key, value)
        return template.encode()

    data = wheels.zip_files({"setup.sh": filled(SETUP_SH), "run_autograder": filled(RUN_AUTOGRADER),
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
    """The attempt among the submitted files, or None and what the student should do.

    A Python file or a notebook named like the exercise (mlp_backprop.py, mlp_backprop.ipynb)
    wins, the shallowest first and the .py before the notebook at the same depth; else the
    only .py or .ipynb file submitted; else none, and the message says what to rename.
    Notebooks count only where the grader can read them (nbformat installed: setup.sh
    installs it; PrairieLearn's image may not have it)."""
    wanted = exercise.solution
    if not submission.is_dir():
        return None, f"Nothing was submitted. Submit your attempt as one file named {wanted}."
    notebooks = importlib.util.find_spec("nbformat") is not None
    names = {wanted: 0, **({f"{Path(wanted).stem}.ipynb": 1} if notebooks else {})}
    kinds = "Python files or notebooks" if notebooks else "Python files"
    candidates = [p for p in batch.attempt_files(submission) if notebooks or p.suffix == ".py"]
    named = sorted((p for p in candidates if p.name in names), key=lambda p: (len(p.parts), names[p.name], p))
    if named:
        return named[0], None
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        others = sorted(str(p.relative_to(submission)) for p in submission.rglob("*") if p.is_file())
        seen = f" (the submission holds: {', '.join(others[:6])}{', ...' if len(others) > 6 else ''})" if others else ""
        what = "Python file or notebook" if notebooks else "Python file"
        return None, f"No {what} was submitted{seen}. Submit your attempt as one file named {wanted}."
    listed = ", ".join(str(p.relative_to(submission)) for p in candidates[:6]) + (", ..." if len(candidates) > 6 else "")
    return None, (f"{len(candidates)} {kinds} were submitted ({listed}) and none is named "
                  f"{wanted}: name your attempt {wanted}, or submit only that one file.")


def container_memory_mb(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of the container this runs in, in MiB, from its cgroup (v2:
    memory.max; v1: memory/memory.limit_in_bytes), or None when there is none to read."""
    for name in ("memory.max", "memory/memory.limit_in_bytes", "memory.limit_in_bytes"):
        try:
            text = (cgroup / name).read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and int(text) < (1 << 60):  # v1 says "no limit" with a huge number
            return int(text) >> 20
        return None  # "max": no limit
    return None


def fit_memory(requested_mb: int, container_mb: int | None) -> int:
    """The attempt's --memory in a container of container_mb: the requested limit, but at most
    what the container holds less GRADER_RESERVE_MB for the grader (never below MIN_ATTEMPT_MB)."""
    if container_mb is None:
        return requested_mb
    return max(MIN_ATTEMPT_MB, min(requested_mb, container_mb - GRADER_RESERVE_MB))


def isolation_level() -> str:
    """The wall this machine puts around an attempt (SPEC §4 isolation)."""
    try:
        from grader.run import isolation
    except ImportError:  # a grader without kernel isolation: separate processes only
        return "process"
    return isolation.level()


class NotIsolated(Exception):
    """--require-isolation, and the machine offers no kernel wall around an attempt."""


# Gradescope renders "output" as HTML or Markdown unless told otherwise: what an attempt
# prints (and its file name) is shown as plain text, never as markup (formats.gradescope
# says so too; also here for the results.json the autograder writes when it fails).
TEXT_ONLY = formats.GRADESCOPE_TEXT


AUTOGRADER_FAILED = ("The autograder failed on this submission (an error of the autograder, not of your code). "
                     "Your instructor can see what went wrong in the autograder's output.")
NOT_ISOLATED = ("The autograder could not run your code safely here (an error of the autograder's setup, not of "
                "your code), so it was not run. Your instructor can see what went wrong in the autograder's output.")


def autograde(root: Path, exercise_id: str | None = None, points: float = formats.DEFAULT_POINTS,
              limits: Limits | None = None, require_isolation: bool = False,
              hidden: Iterable[str] = ()) -> tuple[dict, Report]:
    """Grade root/submission and write root/results/results.json; returns it and the report.
    The checks named in hidden are shown to the student only after the due date.

    results.json is written once grading is over, every process of the attempt killed.
    With require_isolation, a machine without a kernel wall (isolation "process") grades
    nothing: results.json says the autograder could not run the code, and NotIsolated is raised.
    """
    exercise = catalog.exercise(exercise_id)
    if require_isolation and isolation_level() == "process":
        write_failure(root, NOT_ISOLATED)
        raise NotIsolated("no kernel wall around an attempt here: drill does not run as root, and user "
                          "namespaces are not available (or DRILL_ISOLATION=process is set)")
    path, problem = find_attempt(root / "submission", exercise)
    if path is None:
        report = batch.unrun_report("", exercise, formats.NO_ATTEMPT, problem)
    else:
        report = batch.grade_one(path, exercise.id, limits or Limits())
    results = formats.gradescope(report, points, hidden)
    _write_results(root, results)
    return results, report


def write_failure(root: Path, message: str) -> None:
    """A results.json that says the autograder (not the student) failed."""
    _write_results(root, {"score": 0, "stdout_visibility": "hidden", "tests": [], "output": message, **TEXT_ONLY})


def _write_results(root: Path, results: dict) -> None:
    for test in results.get("tests", []):
        test.setdefault("output_format", "text")
    files.write_atomic(root / "results" / "results.json", json.dumps(results, indent=2, allow_nan=False),
                       overwrite=True)
