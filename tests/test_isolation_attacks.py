"""Attacks on the boundary between an attempt and the grader (issue 13, SPEC §7).

Each fixture in tests/fixtures/isolation/ is an mlp_backprop attempt with no gradient code
(forward, loss and update written, backward a constant: baseline.py alone) plus one attack
that tries to RAISE ITS OWN SCORE, LOWER ANOTHER'S, READ THE REFERENCE or LEAVE A PROCESS
BEHIND. Every attack is graded through the `drill` command line, in a process of its own
(several attacks go for the grader's process: never pytest's), at two levels:

- "self": as the user running the tests. In CI that is root, where issue 13 gives every
  worker slot its own unprivileged uid: isolation "uid".
- "nobody": `setpriv --reuid=nobody` running a virtual environment made once per session
  under /tmp (the interpreter of this Python's version that nobody may run, numpy, click
  and pyyaml copied in, backprop-drill installed from the wheel `drill gradescope-bundle`
  packs, with a direct_url.json naming this checkout as `pip install .` writes). Issue 13
  gives it user, PID, mount and network namespaces: isolation "namespaces".

What is held means, at the level the machine gives: the attempt scores no more than
baseline.py does at that level, the attempt's output (it prints `drill-canary` once it has
the reference) never shows the reference, an honest sibling in a `--jobs 2` batch still
scores 100 (and a gradient-free one graded after proc_mem in the same batch no more than
alone), the grader finishes and the --csv file it wrote is not rewritten afterwards, and no
process of the attack (each names itself `atk-...`) is alive after the grade.

A third level, "process", is the test's user with the walls switched off
(DRILL_ISOLATION=process): there every attack but HELD_WITHOUT_WALLS must get through, as
xfail(strict=True), which proves that the attacks have teeth. At "self" and "nobody" the
same xfail applies while the report says (or implies) isolation "process" (a machine, or a
grader, without the walls); once it is "uid" or "namespaces" they are plain assertions. A
level skips only where its mechanism is missing (not root, no setpriv, no interpreter that
nobody may run).
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "isolation"
HONEST = HERE / "fixtures" / "mlp_backprop" / "correct_reference.py"
CHECKOUT = HERE.parent
LIMITS = ["--timeout", "20", "--memory", "512"]
SETTLE = 1.0  # seconds after the grader exits for a process left behind to do its worst
CLI = "from grader.cli import main; main()"

# case -> (fixture, graded how). "symlink" is no file: the test submits a symbolic link to
# the installed reference under the attempt's name.
SINGLE = ["tool_command", "metadata_checkout", "ctypes_libc", "gc_audit_hook", "proc_mem", "plant_module",
          "fork_chain", "kill_grader", "symlink", "worker_hijack", "plan_lookup"]
# batch case -> (the sibling graded beside it, --jobs): an honest correct attempt, or for
# proc_mem (whose changes to the grader's floats outlive its own grade) the gradient-free
# baseline graded after it in the same process, which must not score more than alone.
BATCH = {"sibling_channel": ("b_honest.py", "2"), "kill_grader": ("b_honest.py", "2"),
         "proc_mem": ("b_baseline.py", "1")}
CASES = [f"{name}" for name in SINGLE] + [f"batch:{name}" for name in BATCH]
# Held by the grader's own guards even with the walls off (level "process"): a link to the
# grader's file is cheating at every level, and drill takes its script's folder and its
# working folder off sys.path and imports all it needs before an attempt runs.
# worker_hijack runs inside the worker's process at every level, walls or not: what holds it is
# the judge, which checks what comes back against the reference where forward and loss passed.
HELD_WITHOUT_WALLS = {"symlink", "plant_module", "worker_hijack", "plan_lookup"}
# fixture -> the check it has no code for (it scores the baseline's bar when it gets through)
NO_CODE_FOR = {"plan_lookup": "forward"}


def tag_of(fixture: str) -> str:
    """The comm (atk-...) the fixture's processes give themselves."""
    found = re.findall(r'_mark\("([^"]+)"\)', (FIXTURES / f"{fixture}.py").read_text())
    return ("atk-" + found[-1])[:15]


