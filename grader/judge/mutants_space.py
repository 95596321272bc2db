"""Diagnosis beyond the catalogue: every small mistake at every site of the reference's link.

For a wrong link that no catalogued bug explains, every mutation operator is applied at
every site of the reference's statements for that link (one edit at a time); each mutant
runs on the attempt's own upstream values, and the mutants whose link reproduces the
attempt's value exactly are reported, described by their edit: "dW2 behaves as if `a1` were
`z1` in its formula". When no single edit does, pairs of edits are tried, of every operator
but swap-operand (its many sites would make the pairs too many), at most MAX_PAIRS of them.
Each mutant is built once per process and kept.

May import: catalog, judge.checks, judge.compare.
"""
from __future__ import annotations

import ast
import types
from dataclasses import dataclass
from functools import lru_cache

from grader import AST_LOCK, catalog
from grader.catalog import mutate, reference

# At most this many mutants are tried for one link (the operators' sites, in table order).
MAX_MUTANTS = 60
# At most this many pairs of edits are tried for one link, when no single edit reproduces it.
MAX_PAIRS = 60
# At most this many reproducing mutants are named in one message.
MAX_NAMED = 3


@dataclass(frozen=True)
class Mutant:
    operators: tuple[str, ...]
    changes: tuple[tuple[str, str], ...]  # per edit: the reference's text, what the edit puts there ("": left out)
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
    with AST_LOCK:
        tree = ast.parse(reference.traced_source(marked, assigns))
        codes = [(getattr(stmt, "name", None), compile(ast.Module([stmt], []), str(path), "exec")) for stmt in tree.body]
        src = mutate.Source(marked)
        spans = {n.name: (src.offset(n.lineno, 0), src.span(n)[1]) for n in ast.parse(marked).body
                 if isinstance(n, ast.FunctionDef)}
    return marked, str(path), assigns, codes, spans


def _load(exercise_id: str, edits: list, fn: str):
    """The traced reference with edits (not overlapping) made in function fn (only fn is compiled again)."""
    marked, path, assigns, codes, spans = _base(exercise_id)
    lo, hi = spans[fn]
    text = marked[lo:hi]
    for edit in sorted(edits, key=lambda e: -e.start):
        text = text[:edit.start - lo] + edit.text + text[edit.end - lo:]
    with AST_LOCK:
        (node,) = ast.parse(reference.traced_source(text, assigns)).body
        fresh = compile(ast.Module([node], []), path, "exec")
    module = types.ModuleType("reference_mutant")
    module.__file__ = path
    for name, code in codes:
        exec(fresh if name == fn else code, module.__dict__)
    module.__link__ = reference.LinkHook()
    return module


def _sites(exercise_id: str, fn: str, link: str) -> list[tuple[str, mutate.Edit]]:
    """(operator, edit) for every site of every operator among the statements of link."""
    src = mutate.Source(_base(exercise_id)[0])
    found = []
    for name in mutate.OPERATORS:
        try:
            found += [(name, edit) for edit in mutate.sites(src, name, fn, link)]
        except mutate.MutationError:
            continue
    return found


def _mutant(exercise_id: str, fn: str, chosen: list) -> Mutant | None:
    marked = _base(exercise_id)[0]
    try:
        traced = _load(exercise_id, [e for _, e in chosen], fn)
    except Exception:  # noqa: BLE001 - a mutant that does not load explains nothing
        return None
    return Mutant(tuple(n for n, _ in chosen), tuple((marked[e.start:e.end], e.text) for _, e in chosen), traced)


@lru_cache(maxsize=None)
def link_mutants(exercise_id: str, fn: str, link: str) -> tuple[Mutant, ...]:
    """Every single-edit mutant of the reference's statements that assign link in fn."""
    made = (_mutant(exercise_id, fn, [site]) for site in _sites(exercise_id, fn, link)[:MAX_MUTANTS])
    return tuple(m for m in made if m is not None)


@lru_cache(maxsize=None)
def link_pairs(exercise_id: str, fn: str, link: str) -> tuple[Mutant, ...]:
    """Mutants with two edits that do not overlap, of every operator but swap-operand."""
    sites = [(n, e) for n, e in _sites(exercise_id, fn, link) if n != "swap-operand"]
    pairs = [(a, b) for i, a in enumerate(sites) for b in sites[i + 1:]
             if a[1].end <= b[1].start or b[1].end <= a[1].start][:MAX_PAIRS]
    made = (_mutant(exercise_id, fn, list(pair)) for pair in pairs)
    return tuple(m for m in made if m is not None)


def describe(link: str, mutant: Mutant) -> str:
    parts = []
    for old, new in mutant.changes:
        old, new = " ".join(old.split()), " ".join(new.split())
        parts.append(f"`{old}` were left out" if not new else f"`{old}` were `{new}`")
    return " and ".join(parts)


def reproducing(ctx, ev, run, same) -> list[Mutant]:
    """The mutants of ev's link whose output is the attempt's: run(traced, ev) gives a
    mutant's value of the link, same(got, value) compares."""
    for family in (link_mutants, link_pairs):
        out = []
        for m in family(ctx.exercise.id, ev["fn"], ev["link"]):
            try:
                value = run(m.traced, ev)
            except Exception:  # noqa: BLE001 - a mutant that fails on these inputs reproduces nothing
                continue
            if value is not None and same(ev["value"], value):
                out.append(m)
        if out:
            return out
    return []


def message(link: str, found: list[Mutant]) -> str:
    shown = " or ".join(list(dict.fromkeys(describe(link, m) for m in found))[:MAX_NAMED])
    return (f"{link} behaves as if {shown} in its formula (a mistake outside the catalogue: the grader "
            "found it by trying every small change of the formula on your own inputs)")
