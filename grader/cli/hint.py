import click

from grader.cli import complete
from grader.cli.common import paragraph, warn
from grader.practice.hints import HintError, InterviewRunning, NothingToHint, next_hint


@click.command("hint")
@click.argument("link", required=False, shell_complete=complete.links)
def command(link):
    """Give the next hint for LINK (default: the first link still failing in your file as it is now).

    Without LINK, the file is judged as it is now: by its latest grade when it has not
    changed since, else it is graded first (a few seconds; the grade is recorded).

    Each call for the same link goes one level further: a nudge, then the shape, then
    the formula. The levels start again at `drill start`; every hint is recorded.

    \b
    Examples:
      drill hint
      drill hint dz2
    """
    try:
        hint = next_hint(link)
    except NothingToHint as exc:
        click.echo(str(exc))
        return
    except InterviewRunning as exc:
        raise click.ClickException(str(exc)) from None
    except HintError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("Interrupted: no hint was given.", err=True)
        raise SystemExit(130) from None
    if hint.regraded:
        click.echo("drill: graded your file as it is now (it changed since its latest grade)", err=True)
    if hint.warning:
        warn(f"{hint.warning}; hints start again from the first")
    blank = hint.blank
    click.echo(f"Hint {hint.level} of {hint.levels} for {hint.link} ({hint.kind}): "
               f"{blank.what}, shape {blank.shape}")
    click.echo(paragraph(hint.text))
    if hint.last:
        click.echo(f"That was the last hint for {hint.link}.")
    else:
        click.echo(f"More:  drill hint {hint.link}")
