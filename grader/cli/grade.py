import sys
from pathlib import Path

import click

from grader import settings
from grader.cli import complete
from grader.cli.common import limit_options, printable, warn

FORMATS = ("text", "json", "gradescope", "junit", "prairielearn")


@click.command("grade")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--exercise", "exercise_id", metavar="NAME", shell_complete=complete.exercises,
              help="The exercise the files attempt (default: the one `drill start` recorded for the file, "
                   "else the one its name or its functions tell, else mlp_backprop).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="What to print on stdout (default: text). "
              "json: for one FILE exactly one report object; for a folder or several files one object "
              '{"results": [a report per file], "summary": {...}}. gradescope: Gradescope\'s results.json '
              "(one FILE). junit: JUnit XML, a testsuite per file, a testcase per check. prairielearn: "
              "PrairieLearn's results.json, score in [0, 1] (one FILE).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Also write one row per file (student, score, verdict, points of each check) to this CSV "
                   "file; '-' writes it to stdout instead of the report (the table then goes to stderr).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw a picture (.png, .svg, .pdf): for one file its loss curve and decision "
                   "boundary, for several a heatmap of the checks that fail. Needs matplotlib.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write one self-contained HTML page (opens offline): the summary, a heatmap of the "
                   "checks that fail, a sortable row per file with its full report folded underneath.")
@click.option("--jobs", "-j", type=click.IntRange(1, 1024), metavar="N",
              help="Attempts graded at once (default: one per CPU).")
@click.option("--points", type=click.FloatRange(0, min_open=True), default=settings.GRADESCOPE_POINTS, show_default=True,
              help="With --format gradescope: what the assignment is worth; scores are scaled to it.")
@click.option("--require-isolation", is_flag=True, help="Refuse to grade (exit 2) unless each attempt can run "
              "behind a kernel wall: its own unprivileged user (as root) or its own user, PID, mount and network "
              "namespaces. Without it, a machine that offers neither grades with the worker's own guards only, and "
              "the report says isolation: process.")
@click.option("--feedback", type=click.Choice(["full", "terse"]), default="full", show_default=True,
              help="terse: for interview practice, each check only passes or fails, and a failing link "
                   "says where (rows, columns, sign): no factor, no diagnosis, no hint.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, metavar="N",
              help="Replay a grade: the seed of its probes (inputs and sizes), as its JSON report "
                   "records it under probes.seed (default: a new seed for every grade; a batch draws one for "
                   "all its files).")
@limit_options
def command(paths, exercise_id, as_json, fmt, csv_path, plot_path, html_path, jobs, points, require_isolation,
            feedback, seed, timeout, memory_mb):
    """Grade attempts: every link on its own, finite differences, XOR training.

    With no PATH, grades the attempt that `drill start` wrote in this workspace. A FOLDER
    stands for every .py file below it, at any depth (hidden folders, __pycache__ and
    virtual environments skipped); several files are graded side by side (--jobs), with a
    progress bar on a terminal and a summary table at the end. A broken file gets its row;
    it never stops the others.

    Exit status: 0 every attempt passed, 1 one was graded and did not pass, 2 used wrongly
    (no such file or folder, a file that is neither .py nor .ipynb, unknown exercise, --plot
    without matplotlib), 130 stopped by Ctrl-C (a batch shows what was graded before it).
    Colour on a terminal only; NO_COLOR=1 turns it off, FORCE_COLOR=1 on in a pipe.

    \b
    Examples:
      drill grade
      drill grade mlp_backprop.py --json
      drill grade mlp_backprop.py --seed 1234        # replay the grade whose report says probes.seed 1234
      drill grade mlp_backprop.py --feedback terse   # pass or fail and where, nothing more
      drill grade submissions/ --csv grades.csv --plot failures.png
      drill grade submissions/ --csv - > grades.csv
      drill grade submissions/ --html report.html
      drill grade submissions/*/mlp_backprop.py --format junit > junit.xml
      drill grade mlp_backprop.py --format gradescope --points 20
      drill grade mlp_backprop.py --format prairielearn
      drill grade submissions/ --jobs 4 --require-isolation --csv grades.csv
    """
    fmt, limits = _prepare(fmt, as_json, timeout, memory_mb, require_isolation, plot_path)
    if _to_stdout(csv_path) and fmt != "text":
        raise click.UsageError(f"--csv - and --format {fmt} would both write to stdout; name a CSV file")
    outputs = (csv_path, plot_path, html_path)
    if len(paths) > 1 or any(p.is_dir() for p in paths):
        _grade_many(paths, exercise_id, fmt, outputs, jobs, limits, (feedback, seed))
    _grade_single(_one_path(paths, exercise_id), exercise_id, fmt, outputs, points, limits, (feedback, _seed(seed)))


