import click

from grader import catalog


@click.command("bugs")
@click.argument("exercise", required=False)
@click.option("--check", "self_test", is_flag=True,
              help="Self-test: grade the reference, the stub and every bug injected into the reference; "
                   "exit 1 if a bug escapes the check its entry names.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Files graded at once (default: all cores).")
def command(exercise, self_test, jobs):
    """List the catalogued bugs (of EXERCISE, or of every exercise), one line each.

    Each line: id, link, severity, the check that catches it, and a title.
    `drill explain ID` tells more about one. With --check, runs the self-test and prints
    a matrix of which checks catch which bug.

    \b
    Examples:
      drill bugs
      drill bugs --check
    """
    try:
        if exercise is not None and exercise not in catalog.exercises():
            raise click.UsageError(catalog.no_such("exercise", exercise, catalog.exercises()))
        table = catalog.bugs(exercise)
    except catalog.CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    if self_test:
        from grader.judge import selftest

        cases = selftest.run(exercise, jobs)
        click.echo(selftest.matrix(cases))
        if any(c.problem for c in cases):
            raise SystemExit(1)
        return
    if not table:
        click.echo("No bugs are catalogued.")
        return
    rows = [(b.id, b.link, b.severity, b.caught_by, b.title) for b in table.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[4])
