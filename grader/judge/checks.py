"""The checks' building blocks: worker tasks, and the verdicts drawn from what the worker sent.

An exercise's probe module (grader/judge/probes/<exercise>.py) composes these: it builds the
inputs, asks for tasks, and judges the results with the functions here. Everything in
this module runs in the grader's own process, on plain data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from grader.catalog import reference
from grader import settings
from grader.catalog import Exercise
from grader.judge.compare import Verdict, as_array, compare, factor_name
from grader.judge.terse import where
from grader.run.wire import encode, sent_as


@dataclass
class Context:
    exercise: Exercise
    ref: object  # the reference module
    traced: object  # the reference with every blank passing through a hook
    rng: np.random.Generator
    data: dict = field(default_factory=dict)
    seed: int = settings.PROBE_SEED  # the grade's seed: rng and the probes' sizes come from it


@dataclass
class Outcome:
    """A check's verdict: passed, else failed (judged wrong) or open (nothing to judge: no points)."""

    name: str
    passed: bool
    message: str
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    # Nothing could be judged (not written yet, or not run): not counted as a wrong answer.
    open: bool = False
    # For the diagnosis: the link, the attempt's value and how to recompute it with a mutant.
    evidence: list[dict] = field(default_factory=list)
    terse: str = ""  # where it is wrong, in a few words (judge/terse.py), for --feedback terse


# ---------------------------------------------------------------- tasks for the worker

def call(task_id: str, fn: str, args: list, *, keep_args: bool = True, partial: bool = False,
         cache_from: dict | None = None, notes_only: bool = False) -> dict:
    """A call of the attempt's fn on args. partial: a call that raises is run again statement
    by statement (grader/run/partial.py); cache_from: one arg is laid over the attempt's own
    earlier output (its cache, extra keys kept); notes_only: its result only ever adds notes,
    so it is not worth a second run of a partial attempt (judge/rerun.py)."""
    task = {"id": task_id, "kind": "call", "fn": fn, "args": [encode(a) for a in args],
            "keep_args": keep_args, "partial": partial, "needs": [fn]}
    if cache_from:
        task["cache_from"] = cache_from
    if notes_only:
        task["notes_only"] = True
    return task


def finite_difference_task(task_id: str, env: dict, *, loss: list[str], grads: list[str],
                           needs: list[str], params: str = "params", result: str = "loss",
                           grads_name: str = "grads") -> dict:
    return {"id": task_id, "kind": "fd", "env": {k: encode(v) for k, v in env.items()},
            "loss": loss, "grads": grads, "params": params, "result": result,
            "grads_name": grads_name, "eps": settings.FD_EPS, "needs": needs}


def train_task(task_id: str, env: dict, *, steps: list[str], iters: int, final: list[str],
               outputs: list[str], needs: list[str], record: str = "loss") -> dict:
    return {"id": task_id, "kind": "train", "env": {k: encode(v) for k, v in env.items()},
            "steps": steps, "iters": iters, "final": final, "outputs": outputs,
            "record": record, "needs": needs}


# ---------------------------------------------------------------- reading results

def failure(result: dict | None, fn: str) -> str | None:
    """Why a task gave no result: not run, skipped, or what the attempt raised, and where."""
    if result is None:
        return f"{fn} did not run to the end (the attempt's process stopped first)"
    if "skipped" in result:
        return f"the attempt defines no function {', '.join(result['skipped'])}"
    error = result.get("error")
    if error and "result" not in result:
        return f"{fn} {raised(error)}"
    return None


def unjudged(result: dict | None) -> bool:
    """The task gave nothing to judge: not run, a missing function, or a todo() still there."""
    if result is None or "skipped" in result:
        return True
    error = result.get("error") or {}
    return "result" not in result and (error.get("type") == "NotImplementedError" or bool(error.get("not_run")))


def raised(error: dict) -> str:
    """What went wrong in the attempt's call, as the end of a sentence about the function."""
    where = error.get("where") or {}
    at = f" at line {where['line']}" if where.get("line") else ""
    message = error.get("message", "")
    if error.get("type") == "NotImplementedError":
        return f"is not finished: {message}".rstrip(": ")
    if error.get("kind") == "timeout":
        return f"{message}{at}"
    if error.get("kind") == "bad-return":
        return f"returned what the grader cannot use: {message}".rstrip(": ")
    return f"raised {error.get('type')}{at}: {message}".rstrip(": ")


def pick(value, path: tuple):
    """Follow a path of indices/keys into a decoded result; None where it does not lead."""
    for step in path:
        if isinstance(step, int) and isinstance(value, (tuple, list)) and len(value) > step:
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value and "__type__" not in value:
            value = value[step]
        else:
            return None
    return value


