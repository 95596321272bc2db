import json
from pathlib import Path

import click

from grader.cli.common import warn


@click.command("stats")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="A workspace whose own history (where earlier drills kept it) to merge in first "
                   "(default: the nearest one at or above this folder). The history is one for all folders.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw your progress (.png, .svg, .pdf): time to a full score per attempt over the "
                   "calendar, and each link's error rate over time. Needs matplotlib.")
def command(folder, as_json, plot_path):
    """Show your practice so far, in every folder: attempts, time to a full score, the links
    you get wrong, your habits, and what is due.

    Per exercise: attempts, the best and the latest time to a full score and how it has
    come down, the score at the first and the best grade of each attempt, and per link
    how often it was wrong. For spot-the-bug: how often each bug was fixed, and how fast.
    Habits: a link wrong the same way (the same catalogued bug) in at least two of its last
    five attempts. Due: what `drill next` would write now, and when the rest comes back.

    \b
    Examples:
      drill stats
      drill stats --json
      drill stats --plot progress.png
    """
    from grader.practice import history, workspace
    from grader.practice.review import load, render_text

    if plot_path is not None:
        _check_plot(plot_path)

    try:
        summary = load(workspace.find(folder))  # one history, wherever; a workspace's own is merged in first
    except history.HistoryError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in summary.pop("warnings"):
        warn(warning)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(render_text(summary))
    if plot_path is not None:
        from grader.course import plot

        try:
            plot.draw_progress(summary["progress"], plot_path)
        except OSError as exc:
            raise click.ClickException(f"cannot write {plot_path}: {exc.strerror or exc}") from None
        click.echo(f"Drew {plot_path}.", err=True)


def _check_plot(plot_path: Path) -> None:
    """Exit 2 before anything is read when the picture cannot be drawn where asked."""
    from grader.course import plot

    try:
        plot.require(plot_path)
    except plot.PlotUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    if not plot_path.parent.is_dir():
        raise click.UsageError(f"--plot {plot_path}: the folder {plot_path.parent} does not exist")
