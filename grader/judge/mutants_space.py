"""Diagnosis beyond the catalogue: every small mistake at every site of the reference's link.

For a wrong link that no catalogued bug explains, every mutation operator is applied at
every site of the reference's statements for that link (one edit at a time); each mutant
runs on the attempt's own upstream values, and the mutants whose link reproduces the
attempt's value exactly are reported, described by their edit: "dW2 behaves as if `a1` were
`z1` in its formula". Each mutant is built once per process and kept.

May import: catalog, judge.checks, judge.compare.
"""
from __future__ import annotations

import ast
import types
from dataclasses import dataclass
from functools import lru_cache

from grader import catalog
from grader.catalog import mutate, reference

# At most this many mutants are tried for one link (the operators' sites, in table order).
MAX_MUTANTS = 60
# At most this many reproducing mutants are named in one message.
MAX_NAMED = 3


@dataclass(frozen=True)
class Mutant:
    operator: str
    occurrence: int
    old: str  # the reference's text that the edit replaces
    new: str  # what it puts there ("" when it leaves something out)
    traced: object  # the mutant reference, traced like the reference


@lru_cache(maxsize=None)
def _base(exercise_id: str) -> tuple:
    """The marked reference's text, its path, the blanks' assigns, the compiled code of each
    top-level statement of its traced version, and the span of each top-level function in
    the marked text: a mutant recompiles only the function its edit lies in."""
    exercise = catalog.exercise(exercise_id)
    path = exercise.solution_path
    marked = path.read_text(encoding="utf-8")  # the traced module needs the drill markers
    assigns = {b.name: b.assigns for b in exercise.blanks}
    tree = ast.parse(reference.traced_source(marked, assigns))
    codes = [(getattr(stmt, "name", None), compile(ast.Module([stmt], []), str(path), "exec")) for stmt in tree.body]
    src = mutate.Source(marked)
    spans = {n.name: (src.offset(n.lineno, 0), src.span(n)[1]) for n in ast.parse(marked).body
             if isinstance(n, ast.FunctionDef)}
    return marked, str(path), assigns, codes, spans


def _load(exercise_id: str, edit: mutate.Edit, fn: str):
    """The traced reference with edit made in function fn (only fn is compiled again)."""
    marked, path, assigns, codes, spans = _base(exercise_id)
    lo, hi = spans[fn]
    text = marked[lo:edit.start] + edit.text + marked[edit.end:hi]
    (node,) = ast.parse(reference.traced_source(text, assigns)).body
    module = types.ModuleType("reference_mutant")
    module.__file__ = path
    for name, code in codes:
        exec(compile(ast.Module([node], []), path, "exec") if name == fn else code, module.__dict__)
    module.__link__ = reference.Tracer()
    return module


@lru_cache(maxsize=None)
def link_mutants(exercise_id: str, fn: str, link: str) -> tuple[Mutant, ...]:
    """Every single-edit mutant of the reference's statements that assign link in fn."""
    marked = _base(exercise_id)[0]
    src = mutate.Source(marked)
    found: list[Mutant] = []
    for name in mutate.OPERATORS:
        try:
            edits = mutate.sites(src, name, fn, link)
        except mutate.MutationError:
            continue
        for k, edit in enumerate(edits):
            if len(found) >= MAX_MUTANTS:
                return tuple(found)
            try:
                traced = _load(exercise_id, edit, fn)
            except Exception:  # noqa: BLE001 - a mutant that does not load explains nothing
                continue
            found.append(Mutant(name, k, marked[edit.start:edit.end], edit.text, traced))
    return tuple(found)


def describe(link: str, mutant: Mutant) -> str:
    old, new = " ".join(mutant.old.split()), " ".join(mutant.new.split())
    if not new:
        return f"`{old}` were left out"
    return f"`{old}` were `{new}`"


def reproducing(ctx, ev, run, same) -> list[Mutant]:
    """The mutants of ev's link whose output is the attempt's: run(traced, ev) gives a
    mutant's value of the link, same(got, value) compares."""
    out = []
    for m in link_mutants(ctx.exercise.id, ev["fn"], ev["link"]):
        try:
            value = run(m.traced, ev)
        except Exception:  # noqa: BLE001 - a mutant that fails on these inputs reproduces nothing
            continue
        if value is not None and same(ev["value"], value):
            out.append(m)
    return out


def message(link: str, found: list[Mutant]) -> str:
    shown = " or ".join(list(dict.fromkeys(describe(link, m) for m in found))[:MAX_NAMED])
    return (f"{link} behaves as if {shown} in its formula (a mistake outside the catalogue: the grader "
            "found it by trying every small change of the formula on your own inputs)")