def _prepare(fmt, as_json, timeout, memory_mb, require_isolation, plot_path):
    """(the format, the Limits), once every option has been checked; exit 2 on a bad one."""
    from grader.run.sandbox import Limits

    _import_before_grading()
    fmt = _format(fmt, as_json)
    if fmt != "gradescope" and click.get_current_context().get_parameter_source("points").name != "DEFAULT":
        click.echo("drill: note: --points only scales --format gradescope; ignored here", err=True)
    if require_isolation:
        _require_isolation()
    if plot_path is not None:
        from grader.course import plot

        try:
            plot.require(plot_path)
        except plot.PlotUnavailable as exc:
            raise click.UsageError(str(exc)) from None
    return fmt, Limits(timeout=timeout, memory_mb=memory_mb)


def _grade_single(path, exercise_id, fmt, outputs, points, limits, how):
    """One attempt: grade it, record it in the workspace's history, print, write the extras.
    how: (the feedback asked for, the probes' seed)."""
    csv_path, plot_path, html_path = outputs
    feedback, seed = how
    _check_kind([path])
    _check_output_paths([path], csv_path, plot_path, html_path)
    _require_notebook([path])
    from grader.practice import workspace

    for problem in workspace.problems_around(path):  # a damaged .drill/ is passed over, never fatal
        warn(problem)
    report = _grade_one(path, exercise_id, limits, seed)
    from grader.practice.history import record_grade
    from grader.practice.timing import budget_for, interview_running

    warning = record_grade(path, report)  # the drill history: best effort, a broken one only warns
    if warning:
        warn(warning)
    if feedback == "terse" or interview_running(report):  # an interview keeps its feedback for the end
        report = _terse(report)
    _show([report], None, fmt, points, err=_to_stdout(csv_path))
    if fmt == "text" and (budget := budget_for(path, report)):
        click.echo(budget, err=_to_stdout(csv_path))
    _write_extras([report], csv_path, plot_path)
    _write_html([report], None, html_path)
    sys.exit(0 if report.passed else 1)


def _terse(report):
    from grader.judge.terse import terse

    return terse(report)


def _seed(seed: int | None) -> int:
    """The probes' seed: the one given, else a new one (not the canonical one the tests use)."""
    from grader.judge.grade import fresh_seed

    return seed if seed is not None else fresh_seed()


def _grade_one(path, exercise_id, limits, seed):
    from grader.judge.grade import GradeUsageError
    from grader.practice.grading import grade_attempt

    try:
        return grade_attempt(path, exercise_id, limits, seed=seed)
    except GradeUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:  # the attempt's processes are stopped on the way out, as in a batch
        click.echo("Interrupted: the attempt was not graded.", err=True)
        sys.exit(130)


def _import_before_grading():
    """Import now what this command needs only after an attempt has run (the history's
    sqlite3, the formats' csv), so that nothing is imported for the first time once an
    attempt has had its chance to write a module somewhere on the import path."""
    import csv  # noqa: F401
    import sqlite3  # noqa: F401

    from grader.course import formats, html_report, prairielearn  # noqa: F401
    from grader.practice import history, timing  # noqa: F401


