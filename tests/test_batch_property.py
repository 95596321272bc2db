"""The batch's invariants over random submission trees (issue 14), with Hypothesis.

Each example builds a course export (a flat folder of files, folders per student, or
both; nested folders; links inside a student's folder and out of it, dangling ones;
empty, binary, non-UTF-8 and huge files; named pipes; folders named like files; stray
`.drill/` folders holding a state, a pipe or a link to /dev/zero; odd names), grades it
with `drill grade ROOT --json --csv OUT`, and checks:

- the batch ends within its bound (here: seconds; a pipe opened for reading would hang it);
- no traceback; exit status 0 or 1 (2, a usage error, only when no .py file is there);
- one row per submission: no file twice, every flat-folder .py entry and every odd entry
  (pipe, link out, dangling link) has its row, every student's folder at least one;
- every honest attempt keeps its own verdict, a link inside its student's folder that of
  its target, and nothing that is not a regular file is ever handed to the grader;
- nothing is written anywhere but the CSV.

The grading itself is faked (a verdict read from the file's first bytes), so an example
costs milliseconds; test_batch_untrusted.py grades real attempts.
"""
import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_batch_untrusted import (
    verdict,  # the fake grade(): PASS in a file's first bytes passes
)

from grader.cli import main

LIMIT = 4096  # the attempt size bound, made small so that a "huge" file costs nothing
BOUND_SECONDS = 60
PASS = b"PASS\ndef forward(params, x): pass\n"
FAIL = b"FAIL\ndef forward(params, x): pass\n"
KINDS = ["pass", "fail", "empty", "binary", "latin1", "huge", "fifo", "link_in", "link_out", "dangling",
         "dir_py", "drill"]


names = st.text(alphabet="abXY é=-+@'\n\t", min_size=1, max_size=6)
entries = st.lists(st.tuples(st.sampled_from(KINDS), names, st.booleans()), max_size=6)
trees = st.tuples(entries, st.lists(st.tuples(names, entries), max_size=4))


class Tree:
    """A course export built from a drawn spec, and what the batch must make of it."""

    def __init__(self, base: Path):
        self.base, self.root, self.away = base, base / "subs", base / "outside"
        self.root.mkdir()
        self.away.mkdir()
        (self.away / "theirs.py").write_bytes(PASS)
        self.honest: dict[str, bool] = {}  # path -> its own verdict
        self.refused: set[str] = set()  # must have a bad-input row
        self.flat: set[str] = set()  # a flat folder's entries: a row each
        self.students: list[Path] = []

    def fresh(self, folder: Path, name: str, suffix: str = ".py") -> Path:
        path, i = folder / f"{name}{suffix}", 0
        while os.path.lexists(path) or path.name.startswith("."):
            i += 1
            path = folder / f"{name}{i}{suffix}"
        return path

    def add(self, folder: Path, kind: str, name: str, student: Path | None) -> None:
        path = self.fresh(folder, name)
        folder.mkdir(parents=True, exist_ok=True)
        if kind in ("pass", "fail"):
            path.write_bytes(PASS if kind == "pass" else FAIL)
            self.honest[str(path)] = kind == "pass"
        elif kind in ("empty", "binary", "latin1", "huge"):
            path.write_bytes({"empty": b"", "binary": b"\x00\xff\x00", "latin1": "caf\xe9 = 1\n".encode("latin-1"),
                              "huge": b"#" * (LIMIT + 10)}[kind])
        elif kind == "fifo":
            os.mkfifo(path)
            self.refused.add(str(path))
        elif kind == "link_in":
            self.link_in(path, student)
        elif kind in ("link_out", "dangling"):
            path.symlink_to(self.away / "theirs.py" if kind == "link_out" else self.away / "nothing.py")
            self.refused.add(str(path))
        elif kind == "dir_py":
            path.mkdir()
            (path / "notes.txt").write_text("x")
        else:  # a stray .drill/ that claims another exercise, or cannot be read at all
            self.stray_drill(folder, name)
            return
        if student is None:
            self.flat.add(str(path))

    def link_in(self, path: Path, student: Path | None) -> None:
        if student is None:  # a flat folder has no "inside": a link there is a classmate's file
            target = self.fresh(path.parent, "target")
            target.write_bytes(PASS)
            self.honest[str(target)] = True
            self.flat.add(str(target))
            path.symlink_to(target.name)
            self.refused.add(str(path))
            return
        target = self.fresh(student, "target")
        target.write_bytes(FAIL)
        self.honest[str(target)] = False
        path.symlink_to(os.path.relpath(target, path.parent))
        self.honest[str(path)] = False

    def stray_drill(self, folder: Path, name: str) -> None:
        drill = folder / ".drill"
        if drill.exists():
            return
        drill.mkdir(parents=True)
        choice = len(name) % 3
        if choice == 0:
            os.mkfifo(drill / "state.json")
        elif choice == 1:
            (drill / "state.json").symlink_to("/dev/zero")
        else:
            (drill / "state.json").write_text(json.dumps({"attempts": {"softmax_ce": {"exercise": "softmax_ce"}}}))

    def build(self, spec) -> None:
        flat, students = spec
        for kind, name, _ in flat:
            self.add(self.root, kind, name, None)
        for student_name, student_entries in students:
            student = self.fresh(self.root, f"s_{student_name}", "")
            student.mkdir()
            self.students.append(student)
            for kind, name, nested in student_entries:
                self.add(student / "sub" if nested else student, kind, name, student)


