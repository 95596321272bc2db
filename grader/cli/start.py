from pathlib import Path

import click

from grader.cli import complete
from grader.cli.common import shown, warn
from grader.practice.start import StartError, StartUsageError, start
from grader.practice.timing import minutes


@click.command("start")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The workspace folder to write the stub into.")
@click.option("--force", is_flag=True, help="Replace an existing attempt (it is backed up first).")
@click.option("--links", metavar="LINK,...", shell_complete=complete.link_list,
              help="Blank only these links; the rest come filled in.")
@click.option("--weakest", is_flag=True, help="Blank the links your history says you get wrong most often.")
@click.option("--timed", "timed_minutes", type=click.FloatRange(0.5, 24 * 60), metavar="MINUTES",
              help="Set a time budget; `drill grade` tells whether you made it.")
@click.option("--interview", is_flag=True, help="A timed drill (15 minutes, or --timed) as at a whiteboard: "
              "`drill grade` says only pass or fail and where, and `drill hint` is off, until the time is up; "
              "then the full report. Marked as an interview in your history.")
@click.option("--notebook", is_flag=True, help="Write a Jupyter notebook, EXERCISE.ipynb: the task, a cell per "
              "function, and a last cell that grades it. Needs the notebook extra.")
def command(exercise, folder, force, links, weakest, timed_minutes, interview, notebook):
    """Write the stub of EXERCISE (default: mlp_backprop) for you to fill in.

    Every link of the chain is a todo() that raises NotImplementedError until you write
    it. The start time is recorded, so `drill grade` can tell how long you took.

    \b
    Examples:
      drill start
      drill start --dir ~/drills --links dz2,dz1
      drill start --weakest --timed 5 --force
      drill start softmax_ce --notebook
      drill start --interview --force
    """
    if weakest and links is not None:
        raise click.UsageError("--weakest chooses the links itself: give --links or --weakest, not both")
    try:
        started = start(exercise, folder, force=force, links=links, timed_minutes=timed_minutes, weakest=weakest,
                        notebook=notebook, interview=interview)
    except StartUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except StartError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in started.warnings:
        warn(warning)
    if started.backup:
        click.echo(f"Kept your previous attempt as {started.backup}")
    where = shown(started.path)
    click.echo(f"Wrote {where}: {started.exercise.title}.")
    click.echo(f"Blank links: {', '.join(started.links)}")
    if interview:
        click.echo(f"Interview: {minutes(started.timed_minutes)} on the clock, and it is running. Until the time is "
                   "up, `drill grade` says only pass or fail and where, and there are no hints; then the full report.")
    elif timed_minutes:
        click.echo(f"Timed: your budget is {minutes(timed_minutes)}, and the clock is running.")
    if notebook:
        click.echo(f"Open it in Jupyter (jupyter lab {shown}), fill in every todo(), save it, and run its last "
                   f"cell; or grade it here with:  {_grade_command(started.path)}")
        return
    click.echo(f"Fill in every todo(), then grade it with:  {_grade_command(started.path)}")


def _grade_command(path: Path) -> str:
    return "drill grade" if path.parent == Path.cwd().resolve() else f"drill grade {shown(path)}"
