"""The README stays true: every `drill` command and flag it shows exists, with help."""
import re
import shlex
from pathlib import Path

import pytest

from grader.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def shown_commands():
    """Each `drill ...` command line in the README's code blocks and tables."""
    found = set()
    for line in re.findall(r"(?m)^\s*(drill [^#\n|`]*)", README) + re.findall(r"`(drill [^`]*)`", README):
        found.add(line.strip())
    return sorted(line for line in found if "COMMAND" not in line)  # `drill COMMAND --help`: a pattern


def options_of(command):
    return {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}


@pytest.mark.parametrize("line", shown_commands())
def test_every_command_and_flag_the_readme_shows_exists(line):
    words = shlex.split(line.replace("[", " ").replace("]", " ").replace("...", " "))
    assert words[0] == "drill"
    if len(words) == 1 or words[1].startswith("-"):
        assert set(w for w in words[1:] if w.startswith("-")) <= options_of(main) | {"--help"}
        return
    command = main.get_command(None, words[1])
    assert command is not None, f"the README shows `drill {words[1]}`, which does not exist"
    flags = {w.split("=")[0] for w in words[2:] if w.startswith("-")}
    assert flags <= options_of(command) | {"--help", "-h"}, f"{line}: unknown {flags - options_of(command)}"


def test_the_quick_start_is_the_two_commands_ci_runs():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m pip install . && drill start" in README
    assert "python3 -m pip install '.[test]' && python3 -m pytest -q" in README
    assert "python3 -m pip install -q '.[test]'" in ci and "python3 -m pytest -q" in ci
