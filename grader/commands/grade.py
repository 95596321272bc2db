import sys
from pathlib import Path

import click

from .. import settings


@click.command("grade")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--exercise", "exercise_id", metavar="NAME", help="The exercise the file attempts "
              "(default: the one `drill start` recorded, else mlp_backprop).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object (SPEC §4).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=settings.TIMEOUT_SECONDS,
              show_default=True, help="Seconds the attempt may run in all.")
@click.option("--memory", "memory_mb", type=click.IntRange(64, 65536), default=settings.MEMORY_MB,
              show_default=True, help="Memory limit of the attempt's process, in MiB.")
def command(paths, exercise_id, as_json, timeout, memory_mb):
    """Grade an attempt: every link on its own, finite differences, XOR training.

    With no PATH, grades the attempt that `drill start` wrote in this workspace. Exit
    status: 0 passed, 1 graded and not passed, 2 used wrongly (no such file, unknown
    exercise).

    \b
    Examples:
      drill grade
      drill grade mlp_backprop.py --json
    """
    from ..grade import GradeUsageError, grade
    from ..report import render_text
    from ..sandbox import Limits

    path = _one_path(paths, exercise_id)
    try:
        report = grade(path, exercise_id, Limits(timeout=timeout, memory_mb=memory_mb))
    except GradeUsageError as exc:
        raise click.UsageError(str(exc)) from None
    from ..history import record_grade
    from ..timing import budget_for

    record_grade(path, report)  # the drill history: best effort, a broken one only warns
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(render_text(report, color=sys.stdout.isatty()))
        if budget := budget_for(path, report):
            click.echo(budget)
    sys.exit(0 if report.passed else 1)


def _one_path(paths, exercise_id):
    from .. import workspace

    if len(paths) > 1:
        raise click.UsageError("grade one file at a time")
    if paths:
        return paths[0]
    found = workspace.find()
    if found is None:
        raise click.UsageError("no PATH given and no workspace here: run `drill start` first, "
                               "or name the file to grade")
    try:
        attempt = workspace.current_attempt(found, exercise_id)
    except workspace.WorkspaceError as exc:
        raise click.UsageError(str(exc)) from None
    if attempt is None:
        raise click.UsageError(f"the workspace {found} has no attempt to grade; run `drill start`")
    return found / attempt.file
