"""Shell completion of the names drill knows: exercises, links and bug ids.

Click completes commands and options by itself; these complete the values. Turn it on
with one line in the shell's start-up file (README, "Shell completion"):

    eval "$(_DRILL_COMPLETE=bash_source drill)"     # bash (zsh: zsh_source, fish: fish_source)

A catalogue that cannot be read completes nothing: completion never prints an error.
"""
from __future__ import annotations

from click.shell_completion import CompletionItem


def _exercise_of(ctx) -> str | None:
    """The exercise named earlier on the command line, if any (an argument or --exercise). While
    an option's value is completed, Click leaves the arguments before it unparsed in ctx.args."""
    from grader import catalog

    params = ctx.params or {}
    named = params.get("exercise") or params.get("exercise_id")
    return named or next((a for a in ctx.args if a in catalog.exercises()), None)


def exercises(ctx, param, incomplete: str) -> list[CompletionItem]:
    from grader import catalog

    try:
        found = catalog.exercises()
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []
    return [CompletionItem(name, help=ex.summary) for name, ex in found.items() if name.startswith(incomplete)]


def bugs(ctx, param, incomplete: str) -> list[CompletionItem]:
    from grader import catalog

    try:
        found = catalog.bugs(_exercise_of(ctx))
    except Exception:  # noqa: BLE001
        return []
    return [CompletionItem(name, help=bug.title) for name, bug in found.items() if name.startswith(incomplete)]


def _link_names(ctx) -> dict[str, str]:
    from grader import catalog

    try:
        chosen = _exercise_of(ctx)
        pool = [catalog.exercise(chosen)] if chosen else list(catalog.exercises().values())
    except Exception:  # noqa: BLE001
        return {}
    return {b.name: b.what for ex in pool for b in ex.blanks}


def links(ctx, param, incomplete: str) -> list[CompletionItem]:
    """One link name (`drill hint dz`)."""
    return [CompletionItem(name, help=what) for name, what in _link_names(ctx).items() if name.startswith(incomplete)]


def link_list(ctx, param, incomplete: str) -> list[CompletionItem]:
    """The next name of a comma-separated list (`--links dz2,dW`), without those already given."""
    done, _, last = incomplete.rpartition(",")
    given = set(done.split(",")) if done else set()
    prefix = f"{done}," if done else ""
    return [CompletionItem(prefix + name, help=what) for name, what in _link_names(ctx).items()
            if name.startswith(last) and name not in given]
