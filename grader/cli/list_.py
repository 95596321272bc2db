import click

from grader import catalog


@click.command("list")
def command():
    """List the exercises, one line each.

    \b
    Example:
      drill list
    """
    try:
        table = catalog.exercises()
    except catalog.CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    width = max(len(name) for name in table)
    for name, ex in table.items():
        click.echo(f"{name:<{width}}  {ex.summary}")
