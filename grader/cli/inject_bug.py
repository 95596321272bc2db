from pathlib import Path

import click

from grader import catalog
from grader.cli import complete
from grader.cli.common import shown, warn
from grader.practice.inject import InjectError, InjectUsageError, inject


@click.command("inject-bug")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--bug", "bug_id", metavar="ID", shell_complete=complete.bugs,
              help="The bug to inject (see `drill bugs`); default: a random, hidden one.")
@click.option("--from", "from_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Put the bug into this attempt (it must pass `drill grade`) instead of the reference.")
@click.option("--seed", type=int, help="Seed for the random choice of bug, to repeat a drill.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write.  [default: EXERCISE_bug.py here]")
@click.option("--force", is_flag=True, help="Replace an existing file (it is backed up first).")
def command(exercise, bug_id, from_path, seed, out, force):
    """Write working code for EXERCISE (default: mlp_backprop) with one catalogued bug in it.

    Without --bug the bug is chosen at random and kept hidden: find it, fix it, and check
    your fix with `drill grade`. `drill reveal` tells which bug it was. With --from the bug
    goes into your own attempt, which must pass `drill grade` first.

    \b
    Examples:
      drill inject-bug
      drill inject-bug --bug missing-n --out practice.py
      drill inject-bug --from mlp_backprop.py --seed 3
    """
    try:
        done = inject(exercise, bug_id, from_path=from_path, seed=seed, out=out, force=force)
    except InjectUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except (InjectError, catalog.CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in done.warnings:
        warn(warning)
    if done.backup:
        click.echo(f"Kept the previous file as {done.backup}")
    where = shown(done.path)
    if done.hidden:
        click.echo(f"Wrote {where}: {done.exercise.title}, with one hidden bug in it.")
        click.echo(f"Find the bug, fix it, then check with:  drill grade {where}")
        click.echo(f"Give up?  drill reveal {where}")
    else:
        click.echo(f"Wrote {where}: {done.exercise.title}, with the bug {done.bug.id} "
                   f"({done.bug.title}) in the link {done.bug.link}.")
        click.echo(f"Find the bug, fix it, then check with:  drill grade {where}")
        if done.bug.severity != "error":
            click.echo(f"drill: warning: {done.bug.id} is a {done.bug.severity}, not an error: `drill grade` "
                       f"passes code with it anyway (it only notes it), so grading cannot tell you fixed it",
                       err=True)
