"""`drill stats`: what the history says about practice, computed from plain rows.

Per exercise: the attempts, the time each took to a full score and the score trend; per
link, how often it was wrong the first time it was judged in an attempt, and in how many
grades; per catalogued bug, how often an injected copy was fixed, and how fast.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from grader import catalog
from grader.practice import history, timing
from grader.judge.report import duration

RECENT_ATTEMPTS = 10  # attempts listed in the trend
RECENT_VERDICTS = 5  # first verdicts per link that rank the weakest links
WEAKEST_COUNT = 3  # links `drill start --weakest` leaves blank


class StatsError(Exception):
    """The history says nothing to go on; the message says what to do first."""


def attempts_of(rows: history.Rows) -> dict[tuple[str, str], dict]:
    """Every attempt, by (exercise, started_at), with its grades, oldest first."""
    found: dict[tuple[str, str], dict] = {}

    def entry(exercise, started_at, links, timed_minutes, interview):
        return found.setdefault((exercise, started_at), {
            "exercise": exercise, "started_at": started_at, "links": links,
            "timed_minutes": timed_minutes, "interview": bool(interview), "grades": [], "hints": 0})

    for a in rows.attempts:  # interview: schema 3; an older history read as it is has none
        entry(a["exercise"], a["started_at"], a["links"], a["timed_minutes"], a.get("interview"))
    for g in rows.grades:
        if g["source"] == "attempt" and g["attempt"]:
            entry(g["exercise"], g["attempt"], g["links"] or [], g["timed_minutes"],
                  g.get("interview"))["grades"].append(g)
    for h in rows.hints:
        if (h["exercise"], h["attempt"]) in found:
            found[(h["exercise"], h["attempt"])]["hints"] += 1
    return dict(sorted(found.items(), key=lambda kv: kv[0][1]))


def attempt_summary(attempt: dict, blanks: list[str]) -> dict:
    grades = attempt["grades"]
    first_pass = next((g for g in grades if g["passed"]), None)
    # the first try: the first grade in which every check judged something (all links written)
    complete = next((g for g in grades if history.OPEN not in g["checks"].values()), None)
    time_to_pass = first_pass["elapsed"] if first_pass else None
    return {
        "started_at": attempt["started_at"],
        "links": len(attempt["links"]),
        "full": set(blanks) <= set(attempt["links"]),
        "grades": len(grades),
        "first_score": complete["score"] if complete else None,
        "best_score": max((g["score"] for g in grades), default=None),
        "passed": first_pass is not None,
        "time_to_pass": time_to_pass,
        "timed_minutes": attempt["timed_minutes"],
        "interview": attempt["interview"],
        "within_budget": timing.met(attempt["timed_minutes"], time_to_pass),
        "hints": attempt["hints"],
    }


def _times(summaries: list[dict]) -> dict:
    times = [s["time_to_pass"] for s in summaries if s["time_to_pass"] is not None]
    return {"passed": len(times), "first": times[0] if times else None,
            "best": min(times) if times else None, "recent": times[-1] if times else None,
            "trend": times[-RECENT_ATTEMPTS:]}


def _mentioned(text: str, names: list[str]) -> list[str]:
    """The names that text mentions as names (a1 in "cache['a1'] is wrong", not in "da1")."""
    return [n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text)]


def blank_verdicts(exercise: catalog.Exercise, grade: dict) -> dict[str, str | None]:
    """Per blank of exercise, what a grade (a row of history.read) said of it: pass, wrong,
    open (not written yet), or None (not judged on its own, or not in the grade).

    A check that judges one blank gives it its status. A failing check that judges several
    (z1, a1 and z2 share `forward`) is put on the blanks an error of the diagnosis names,
    else on those its message names ("cache['a1'] is wrong"), else on all of them; of the
    others, those before it in the chain passed (the outputs are compared in chain order)
    and those after it were not judged. When a check that judges no blank fails (purity,
    stability, finite-difference, convergence), the blank an error of the diagnosis names
    is wrong: an in-place dz2 fails purity, not the dz2 check.
    """
    statuses, messages = grade.get("checks") or {}, grade.get("messages") or {}
    blamed = [d.get("link") for d in grade.get("diagnosis") or [] if d.get("severity") == "error"]
    by_check: dict[str, list[str]] = {}
    for b in exercise.blanks:
        by_check.setdefault(b.check, []).append(b.name)
    out: dict[str, str | None] = {}
    for check, names in by_check.items():
        out.update(_check_verdicts(names, statuses.get(check), blamed, messages.get(check, "")))
    linked = set(by_check)
    if any(st != history.PASS for check, st in statuses.items() if check not in linked):
        for name in blamed:
            if name in out:
                out[name] = history.WRONG
    return out


def _check_verdicts(names: list[str], status: str | None, blamed: list[str], message: str) -> dict[str, str | None]:
    """What one check's status says of the blanks it judges (names, in chain order); see
    blank_verdicts."""
    if status is None or status == history.PASS or len(names) == 1:
        return dict.fromkeys(names, status)
    pointed = [n for n in names if n in blamed] or _mentioned(message, names) or names
    first = names.index(pointed[0])
    out: dict[str, str | None] = {}
    for i, name in enumerate(names):
        if name in pointed:
            out[name] = status
        else:
            out[name] = history.PASS if status == history.WRONG and i < first else None
    return out


def link_stats(attempts: list[dict], exercise: catalog.Exercise) -> dict[str, dict]:
    """Per blank, in chain order: how often it was wrong when first judged, and in all grades.

    A blank counts in an attempt only when it was left open there; it is judged as
    blank_verdicts says (by its check, or by the diagnosis of a check that judges no
    blank), and a grade that judged nothing of it (not written yet) does not count.
    """
    out = {}
    verdicts_of = {}
    for attempt in attempts:
        for g in attempt["grades"]:
            verdicts_of[id(g)] = blank_verdicts(exercise, g)
    for blank in exercise.blanks:
        verdicts, grades, wrong = [], 0, 0
        for attempt in attempts:
            if blank.name not in attempt["links"]:
                continue
            judged = [verdicts_of[id(g)].get(blank.name) for g in attempt["grades"]]
            judged = [s for s in judged if s in (history.PASS, history.WRONG)]
            grades += len(judged)
            wrong += judged.count(history.WRONG)
            if judged:
                verdicts.append(judged[0])
        out[blank.name] = {
            "check": blank.check,
            "attempts": len(verdicts),
            "wrong_first": verdicts.count(history.WRONG),
            "recent_wrong": verdicts[-RECENT_VERDICTS:].count(history.WRONG),
            "grades": grades,
            "wrong_grades": wrong,
        }
    return out


def weakest(links: dict[str, dict], count: int = WEAKEST_COUNT) -> list[str]:
    """The links wrong most often (recently first), in chain order; only links ever wrong."""
    order = list(links)
    wrong = [name for name, s in links.items() if s["wrong_grades"]]
    wrong.sort(key=lambda n: (-links[n]["recent_wrong"], -links[n]["wrong_first"],
                              -links[n]["wrong_grades"], order.index(n)))
    chosen = set(wrong[:count])
    return [n for n in order if n in chosen]


def exercise_stats(rows: history.Rows, exercise: catalog.Exercise) -> dict:
    attempts = [a for (ex, _), a in attempts_of(rows).items() if ex == exercise.id]
    blanks = [b.name for b in exercise.blanks]
    summaries = [attempt_summary(a, blanks) for a in attempts]
    links = link_stats(attempts, exercise)
    views = [s for s in rows.solutions if s["exercise"] == exercise.id]
    return {
        "attempts": len(summaries),
        "passed": sum(s["passed"] for s in summaries),
        "grades": sum(s["grades"] for s in summaries),
        "time_to_pass": {"full": _times([s for s in summaries if s["full"]]),
                         "partial": _times([s for s in summaries if not s["full"]])},
        "recent": summaries[-RECENT_ATTEMPTS:],
        "links": links,
        "weakest": weakest(links),
        "hints": sum(s["hints"] for s in summaries),
        "solution_views": {"total": len(views), "forced": sum(v["forced"] for v in views)},
    }


def bug_stats(rows: history.Rows) -> dict:
    """Per bug: injected copies (tries), those fixed, and the time from injection to the fix.

    Only hidden bugs (`drill inject-bug` without --bug) are tries: a bug named when it was
    injected is no exercise in spotting it. A hidden bug still being hunted (not fixed, not
    revealed, and the newest injection into its file) is only counted, never named, so that
    `drill stats` does not give it away. A bug revealed before it was fixed is a try that failed.
    """
    revealed = {(r.get("file"), r.get("injected_at")): r["at"] for r in rows.reveals}
    tries = bug_tries(rows, revealed)
    newest = {}
    for file, at in tries:  # a newer injection into the same file ends the hunt, named or not
        newest[file] = max(newest.get(file, at), at)
    tries = {key: t for key, t in tries.items() if t["hidden"]}
    out: dict[str, dict] = {}
    hunting = 0
    for (file, at), t in sorted(tries.items(), key=lambda kv: str(kv[0][1])):
        if t["fixed_in"] is None and newest[file] == at and (file, at) not in revealed:
            hunting += 1
            continue
        s = out.setdefault(t["bug"], {"tries": 0, "fixed": 0, "times": []})
        s["tries"] += 1
        if t["fixed_in"] is not None:
            s["fixed"] += 1
            s["times"].append(t["fixed_in"])
    for s in out.values():
        times = s.pop("times")
        s["success_rate"] = round(s["fixed"] / s["tries"], 3)
        s["best_seconds"] = min(times) if times else None
        s["recent_seconds"] = times[-1] if times else None
    return {"bugs": dict(sorted(out.items())), "hidden_open": hunting}


def bug_tries(rows: history.Rows, revealed: dict[tuple, str]) -> dict[tuple[str, str], dict]:
    """Every injected copy, by (file, injected_at): its bug, whether it was hidden, and the
    elapsed seconds of the first grade that passed it before it was revealed (else None)."""
    tries: dict[tuple[str, str], dict] = {}
    for i in rows.injections:
        tries[(i["file"], i["injected_at"])] = {"bug": i["bug"], "hidden": bool(i["hidden"]), "fixed_in": None}
    for g in rows.grades:
        if g["source"] != "injected" or not g["bug"]:
            continue
        t = tries.setdefault((g["file"], g["injected_at"]),
                             {"bug": g["bug"], "hidden": bool(g["hidden"]), "fixed_in": None})
        gave_up = revealed.get((g["file"], g["injected_at"]))
        if g["passed"] and t["fixed_in"] is None and (gave_up is None or g["at"] < gave_up):
            t["fixed_in"] = g["elapsed"]
    return tries


def summarize(rows: history.Rows) -> dict:
    """The whole of `drill stats --json`."""
    table = catalog.exercises()
    seen = ({a["exercise"] for a in rows.attempts} | {g["exercise"] for g in rows.grades}
            | {v["exercise"] for v in rows.solutions})
    return {
        "history": str(rows.path),
        "recorded": rows.exists,
        "exercises": {ex_id: exercise_stats(rows, table[ex_id]) for ex_id in table if ex_id in seen},
        "spot_the_bug": bug_stats(rows),
    }


def load(folder: Path | None) -> dict:
    """summarize() of the learner's history (merging the workspace folder's own in first), with
    "warnings": that merge's, one line each; history.HistoryError when unreadable."""
    rows = history.read(folder)
    return {**summarize(rows), "warnings": rows.warnings}


