import textwrap

import click

from grader import catalog


@click.command("explain")
@click.argument("bug_id", metavar="BUG")
def command(bug_id):
    """Explain the catalogued bug BUG: what goes wrong, what you see, how to spot it.

    \b
    Example:
      drill explain missing-n
    """
    try:
        bug = catalog.bug(bug_id)
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
    except catalog.CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{bug.id}: {bug.title}")
    click.echo(f"Link: {bug.link} ({bug.exercise}); caught by the check {bug.caught_by}; severity {bug.severity}.")
    for heading, text in (("What goes wrong", bug.explanation), ("Symptom", bug.symptom),
                          ("How to spot it", bug.hint)):
        click.echo(f"\n{heading}:")
        click.echo(paragraph(text))


def paragraph(text: str, indent: str = "  ") -> str:
    """A catalogue text folded to the terminal's usual width."""
    return textwrap.fill(" ".join(text.split()), width=88, initial_indent=indent, subsequent_indent=indent)