def _require_isolation():
    from grader.run import isolation

    if isolation.require() == "process":
        raise click.UsageError(
            "--require-isolation: this machine offers no kernel wall around an attempt: drill does not run "
            "as root (for a user of its own), and user namespaces are not available to it (disabled, or "
            f"forbidden in this container{', or DRILL_ISOLATION=process is set' if isolation.forced() else ''}). "
            "Run drill as root in a container, or allow unprivileged user namespaces.")


def _format(fmt, as_json):
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two formats; give one")
    return "json" if as_json else (fmt or "text")


def _grade_many(paths, exercise_id, fmt, outputs, jobs, limits, how=("full", None)):
    """Several attempts side by side. how: (the feedback asked for, the seed given or None:
    the batch then draws one, the same for every attempt of this run)."""
    from grader.course import batch

    feedback, seed = how
    csv_path, plot_path, html_path = outputs
    if fmt == "prairielearn":
        raise click.UsageError("--format prairielearn grades one submission (PrairieLearn runs one container "
                               "per submission: see `drill prairielearn-question`); for a batch use --csv, "
                               "--json or --html")
    if fmt == "gradescope":
        raise click.UsageError("--format gradescope grades one submission (Gradescope runs one container "
                               "per submission: see `drill gradescope-bundle`); for a batch use --csv or --json")
    _check_kind(paths)
    try:
        unreadable: list[str] = []
        submissions = batch.expand(paths, unreadable)
        for problem in unreadable:
            warn(f"left out a folder that cannot be read: {problem}")
        _check_output_paths([s.path for s in submissions], csv_path, plot_path, html_path)
        _require_notebook([s.path for s in submissions])
        plan = batch.prepare(submissions, exercise_id)
        progress = batch.Progress(len(plan.files))
        try:
            graded = batch.run(plan.files, exercise_id, limits, jobs, on_done=progress.update, plan=plan, seed=seed)
        finally:
            progress.close()
    except batch.BatchUsageError as exc:
        raise click.UsageError(str(exc)) from None
    if plan.helpers:
        click.echo(f"Left out {len(plan.helpers)} helper module{'s' if len(plan.helpers) != 1 else ''} "
                   f"(they define none of {plan.exercise_id}'s functions and sit beside a file that does): "
                   + ", ".join(printable(str(h)) for h in plan.helpers[:5]) + (", ..." if len(plan.helpers) > 5 else ""),
                   err=True)
    if graded.interrupted:
        click.echo(f"Interrupted: {len(graded.reports)} of {len(plan.files)} attempts were graded; "
                   "the results below are theirs.", err=True)
    if feedback == "terse":
        graded.reports[:] = [_terse(r) for r in graded.reports]
    _show(graded.reports, graded, fmt, None, err=_to_stdout(csv_path))
    _write_extras(graded.reports, csv_path, plot_path, many=True, students=graded.students)
    _write_html(graded.reports, graded.summary(), html_path)
    sys.exit(130 if graded.interrupted else 0 if graded.passed else 1)


def _check_kind(paths):
    """A file named to be graded is a .py file or a .ipynb notebook (a folder picks those itself):
    anything else is refused before it could be imported as Python."""
    wrong = [p for p in paths if p.is_file() and p.suffix.lower() not in (".py", ".ipynb")]
    if wrong:
        raise click.UsageError(f"{wrong[0]} is neither a .py file nor a .ipynb notebook; an attempt is one "
                               "of those (rename it if it is Python)")


def _require_notebook(files):
    """A notebook among the files needs nbformat (the notebook extra): exit 2 when it is missing."""
    from grader.judge import notebook

    if any(notebook.is_notebook(f) for f in files):
        try:
            notebook.require()
        except notebook.NotebookUnavailable as exc:
            raise click.UsageError(str(exc)) from None


