"""The reference solution as the grader's oracle, loaded from source (so a mutant loads the same way).

`traced` rewrites every marked blank so that its value passes through a hook after it is
computed: the grader uses it to compute each link from the *attempt's own* upstream values
("given its own inputs"), and to read each link of a mutated reference.
"""
from __future__ import annotations

import threading
import types
from typing import Callable

from grader.catalog.stubgen import find_blanks


def load(source: str, filename: str, name: str = "reference") -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def _targets(marked, assigns: str | None) -> list[str]:
    if assigns:
        return [t.strip() for t in assigns.split(",")]
    code = marked.code[-1].strip()
    return [t.strip() for t in code.split("=", 1)[0].split(",")]


def traced_source(source: str, assigns: dict[str, str | None]) -> str:
    """source with `t = __link__(blank, t)` after every marked blank, for each target t."""
    lines = source.splitlines(keepends=True)
    inserts: dict[int, list[str]] = {}
    for m in find_blanks(source):
        hooks = [f'{m.indent}{t} = __link__("{m.name}", "{t}", {t})\n' for t in _targets(m, assigns.get(m.name))]
        inserts[m.end] = hooks
    out = []
    for i, line in enumerate(lines):
        out.extend(inserts.get(i, []))
        out.append(line)
    out.extend(inserts.get(len(lines), []))
    return "".join(out)


class Tracer:
    """The `__link__` hook: records every link's value; may substitute the attempt's value.

    With substitute=None it only records (a plain run of the reference). Otherwise
    substitute(blank, target, value) returns the value to carry on with.
    """

    def __init__(self, substitute: Callable | None = None):
        self.values: dict[str, object] = {}
        self.substitute = substitute

    def __call__(self, blank: str, target: str, value):
        self.values[target] = value
        if self.substitute is None:
            return value
        return self.substitute(blank, target, value)


class LinkHook:
    """A traced module's `__link__`: hands each link to the Tracer of the thread that runs it,
    so that threads sharing one module (a batch's diagnoses, the self-test's jobs, which all
    use the cached mutants) never record into each other's tracer."""

    def __init__(self):
        self.local = threading.local()

    def __call__(self, blank: str, target: str, value):
        tracer = getattr(self.local, "tracer", None)
        return value if tracer is None else tracer(blank, target, value)


def load_traced(source: str, filename: str, assigns: dict[str, str | None]) -> types.ModuleType:
    module = load(traced_source(source, assigns), filename, "reference_traced")
    module.__link__ = LinkHook()
    return module


def run_traced(module: types.ModuleType, fn: str, args: tuple, substitute: Callable | None = None):
    """Call module.fn(*args) with a fresh tracer; returns (result, {target: value})."""
    import numpy as np

    tracer = Tracer(substitute)
    hook = module.__link__
    hook.local.tracer = tracer  # this thread's runs of the module report to this tracer only
    try:
        with np.errstate(all="ignore"):
            result = getattr(module, fn)(*args)
    except Exception as exc:
        exc.drill_links = tracer.values  # the links computed before it failed
        raise
    finally:
        hook.local.tracer = None
    return result, tracer.values
