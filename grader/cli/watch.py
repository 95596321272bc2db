import sys
from pathlib import Path

import click

from grader import settings
from grader.cli.common import warn


@click.command("watch")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--interval", type=click.FloatRange(0.05, 60), default=0.5, show_default=True,
              help="Seconds between looks at the file.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=settings.TIMEOUT_SECONDS,
              show_default=True, help="Seconds each grade's run of the attempt may take.")
@click.option("--count", type=click.IntRange(1), help="Stop after this many grades (default: at Ctrl-C).")
def command(path, interval, timeout, count):
    """Grade PATH (default: your attempt) now and every time you save it, until Ctrl-C.

    Each grade shows one screen: the score and only the checks that fail. Every grade
    is recorded in the history, like `drill grade`. The exit status is that of the last
    grade, as for `drill grade`: 0 passed, 1 not passed, 2 used wrongly.

    \b
    Example:
      drill watch
    """
    from grader.judge.grade import GradeUsageError
    from grader.practice.grading import grade_attempt
    from grader.practice.history import record_grade
    from grader.judge.terse import terse
    from grader.practice.timing import budget_for, interview_running
    from grader.practice.watch import WatchError, attempt_path, compact, watch
    from grader.run.sandbox import Limits

    try:
        path = path or attempt_path()
    except WatchError as exc:
        raise click.UsageError(str(exc)) from None
    if not path.is_file():
        raise click.UsageError(f"no such file: {path}")
    limits = Limits(timeout=timeout)
    last = []  # the latest report: its verdict is the exit status

    def graded(p):
        try:
            report = grade_attempt(p, None, limits)
        except GradeUsageError as exc:
            raise click.UsageError(str(exc)) from None
        warning = record_grade(p, report)  # best effort: a broken history only warns
        if warning:
            warn(warning)
        last[:] = [report]
        return terse(report) if interview_running(report) else report  # an interview keeps its feedback for the end

    def show(report):
        if sys.stdout.isatty():
            click.clear()
        click.echo(compact(report, budget_for(path, report)))
        click.echo(f"(watching {path.name}; Ctrl-C to stop)")

    try:
        watch(path, graded, show, interval=interval, max_grades=count)
    except KeyboardInterrupt:
        click.echo("\nStopped watching.")
    sys.exit(0 if last and last[0].passed else 1)