def _check_output_paths(files, csv_path, plot_path, html_path=None):
    """--csv, --plot and --html write a regular file of their own: never an attempt, a .py or
    .ipynb file, a device, a pipe or a folder. A symbolic link there is replaced itself, never
    written through (grader.files.output_path)."""
    from grader.files import output_path

    graded = {Path(f).resolve() for f in files} | {output_path(f) for f in files}
    for option, out in (("--csv", csv_path), ("--plot", plot_path), ("--html", html_path)):
        if out is None or (option == "--csv" and _to_stdout(out)):
            continue
        target = output_path(out)
        if {target, out.resolve()} & graded:
            raise click.UsageError(f"{option} {out} is one of the attempts being graded; name another file")
        if target.suffix in (".py", ".ipynb"):
            raise click.UsageError(f"{option} {out} is a {target.suffix} file, perhaps someone's code; name "
                                   "a .csv, .html or picture file")
        if target.exists() and not target.is_symlink() and not target.is_file():
            raise click.UsageError(f"{option} {out} exists and is not a regular file; name another file")
        if not target.parent.is_dir():
            raise click.UsageError(f"{option} {out}: the folder {out.parent} does not exist")


def _to_stdout(csv_path) -> bool:
    """--csv -: the CSV goes to stdout, and nothing else does."""
    return csv_path is not None and str(csv_path) == "-"


def _show(reports, graded, fmt, points, err=False):
    """What the format prints: on stdout, or on stderr when err (the text report or table
    beside --csv -, which has stdout to itself)."""
    import json

    from grader.cli.common import color as wants_color
    from grader.judge.report import render_text

    color = wants_color(sys.stderr if err else None)
    if fmt == "text" and graded is None:  # the common case, without the formats module
        import dataclasses

        shown = dataclasses.replace(reports[0], file=printable(reports[0].file))
        click.echo(render_text(shown, color=color), color=color, err=err)  # click strips colour from a pipe unless told
        return
    from grader.course import formats

    if fmt == "json":
        click.echo(reports[0].to_json() if graded is None else
                   json.dumps(graded.to_dict(), indent=2, allow_nan=False, default=str))
    elif fmt == "gradescope":
        click.echo(json.dumps(formats.gradescope(reports[0], points), indent=2, allow_nan=False, default=str))
    elif fmt == "prairielearn":
        from grader.course import prairielearn

        click.echo(json.dumps(prairielearn.results(reports[0]), indent=2, allow_nan=False, default=str))
    elif fmt == "junit":
        click.echo(formats.junit(reports), nl=False)
    else:
        click.echo(formats.batch_table(reports, graded.summary(), color=color), color=color, err=err)


def _write_extras(reports, csv_path, plot_path, many=False, students=None):
    import io

    from grader.course import formats

    if csv_path is not None:
        text = io.StringIO()
        formats.write_csv(reports, text, students)
        if _to_stdout(csv_path):
            click.echo(text.getvalue(), nl=False)
        else:
            _write_csv_file(csv_path, text.getvalue())
    if plot_path is not None:
        from grader.course import plot

        drawn = plot.heatmap(reports, plot_path) if many else plot.convergence(reports[0], plot_path)
        click.echo(f"Drew {drawn}.", err=True)


def _write_csv_file(csv_path, text):
    from grader import files

    try:
        files.write_atomic(files.output_path(csv_path), text, overwrite=True)
    except OSError as exc:
        raise click.ClickException(f"cannot write {csv_path}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {csv_path}: one row per attempt.", err=True)


def _write_html(reports, summary, html_path):
    """--html: the page of html_report.render, replacing a report written before (as --csv does)."""
    if html_path is None:
        return
    from grader import files
    from grader.course import html_report

    try:
        files.write_atomic(files.output_path(html_path), html_report.render(reports, summary), overwrite=True)
    except OSError as exc:
        raise click.ClickException(f"cannot write {html_path}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {html_path}: one row per attempt, each with its full report.", err=True)


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
