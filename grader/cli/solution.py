import click

from grader.cli import complete
from grader.cli.common import warn
from grader.practice.solution import NoExercise, SolutionError, reveal_solution


@click.command("solution")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--force", is_flag=True, help="Show it before you have passed the exercise "
              "(recorded in your history).")
def command(exercise, force):
    """Show the reference solution of EXERCISE (default: your current one), once you have passed it.

    A pass in any folder counts. Before that, only with --force; every view is recorded in
    your history, so `drill stats` tells how often you looked.

    \b
    Examples:
      drill solution
      drill solution mlp_backprop --force
    """
    try:
        shown = reveal_solution(exercise, force=force)
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    except NoExercise as exc:  # exit 2, as every workspace command outside a workspace
        raise click.UsageError(str(exc)) from None
    except SolutionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(shown.text, nl=False)
    for warning in shown.warnings:
        warn(warning)
