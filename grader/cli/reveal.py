from pathlib import Path

import click

from grader import catalog
from grader.cli.common import paragraph, shown, warn
from grader.practice.inject import InjectError, InjectUsageError, reveal


@click.command("reveal")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def command(path):
    """Tell which bug `drill inject-bug` put into PATH (default: the latest injected file).

    \b
    Examples:
      drill reveal
      drill reveal mlp_backprop_bug.py
    """
    try:
        found = reveal(path)
    except InjectUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except (InjectError, catalog.CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in found.warnings:
        warn(warning)
    bug = found.bug
    click.echo(f"{shown(found.path)} has the bug {bug.id}: {bug.title}.")
    click.echo(f"Link: {bug.link}; caught by the check {bug.caught_by} ({bug.severity}).")
    click.echo("")
    click.echo(paragraph(bug.explanation, indent=""))
