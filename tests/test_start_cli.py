"""`drill start` and `drill list` through Click's runner, and help text for every command."""
import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import click
import pytest
from click.testing import CliRunner

from grader import catalog
from grader.catalog import stubgen
from grader.cli import main

STUB = "mlp_backprop.py"


@pytest.fixture
def drill(tmp_path, monkeypatch):
    """Run `drill ARGS...` in tmp_path; returns Click's result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def clean_failure(result, code=1):
    """The command failed with a message, not a traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_start_writes_the_stub_and_says_where_and_how_to_grade(drill, tmp_path, exercise):
    result = drill("start", "--dir", "ws")
    assert result.exit_code == 0, result.output
    path = tmp_path / "ws" / STUB
    assert path.read_text(encoding="utf-8") == exercise.stub_path.read_text(encoding="utf-8")
    assert f"Wrote {os.path.join('ws', STUB)}" in result.output
    assert f"drill grade {os.path.join('ws', STUB)}" in result.output


def test_start_here_tells_to_grade_with_no_path(drill, tmp_path):
    result = drill("start")
    assert result.exit_code == 0, result.output
    assert (tmp_path / STUB).is_file()
    assert f"Wrote {STUB}" in result.output
    assert "drill grade" in result.output


def test_start_again_refuses_and_leaves_the_file_as_it_was(drill, tmp_path):
    assert drill("start", "--dir", "ws").exit_code == 0
    path = tmp_path / "ws" / STUB
    mine = b"def forward(params, x):\n    return 'my own work'\n\xe2\x9c\x93\n"
    path.write_bytes(mine)
    result = drill("start", "--dir", "ws")
    clean_failure(result)
    assert "--force" in result.output
    assert path.read_bytes() == mine
    assert not (tmp_path / "ws" / ".drill" / "backups").exists()


def test_force_replaces_and_keeps_the_old_file_in_backups(drill, tmp_path, exercise):
    assert drill("start", "--dir", "ws").exit_code == 0
    path = tmp_path / "ws" / STUB
    mine = b"# my own work\n"
    path.write_bytes(mine)
    result = drill("start", "--dir", "ws", "--force")
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == exercise.stub_path.read_text(encoding="utf-8")
    backups = list((tmp_path / "ws" / ".drill" / "backups").iterdir())
    assert [b.read_bytes() for b in backups] == [mine]
    assert "Kept your previous attempt" in result.output


def test_links_blanks_only_those(drill, tmp_path, exercise):
    result = drill("start", "--dir", "ws", "--links", "dz2,dz1")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "ws" / STUB).read_text(encoding="utf-8")
    compile(text, STUB, "exec")
    assert 'todo("dz2"' in text and 'todo("dz1"' in text
    solution = exercise.solution_path.read_text(encoding="utf-8")
    code_lines = {line.strip() for line in text.splitlines()}
    for marked in stubgen.find_blanks(solution):
        if marked.name not in ("dz2", "dz1"):
            assert f'todo("{marked.name}"' not in text
            assert all(line.strip() in code_lines for line in marked.code), f"{marked.name} is not filled in"
    assert "Blank links: dz2, dz1" in result.output
    state = json.loads((tmp_path / "ws" / ".drill" / "state.json").read_text())
    assert state["attempts"]["mlp_backprop"]["links"] == ["dz2", "dz1"]


@pytest.mark.parametrize("links", ["", " , "])
def test_links_naming_no_link_is_a_usage_error(drill, tmp_path, links):
    result = drill("start", "--dir", "ws", "--links", links)
    clean_failure(result, code=2)
    assert "names no link" in result.output and "dz2" in result.output
    assert not (tmp_path / "ws" / STUB).exists()


