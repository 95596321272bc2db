"""The second run of a partial attempt: finished links computed from a blank one earn their points.

May import: judge.checks, judge.plan, judge.errors, run.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from grader import catalog, settings
from grader.judge import errors, plan
from grader.judge.report import Report
from grader.run.sandbox import Limits


def fill_and_rerun(path: Path, exercise: catalog.Exercise, limits: Limits, ctx, tasks: list[dict],
                    channel, report: Report, spent: float) -> None:
    """Finished links computed from a link left blank (a todo, or a statement that raised)
    earn their points too: the calls where that happened run again, in a second worker, with
    a stand-in value in each blank link's place, and the links after it are judged given
    that value (as every link is judged given its own inputs). The stand-ins are random,
    drawn afresh for every grade, never the expected values: the attempt learns nothing
    from them. The blank links keep their first-run verdicts. The second run gets what is
    left of --timeout, and is skipped when too little is."""
    import numpy as np  # here, not at the top: `drill grade` imports numpy while its worker starts

    from grader.judge import checks
    from grader.run.wire import decode, encode

    rng = np.random.default_rng(secrets.randbits(64))
    by_id = {t["id"]: t for t in tasks}
    again, roots_of = [], {}
    for t in tasks:
        r = channel.results.get(t["id"])
        if not t.get("partial") or t.get("notes_only") or r is None or "result" not in r:
            continue
        named = _named_values(r["result"])  # a dict of links, or (O, cache), or (loss, probs)
        blanks = {k: v for k, v in named.items() if isinstance(v, dict) and "__blank__" in v}
        if not any((v.get("error") or {}).get("kind") == "depends" for v in blanks.values()):
            continue
        roots = [k for k, v in blanks.items() if (v.get("error") or {}).get("kind") != "depends"]
        try:  # only the shape and scale of each blank link are taken from the reference
            given, _ = checks.expected_links(ctx, t["fn"], tuple(decode(a) for a in t["args"]), named)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError):
            continue  # the reference cannot run on these values: the first run's verdicts stand
        fill = {}
        for k in roots:
            like = np.asarray(given.get(k)) if given.get(k) is not None else None
            if like is not None and like.dtype.kind == "f":
                # positive, so that a stand-in for probabilities or a variance stays in its domain
                scale = float(np.std(like)) or 1.0
                fill[str(blanks[k]["__blank__"])] = encode(np.abs(rng.normal(0.0, scale, like.shape)) + 0.1 * scale)
        if not fill:
            continue
        earlier = (t.get("cache_from") or {}).get("task")
        if earlier in by_id and all(a["id"] != earlier for a in again):
            again.append(by_id[earlier])  # the call whose output (the attempt's cache) it takes
        again.append({**t, "fill": fill})
        roots_of[t["id"]] = {k: blanks[k] for k in roots}
    left = limits.timeout - spent
    reserve = limits.timeout - plan.budgets(limits.timeout)["total"]
    if not roots_of or left - reserve < settings.MIN_SECOND_RUN_SECONDS:
        return
    run, second, _ = plan.run_worker(path, exercise, limits, lambda: again, left=left)
    problem = errors.run_error(run, second, limits, {t["id"]: t for t in again})
    if problem and problem["kind"] == "cheating":
        report.error = problem
        return
    for tid, roots in roots_of.items():
        r = second.results.get(tid)
        if r is not None and "result" in r:
            r["filled"] = roots  # judged as in the first run; their stand-ins feed the links after
            first = channel.results[tid]  # purity holds only if it held in every run
            r["args_after_more"] = ([first["args_after"]] if "args_after" in first else []) + \
                first.get("args_after_more", []) + r.get("args_after_more", [])
            channel.results[tid] = r


def _named_values(result) -> dict:
    """The named values in what a call returned: a dict's entries, and those of a dict inside
    a returned tuple (forward's cache), with a tuple's other values under the names their
    blanks carry (softmax_cross_entropy's (loss, probs) left as todo). {} when none."""
    if isinstance(result, dict):
        return {} if "__type__" in result or "__blank__" in result else dict(result)
    named = {}
    if isinstance(result, (list, tuple)):
        for value in result:
            if isinstance(value, dict) and "__blank__" in value:
                named[str(value["__blank__"])] = value
            elif isinstance(value, dict) and "__type__" not in value:
                named.update(value)
    return named
