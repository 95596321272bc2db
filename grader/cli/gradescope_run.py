from pathlib import Path

import click

from grader import settings
from grader.cli.grade import limit_options


@click.command("gradescope-run")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default="/autograder", show_default=True,
              help="Gradescope's folder: the attempt is read from ROOT/submission, the results written to "
                   "ROOT/results/results.json.")
@click.option("--exercise", "exercise_id", metavar="NAME", help="The exercise graded (default: mlp_backprop).")
@click.option("--points", type=click.FloatRange(0, min_open=True), default=settings.GRADESCOPE_POINTS,
              show_default=True, help="What the assignment is worth; scores are scaled to it.")
@click.option("--hidden", default="", metavar="CHECK,...",
              help="Checks whose result the student sees only after the due date (visibility after_due_date).")
@click.option("--require-isolation", is_flag=True,
              help="Grade nothing unless the attempt can run behind a kernel wall (its own unprivileged user, or "
                   "its own namespaces); results.json then says the autograder could not run the code.")
@click.option("--cgroup", type=click.Path(file_okay=False, path_type=Path), default="/sys/fs/cgroup",
              show_default=True, hidden=True, help="Where the container's memory limit is read.")
@limit_options
def command(root, exercise_id, points, hidden, require_isolation, cgroup, timeout, memory_mb):
    """Grade a Gradescope submission and write its results.json (what the bundle's run_autograder runs).

    The attempt is the .py file in ROOT/submission named like the exercise's stub
    (mlp_backprop.py), or the only .py file submitted; results.json (one test per check,
    the score scaled to --points, every text shown as plain text) is written once every
    process of the attempt is gone, also when nothing usable was submitted. --memory is
    lowered to fit the container (its cgroup's limit, less room for the grader), so an
    attempt that allocates too much is reported as `memory`. Prints the full report for
    the staff (Gradescope shows the autograder's output to instructors only).

    Exit status: 0 results.json holds a grade, 1 it says the autograder failed.

    \b
    Example (what run_autograder runs):
      drill gradescope-run --root /autograder --exercise mlp_backprop --points 20 --require-isolation
    """
    import traceback

    from grader import catalog
    from grader.course import bundle
    from grader.judge.report import render_text
    from grader.run.sandbox import Limits

    try:
        hidden = bundle.hidden_checks(catalog.exercise(exercise_id), hidden.split(","))
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    except bundle.BundleError as exc:
        raise click.UsageError(f"--hidden: {exc}") from None
    container = bundle.container_memory_mb(cgroup)
    fitted = bundle.fit_memory(memory_mb, container)
    if fitted != memory_mb:
        click.echo(f"drill: the container holds {container} MiB: each attempt gets {fitted} MiB, not {memory_mb}")
    try:
        _, report = bundle.autograde(root, exercise_id, points, Limits(timeout=timeout, memory_mb=fitted),
                                     require_isolation=require_isolation, hidden=hidden)
    except bundle.NotIsolated as exc:
        click.echo(f"drill: --require-isolation: {exc}; nothing was graded", err=True)
        raise SystemExit(1) from None
    except Exception:  # noqa: BLE001 - the student must still get a results.json
        traceback.print_exc()
        bundle.write_failure(root, bundle.AUTOGRADER_FAILED)
        raise SystemExit(1) from None
    click.echo(render_text(report))  # says the isolation level too
