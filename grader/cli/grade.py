import sys
from pathlib import Path

import click

from grader import settings

FORMATS = ("text", "json", "gradescope", "junit")


def limit_options(f):
    """--timeout and --memory: the bounds of each attempt's process (also of drill gradescope-bundle)."""
    f = click.option("--memory", "memory_mb", type=click.IntRange(256, 65536), default=settings.MEMORY_MB,
                     show_default=True, help="Memory limit of each attempt's process, in MiB.")(f)
    return click.option("--timeout", type=click.FloatRange(1, 3600), default=settings.TIMEOUT_SECONDS,
                        show_default=True, help="Seconds each attempt may run in all.")(f)


@click.command("grade")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--exercise", "exercise_id", metavar="NAME", help="The exercise the files attempt "
              "(default: the one `drill start` recorded for the file, else the one its name or its "
              "functions tell, else mlp_backprop).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="What to print on stdout (default: text). "
              "json: for one FILE exactly its report (SPEC §4); for a folder or several files one object "
              '{"results": [a report per file], "summary": {...}}. gradescope: Gradescope\'s results.json '
              "(one FILE). junit: JUnit XML, a testsuite per file, a testcase per check.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write one row per file (score, verdict, points of each check) to this CSV file.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw a picture (.png, .svg, .pdf): for one file its loss curve and decision "
                   "boundary, for several a heatmap of the checks that fail. Needs matplotlib.")
@click.option("--jobs", "-j", type=click.IntRange(1, 1024), metavar="N",
              help="Attempts graded at once (default: one per CPU).")
@click.option("--points", type=click.FloatRange(0, min_open=True), default=settings.GRADESCOPE_POINTS, show_default=True,
              help="With --format gradescope: what the assignment is worth; scores are scaled to it.")
@click.option("--feedback", type=click.Choice(["full", "terse"]), default="full", show_default=True,
              help="terse: for interview practice, each check only passes or fails, and a failing link "
                   "says where (rows, columns, sign): no factor, no diagnosis, no hint.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, metavar="N",
              help="Replay a grade: the seed of its probes (inputs and sizes), as its JSON report "
                   "records it under probes.seed (default: a new seed for every grade).")
@limit_options
def command(paths, exercise_id, as_json, fmt, csv_path, plot_path, jobs, points, feedback, seed, timeout, memory_mb):
    """Grade attempts: every link on its own, finite differences, XOR training.

    With no PATH, grades the attempt that `drill start` wrote in this workspace. A FOLDER
    stands for every .py file below it, at any depth (hidden folders, __pycache__ and
    virtual environments skipped); several files are graded side by side (--jobs), with a
    progress bar on a terminal and a summary table at the end. A broken file gets its row;
    it never stops the others.

    Exit status: 0 every attempt passed, 1 one was graded and did not pass, 2 used wrongly
    (no such file or folder, unknown exercise, --plot without matplotlib), 130 a batch
    stopped by Ctrl-C (what was graded before it is shown).

    \b
    Examples:
      drill grade
      drill grade mlp_backprop.py --json
      drill grade mlp_backprop.py --seed 1234        # replay the grade whose report says probes.seed 1234
      drill grade mlp_backprop.py --feedback terse   # pass or fail and where, nothing more
      drill grade submissions/ --csv grades.csv --plot failures.png
      drill grade submissions/*/mlp_backprop.py --format junit > junit.xml
      drill grade mlp_backprop.py --format gradescope --points 20
    """
    from grader.judge.grade import GradeUsageError
    from grader.practice.grading import grade_attempt
    from grader.run.sandbox import Limits

    fmt = _format(fmt, as_json)
    if fmt != "gradescope" and click.get_current_context().get_parameter_source("points").name != "DEFAULT":
        click.echo("drill: note: --points only scales --format gradescope; ignored here", err=True)
    limits = Limits(timeout=timeout, memory_mb=memory_mb)
    if plot_path is not None:
        from grader.course import plot

        try:
            plot.require(plot_path)
        except plot.PlotUnavailable as exc:
            raise click.UsageError(str(exc)) from None
    if len(paths) > 1 or any(p.is_dir() for p in paths):
        _grade_many(paths, exercise_id, fmt, csv_path, plot_path, jobs, limits, feedback)
    path = _one_path(paths, exercise_id)
    _check_output_paths([path], csv_path, plot_path)
    try:
        report = grade_attempt(path, exercise_id, limits, seed=_seed(seed))
    except GradeUsageError as exc:
        raise click.UsageError(str(exc)) from None
    from grader.practice.history import record_grade
    from grader.practice.timing import budget_for

    record_grade(path, report)  # the drill history: best effort, a broken one only warns
    if feedback == "terse":
        report = _terse(report)
    _show([report], None, fmt, points)
    if fmt == "text" and (budget := budget_for(path, report)):
        click.echo(budget)
    _write_extras([report], csv_path, plot_path)
    sys.exit(0 if report.passed else 1)