def snapshot(base: Path, skip: Path) -> dict:
    """Every entry below base (but skip): its type, and a regular file's bytes' hash."""
    seen = {}
    for root, dirs, files in os.walk(base):
        if Path(root) == skip:
            continue
        for name in dirs + files:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            digest = None
            if stat.S_ISREG(mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(mode):
                digest = os.readlink(path)
            seen[str(path)] = (stat.S_IFMT(mode), digest)
    return seen


def run_batch(tree: Tree, out: Path):
    done = {}

    def go():
        done["result"] = CliRunner().invoke(main, ["grade", str(tree.root), "--json", "--csv", str(out), "-j", "2"])

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(BOUND_SECONDS)
    assert not worker.is_alive(), "the batch did not end within its bound"
    return done["result"]


def inside(path: str, folder: Path) -> bool:
    return path == str(folder) or path.startswith(str(folder) + os.sep)


def check_rows(tree: Tree, rows: list[dict]) -> None:
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files)), "a file has two rows"
    assert all(inside(f, tree.root) for f in files)
    by_file = {r["file"]: r for r in rows}
    assert not [r for r in rows if (r["error"] or {}).get("kind") == "grader"], "something odd reached the grader"
    for path, passed in tree.honest.items():
        assert path in by_file, f"the honest attempt {path!r} has no row"
        assert by_file[path]["passed"] is passed, path
    for path in tree.refused:
        assert (by_file[path]["error"] or {}).get("kind") == "bad-input", path
    for path in tree.flat:
        assert path in by_file, f"the flat folder's {path!r} has no row"
    for student in tree.students:
        assert any(inside(f, student) for f in files), f"the student {student.name!r} has no row"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=trees)
def test_every_submission_gets_exactly_one_row_of_its_own(monkeypatch, spec):
    monkeypatch.setattr("grader.judge.grade.grade", verdict)
    monkeypatch.setattr("grader.judge.source.MAX_FILE_BYTES", LIMIT)
    with tempfile.TemporaryDirectory() as base:
        base = Path(base)
        tree = Tree(base)
        tree.build(spec)
        (base / "out").mkdir()
        out = base / "out" / "grades.csv"
        before = snapshot(base, base / "out")
        result = run_batch(tree, out)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        assert snapshot(base, base / "out") == before, "the batch wrote or changed something it should not have"
        if result.exit_code == 2:
            assert "holds no .py file" in result.output and not tree.honest and not tree.refused and not tree.flat
            return
        assert result.exit_code in (0, 1), result.output
        rows = json.loads(result.stdout)["results"]
        check_rows(tree, rows)
        assert len(out.read_text(encoding="utf-8").splitlines()) == len(rows) + 1  # one CSV line per row
        assert sorted(os.listdir(base / "out")) == ["grades.csv"]
