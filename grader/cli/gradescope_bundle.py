from pathlib import Path

import click

from grader import settings
from grader.cli import complete
from grader.cli.common import limit_options


@click.command("gradescope-bundle")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default="autograder.zip",
              show_default=True, help="The zip to write.")
@click.option("--points", type=click.FloatRange(0, min_open=True), default=settings.GRADESCOPE_POINTS, show_default=True,
              help="What the assignment is worth on Gradescope; scores are scaled to it.")
@click.option("--hidden", default="", metavar="CHECK,...",
              help="Checks whose result students see only after the due date (Gradescope's visibility "
                   "after_due_date), comma-separated, e.g. convergence,stability. Their points still count.")
@limit_options
@click.option("--force", is_flag=True, help="Replace the zip if it exists.")
def command(exercise, out, points, hidden, timeout, memory_mb, force):
    """Build a Gradescope autograder zip for EXERCISE (default: mlp_backprop).

    The zip holds setup.sh (installs this backprop-drill, shipped inside the zip as a
    wheel, into a virtual environment) and run_autograder (grades the submitted file and
    writes results.json: one test per check, the score scaled to --points). The attempt is
    the submitted .py file named like the exercise's stub (mlp_backprop.py), or the only
    .py file submitted.

    \b
    Upload it in Gradescope: Programming Assignment > Configure Autograder > Zip file
    upload, on an Ubuntu base image.

    \b
    Examples:
      drill gradescope-bundle --out autograder.zip
      drill gradescope-bundle mlp_backprop --points 20 --timeout 300 --force
      drill gradescope-bundle --hidden convergence,stability
    """
    from grader import catalog
    from grader.course.bundle import BundleError, build, hidden_checks
    from grader.run.sandbox import Limits

    try:
        hidden = hidden_checks(catalog.exercise(exercise), hidden.split(","))
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    except BundleError as exc:
        raise click.UsageError(f"--hidden: {exc}") from None
    try:
        path = build(out, exercise, points, Limits(timeout=timeout, memory_mb=memory_mb), force=force,
                     hidden=hidden)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {path}: upload it as the autograder of a Gradescope programming assignment "
               f"worth {points:g} points.")
    if hidden:
        click.echo(f"Hidden from students until after the due date: {', '.join(hidden)}.")
