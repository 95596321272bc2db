from pathlib import Path

import click

from grader.cli import complete
from grader.cli.common import shown, warn


@click.command("next")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The workspace folder to write the drill into.")
@click.option("--force", is_flag=True, help="Replace an existing attempt (it is backed up first).")
def command(exercise, folder, force):
    """Write what your history says to practise now, and say why.

    Spaced repetition (Leitner boxes) over your one history, across exercises and folders:
    a link you got wrong comes back in the next session, one you got right comes back after
    1, 3, 7, 16 and 35 days; habits (the same link wrong the same way in several attempts)
    come first. Writes EXERCISE's stub with just the due links blank, or a file with a hidden
    bug to spot when that is what is due. With EXERCISE, only that exercise is considered.

    \b
    Examples:
      drill next
      drill next mlp_backprop --force
    """
    from grader.practice import inject, review, start

    try:
        done = review.next_drill(folder, exercise, force=force)
    except (start.StartUsageError, inject.InjectUsageError) as exc:
        raise click.UsageError(str(exc)) from None
    except (review.ReviewError, start.StartError, inject.InjectError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in done.warnings:
        warn(warning)
    plan = done.plan
    if plan.kind is None:
        soonest = plan.upcoming[0] if plan.upcoming else None
        click.echo("Nothing is due now." + (f" Next: {soonest.exercise} {soonest.name} on "
                                            f"{review.when(soonest.due)}." if soonest else ""))
        click.echo("Practise anyway with:  drill start")
        return
    if done.backup:
        click.echo(f"Kept your previous file as {done.backup}")
    if plan.kind == review.LINK:
        click.echo(f"Due now in {plan.exercise}, and why:")
        for item in plan.chosen:
            click.echo(f"  {review.why(item)}")
        click.echo(f"Wrote {shown(done.path)} with these links blank: {', '.join(done.links)}")
        click.echo(f"Fill in every todo(), then grade it with:  drill grade {shown(done.path)}")
    else:
        click.echo(f"Due now in {plan.exercise}: {review.why(plan.chosen[0], hidden=True)}")
        click.echo(f"Wrote {shown(done.path)}: working code with one hidden bug in it.")
        click.echo(f"Find it, fix it, then check with:  drill grade {shown(done.path)}")
