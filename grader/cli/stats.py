import json
from pathlib import Path

import click

from grader.cli.common import warn


@click.command("stats")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="A workspace whose own history (where earlier drills kept it) to merge in first "
                   "(default: the nearest one at or above this folder). The history is one for all folders.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
def command(folder, as_json):
    """Show your practice so far: attempts, time to a full score, the links you get wrong.

    Per exercise: attempts, the best and the latest time to a full score and how it has
    come down, the score at the first and the best grade of each attempt, and per link
    how often it was wrong. For spot-the-bug: how often each bug was fixed, and how fast.

    \b
    Examples:
      drill stats
      drill stats --json
    """
    from grader.practice import history, workspace
    from grader.practice.review import load, render_text

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
