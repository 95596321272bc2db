import click

from .. import catalog


@click.command("bugs")
@click.argument("exercise", required=False)
def command(exercise):
    """List the catalogued bugs (of EXERCISE, or of every exercise), one line each.

    Each line: id, link, severity, the check that catches it, and a title.
    `drill explain ID` tells more about one.

    \b
    Example:
      drill bugs
    """
    # `--check` (the self-test: every bug caught by its check) is added with the grader.
    try:
        if exercise is not None and exercise not in catalog.exercises():
            raise click.UsageError(f"no exercise called {exercise!r}; there is: {', '.join(catalog.exercises())}")
        table = catalog.bugs(exercise)
    except catalog.CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    if not table:
        click.echo("No bugs are catalogued.")
        return
    rows = [(b.id, b.link, b.severity, b.caught_by, b.title) for b in table.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[4])
