"""Names the catalogued bug behind a failing check, by behaviour rather than by text.

For each failing check the grader kept its evidence: the inputs, and what the attempt
produced. Every catalogued bug of the exercise is put into the reference (the mutant) and
run on the same inputs, from the same upstream values; a bug whose output equals the
attempt's is named. Where no mutant matches exactly, a bug with the same signature (the
same constant factor such as N, a transposed result, the same wrong shape) is named. So
the diagnosis works for attempts in any style: it never reads the attempt's code.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from grader import catalog, settings
from grader.judge import checks
from grader.catalog import mutants, reference
from grader.judge.compare import as_array, compare
from grader.judge.report import Diagnosis


@lru_cache(maxsize=None)
def _mutants(bug_id: str):
    """(plain, traced) modules of the reference with the bug in it; None if it will not load."""
    bug = catalog.bug(bug_id)
    exercise = catalog.exercise(bug.exercise)
    path = exercise.solution_path
    try:
        source = mutants.mutant(path.read_text(encoding="utf-8"), bug, str(path))
        assigns = {b.name: b.assigns for b in exercise.blanks}
        return (reference.load(source, f"{path} [{bug.id}]", f"mutant_{bug.id}"),
                reference.load_traced(source, f"{path} [{bug.id}]", assigns))
    except Exception:  # noqa: BLE001 - a mutant that cannot load names nothing
        return None


def _link_output(ctx, bug, ev):
    """What the buggy reference gives for ev's link, from the attempt's own upstream values:
    a value, or ("raised", exception type name) when the mutant fails at that link."""
    modules = _mutants(bug.id)
    if modules is None:
        return None
    try:
        return mutant_link(modules[1], ev)
    except Exception as exc:  # noqa: BLE001
        if ev["link"] in getattr(exc, "drill_links", {ev["link"]: None}):
            return None  # it failed further down the chain
        return ("raised", type(exc).__name__)


def mutant_link(traced, ev):
    """The link ev names, as a (mutated, traced) reference computes it from the attempt's own
    upstream values, and as it stands when the function returns: a later statement that edits
    it in place (`dz1 = da1; dz1 *= mask`) shows, as it does in the attempt's returned value."""
    link = ev["link"]

    def substitute(blank, target, value):
        own = as_array(ev["grads"].get(target)) if isinstance(ev["grads"], dict) else None
        if target == link or own is None or own.shape != np.shape(value) or not np.all(np.isfinite(own)):
            return value
        return own

    result, values = reference.run_traced(traced, ev["fn"], checks.copy_inputs(ev["args"]), substitute)
    final = result.get(link) if isinstance(result, dict) else None
    return final if final is not None else values.get(link)


def _call_matches(bug, ev) -> bool:
    """The mutant's call gives what the attempt's gave: every output the check looked at."""
    modules = _mutants(bug.id)
    if modules is None:
        return False
    with np.errstate(all="ignore"):
        result = getattr(modules[0], ev["fn"])(*checks.copy_inputs(ev["args"]))
    outputs = ev.get("outputs") or {ev.get("label"): (ev["path"], ev["value"])}
    return all(same(value, checks.pick(result, path), nonfinite_alike=True) for path, value in outputs.values())


def same(got, buggy, nonfinite_alike: bool = False) -> bool:
    """got equals buggy: the same shape and values, NaN and infinities in the same places
    (nonfinite_alike: any non-finite value stands for any other, NaN for inf)."""
    a, b = as_array(got), as_array(buggy)
    if a is None or b is None or a.shape != b.shape:
        return False
    if nonfinite_alike:
        bad = ~np.isfinite(a)
        if not np.array_equal(bad, ~np.isfinite(b)):
            return False
        a, b = np.where(bad, 0.0, a), np.where(bad, 0.0, b)
    return bool(np.allclose(a, b, rtol=settings.RTOL, atol=settings.ATOL, equal_nan=True))


def _changes_same_input(bug, ev) -> bool:
    modules = _mutants(bug.id)
    if modules is None:
        return False
    args = checks.copy_inputs(ev["args"])
    with np.errstate(all="ignore"):
        getattr(modules[0], ev["fn"])(*args)
    return bool(checks.what_changed(ev["args"][ev["changed"]], args[ev["changed"]]))