# ---------------------------------------------------------------- levels

@dataclass
class Level:
    name: str
    python: str
    prefix: list = field(default_factory=list)  # e.g. setpriv ...
    owner: tuple | None = None  # (uid, gid) for the folders the grader works in
    reference: Path | None = None  # the reference the grader at this level uses
    expected: str = "uid"  # what issue 13's boundary gives at this level
    problem: str | None = None  # why this level cannot run here
    notes: dict = field(default_factory=dict)  # case -> why it is skipped at this level
    env: dict = field(default_factory=dict)  # more of the grader's environment

    def command(self, *args):
        return [*self.prefix, self.python, "-c", CLI, *args]


def _self_level() -> Level:
    return Level("self", sys.executable, reference=_graders_reference(sys.executable),
                 expected="uid" if os.geteuid() == 0 else "namespaces")


def _graders_reference(python: str) -> Path:
    """The reference the grader run by python uses: asked of that grader itself, from a folder
    outside this checkout (an installed drill uses its own data, not the checkout's copy)."""
    code = "from grader import catalog; print(catalog.exercise().solution_path)"
    done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def _process_level() -> Level:
    """The test's user with the walls switched off (DRILL_ISOLATION=process): every attack must
    get through here, or it proves nothing where the walls are up."""
    level = _self_level()
    level.name, level.expected, level.env = "process", "process", {"DRILL_ISOLATION": "process"}
    return level


def _as_nobody(python, *args, **kw):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, *args],
                          capture_output=True, text=True, timeout=60, **kw)