def test_written_files_get_the_mode_the_umask_gives(drill, tmp_path):
    old = os.umask(0o022)
    try:
        assert drill("start").exit_code == 0
        assert drill("start", "--force").exit_code == 0  # keeps the first in the backups
        assert drill("inject-bug", "--bug", "missing-n").exit_code == 0
    finally:
        os.umask(old)
    (backup,) = (tmp_path / ".drill" / "backups").iterdir()
    for path in (tmp_path / STUB, backup, tmp_path / "mlp_backprop_bug.py"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_unknown_link_lists_the_links(drill, tmp_path, exercise):
    result = drill("start", "--dir", "ws", "--links", "dz2,dz9")
    clean_failure(result, code=2)
    assert "dz9" in result.output
    assert ", ".join(b.name for b in exercise.blanks) in result.output
    assert not (tmp_path / "ws" / STUB).exists()


def test_unknown_exercise_is_a_clear_error(drill, tmp_path):
    result = drill("start", "no_such_exercise", "--dir", "ws")
    assert result.exit_code == 2  # a usage error
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "no exercise called 'no_such_exercise'" in result.output
    assert "mlp_backprop" in result.output
    assert not (tmp_path / "ws").exists()


def test_start_records_when_it_began(drill, tmp_path):
    before = datetime.now(timezone.utc)
    assert drill("start", "--dir", "ws").exit_code == 0
    state = json.loads((tmp_path / "ws" / ".drill" / "state.json").read_text())
    assert state["current"] == "mlp_backprop"
    attempt = state["attempts"]["mlp_backprop"]
    assert attempt["file"] == STUB
    started = datetime.fromisoformat(attempt["started_at"])
    assert before - timedelta(seconds=1) <= started <= datetime.now(timezone.utc)


@pytest.mark.parametrize("garbage", ["{not json", "[]", '{"attempts": 3}'])
def test_corrupt_state_is_a_clear_error(drill, tmp_path, garbage):
    (tmp_path / "ws" / ".drill").mkdir(parents=True)
    state = tmp_path / "ws" / ".drill" / "state.json"
    state.write_text(garbage)
    result = drill("start", "--dir", "ws")
    clean_failure(result)
    assert "state.json" in result.output
    assert state.read_text() == garbage
    assert not (tmp_path / "ws" / STUB).exists()


def test_dir_that_is_a_file_is_a_clear_error(drill, tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = drill("start", "--dir", "notes.txt")
    clean_failure(result, code=2)
    assert "notes.txt" in result.output and "is a file" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_list_prints_one_line_per_exercise(drill):
    result = drill("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = catalog.exercises()
    assert len(lines) == len(table)
    for line, (name, ex) in zip(lines, table.items()):
        assert line.split()[0] == name and ex.summary in line


def test_installed_drill_finds_its_data_from_any_folder(tmp_path):
    """The installed `drill` (not this checkout's grader/ folder) finds its exercises from elsewhere."""
    drill_script = os.path.join(os.path.dirname(sys.executable), "drill")
    assert os.path.isfile(drill_script), "install the package first (README): no drill beside python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args):
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)

    listed = run(drill_script, "list")
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("mlp_backprop ") for line in listed.stdout.splitlines())
    started = run(drill_script, "start")
    assert started.returncode == 0, started.stderr
    assert "todo(" in (tmp_path / STUB).read_text(encoding="utf-8")
    where = run(sys.executable, "-c", "import grader.catalog.paths as p; print(p.exercises_dir())")
    assert os.path.isfile(os.path.join(where.stdout.strip(), "mlp_backprop.yaml")), where.stderr


COMMANDS = main.list_commands(click.Context(main))


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    doc = main.get_command(click.Context(main), name).help or ""
    assert doc.strip(), f"drill {name} has no docstring"
    assert "Example" in doc and f"drill {name}" in doc, f"drill {name}'s docstring shows no example"
    result = CliRunner().invoke(main, [name, "--help"], prog_name="drill")
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert " ".join(doc.strip().splitlines()[0].split()) in shown
    assert "Example" in shown


def test_main_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"], prog_name="drill")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("args, code, words", [(["list"], 0, "mlp_backprop"),
                                               (["grade", "no_such_file.py"], 2, "no such file"),
                                               (["start", "nope"], 2, "no exercise called")])
def test_the_console_script_flushes_its_output_and_keeps_the_exit_status(tmp_path, args, code, words):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "from grader.cli import run; run()", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert words in done.stdout + done.stderr
