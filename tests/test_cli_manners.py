"""Terminal manners of `drill grade`: NO_COLOR and FORCE_COLOR, files that are no attempt, Ctrl-C."""
import io
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import common, main

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("env, tty, coloured", [
    ({}, True, True), ({}, False, False),
    ({"NO_COLOR": "1"}, True, False), ({"FORCE_COLOR": "1"}, False, True),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False), ({"NO_COLOR": ""}, True, True),
])
def test_no_color_and_force_color(monkeypatch, env, tty, coloured):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert common.color(Tty() if tty else io.StringIO()) is coloured


@pytest.fixture
def attempt(tmp_path):
    shutil.copy(FIXTURES / "wrong_missing_n.py", tmp_path / "mlp_backprop.py")
    return tmp_path / "mlp_backprop.py"


@pytest.mark.parametrize("env, coloured", [({}, False), ({"FORCE_COLOR": "1"}, True),
                                           ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)])
def test_drill_grade_colours_a_pipe_only_when_forced(attempt, env, coloured):
    result = CliRunner(env={"NO_COLOR": None, "FORCE_COLOR": None, **env}).invoke(main, ["grade", str(attempt)])
    assert result.exit_code == 1, result.output
    assert ("\x1b[31mFAIL" in result.output) is coloured


@pytest.mark.parametrize("name", ["notes.txt", "attempt", "mlp_backprop.py.bak"])
def test_a_file_that_is_neither_py_nor_ipynb_is_refused(tmp_path, name):
    (tmp_path / name).write_text("import os\nos.system('echo ran')\n")
    for args in (["grade", str(tmp_path / name)], ["grade", str(tmp_path / name), str(tmp_path / name)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "neither a .py file nor a .ipynb notebook" in result.output and "ran" not in result.output


def test_ctrl_c_on_one_grade_exits_130(attempt, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("grader.practice.grading.grade_attempt", interrupted)
    result = CliRunner().invoke(main, ["grade", str(attempt)])
    assert result.exit_code == 130 and "Interrupted" in result.output
