"""What several commands share: one place for the CLI's own helpers (the library never prints).

shown: a path as the user should read it; paragraph: a catalogue text folded for the
terminal; limit_options: --timeout and --memory, for every command that runs attempts;
color: whether to colour what is written; warn: one warning line on stderr. Colour goes to a terminal and nowhere else,
unless the user says otherwise: NO_COLOR set to anything but the empty string turns it off
even on a terminal (no-color.org), FORCE_COLOR set likewise turns it on even in a pipe
(force-color.org). NO_COLOR wins when both are set.
"""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import TextIO

import click

from grader import settings


def shown(path: Path) -> str:
    """path relative to the current folder when it is below it, else as it is."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def paragraph(text: str, indent: str = "  ") -> str:
    """A catalogue text folded to the terminal's usual width."""
    return textwrap.fill(" ".join(text.split()), width=88, initial_indent=indent, subsequent_indent=indent)


def limit_options(f):
    """--timeout and --memory: the bounds of each attempt's process (drill grade, drill gradescope-bundle)."""
    f = click.option("--memory", "memory_mb", type=click.IntRange(256, 65536), default=settings.MEMORY_MB,
                     show_default=True, help="Memory limit of each attempt's process, in MiB.")(f)
    return click.option("--timeout", type=click.FloatRange(1, 3600), default=settings.TIMEOUT_SECONDS,
                        show_default=True, help="Seconds each attempt may run in all.")(f)


def color(stream: TextIO | None = None) -> bool:
    """Whether to colour what is written to stream (default: stdout)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def printable(text: str) -> str:
    """text with control characters shown as escapes: a path or message from a stranger's
    files cannot move the cursor or recolour the terminal."""
    from grader.run.wire import printable as escaped

    return escaped(text, 2000)


def warn(message: str) -> None:
    """One `drill: warning: ...` line on stderr, control characters escaped."""
    click.echo(f"drill: warning: {printable(message)}", err=True)
