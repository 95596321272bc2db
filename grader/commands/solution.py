import click

from ..solution import SolutionError, reveal_solution


@click.command("solution")
@click.argument("exercise", required=False)
@click.option("--force", is_flag=True, help="Show it before you have passed the exercise (recorded).")
def command(exercise, force):
    """Show the reference solution of EXERCISE (default: your current one), once you have passed it.

    Before that, only with --force; every view is recorded in the history, so
    `drill stats` tells how often you looked.

    \b
    Examples:
      drill solution
      drill solution mlp_backprop --force
    """
    try:
        shown = reveal_solution(exercise, force=force)
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    except SolutionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(shown.text, nl=False)