def weakest_links(folder: Path, exercise: catalog.Exercise, count: int = WEAKEST_COUNT) -> list[str]:
    """The links of exercise to drill next; StatsError when the history has none wrong."""
    rows = history.read(folder)
    attempts = [a for (ex, _), a in attempts_of(rows).items() if ex == exercise.id]
    chosen = weakest(link_stats(attempts, exercise), count)
    if not chosen:
        where = "no history yet" if not rows.exists else f"no link of {exercise.id} has been wrong yet"
        raise StatsError(f"--weakest found nothing to go on ({where} in {rows.path}); "
                         "practise the whole chain first: drill start")
    return chosen


# ------------------------------------------------------------------------ text

def _when(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:16]


def _t(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _table(rows: list[tuple], indent: str = "    ") -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)).rstrip() for r in rows]


def _times_line(label: str, t: dict) -> str:
    if not t["passed"]:
        return f"  {label}: no full score yet"
    line = f"  {label}: best {_t(t['best'])}, latest {_t(t['recent'])}, first {_t(t['first'])}"
    if len(t["trend"]) > 1:
        line += "\n    trend (oldest first): " + " -> ".join(_t(x) for x in t["trend"])
    return line


def _budget(s: dict) -> str:
    if s["timed_minutes"] is None:
        return ""
    verdict = {True: "met", False: "missed", None: "-"}[s["within_budget"]]
    return f"{timing.minutes(s['timed_minutes'])}: {verdict}" + (" (interview)" if s.get("interview") else "")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def render_exercise(name: str, s: dict) -> list[str]:
    lines = [f"{name}: {_n(s['attempts'], 'attempt')}, {s['passed']} passed, {_n(s['grades'], 'grade')}"]
    lines.append(_times_line("Time to a full score, whole chain", s["time_to_pass"]["full"]))
    if s["time_to_pass"]["partial"]["passed"]:
        lines.append(_times_line("Time to a full score, some links", s["time_to_pass"]["partial"]))
    if s["recent"]:
        lines.append("  Latest attempts (oldest first; score at the first grade with every link written, and the best):")
        table = [("started", "links", "grades", "first", "best", "full score in", "hints", "budget")]
        table += [(_when(a["started_at"]), a["links"], a["grades"], _score(a["first_score"]),
                   _score(a["best_score"]), _t(a["time_to_pass"]), a["hints"], _budget(a))
                  for a in s["recent"]]
        lines += _table(table)
    judged = {k: v for k, v in s["links"].items() if v["attempts"]}
    if judged:
        lines.append("  Links (wrong when first judged in an attempt; wrong in all grades):")
        table = [(link, f"{v['wrong_first']} of {_n(v['attempts'], 'attempt')}",
                  f"{v['wrong_grades']} of {_n(v['grades'], 'grade')}", "<- weak" if link in s["weakest"] else "")
                 for link, v in judged.items()]
        lines += _table(table)
    if s["weakest"]:
        lines.append(f"  Weakest links: {', '.join(s['weakest'])}  "
                     f"(drill them: drill start {name} --weakest --force)")
    elif judged:
        lines.append("  No link has been wrong yet.")
    views = s["solution_views"]
    extra = (f"; reference viewed {_n(views['total'], 'time')} ({views['forced']} before passing)"
             if views["total"] else "")
    lines.append(f"  Hints taken: {s['hints']}{extra}")
    return lines


def render_text(summary: dict) -> str:
    if not summary["recorded"]:
        return (f"No drills recorded yet in {summary['history']}.\n"
                "Start one with: drill start, then grade it with: drill grade")
    lines = []
    for name, s in summary["exercises"].items():
        lines += render_exercise(name, s) + [""]
    spot = summary["spot_the_bug"]
    if spot["bugs"] or spot["hidden_open"]:
        lines.append("Spot the bug (hidden bugs of drill inject-bug, found and fixed; time from injection to fix):")
        if spot["bugs"]:
            table = [("bug", "tries", "fixed", "rate", "best", "latest")]
            table += [(bug, s["tries"], s["fixed"], f"{s['success_rate']:.0%}", _t(s["best_seconds"]),
                       _t(s["recent_seconds"])) for bug, s in spot["bugs"].items()]
            lines += _table(table, indent="  ")
        if spot["hidden_open"]:
            lines.append(f"  {_n(spot['hidden_open'], 'hidden bug')} still to be found (not counted yet)")
    if not lines:
        lines.append("Nothing graded yet: drill grade records every grade here.")
    return "\n".join(lines).rstrip() + "\n" + f"(history: {summary['history']})"