def shape_problem(value, path: tuple, fn: str, count: int = 0) -> str | None:
    """A message when the returned structure does not even hold the path; count: how many
    values fn should return, when it returns a tuple."""
    what = f"{fn}'s result"
    for step in path:
        if isinstance(step, int):
            count = max(count, step + 1)
            if not isinstance(value, (tuple, list)):
                return f"{fn} should return {count} values (a tuple), not one {_what(value)}"
            if len(value) <= step:
                return f"{fn} returned {len(value)} values; it should return {count}"
            value, what = value[step], f"{fn}'s value number {step + 1}"
        else:
            if not isinstance(value, dict) or "__type__" in value or "__blank__" in value:
                return f"{what} should be a dict with the key {step!r}, not {_what(value)}"
            if step not in value:
                return f"{what} (a dict) has no key {step!r}"
            value, what = value[step], f"{what}[{step!r}]"
    return None


def _what(value) -> str:
    if isinstance(value, dict) and "__type__" in value:
        return value["__type__"]
    if isinstance(value, dict):
        return "a dict"
    return {type(None): "None"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- verdicts

def judge_outputs(ctx: Context, name: str, fn: str, results: dict, task_ids: list[str],
                  paths: Callable[[int], dict], expected: Callable[[int], dict], *,
                  sizes: Callable[[int], dict], scalars: frozenset | set = frozenset(),
                  context: str = "", args: Callable[[int], list] | None = None,
                  plain_arrays: bool = True) -> Outcome:
    """Every named output (a path into what fn returned) of every task matches the reference.

    args(i), when given, are the inputs of task i: kept as evidence for the diagnosis.
    plain_arrays: an output that is a subclass of ndarray (an np.matrix) fails, whatever its
    numbers (stability, which compares the attempt with itself, leaves that to the others)."""
    for i, tid in enumerate(task_ids):
        r = results.get(tid)
        why = failure(r, fn)
        if why:
            return Outcome(name, False, context + why, open=unjudged(r))
        exp = expected(i)
        count = 1 + max((p[0] for p in paths(i).values() if p and isinstance(p[0], int)), default=-1)
        for label, path in paths(i).items():
            problem = shape_problem(r["result"], path, fn, count)
            if problem:
                return Outcome(name, False, context + problem)
            got = pick(r["result"], path)
            subclass = subclass_problem(fn, label, got) if plain_arrays else None
            if subclass:
                return Outcome(name, False, context + subclass, terse=context + subclass,
                               details={"subclass": f"{fn} returns {label} as {_article(sent_as(got))}"})
            v = compare(label, got, exp[label], sizes=sizes(i), scalar=label in scalars)
            if not v.ok:
                # every output of the call, so that the diagnosis names a bug only when all of them match
                outputs = {lb: (p, pick(r["result"], p)) for lb, p in paths(i).items()}
                evidence = [{"fn": fn, "args": args(i), "path": path, "label": label, "value": got,
                             "expected": exp[label], "scalar": label in scalars, "outputs": outputs}] if args else []
                return Outcome(name, False, context + sized(v.message, sizes(i)), evidence=evidence,
                               terse=context + where(label, got, exp[label]))
    return Outcome(name, True, context + "right" if context else "right for every probe")


def subclass_problem(fn: str, label: str, value) -> str | None:
    """What is wrong with a value fn returned as a subclass of ndarray (an np.matrix, say),
    whatever its numbers: the code that uses it meets other rules than an array's."""
    name = sent_as(value)
    if not name:
        return None
    if name == "matrix":  # the usual one
        return (f"{fn} returns {label} as an np.matrix, not a plain numpy array: on an np.matrix * is a "
                f"matrix product and a row or column picked out stays 2-D, so the code that uses {label} "
                "computes something else than it does on an array")
    return (f"{fn} returns {label} as a {name} (a subclass of numpy's ndarray), not a plain numpy array: "
            f"the code that uses {label} may compute something else than it does on an array")


def _article(subclass: str) -> str:
    return "an np.matrix" if subclass == "matrix" else f"a {subclass}"


def log_guard(loss, probs: np.ndarray, y: np.ndarray) -> float | None:
    """The eps of settings.LOG_GUARDS for which loss is the mean of -log(p + eps) over each
    row's true-class probability p (a guard inside the log), or None."""
    value = as_array(loss)
    if value is None or value.size != 1 or not np.isfinite(value).all():
        return None
    picked = np.asarray(probs, dtype=float)[np.arange(len(y)), y]
    for eps in settings.LOG_GUARDS:
        if np.isclose(float(value.reshape(())), -np.mean(np.log(picked + eps)), rtol=settings.RTOL, atol=settings.ATOL):
            return eps
    return None


def guard_gradient(ref, eps: float, params: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """Central differences, on the reference, of what a guard eps inside the log adds to the
    loss (-mean log(p + eps) + mean log p): what finite differences of a guarded loss show
    beyond the exact gradient, so that a guarded loss is judged on the rest."""
    def added(p):
        z2, _ = ref.forward(p, x)
        _, probs = ref.softmax_cross_entropy(z2, y)
        picked = probs[np.arange(len(y)), y]
        return float(np.mean(np.log(picked)) - np.mean(np.log(picked + eps)))

    out = {}
    for key, value in params.items():
        grad = np.zeros_like(value, dtype=float)
        for index in np.ndindex(value.shape):
            trial = copy_inputs(params)
            trial[key][index] += settings.FD_EPS
            up = added(trial)
            trial[key][index] -= 2 * settings.FD_EPS
            grad[index] = (up - added(trial)) / (2 * settings.FD_EPS)
        out[key] = grad
    return out


def guard_note(eps: float) -> str:
    return (f"loss is that of -log(probs + {eps:g}): a guard inside the log, which moves the loss a little "
            "from the exact cross-entropy; within what a loss needs, so it passes")


def sized(message: str, sizes: dict) -> str:
    """message, with the sizes of the probe it was found with, when there were several."""
    if not sizes:
        return message
    return message + " (with " + ", ".join(f"{k}={v}" for k, v in sizes.items()) + ")"


def extra_cache_caveat(results: dict, forward_ids: list[str], known: tuple, forward_passed: bool) -> str:
    """When forward is wrong and keeps values of its own in the cache (beyond those the grader
    gives backward), a link of backward may be wrong only through them: said so, not hidden."""
    if forward_passed:
        return ""
    extra = set()
    for tid in forward_ids:
        cache = pick((results.get(tid) or {}).get("result"), (1,))
        if isinstance(cache, dict) and "__type__" not in cache and "__blank__" not in cache:
            extra |= {str(k) for k in cache if k not in known}
    if not extra:
        return ""
    keys = ", ".join(sorted(extra)[:4])
    return (f"; note: backward also gets {keys} from your own forward's cache, and forward is wrong: "
            "if backward uses them, fix forward first")


def judge_links(ctx: Context, results: dict, fn: str, links: list[str], task_ids: list[str],
                link_args: list[tuple], *, sizes: list[dict], regions: list[dict],
                tolerated: tuple | None = None, caveat: str = "") -> list[Outcome]:
    """Each link right given its own inputs: the reference's formula applied to the attempt's
    own upstream links (or matching the reference outright), on every probe. caveat: added to
    the message of every link judged wrong (see extra_cache_caveat)."""
    verdicts: dict[str, Outcome] = {}
    judged: dict[int, tuple] = {}  # probe -> (grads, given, plain)
    scaled: dict[str, tuple] = {}  # link -> (probe, Verdict) where it is first a multiple
    for i, tid in enumerate(task_ids):
        r = results.get(tid)
        why = failure(r, fn)
        if why:
            for link in links:
                verdicts.setdefault(link, Outcome(link, False, why, open=unjudged(r)))
            continue
        grads = r["result"]
        if not isinstance(grads, dict) or "__type__" in grads or "__blank__" in grads:
            for link in links:
                verdicts.setdefault(link, Outcome(link, False, f"{fn} should return a dict of gradients, "
                                                               f"not {_what(grads)}"))
            continue
        given, plain = expected_links(ctx, fn, link_args[i], grads)
        judged[i] = (grads, given, plain)
        filled = r.get("filled") or {}  # blank in the first run; a stand-in fed the links after
        for link in links:
            if link in verdicts:
                continue
            got = filled.get(link, grads.get(link))
            subclass = subclass_problem(fn, link, got)
            if subclass:
                verdicts[link] = Outcome(link, False, subclass, terse=subclass,
                                         details={"subclass": f"{fn} returns {link} as {_article(sent_as(got))}"})
                continue
            v = judge_link(link, got, given.get(link), plain.get(link), sizes[i], regions[i])
            if not v.ok:
                if v.kind == "scaled":
                    scaled[link] = (i, v)
                evidence = {"fn": fn, "link": link, "args": link_args[i], "value": got, "grads": grads,
                            "sizes": sizes[i]}
                verdicts[link] = _wrong_link(v, evidence, given.get(link), links, caveat)
    for link, (i, v) in scaled.items():
        named = factor_name(v.factor, sizes[i])
        if named and not _same_size_everywhere(link, named, judged, sizes, regions):
            verdicts[link].message = verdicts[link].message.replace(f" (a factor of {named})", "")
    if tolerated:
        _judge_tolerated(ctx, results, fn, links, tolerated, verdicts)
    return [verdicts.get(link) or Outcome(link, True, "right for every probe") for link in links]


def _wrong_link(v, evidence: dict, expected, links: list[str], caveat: str) -> Outcome:
    """The verdict of a link judged wrong (v) on the probe of evidence: the message with the
    probe's sizes, and a note when the link holds a later link's values (edited in place)."""
    link, got, grads = evidence["link"], evidence["value"], evidence["grads"]
    message = v.message if v.kind == "blank" else sized(v.message, evidence["sizes"]) + caveat
    alias = _overwritten_by(link, got, grads, links)
    if alias and v.kind not in ("blank", "raised"):
        message += (f"; it holds exactly the values of your {alias}, which is computed after it: "
                    f"as if {link} were changed in place when {alias} was made from it")
    # a link that could not be judged is evidence of nothing: no diagnosis from it
    return Outcome(link, False, message, open=v.kind == "blank", evidence=[] if v.kind == "blank" else [evidence],
                   terse=v.message if v.kind in ("blank", "raised") else where(link, got, expected))


def _overwritten_by(link: str, got, grads: dict, links: list[str]) -> str | None:
    """A later link whose value the attempt's link holds exactly (one array, edited in place)."""
    mine = as_array(got)
    if mine is None or mine.size < 2:
        return None
    for later in links[links.index(link) + 1:]:
        theirs = as_array(grads.get(later))
        if theirs is not None and theirs.shape == mine.shape and np.array_equal(theirs, mine):
            return later
    return None


def _same_size_everywhere(link, named: str, judged: dict, sizes: list[dict], regions: list[dict]) -> bool:
    """Whether the link is off by the size named ("N = 16", "1/H = 1/8") in every probe where
    it was judged: a factor of 2 that is D in one probe is not D when D is 3 in the next."""
    key = named.split(" = ")[0]
    inverse = key.startswith("1/")
    key = key.removeprefix("1/")
    for j, (grads, given, plain) in judged.items():
        v = judge_link(link, grads.get(link), given.get(link), plain.get(link), sizes[j], regions[j])
        n = sizes[j].get(key)
        if v.ok or v.kind != "scaled" or not n or not np.isclose(v.factor, 1.0 / n if inverse else n, rtol=1e-6):
            return False
    return True


def _judge_tolerated(ctx, results, fn, links, tolerated, verdicts):
    """A probe where differences inside one region are a convention, not an error: noted."""
    tid, args, regions, label = tolerated
    r = results.get(tid)
    if failure(r, fn) or not isinstance(r.get("result"), dict) or "__type__" in r["result"]:
        return
    grads = r["result"]
    given, plain = expected_links(ctx, fn, args, grads)
    mask = regions[label]
    for link in links:
        if link in verdicts:
            continue
        got = as_array(grads.get(link))
        exp = given.get(link)
        if got is None or exp is None or got.shape != np.shape(exp):
            continue
        differs = ~np.isclose(got, exp, rtol=settings.RTOL, atol=settings.ATOL)
        if differs.any() and mask.shape == differs.shape and not (differs & ~mask).any():
            note = (f"{link} differs from the usual convention only {label} "
                    f"({int(differs.sum())} entries); that is a matter of convention, not an error")
            verdicts[link] = Outcome(link, True, "right for every probe", notes=[note],
                                     evidence=[{"fn": fn, "link": link, "args": args,
                                                "value": grads.get(link), "grads": grads, "note": True}])


def expected_links(ctx: Context, fn: str, args: tuple, grads: dict, module=None):
    """(given, plain): each link by the reference from the attempt's own upstream values, and
    each link of the reference alone. module: a traced (possibly mutated) reference."""
    module = module or ctx.traced

    def substitute(blank, target, value):
        own = as_array(grads.get(target))
        if own is not None and own.shape == np.shape(value) and np.all(np.isfinite(own)):
            return own
        return value

    _, given = reference.run_traced(module, fn, copy_inputs(args), substitute)
    _, plain = reference.run_traced(ctx.traced, fn, copy_inputs(args))
    return given, plain


def judge_link(link, got, given, plain, sizes, regions) -> Verdict:
    if given is None:
        return Verdict(False, f"{link} could not be checked")
    if isinstance(got, dict) and "__blank__" in got:
        raised_here = (got.get("error") or {}).get("kind") == "raised"
        return Verdict(False, blank_message(link, got.get("error")), "raised" if raised_here else "blank")
    v = compare(link, got, given, sizes=sizes, regions=regions)
    if not v.ok and plain is not None and compare(link, got, plain).ok:
        return Verdict(True, f"{link} is right")
    if v.ok and _vanishes(given) and plain is not None and not _vanishes(plain):
        # Given all-zero inputs almost any formula gives zero: nothing is learnt about this
        # link, so it earns nothing (np.zeros placeholders must not score).
        return Verdict(False, f"{link} could not be checked on its own: in your attempt, what it is "
                              "computed from is all zeros", "blank")
    ratio = _scale_ratio(given, plain)
    if v.ok and ratio is not None and ratio < settings.LINK_SCALE_FLOOR:
        # Given tiny inputs the expected value is within ATOL of almost anything: the same.
        return Verdict(False, f"{link} could not be checked on its own: in your attempt, what it is "
                              f"computed from is about {ratio:.0e} of its true size, too small to tell "
                              "a right formula from a wrong one", "blank")
    return v


def _vanishes(value) -> bool:
    arr = as_array(value)
    return arr is not None and arr.size > 0 and bool(np.all(np.abs(arr) <= 1e-300))


def _scale_ratio(given, plain) -> float | None:
    """The largest entry of given over the largest of plain (None when either is not an array
    of numbers of one shape, or plain itself is within rounding of 0, as batch norm's db1 is:
    then the ratio of two roundings says nothing)."""
    g, p = as_array(given), as_array(plain)
    if g is None or p is None or g.shape != p.shape or g.size == 0:
        return None
    top = float(np.max(np.abs(p)))
    return float(np.max(np.abs(g))) / top if top > 1e3 * settings.ATOL and np.isfinite(top) else None


def blank_message(link: str, why: dict | None) -> str:
    why = why or {}
    if why.get("kind") == "depends":
        return f"{link} could not be checked: it is computed from {why.get('on')}, which has no value"
    if why.get("kind") == "todo":
        return f"{link} is not written yet"
    return f"{link} could not be computed: it {raised(why)}"


def judge_finite_difference(ctx: Context, results: dict, name: str, grads_of: dict[str, str],
                            params: dict, grads_fn: str = "backward", offset: dict | None = None,
                            truth: dict | None = None) -> Outcome:
    """Central differences of the attempt's own loss against its own gradients.

    grads_of maps each parameter to its gradient's name; the worker's fd task gives dicts
    of them, or single arrays when the parameter is one array (grads_of then has one entry).
    grads_fn: the attempt's function that gives the gradients, for the messages.
    truth: parameter -> the reference's gradient here, given when the attempt's forward and
    loss passed their own checks: its central differences must then be the reference's. Both
    sides of this check are computed in the attempt's process, which the attempt can reach
    (tests/fixtures/isolation/worker_hijack.py hands back the same made-up array twice)."""
    r = results.get(name)
    why = failure(r, f"the loss or {grads_fn}") if (r is None or "skipped" in r) else None
    if why:
        return Outcome(name, False, why, open=True)
    error = r.get("error") or _blank_gradient(r, grads_of, params)
    if error:
        return Outcome(name, False, f"could not run: the attempt {raised(error)}",
                       open=error.get("type") == "NotImplementedError")
    numeric, analytic = r.get("numeric"), r.get("analytic")
    if len(grads_of) == 1:  # one array each way: name them as the dicts would
        (pname, gname), = grads_of.items()
        numeric = {pname: numeric} if isinstance(numeric, np.ndarray) else numeric
        analytic = {gname: analytic} if as_array(analytic) is not None else analytic
    if not isinstance(analytic, dict) or "__type__" in analytic:
        return Outcome(name, False, f"{grads_fn} should return a dict of gradients, not {_what(analytic)}")
    worst_all = 0.0
    for pname, gname in grads_of.items():
        num = _numeric_of(numeric, pname, offset)
        problem, worst = _fd_disagreement(analytic.get(gname), num, pname, gname, grads_fn)
        if problem:
            return Outcome(name, False, problem)
        worst_all = max(worst_all, worst)
        if truth is not None and pname in truth and _not_the_loss(num, truth[pname]):
            return Outcome(name, False, f"the central differences of {pname} that came back are not those of "
                                        f"the loss your functions were judged to compute: the run was tampered with")
    return Outcome(name, True, f"analytic gradients agree with central differences "
                               f"(worst relative error {worst_all:.1e})")


def _numeric_of(numeric, pname: str, offset: dict | None):
    """The central differences of pname that came back, less the share of the loss's own guard
    inside the log (guard_gradient) when there is one."""
    num = numeric.get(pname) if isinstance(numeric, dict) else None
    if num is not None and offset and pname in offset and np.shape(offset[pname]) == np.shape(num):
        num = as_array(num) - offset[pname]
    return num


def _not_the_loss(numeric, truth) -> bool:
    """Whether central differences that came back are far from the reference's gradient (loosely:
    an honest attempt's loss passed its check, so its differences are within FD_TOL of it)."""
    num, ref = as_array(numeric), as_array(truth)
    if num is None or ref is None or num.shape != ref.shape:
        return True
    rel = np.abs(num - ref) / np.maximum(np.abs(num) + np.abs(ref), settings.FD_FLOOR)
    return bool(rel.max() > settings.FD_TRUTH_TOL)


def _blank_gradient(r: dict, grads_of: dict[str, str], params) -> dict | None:
    """A partial run's first error (the todo it stopped at) when a gradient the check needs
    came back blank: that gradient is not written. A blank nothing needs (a dz2 left to do
    by an attempt that computes dW2 without it) does not stop the check."""
    if not r.get("partial"):
        return None
    analytic = r.get("analytic")
    needed = set(grads_of.values()) | ({f"d{k}" for k in params} if isinstance(params, dict) else set())
    if isinstance(analytic, dict) and "__blank__" not in analytic and "__type__" not in analytic:
        blank = any(isinstance(analytic.get(g), dict) and "__blank__" in analytic[g] for g in needed)
    else:  # a partial run gave no gradients at all (blank, or it never reached its return)
        blank = as_array(analytic) is None
    return (r.get("first_error") or {"type": "NotImplementedError", "message": ""}) if blank else None


def _fd_disagreement(raw, numeric, pname: str, gname: str, grads_fn: str) -> tuple[str | None, float]:
    """(what is wrong with the gradient raw of pname against its central differences, or None;
    the worst relative error between them)."""
    ana, num = as_array(raw), as_array(numeric)
    if ana is None:
        return f"{grads_fn} returned no usable {gname}", 0.0
    if num is None or not np.all(np.isfinite(num)):
        return f"the loss is not finite when {pname} is nudged", 0.0
    if ana.shape != num.shape:
        return f"{gname} has shape {ana.shape}, but {pname} has shape {num.shape}", 0.0
    if not np.all(np.isfinite(ana)):
        return f"{gname} has NaN or infinite entries", 0.0
    rel = np.abs(num - ana) / np.maximum(np.abs(num) + np.abs(ana), settings.FD_FLOOR)
    worst = float(rel.max())
    if worst <= settings.FD_TOL:
        return None, worst
    bad = int((rel > settings.FD_TOL).sum())
    low = isinstance(raw, np.ndarray) and raw.dtype.kind == "f" and raw.dtype.itemsize < 8
    why = (f"; your attempt computes in {raw.dtype.name}, too coarse for the differences of a "
           f"nudge of {settings.FD_EPS:g}: the exercise works in float64") if low else ""
    return (f"{gname} disagrees with central differences of your own loss in {bad} of {rel.size} entries "
            f"(worst relative error {worst:.2g}, allowed {settings.FD_TOL:g}){why}"), worst


def training_run(results: dict, name: str) -> tuple[Outcome | None, dict]:
    """What every training check starts from: (a failing verdict when the run did not get to
    the end, else None) and the run's details (the loss curve, iterations, seconds)."""
    r = results.get(name)
    if r is None or "skipped" in r:
        return Outcome(name, False, failure(r, "training") or "training did not run", open=True), {}
    losses = as_array(r.get("losses"))
    details = {"losses": losses.tolist() if losses is not None else [],
               "iterations": r.get("iterations"), "seconds": r.get("seconds")}
    if r.get("error"):
        return Outcome(name, False, f"training stopped at iteration {r.get('iterations', 0)}: "
                                    f"the attempt {raised(r['error'])}", details=details,
                       open=r["error"].get("type") == "NotImplementedError"), details
    if "stopped" in r:
        return Outcome(name, False, f"the loss became NaN or infinite at iteration {r['stopped']}",
                       details=details), details
    return None, details


def judge_convergence(ctx: Context, results: dict, name: str, y: np.ndarray, output: str,
                      recompute: Callable | None = None) -> Outcome:
    """recompute(params) -> the logits, given when the attempt's forward passed its check: the
    accuracy is then that of the trained parameters under the reference's forward, not of the
    logits that came back (which the attempt, in the worker's process, could make up)."""
    train = ctx.exercise.train
    stopped, details = training_run(results, name)
    if stopped:
        return stopped
    r = results[name]
    losses = as_array(r.get("losses"))
    z = as_array(pick(r.get("outputs"), (output,)))
    if recompute is not None and z is not None:
        try:
            z = as_array(recompute(pick(r.get("outputs"), ("params",))))
        except Exception:  # noqa: BLE001 - whatever came back as the parameters
            return Outcome(name, False, "after training, sgd_step's parameters came back unusable", details=details)
    if z is None or z.ndim != 2 or z.shape[0] != len(y):
        return Outcome(name, False, "after training, forward gave no usable logits", details=details)
    accuracy = float((z.argmax(axis=1) == y).mean())
    first, last = float(losses[0]), float(losses[-1])
    details.update(accuracy=accuracy, final_loss=last)
    params = pick(r.get("outputs"), ("params",))
    if isinstance(params, dict) and all(isinstance(v, np.ndarray) for v in params.values()):
        details["params"] = {k: v.tolist() for k, v in params.items()}
    text = (f"after {train.iters} iterations the loss went from {loss_text(first)} to {loss_text(last)}; "
            f"accuracy {accuracy:.3f}")
    if accuracy >= train.min_accuracy:
        return Outcome(name, True, text, details=details)
    return Outcome(name, False, f"{text}, below the {train.min_accuracy:.2f} needed", details=details)


def loss_text(value: float) -> str:
    """A loss for a message: four decimals, or four digits when it is huge or tiny."""
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"


def spread(z: np.ndarray, columns) -> np.ndarray:
    """z with one entry per row (columns[i] in row i) STABILITY_SPREAD above the rest: a
    softmax that subtracts anything but the row's max (nothing, the mean, the min) overflows."""
    out = np.array(z, dtype=float, copy=True)
    out[np.arange(len(out)), columns] += settings.STABILITY_SPREAD
    return out


def rows_apart(z: np.ndarray) -> np.ndarray:
    """z with every other row STABILITY_ROWS_APART above the rows between: softmax does not
    change when a row is shifted, but one shifted by the global maximum underflows below."""
    out = np.array(z, dtype=float, copy=True)
    out[1::2] += settings.STABILITY_ROWS_APART
    return out


ROWS_APART = f"with every other row of {{what}}s {settings.STABILITY_ROWS_APART:g} above the rows between"


@dataclass
class Shifted:
    """One stability case: fn on the shifted input (task shifted_id) gives the same outputs
    (labels -> paths into its result) as fn gave itself on the plain input (task own_id)."""

    fn: str
    own_id: str
    shifted_id: str
    outputs: dict
    shapes: dict  # label -> the shape the output must have (a constant is not stable, it is wrong)
    args: list
    sizes: dict
    scalars: frozenset = frozenset({"loss"})
    how: str = ""  # the shift, for messages ("with every logit + 1000" when empty)


def judge_stability(ctx: Context, results: dict, shifted: list[Shifted], spread_cases: list[tuple[str, str, dict]],
                    what: str = "logit") -> Outcome:
    """Numerical stability, judged against the attempt itself, never against the reference
    (a wrong value is another check's business): for every logit + STABILITY_SHIFT the same
    finite outputs as for the logits themselves; and finite probabilities for logits with one
    per row STABILITY_SPREAD above the others (spread_cases: (fn, task id, labels -> paths)).
    Only probabilities there: a loss written as sum(onehot * log(probs)) is NaN where probs
    underflow to 0, and the stability check is about the softmax overflowing."""
    shift, gap = f"{settings.STABILITY_SHIFT:g}", f"{settings.STABILITY_SPREAD:g}"
    for case in shifted:
        outcome = _judge_shifted(ctx, results, case, what)
        if not outcome.passed:
            return outcome
    for fn, tid, outputs in spread_cases:
        outcome = _judge_spread(results, fn, tid, outputs, what)
        if outcome is not None:
            return outcome
    return Outcome("stability", True, f"finite and unchanged with every {what} + {shift}, and finite with one "
                                      f"{what} per row {gap} above the others")


def _judge_shifted(ctx: Context, results: dict, case: Shifted, what: str) -> Outcome:
    """The attempt's own outputs for the shifted input against those for the plain one."""
    own = results.get(case.own_id)
    why = failure(own, case.fn)
    if why:
        return Outcome("stability", False, f"could not be checked: {why}", open=unjudged(own))
    mine = {label: pick(own["result"], path) for label, path in case.outputs.items()}
    for label, value in mine.items():
        if isinstance(value, dict) and "__blank__" in value:  # a partial attempt's blank
            return Outcome("stability", False, f"could not be checked: {label} is not written yet", open=True)
        arr = as_array(value)
        shape_ok = arr is not None and (arr.size == 1 if label in case.scalars else
                                        arr.shape == tuple(case.shapes[label]))
        if not shape_ok or not np.all(np.isfinite(arr)):
            return Outcome("stability", False, f"could not be checked: {case.fn} gives no finite {label} "
                                               f"of shape {tuple(case.shapes[label])} for the unshifted {what}s")
    how = case.how.format(what=what) if case.how else f"with every {what} + {settings.STABILITY_SHIFT:g}"
    return judge_outputs(ctx, "stability", case.fn, results, [case.shifted_id], lambda i: case.outputs,
                         lambda i: mine, sizes=lambda i: case.sizes, scalars=case.scalars,
                         context=f"{how} (against your own result without it), ", args=lambda i: case.args,
                         plain_arrays=False)


def _judge_spread(results: dict, fn: str, tid: str, outputs: dict, what: str) -> Outcome | None:
    """A failing verdict when fn's outputs for one input per row far above the others are not
    finite; None when they are."""
    r = results.get(tid)
    why = failure(r, fn)
    context = f"with one {what} per row {settings.STABILITY_SPREAD:g} above the others, "
    if why:
        return Outcome("stability", False, context + why, open=unjudged(r))
    for label, path in outputs.items():
        value = as_array(pick(r["result"], path))
        if value is None:
            return Outcome("stability", False, context + f"{fn} returned no {label} to look at")
        bad = ~np.isfinite(value)
        if bad.any():
            kinds = " and ".join(k for k, m in (("nan", np.isnan(value)), ("inf", np.isinf(value))) if m.any())
            where = f"in {int(bad.sum())} of {value.size} entries" if value.size > 1 else f"({kinds})"
            kinds = f" ({kinds})" if value.size > 1 else ""
            return Outcome("stability", False, context + f"{label} is not finite{kinds} {where}: "
                                               "something overflows")
    return None


def judge_purity(ctx: Context, results: dict, inputs: dict[str, tuple[str, dict]]) -> Outcome:
    """The attempt's functions leave their inputs as they were given."""
    for tid, (fn, named) in inputs.items():
        r = results.get(tid)
        if r is None or "skipped" in r or "args_after" not in r:
            return Outcome("purity", False, f"could not be checked: {fn} did not run to the end", open=True)
        if r.get("partial") and not _wrote_anything(r.get("result")):
            return Outcome("purity", False, f"could not be checked: {fn} is not written yet", open=True)
        # a call run again (a partial attempt) is pure only if every run of it was
        for afters in [r["args_after"], *(r.get("args_after_more") or [])]:
            for position, ((arg, before), after) in enumerate(zip(named.items(), afters)):
                # a cache arrives merged with the extra keys the attempt's own forward keeps
                changed = what_changed(before, after, added_keys=arg != "cache")
                if changed:
                    return Outcome("purity", False, f"{fn} changed its input {arg}{changed}",
                                   evidence=[{"fn": fn, "args": list(named.values()), "changed": position}])
    return Outcome("purity", True, "no function changed its inputs")


def _wrote_anything(result) -> bool:
    """Whether a partial run of a function gave any value that is not blank."""
    if isinstance(result, dict) and "__blank__" not in result and "__type__" not in result:
        return any(_wrote_anything(v) for v in result.values())
    if isinstance(result, (list, tuple)):
        return any(_wrote_anything(v) for v in result)
    return result is not None and not (isinstance(result, dict) and "__blank__" in result)


def what_changed(before, after, added_keys: bool = True) -> str:
    """How after differs from before, a function's input before and after the call: "" when
    it does not, else e.g. "['W1'] in 3 of 6 entries"; added_keys: a key added counts as a change."""
    if isinstance(before, dict):
        if not isinstance(after, dict) or "__type__" in after:
            return " (replaced it)"
        for key, value in before.items():
            if key not in after:
                return f" (removed the key {key!r})"
            inner = what_changed(value, after[key])
            if inner:
                return f"[{key!r}]{inner}"
        added = [k for k in after if k not in before] if added_keys else []
        if added:
            return f" (added the key {added[0]!r})"
        return ""
    a = as_array(after)
    b = np.asarray(before)
    if a is None or a.shape != b.shape:
        return " (replaced it)"
    differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if differs.any():
        return f" in {int(differs.sum())} of {differs.size} entries"
    return ""


def copy_inputs(args):
    """A copy of decoded inputs (arrays copied, dicts, lists and tuples rebuilt) for one call
    of the reference or a mutant here, in the grader's process, so that no call sees what
    another changed.

    Its twin is fresh() in grader/run/worker.py, which does the same for the attempt's calls
    in the attempt's process. They cannot be one function: the worker is started as a script
    that imports nothing of the grader (its audit hook refuses that), and it must copy what
    the attempt made (a dict that contains itself, a subclass with its own items()), where
    this side only copies what wire.decode returned: plain trees, without cycles."""
    if isinstance(args, dict):
        return {k: copy_inputs(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return type(args)(copy_inputs(v) for v in args)
    if isinstance(args, np.ndarray):
        return args.copy()
    return args
