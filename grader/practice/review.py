"""What to practise next (`drill next`, and the "due" and "habits" of `drill stats`), from the
learner's one history: habits, and spaced repetition over items.

Items. A link of an exercise, judged once per attempt that left it blank: right or wrong the
first time a grade judged it (what the learner knew, before the grader's feedback helped);
and a catalogued bug to spot, judged once per hidden `drill inject-bug`: found (a grade passed
the file before `drill reveal`) or missed (revealed, or left for a newer injection). A hunt
still going on is no verdict yet.

Leitner boxes, not SM-2. SM-2 grades each review on a 0-5 scale and tunes an ease factor per
item over many reviews; what the grader knows of a link is right or wrong, and a learner
preparing for an interview over a few weeks reviews an item a handful of times, too few to
fit an ease factor. Leitner boxes take exactly a right/wrong verdict, and their state says
itself ("box 3: back in 3 days"). An item never judged is new, and due at once. A wrong
verdict puts it in box 1, due at once: it comes back in the next session (or the one going
on). A right one moves it up a box, at most one box per session, and box b waits
INTERVAL_DAYS[b - 1] days after the session's last review: what was got right comes back
at growing intervals.

Session: a learner's sitting. Reviews of an item with no gap longer than SESSION_GAP between
them are one session: three attempts in one evening are one review of each link (wrong if
any of them was wrong), not three steps up.

Habits, not slips. A mistake is a habit when the same link is wrong the same way (the same
catalogued bug named by the diagnosis) in at least HABIT_MIN of the last HABIT_WINDOW attempts
that practised that link; once in a while is a slip. A wrong link that no catalogued bug
explains is wrong, but no habit: there is nothing to tell that it was wrong the same way.
A habit is due at once whatever its box, until it is broken: one right answer does not
undo it, fewer than HABIT_MIN of the last HABIT_WINDOW attempts showing it does.

`drill next` picks among the items due now, in this order: habits, then items got wrong
(the most recent first), then items got right whose interval is over (the most overdue
first), then new ones; links before bugs. When the first is a link, it writes that
exercise's stub with every due link of it blank; when it is a bug, a hidden `inject-bug` file
of it. Everything time-dependent takes `now` (default CLOCK()).

May import: catalog, practice.history, practice.stats, practice.start, practice.inject.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from grader import catalog
from grader.practice import history, stats, workspace

CLOCK: Callable[[], datetime] = workspace.now  # what time it is when none is given (tests set their own)
SESSION_GAP = timedelta(hours=2)
INTERVAL_DAYS = (0, 1, 3, 7, 16, 35)  # box 1 (due at once) to box 6
HABIT_WINDOW = 5
HABIT_MIN = 2
LINK, BUG = "link", "bug"


class ReviewError(Exception):
    """Nothing can be planned or written; the message says why and what to do."""


@dataclass
class Review:
    at: datetime
    right: bool
    bugs: frozenset = frozenset()  # for a link: the catalogued bugs the diagnosis blamed on it


@dataclass
class Item:
    exercise: str
    kind: str  # LINK or BUG
    name: str  # the link, or the bug id
    order: int  # its place in the chain (links) or the catalogue (bugs)
    reviews: list[Review] = field(default_factory=list)
    box: int = 0  # 0: never judged (new)
    last: datetime | None = None
    last_wrong: datetime | None = None
    habit: dict | None = None  # {"bug", "title", "count", "of"}

    @property
    def due(self) -> datetime | None:
        """When it is due; None: new, due at once."""
        if self.last is None:
            return None
        if self.habit:
            return self.last  # a habit stays due until it is broken (see the module's docstring)
        return self.last + timedelta(days=INTERVAL_DAYS[self.box - 1])

    def is_due(self, now: datetime) -> bool:
        return self.due is None or self.due <= now


def _at(stamp) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


def link_reviews(rows: history.Rows) -> dict[tuple[str, str], list[Review]]:
    """Per (exercise, link): one Review per attempt that left the link blank and had it judged."""
    table = catalog.exercises()
    found: dict[tuple[str, str], list[Review]] = {}
    for (ex, _), attempt in stats.attempts_of(rows).items():
        if ex not in table:
            continue
        first: dict[str, tuple[datetime, bool]] = {}
        blamed: dict[str, set] = {}
        for g in attempt["grades"]:
            at = _at(g["at"])
            for link, verdict in stats.blank_verdicts(table[ex], g).items():
                if at and link in attempt["links"] and link not in first and verdict in (history.PASS, history.WRONG):
                    first[link] = (at, verdict == history.PASS)
            for d in g.get("diagnosis") or []:
                if d.get("severity") == "error" and d.get("bug"):
                    blamed.setdefault(d.get("link"), set()).add(d["bug"])
        for link, (at, right) in first.items():
            found.setdefault((ex, link), []).append(Review(at, right, frozenset(blamed.get(link, ()))))
    return found


def bug_reviews(rows: history.Rows) -> dict[tuple[str, str], list[Review]]:
    """Per (exercise, bug): one Review per hidden injection that is over (found, or missed)."""
    revealed = {(r.get("file"), r.get("injected_at")): r["at"] for r in rows.reveals}
    tries = stats.bug_tries(rows, revealed)
    newest: dict[str, str] = {}
    for file, at in tries:
        newest[file] = max(newest.get(file, at), at)
    found: dict[tuple[str, str], list[Review]] = {}
    bugs = catalog.bugs()
    for (file, injected), t in tries.items():
        at = _at(injected)
        over = t["fixed_in"] is not None or (file, injected) in revealed or newest[file] != injected
        if not t["hidden"] or at is None or not over or t["bug"] not in bugs:
            continue
        review = Review(at + timedelta(seconds=t["fixed_in"] or 0), t["fixed_in"] is not None)
        found.setdefault((bugs[t["bug"]].exercise, t["bug"]), []).append(review)
    return found


def leitner(item: Item) -> Item:
    """Item with its box, last review and last wrong one, from its reviews (see the docstring)."""
    sessions: list[list[Review]] = []
    for r in sorted(item.reviews, key=lambda r: r.at):
        if sessions and r.at - sessions[-1][-1].at <= SESSION_GAP:
            sessions[-1].append(r)
        else:
            sessions.append([r])
    for session in sessions:
        wrong = [r for r in session if not r.right]
        item.box = 1 if wrong else min(max(item.box, 1) + 1, len(INTERVAL_DAYS))  # a new item starts in box 1
        item.last = session[-1].at
        if wrong:
            item.last_wrong = wrong[-1].at
    return item


def habit(reviews: list[Review]) -> dict | None:
    """The bug the diagnosis blamed on a link in at least HABIT_MIN of its last HABIT_WINDOW
    attempts (the most frequent, then the most recent), or None."""
    window = sorted(reviews, key=lambda r: r.at)[-HABIT_WINDOW:]
    counts: dict[str, int] = {}
    for r in window:
        for bug in r.bugs:
            counts[bug] = counts.get(bug, 0) + 1
    if not counts:
        return None
    bug = max(counts, key=lambda b: (counts[b], max(r.at for r in window if b in r.bugs)))
    if counts[bug] < HABIT_MIN:
        return None
    title = catalog.bugs().get(bug)
    return {"bug": bug, "title": title.title if title else bug, "count": counts[bug], "of": len(window)}


def items(rows: history.Rows, exercise_id: str | None = None) -> list[Item]:
    """Every item of the exercises practised (or of exercise_id; the default exercise when
    nothing was), judged ones with their box, the others new."""
    table = catalog.exercises()
    reviews = {**link_reviews(rows), **bug_reviews(rows)}
    if exercise_id is not None:
        chosen = [exercise_id]
    else:
        seen = {a["exercise"] for a in rows.attempts} | {g["exercise"] for g in rows.grades} | {ex for ex, _ in reviews}
        chosen = [ex for ex in table if ex in seen] or [catalog.exercise(None).id]
    out = []
    for ex in chosen:
        bugs = [b for b in catalog.bugs(ex).values() if b.severity == "error"]
        for kind, names in ((LINK, [b.name for b in table[ex].blanks]), (BUG, [b.id for b in bugs])):
            for order, name in enumerate(names):
                item = Item(ex, kind, name, order, reviews.get((ex, name), []))
                leitner(item)
                item.habit = habit(item.reviews) if kind == LINK else None
                out.append(item)
    return out


def rank(item: Item) -> tuple:
    """The order `drill next` takes due items in (see the module's docstring)."""
    standing = 0 if item.habit else 1 if item.box == 1 else 2 if item.box else 3
    recent_wrong = -item.last_wrong.timestamp() if item.box == 1 and item.last_wrong else 0.0
    overdue = item.due.timestamp() if item.due else 0.0
    return standing, item.kind == BUG, recent_wrong, overdue, item.exercise, item.order


@dataclass
class Plan:
    """What `drill next` chose: kind LINK (the links of exercise, blank) or BUG (one hidden
    bug), or None when nothing is due (upcoming: what comes next, soonest first)."""

    kind: str | None
    exercise: str | None
    chosen: list[Item]
    upcoming: list[Item]
    now: datetime


def plan(rows: history.Rows, now: datetime, exercise_id: str | None = None) -> Plan:
    every = items(rows, exercise_id)
    due = sorted((i for i in every if i.is_due(now)), key=rank)
    upcoming = sorted((i for i in every if not i.is_due(now)), key=lambda i: i.due)
    if not due:
        return Plan(None, None, [], upcoming, now)
    top = due[0]
    if top.kind == BUG:
        return Plan(BUG, top.exercise, [top], upcoming, now)
    links = sorted((i for i in due if i.kind == LINK and i.exercise == top.exercise), key=lambda i: i.order)
    return Plan(LINK, top.exercise, links, upcoming, now)


# ------------------------------------------------------------------------ words

def when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone().strftime("%Y-%m-%d %H:%M")


def habit_line(h: dict) -> str:
    """'missing-n (dz2 is not divided by N) in 3 of your last 5 attempts'"""
    return f"{h['bug']} ({h['title']}) in {h['count']} of your last {h['of']} attempts"


def why(item: Item, hidden: bool = False) -> str:
    """Why item is due, in a few words; hidden: without naming the bug."""
    name = "a hidden bug" if hidden else item.name
    if item.habit:
        return f"{name}: a habit: {habit_line(item.habit)}"
    if item.box == 0:
        return f"{name}: not practised yet" if item.kind == LINK else f"{name}: not hunted yet"
    if item.box == 1:
        verdict = "wrong" if item.kind == LINK else "missed"
        return f"{name}: {verdict} on {when(item.last_wrong)}, so it comes back at once (box 1)"
    verdict = "right" if item.kind == LINK else "found"
    return (f"{name}: {verdict} on {when(item.last)}; due since {when(item.due)} "
            f"(box {item.box} of {len(INTERVAL_DAYS)}: every {INTERVAL_DAYS[item.box - 1]} days)")


def summary(rows: history.Rows, now: datetime) -> dict:
    """The `review` part of `drill stats --json`: what is due now, what comes when, the habits.
    Bugs never hunted are counted, not named."""
    every = items(rows)

    def row(i: Item) -> dict:
        return {"exercise": i.exercise, "kind": i.kind, "name": i.name, "box": i.box,
                "due": i.due.isoformat() if i.due else None, "why": why(i)}

    known = [i for i in every if i.kind == LINK or i.box]
    return {
        "due": [row(i) for i in sorted((i for i in known if i.is_due(now)), key=rank)],
        "upcoming": [row(i) for i in sorted((i for i in known if not i.is_due(now)), key=lambda i: i.due)],
        "bugs_not_hunted": sum(1 for i in every if i.kind == BUG and not i.box),
        "habits": [{"exercise": i.exercise, "link": i.name, **i.habit} for i in every if i.habit],
    }


def render(review: dict) -> list[str]:
    """The lines of `drill stats` about habits and what is due."""
    lines = []
    if review["habits"]:
        lines.append("Habits (the same link wrong the same way, again and again):")
        lines += [f"  {h['exercise']} {h['link']}: {habit_line(h)}" for h in review["habits"]]
    if review["due"] or review["upcoming"]:
        lines.append("Due (spaced repetition; `drill next` writes it):")
        lines += [f"  now    {d['exercise']} {d['why']}" for d in review["due"]]
        later: dict[tuple, list[str]] = {}  # items due at the same time, in the same box: one line
        for d in review["upcoming"]:
            later.setdefault((when(datetime.fromisoformat(d["due"])), d["exercise"], d["box"]), []).append(d["name"])
        lines += [f"  {at}  {ex} {', '.join(names)} (box {box})" for (at, ex, box), names in later.items()]
    if review["bugs_not_hunted"]:
        lines.append(f"  and {review['bugs_not_hunted']} catalogued bugs not hunted yet")
    return lines


def progress(rows: history.Rows) -> dict:
    """What `drill stats --plot` draws, as plain data. "times": per exercise, each attempt
    that reached a full score: when it began ("at"), the seconds it took, whether it was an
    interview; "rates": per "exercise link", at each attempt that judged the link, the share
    of the last HABIT_WINDOW such attempts in which it was wrong."""
    table = catalog.exercises()
    times: dict[str, list[dict]] = {}
    for (ex, started), attempt in stats.attempts_of(rows).items():
        if ex not in table:
            continue
        summary_ = stats.attempt_summary(attempt, [b.name for b in table[ex].blanks])
        if summary_["time_to_pass"] is not None:
            times.setdefault(ex, []).append({"at": started, "seconds": summary_["time_to_pass"],
                                             "interview": attempt["interview"]})
    rates: dict[str, list[dict]] = {}
    chain = {ex: [b.name for b in table[ex].blanks] for ex in table}
    for (ex, link), reviews in sorted(link_reviews(rows).items(), key=lambda kv: (kv[0][0], chain[kv[0][0]].index(kv[0][1]))):
        ordered = sorted(reviews, key=lambda r: r.at)
        rates[f"{ex} {link}"] = [
            {"at": r.at.isoformat(),
             "rate": sum(not w.right for w in window) / len(window)}
            for i, r in enumerate(ordered) for window in [ordered[max(0, i - HABIT_WINDOW + 1):i + 1]]]
    return {"times": times, "rates": rates, "window": HABIT_WINDOW}


# ------------------------------------------------------------------------ drill next and drill stats

@dataclass
class Next:
    plan: Plan
    path: Path | None = None
    backup: Path | None = None
    links: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def next_drill(folder: Path, exercise_id: str | None = None, force: bool = False,
               now: datetime | None = None) -> Next:
    """Plan what is due and write it in folder: the stub with the due links blank, or a hidden
    bug to spot. Nothing written when nothing is due. ReviewError, or StartError / InjectError
    (never overwriting a file without force)."""
    from grader.practice import inject, start

    if exercise_id is not None:
        try:
            catalog.exercise(exercise_id)
        except KeyError as exc:
            raise start.StartUsageError(exc.args[0]) from None
    folder = Path(folder)
    workspace_folder = workspace.find(folder)
    try:
        rows = history.read(workspace_folder)
    except history.HistoryError as exc:
        raise ReviewError(str(exc)) from None
    chosen = plan(rows, now or CLOCK(), exercise_id)
    done = Next(chosen, warnings=list(rows.warnings))
    if chosen.kind == LINK:
        links = ",".join(i.name for i in chosen.chosen)
        started = start.start(chosen.exercise, folder, force=force, links=links)
        done.path, done.backup, done.links = started.path, started.backup, started.links
        done.warnings += started.warnings
    elif chosen.kind == BUG:
        out = folder.resolve() / f"{chosen.exercise}_bug.py"
        injected = inject.inject(chosen.exercise, chosen.chosen[0].name, out=out, force=force, hidden=True)
        done.path, done.backup = injected.path, injected.backup
        done.warnings += injected.warnings
    return done


def load(folder: Path | None, now: datetime | None = None) -> dict:
    """The whole of `drill stats --json`: stats.load() and, under "review", summary()."""
    rows = history.read(folder)
    return {**stats.summarize(rows), "review": summary(rows, now or CLOCK()), "progress": progress(rows),
            "warnings": rows.warnings}


def render_text(summary_: dict) -> str:
    """`drill stats` as text: stats.render_text, then habits and what is due."""
    text = stats.render_text(summary_)
    extra = render(summary_["review"]) if summary_["recorded"] else []
    if not extra:
        return text
    body, _, tail = text.rpartition("\n")
    return "\n".join([body, "", *extra, tail])
