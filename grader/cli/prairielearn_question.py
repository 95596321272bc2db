from pathlib import Path

import click

from grader.cli import complete
from grader.cli.common import limit_options


@click.command("prairielearn-question")
@click.argument("exercise", required=False, shell_complete=complete.exercises)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="The question folder to write (default: a folder named like the exercise).")
@limit_options
@click.option("--force", is_flag=True, help="Replace the question's files if they exist.")
def command(exercise, out, timeout, memory_mb, force):
    """Write a PrairieLearn question for EXERCISE (default: mlp_backprop), externally graded.

    The folder holds info.json (external grading in the prairielearn/grader-python image,
    with a timeout that fits --timeout), question.html (the task and a file editor
    pre-filled with the stub) and tests/ (run.sh, the entrypoint, which installs this
    backprop-drill from the wheels beside it, no network needed, grades the student's file
    and writes results.json: one test per check, score in [0, 1]).

    \b
    Copy the folder into your course's questions/ and sync; each submission is then graded
    in a container of its own.

    \b
    Examples:
      drill prairielearn-question --out questions/backprop_mlp
      drill prairielearn-question softmax_ce --out questions/softmax --timeout 60 --force
    """
    from grader import catalog
    from grader.course import prairielearn
    from grader.run.sandbox import Limits

    folder = out or Path(exercise or catalog.DEFAULT_EXERCISE)
    try:
        written = prairielearn.question(folder, exercise, Limits(timeout=timeout, memory_mb=memory_mb), force=force)
    except prairielearn.QuestionUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except prairielearn.QuestionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote the PrairieLearn question {written}/: copy it into your course's questions/ folder.")