def _matches(ctx, bug, outcome, ev, exact: bool = True) -> bool:
    """The bug's mutant reproduces the evidence: exactly, or (exact=False) a link's wrong
    value only in its signature (the same factor, transpose or wrong shape)."""
    try:
        if "link" in ev:
            buggy = _link_output(ctx, bug, ev)
            if buggy is None:
                return False
            if isinstance(buggy, tuple):
                error = (ev["value"] or {}).get("error") if isinstance(ev["value"], dict) else None
                return bool(error) and error.get("kind") == "raised" and error.get("type") == buggy[1]
            if exact:
                return same(ev["value"], buggy)
            return _same_signature(ev["link"], ev["value"], buggy, ctx, ev)
        if "changed" in ev:
            return _changes_same_input(bug, ev)
        if "path" in ev:
            return _call_matches(bug, ev)
    except Exception:  # noqa: BLE001 - a mutant that fails on these inputs does not match
        return False
    return False


def _same_signature(link, got, buggy, ctx, ev) -> bool:
    """The attempt and the mutant are wrong in the same way: same kind, same factor or shape."""
    given, _ = checks.expected_links(ctx, ev["fn"], ev["args"], ev["grads"])
    expected = given.get(link)
    if expected is None:
        return False
    mine = compare(link, got, expected, sizes=ev.get("sizes"))
    theirs = compare(link, buggy, expected, sizes=ev.get("sizes"))
    if mine.ok or mine.kind != theirs.kind:
        return False
    if mine.kind == "scaled":
        return abs(mine.factor - theirs.factor) <= 1e-6 * max(1.0, abs(theirs.factor))
    if mine.kind in ("transposed", "shape"):
        return mine.message == theirs.message
    return False


def _candidates(exercise_id: str, outcome, ev) -> list[catalog.Bug]:
    """Bugs that could explain this evidence: those of the same link first, then of the check."""
    table = catalog.bugs(exercise_id).values()
    link = ev.get("link")
    first = [b for b in table if link and b.link == link]
    rest = [b for b in table if b not in first and b.caught_by == outcome.name]
    return first + rest


def diagnose(ctx, outcomes) -> list[Diagnosis]:
    """At most one bug for each piece of evidence: one whose mutant reproduces the attempt's
    output exactly if there is one, else one wrong in the same way (never two that could
    contradict each other on one link)."""
    found: list[Diagnosis] = []
    named: set[str] = set()
    for outcome in outcomes:
        for ev in outcome.evidence:
            candidates = [b for b in _candidates(ctx.exercise.id, outcome, ev)
                          if b.id not in named and not (ev.get("note") and b.severity != "note")]
            # exactly, a catalogued bug; else exactly, any small edit; else a catalogued bug in signature
            bug = next((b for b in candidates if _matches(ctx, b, outcome, ev)), None)
            if bug is None and "link" in ev and not ev.get("note"):
                edits = _uncatalogued(ctx, ev)
                if edits:
                    found += edits
                    continue
            if bug is None and "link" in ev:
                bug = next((b for b in candidates if _matches(ctx, b, outcome, ev, exact=False)), None)
            if bug is not None:
                named.add(bug.id)
                found.append(Diagnosis(bug=bug.id, link=bug.link, severity=bug.severity,
                                       message=f"{bug.title}. {' '.join(bug.explanation.split())}",
                                       hint=" ".join(bug.hint.split())))
    return found


def _uncatalogued(ctx, ev) -> list[Diagnosis]:
    """A mistake outside the catalogue: the single edits of the reference's link that
    reproduce the attempt's value exactly (mutants_space.py)."""
    from grader.judge import mutants_space

    value = as_array(ev["value"])
    if value is None or not np.all(np.isfinite(value)):
        return []
    hits = mutants_space.reproducing(ctx, ev, mutant_link, same)
    if not hits:
        return []
    return [Diagnosis(bug=None, link=ev["link"], severity="error", message=mutants_space.message(ev["link"], hits))]
