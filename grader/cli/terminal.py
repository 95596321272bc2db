"""What the terminal is told: colour or not.

Colour goes to a terminal and nowhere else, unless the user says otherwise: NO_COLOR set to
anything but the empty string turns it off even on a terminal (no-color.org), FORCE_COLOR
set likewise turns it on even in a pipe (force-color.org). NO_COLOR wins when both are set.
"""
from __future__ import annotations

import os
import sys
from typing import TextIO


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