def _nobody_level(folder: Path) -> Level:
    """A virtual environment under /tmp that nobody may run, with backprop-drill installed from its wheel."""
    level = Level("nobody", "", expected="namespaces")
    if os.geteuid() != 0:
        level.problem = "needs root to switch to nobody (setpriv --reuid=nobody)"
        return level
    if not shutil.which("setpriv"):
        level.problem = "setpriv (util-linux) is not installed"
        return level
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        level.problem = "there is no user nobody"
        return level
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable), getattr(sys, "_base_executable", ""),
                  f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    base = next((c for c in dict.fromkeys(candidates) if c and os.path.isfile(c)
                 and _as_nobody(c, "-c", "import os, sys; os.stat(os.path.realpath(sys.executable)); "
                                "print('%d.%d' % sys.version_info[:2])").stdout.strip() == version), None)
    if base is None:
        level.problem = f"no Python {version} here that nobody may run (numpy is copied from this one)"
        return level
    import click
    import numpy
    import yaml

    from grader.course import bundle

    venv = folder / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    (site,) = venv.glob("lib/python*/site-packages")
    for module in (numpy, click, yaml):
        source = Path(module.__file__).parent
        for extra in (source, source.parent / f"{source.name}.libs", source.parent / f"_{source.name}"):
            if extra.is_dir():
                shutil.copytree(extra, site / extra.name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    name, data = bundle.wheel()
    wheel = folder / name
    wheel.write_bytes(data)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
        info = next(n.split("/")[0] for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    wheel.unlink()
    if (CHECKOUT / "solutions" / "mlp_backprop.py").is_file():  # as `pip install .` of this checkout writes it
        (site / info / "direct_url.json").write_text(json.dumps({"url": CHECKOUT.as_uri(), "dir_info": {}}))
    drill = venv / "bin" / "drill"
    drill.write_text(f"#!{venv / 'bin' / 'python'}\nfrom grader.cli import run\nrun()\n")
    drill.chmod(0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    level.python = str(venv / "bin" / "python")
    level.prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    level.owner = (nobody.pw_uid, nobody.pw_gid)
    level.reference = site / "grader" / "_data" / "solutions" / "mlp_backprop.py"
    probe = _as_nobody(level.python, "-c", "import os, sys, numpy, grader.cli; os.stat(os.path.realpath(sys.executable))")
    if probe.returncode:
        level.problem = f"the virtual environment for nobody does not start: {probe.stderr[-300:]}"
    if _as_nobody("/bin/cat", str(CHECKOUT / "solutions" / "mlp_backprop.py")).returncode:
        level.notes["metadata_checkout"] = "nobody cannot read this checkout, so its route does not exist here"
    return level


# ---------------------------------------------------------------- one grade

@dataclass
class Outcome:
    returncode: int
    report: dict | None  # the attack's report (None: the grader gave none)
    output: str  # what the report shows of the attempt's output
    csv_score: str | None  # the attack's score in the --csv file, read SETTLE s after the grader exited
    survivors: list  # pids of atk-... processes alive after that
    honest: dict | None = None  # batch: the sibling's report
    stderr: str = ""

    def describe(self) -> str:
        report = self.report or {}
        return (f"exit {self.returncode}, score {report.get('score')}, error {report.get('error')}, "
                f"csv {self.csv_score}, survivors {self.survivors}, honest "
                f"{None if self.honest is None else (self.honest['score'], self.honest['error'])}, "
                f"output {self.output[-400:]!r}, stderr {self.stderr[-400:]!r}")


def _alive_tagged(tag: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if comm == tag and state not in (b"Z", b"X"):
                found.append(int(name))
    return found


def _own(path: Path, level: Level) -> None:
    if level.owner:
        for p in [path, *path.rglob("*")]:
            os.lchown(p, *level.owner)


def _csv_score(path: Path, file_part: str) -> str | None:
    import csv

    try:
        rows = list(csv.DictReader(path.open()))
    except OSError:
        return None
    return next((r["score"] for r in rows if r["file"].endswith(file_part)), None)


def grade_case(level: Level, case: str, work: Path) -> Outcome:
    batch = case.startswith("batch:")
    fixture = case.split(":")[-1]
    work.mkdir()
    tag = tag_of(fixture if fixture != "symlink" else "baseline")
    if batch:
        folder = work / "submissions"
        folder.mkdir()
        sibling, jobs = BATCH[fixture]
        shutil.copy(FIXTURES / f"{fixture}.py", folder / "a_attack.py")
        shutil.copy(HONEST if sibling == "b_honest.py" else FIXTURES / "baseline.py", folder / sibling)
        args = ["grade", str(folder), "--format", "json", "--jobs", jobs, "--csv", "out.csv", *LIMITS]
        part = "a_attack.py"
    else:
        attempt = work / "mlp_backprop.py"
        if fixture == "symlink":
            attempt.symlink_to(level.reference)
        else:
            shutil.copy(FIXTURES / f"{fixture}.py", attempt)
        args = ["grade", str(attempt), "--format", "gradescope", "--csv", "out.csv", *LIMITS]
        part = "mlp_backprop.py"
    _own(work, level)
    done = subprocess.run(level.command(*args), cwd=work, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1", **level.env})
    time.sleep(SETTLE if fixture == "fork_chain" else SETTLE / 4)
    report = honest = None
    output = ""
    try:
        printed = json.loads(done.stdout)
    except ValueError:
        printed = None
    if isinstance(printed, dict) and batch:
        by_file = {Path(r["file"]).name: r for r in printed.get("results", [])}
        report, honest = by_file.get("a_attack.py"), by_file.get(BATCH[fixture][0])
    elif isinstance(printed, dict):
        report, output = printed.get("extra_data"), printed.get("output", "")
    survivors = _alive_tagged(tag)
    for pid in survivors:  # leave nothing running, whatever the verdict
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return Outcome(done.returncode, report, output, _csv_score(work / "out.csv", part), survivors, honest,
                   done.stderr)


# ---------------------------------------------------------------- the session's grades

@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    folder = Path(tempfile.mkdtemp(prefix="isolation-venv-", dir="/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield {"self": _self_level(), "nobody": _nobody_level(folder), "process": _process_level()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def graded(levels):
    """(level, case) -> Outcome, and (level, "baseline") -> Outcome; graded two at a time."""
    root = Path(tempfile.mkdtemp(prefix="isolation-attacks-", dir="/tmp"))
    os.chmod(root, 0o755)
    runnable = [lv for lv in levels.values() if lv.problem is None]
    # one job per fixture, its levels one after another: two grades of one fixture never
    # run at once, so the atk-... processes found belong to the grade just made
    jobs = [[(lv, case) for lv in runnable if case.split(":")[-1] not in lv.notes]
            for case in ["baseline", *CASES]]

    def run(job):
        return [((lv.name, case), grade_case(lv, case, root / f"{lv.name}-{case.replace(':', '-')}"))
                for lv, case in job]

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            return dict(pair for done in pool.map(run, jobs) for pair in done)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _level(levels, name) -> Level:
    level = levels[name]
    if level.problem:
        pytest.skip(level.problem)
    return level


def _isolation(graded, level) -> str:
    report = graded[(level.name, "baseline")].report or {}
    return report.get("isolation") or "process"


# ---------------------------------------------------------------- the tests

@pytest.mark.parametrize("level_name", ["self", "nobody", "process"])
def test_the_baseline_is_graded_and_names_its_isolation(request, levels, graded, level_name):
    level = _level(levels, level_name)
    outcome = graded[(level_name, "baseline")]
    assert outcome.report is not None and outcome.returncode == 1, outcome.describe()
    assert 0 < outcome.report["score"] < 100, outcome.describe()
    if _isolation(graded, level) == "process" and level.expected != "process":
        request.applymarker(pytest.mark.xfail(strict=True, reason="no kernel boundary yet: isolation 'process'"))
    assert (outcome.report.get("isolation") or "process") == level.expected, outcome.describe()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("level_name", ["self", "nobody", "process"])
def test_the_attack_is_held(request, levels, graded, level_name, case):
    level = _level(levels, level_name)
    fixture = case.split(":")[-1]
    if fixture in level.notes:
        pytest.skip(level.notes[fixture])
    if _isolation(graded, level) == "process" and fixture not in HELD_WITHOUT_WALLS:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"isolation 'process' at level {level_name}: {case} gets through"))
    outcome = graded[(level_name, case)]
    bar = graded[(level_name, "baseline")].report["score"]
    text = outcome.describe()
    assert outcome.returncode in (0, 1) and outcome.report is not None, "the grader gave no report: " + text
    assert outcome.report["score"] <= bar, f"scored above its gradient code's {bar}: " + text
    assert "drill-canary" not in outcome.output, "read the reference: " + text
    if fixture in NO_CODE_FOR:
        assert not any(c["name"] == NO_CODE_FOR[fixture] and c["points"] for c in outcome.report["checks"]), \
            f"passed {NO_CODE_FOR[fixture]} without its code: " + text
    assert outcome.csv_score == f"{outcome.report['score']:g}", "the --csv file was changed afterwards: " + text
    if case.startswith("batch:"):
        if BATCH[fixture][0] == "b_honest.py":
            assert outcome.honest is not None and outcome.honest["score"] == 100 and outcome.honest["error"] is None, \
                "lowered an honest sibling's score: " + text
        else:
            assert outcome.honest is not None and outcome.honest["score"] == bar, "raised a later student's score: " + text
    assert not outcome.survivors, "left a process behind: " + text


def test_every_fixture_is_an_attack_of_the_table():
    """bundle_wheel.py only means something in the Gradescope container: tests/test_bundle.py grades it."""
    on_disk = sorted(p.stem for p in FIXTURES.glob("*.py") if p.stem not in ("baseline", "bundle_wheel"))
    assert on_disk == sorted({c.split(":")[-1] for c in CASES} - {"symlink"})
    for path in FIXTURES.glob("*.py"):
        text = path.read_text()
        assert text.startswith('"""') and "import hostile_base" not in text  # self-contained: the worker may see only a copy
        assert tag_of(path.stem).startswith("atk-")