def _terse(report):
    from grader.judge.terse import terse

    return terse(report)


def _seed(seed: int | None) -> int:
    """The probes' seed: the one given, else a new one (not the canonical one the tests use)."""
    import secrets

    if seed is not None:
        return seed
    while seed is None or seed == settings.PROBE_SEED:
        seed = secrets.randbelow(2**63)
    return seed


def _format(fmt, as_json):
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two formats; give one")
    return "json" if as_json else (fmt or "text")


def _grade_many(paths, exercise_id, fmt, csv_path, plot_path, jobs, limits, feedback="full"):
    from grader.course import batch

    if fmt == "gradescope":
        raise click.UsageError("--format gradescope grades one submission (Gradescope runs one container "
                               "per submission: see `drill gradescope-bundle`); for a batch use --csv or --json")
    try:
        unreadable: list[str] = []
        files = batch.expand(paths, unreadable)
        for problem in unreadable:
            click.echo(f"drill: warning: left out a folder that cannot be read: {problem}", err=True)
        _check_output_paths(files, csv_path, plot_path)
        plan = batch.prepare(files, exercise_id, named=[p for p in paths if p.is_file()])
        progress = batch.Progress(len(plan.files))
        try:
            graded = batch.run(plan.files, exercise_id, limits, jobs, on_done=progress.update, plan=plan)
        finally:
            progress.close()
    except batch.BatchUsageError as exc:
        raise click.UsageError(str(exc)) from None
    if plan.helpers:
        click.echo(f"Left out {len(plan.helpers)} helper module{'s' if len(plan.helpers) != 1 else ''} "
                   f"(they define none of {plan.exercise_id}'s functions and sit beside a file that does): "
                   + ", ".join(str(h) for h in plan.helpers[:5]) + (", ..." if len(plan.helpers) > 5 else ""),
                   err=True)
    if graded.interrupted:
        click.echo(f"Interrupted: {len(graded.reports)} of {len(plan.files)} attempts were graded; "
                   "the results below are theirs.", err=True)
    if feedback == "terse":
        graded.reports[:] = [_terse(r) for r in graded.reports]
    _show(graded.reports, graded, fmt, None)
    _write_extras(graded.reports, csv_path, plot_path, many=True)
    sys.exit(130 if graded.interrupted else 0 if graded.passed else 1)


def _check_output_paths(files, csv_path, plot_path):
    """--csv and --plot write a regular file of their own: never an attempt, a .py file, a
    device, a pipe or a folder. A symlink is written through (its target is replaced)."""
    graded = {Path(f).resolve() for f in files}
    for option, out in (("--csv", csv_path), ("--plot", plot_path)):
        if out is None:
            continue
        target = out.resolve()
        if target in graded:
            raise click.UsageError(f"{option} {out} is one of the attempts being graded; name another file")
        if target.suffix == ".py":
            raise click.UsageError(f"{option} {out} is a .py file, perhaps someone's code; name a .csv or "
                                   "picture file")
        if target.exists() and not target.is_file():
            raise click.UsageError(f"{option} {out} exists and is not a regular file; name another file")
        if not target.parent.is_dir():
            raise click.UsageError(f"{option} {out}: the folder {out.parent} does not exist")


def _show(reports, graded, fmt, points):
    import json

    from grader.judge.report import render_text

    color = sys.stdout.isatty()
    if fmt == "text" and graded is None:  # the common case, without the formats module
        click.echo(render_text(reports[0], color=color))
        return
    from grader.course import formats

    if fmt == "json":
        click.echo(reports[0].to_json() if graded is None else
                   json.dumps(graded.to_dict(), indent=2, allow_nan=False, default=str))
    elif fmt == "gradescope":
        click.echo(json.dumps(formats.gradescope(reports[0], points), indent=2, allow_nan=False, default=str))
    elif fmt == "junit":
        click.echo(formats.junit(reports), nl=False)
    else:
        click.echo(formats.batch_table(reports, graded.summary(), color=color))


def _write_extras(reports, csv_path, plot_path, many=False):
    import io

    from grader import files
    from grader.course import formats

    if csv_path is not None:
        text = io.StringIO()
        formats.write_csv(reports, text)
        try:
            files.write_atomic(csv_path.resolve(), text.getvalue(), overwrite=True)
        except OSError as exc:
            raise click.ClickException(f"cannot write {csv_path}: {exc.strerror or exc}") from None
        click.echo(f"Wrote {csv_path}: one row per attempt.", err=True)
    if plot_path is not None:
        from grader.course import plot

        drawn = plot.heatmap(reports, plot_path) if many else plot.convergence(reports[0], plot_path)
        click.echo(f"Drew {drawn}.", err=True)


def _one_path(paths, exercise_id):
    from grader.practice import workspace

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
