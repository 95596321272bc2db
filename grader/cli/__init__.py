"""cli: the `drill` command. Each command parses options, calls one library function, prints.

Owns: Click, and everything the user sees on the terminal (messages, exit statuses).
May import: every other part of the grader.

Each subcommand lives in grader/cli/<name>.py and is imported only when it runs,
so `drill grade` does not pay for the imports of every other command. What several
commands share (shown, paragraph, limit_options) lives in grader/cli/common.py.
"""
from __future__ import annotations

import importlib
import os
import sys

# The grader's own numpy does small sums: one BLAS thread, so that its start-up leaves the
# other core to the attempt's process starting beside it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from grader import __version__

# name -> module under grader.cli; each module defines `command`.
COMMANDS = {
    "start": "start",
    "list": "list_",
    "grade": "grade",
    "inject-bug": "inject_bug",
    "reveal": "reveal",
    "bugs": "bugs",
    "explain": "explain",
    "hint": "hint",
    "stats": "stats",
    "next": "next_",
    "watch": "watch",
    "solution": "solution",
    "gradescope-bundle": "gradescope_bundle",
    "prairielearn-question": "prairielearn_question",
    "gradescope-run": "gradescope_run",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"grader.cli.{module}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drill")
def main():
    """Practise the backward pass of a neural network by hand, and grade it link by link.

    \b
    The drill loop:
      drill start          write the stub of the default exercise here
      (fill in every todo() in mlp_backprop.py)
      drill grade          grade it: every link, finite differences, XOR training
    """


def own_imports_only() -> None:
    """Take every folder but the grader's own and Python's off sys.path: the console
    script's folder (a virtual environment's bin/) and the working folder, which an attempt
    graded at the level "process" could write a module into that this process would import
    after the attempt has run. The folder the grader itself was imported from stays."""
    script = os.path.dirname(os.path.realpath(sys.argv[0])) if sys.argv and sys.argv[0] else None
    mine = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # above grader/
    gone = {os.path.realpath(p) for p in (os.getcwd(), script) if p}
    kept = []
    for entry in sys.path:
        real = os.path.realpath(entry or ".")  # "" is the working folder
        if real == mine:
            kept.append(entry or mine)
        elif entry and real not in gone:
            kept.append(entry)
    sys.path[:] = kept


def _early_worker():
    """For `drill grade` and `drill watch`: the warm worker that will run the attempts, started
    before click and the grader are imported (its walls and numpy take as long as they do),
    and ended when the command is. Nothing for other commands, or with DRILL_ISOLATION=process."""
    import contextlib

    if (sys.argv[1:2] not in (["grade"], ["watch"]) or {"-h", "--help"} & set(sys.argv)
            or os.environ.get("DRILL_ISOLATION", "").strip().lower() == "process"):
        return contextlib.nullcontext()
    from grader.catalog import paths
    from grader.run import attempt

    stack = contextlib.ExitStack()
    stack.enter_context(attempt.warm())
    attempt.prestart(paths.protected_dirs())
    return stack


def run() -> None:
    """The `drill` console script: main(), then a fast exit.

    Before main(), own_imports_only(). Everything the command writes is flushed and every
    file it wrote is closed before this returns from main(); what is left is the
    interpreter's own tear-down (tens of ms with numpy loaded), which a command-line tool
    need not wait for.
    """
    own_imports_only()
    try:
        with _early_worker():
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (drill grade | head): nothing to keep
            pass
    os._exit(code)
