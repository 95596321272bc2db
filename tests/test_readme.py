"""The README stays true: every `drill` command and flag it shows exists, with help."""
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

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
    flags = {w.split("=")[0] for w in words[2:] if w.startswith("-") and w != "-"}  # "-": stdout, not a flag
    assert flags <= options_of(command) | {"--help", "-h"}, f"{line}: unknown {flags - options_of(command)}"


def test_the_quick_start_is_the_two_commands_ci_runs():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m pip install . && drill start" in README
    assert "python3 -m pip install '.[test]' && python3 -m pytest -q" in README
    assert "python3 -m pip install -q '.[test]'" in ci and "python3 -m pytest -q" in ci


# ---------------------------------------------------------------- the error kinds

def readme_error_kinds() -> list[str]:
    """The kinds in the README's table of `error.kind`."""
    table = README.split("| `error.kind` | when |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"(?m)^\| `([\w-]+)` \|", table)


def code_error_kinds() -> tuple[set[str], set[str]]:
    """(every error kind the grader's code can put into a report, the functions that pass a
    kind on from a variable): the literal kind of each {"kind": ..., "message": ...} it
    builds, and each kind it hands to unrun_report(); a name is resolved by the module-level
    string constants of the package."""
    import ast

    import grader

    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in sorted(Path(grader.__file__).parent.rglob("*.py"))]
    constants = {t.id: node.value.value for tree in trees for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)}

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        return constants.get(name)

    kinds, passed_on = set(), set()
    for tree in trees:
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in ast.walk(function):
                if isinstance(node, ast.Dict) and None not in node.keys:
                    keys = [value(k) for k in node.keys]
                    if "kind" in keys and "message" in keys:
                        kind = value(node.values[keys.index("kind")])
                        kinds.add(kind) if kind else passed_on.add(function.name)
                elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) \
                        == "unrun_report":
                    args = node.args[2:3] + [k.value for k in node.keywords if k.arg == "kind"]
                    kinds.update(value(a) for a in args)
    return kinds, passed_on


def test_the_readme_lists_exactly_the_error_kinds_the_code_produces():
    kinds, passed_on = code_error_kinds()
    assert len(set(readme_error_kinds())) == len(readme_error_kinds())  # no kind twice
    assert set(readme_error_kinds()) == kinds
    # a kind passed on from a variable: only the worker's load errors (each a literal of the
    # worker's, counted above) and unrun_report's parameter (its callers' literals, counted above)
    assert passed_on == {"_load_error", "unrun_report"}


def test_the_error_kinds_the_tests_meet_are_in_the_readme():
    import test_grade_golden
    import test_hostile

    met = {c.error for c in test_hostile.CASES.values()} | {v[2] for v in test_grade_golden.VERDICTS.values()}
    assert met - {None} <= set(readme_error_kinds())
    assert {"syntax", "missing-function", "timeout", "memory", "output", "crashed", "exited", "cheating"} <= met


# ---------------------------------------------------------------- words for users

def help_texts():
    yield "drill --help", CliRunner().invoke(main, ["--help"]).output
    for name in main.list_commands(None):
        yield f"drill {name} --help", CliRunner().invoke(main, [name, "--help"]).output


def test_user_facing_text_names_nothing_that_does_not_ship():
    # the product spec and its section numbers are the developers', not the users'
    docs = Path(__file__).parent.parent / "docs"
    texts = [*help_texts(), ("README.md", README), *[(p.name, p.read_text(encoding="utf-8")) for p in docs.glob("*.md")]]
    assert len(texts) > 10
    for where, text in texts:
        assert text.strip(), where
        assert not re.search(r"\bSPEC\b|§", text), where
