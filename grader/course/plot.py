"""Pictures of grades, for people who would rather look than read.

- convergence(): the loss curve of an attempt's training run, and the decision boundary
  its trained params draw over the XOR points.
- heatmap(): which checks fail across the attempts of a batch.
- draw_progress(): a learner's progress (`drill stats --plot`), from practice.review.progress's data.

matplotlib is an optional extra (`pip install 'backprop-drill[plot]'`), imported only
here and only when a picture is asked for. Only matplotlib's object API is used (no
pyplot), so nothing depends on a display or on global figure state.

The decision boundary is evaluated by the reference's own forward() on the attempt's
trained params: the attempt's code never runs in the grader's process. A forward that
depends on its batch (batch norm) classifies each grid point inside the training batch.
"""
from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

INSTALL_HINT = "pip install 'backprop-drill[plot]'"
MAX_PARAMS = 100_000  # more trained numbers than this: no boundary (the grid has 40,000 points)


class PlotUnavailable(Exception):
    """The picture cannot be drawn as asked (matplotlib is missing, or the file type is not
    one it draws): raised before any grading, with what to do instead (a usage error)."""


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(f"--plot needs matplotlib, an optional extra; install it with:  {INSTALL_HINT}") from None
    return Figure


def require(path: Path) -> None:
    """Fail now, not after grading, when matplotlib is missing or cannot write path's type."""
    Figure = _figure_class()
    kinds = Figure().canvas.get_supported_filetypes()
    kind = Path(path).suffix.lower().lstrip(".")
    if kind not in kinds:
        raise PlotUnavailable(f"--plot {path}: cannot draw a '.{kind}' file; name it .png, .svg or .pdf")


def _save(fig, path: Path) -> Path:
    """Write the picture at path in one step; a symbolic link there is replaced, never written through."""
    import io

    from grader import files

    path = Path(path)
    data = io.BytesIO()
    fig.savefig(data, format=path.suffix.lstrip(".").lower() or "png", dpi=110, bbox_inches="tight")
    files.write_atomic(files.output_path(path), data.getvalue(), overwrite=True)
    return path


def draw_convergence(path: Path, losses, x=None, y=None, params: dict | None = None, forward=None,
                     title: str = "", accuracy: float | None = None) -> Path:
    """Loss per iteration (left) and, for 2-D points x with labels y, the points and (given
    params and forward) the decision boundary that forward(params, .) draws (right)."""
    import numpy as np

    Figure = _figure_class()
    planar = x is not None and np.ndim(x) == 2 and np.shape(x)[1] == 2
    fig = Figure(figsize=(10 if planar else 5.5, 4.6), layout="constrained")
    ax_loss, ax_xy = fig.subplots(1, 2) if planar else (fig.subplots(), None)
    losses = np.asarray(losses if losses is not None else [], dtype=float)
    finite = np.isfinite(losses)
    if finite.any():
        _draw_loss(ax_loss, losses, finite)
    else:
        ax_loss.text(0.5, 0.5, "no loss was recorded:\nthe training run did not get going",
                     ha="center", va="center", transform=ax_loss.transAxes)
    ax_loss.set(xlabel="iteration", ylabel="loss (mean cross-entropy)", title="loss during training")

    if planar:
        _draw_points(ax_xy, np.asarray(x, dtype=float), np.asarray(y), params, forward, accuracy)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _draw_loss(ax_loss, losses, finite) -> None:
    """The finite losses at their iterations (from 1, whole numbers on the axis), on a log
    scale only when they span a decade or more; a run that stopped gets a marker at the
    last iteration it finished, the one its label names."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    steps = np.arange(1, len(losses) + 1)
    shown = losses[finite]
    ax_loss.plot(steps[finite], shown, color="#1f77b4")
    if (shown > 0).all() and shown.max() >= 10 * shown.min():
        ax_loss.set_yscale("log")
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not finite.all():
        stop = int(np.argmin(finite))  # iterations 1..stop finished with a finite loss
        ax_loss.axvline(stop, color="#d62728", linestyle="--", label=f"stopped at iteration {stop}")
        ax_loss.legend()


def grid_classes(forward, params: dict, x, size: int = 200, batch_size: int = 60):
    """The class forward(params, .) gives each point of a size x size grid around the points x:
    (gx, gy, classes, number of classes).

    A forward that uses statistics of its batch (batch norm in training mode) classifies a
    point by the batch it comes in, so a grid pushed through it in one batch would show the
    grid's statistics, not what the network learned. Such a forward is detected (a few rows
    alone score differently than inside the whole batch), and each grid point is then
    classified as one more row of the training batch x, on a coarser batch_size grid.
    """
    import numpy as np

    with np.errstate(all="ignore"):
        inside, _ = forward(params, x)
        few = min(len(x), 5)
        alone, _ = forward(params, x[:few])
        batch_dependent = not np.allclose(np.asarray(alone, dtype=float), np.asarray(inside, dtype=float)[:few],
                                          rtol=1e-6, atol=1e-9)
        n = batch_size if batch_dependent else size
        pad = 0.5
        gx, gy = np.meshgrid(np.linspace(x[:, 0].min() - pad, x[:, 0].max() + pad, n),
                             np.linspace(x[:, 1].min() - pad, x[:, 1].max() + pad, n))
        points = np.column_stack([gx.ravel(), gy.ravel()])
        if batch_dependent:
            rows = np.vstack([x, points[:1]])
            z = []
            for point in points:
                rows[-1] = point
                z.append(np.asarray(forward(params, rows)[0], dtype=float)[-1])
            z = np.array(z)
        else:
            z = np.asarray(forward(params, points)[0], dtype=float)
    return gx, gy, z.argmax(axis=1).reshape(gx.shape), z.shape[1]


def _draw_points(ax_xy, x, y, params, forward, accuracy):
    import numpy as np

    classes = None
    if params is not None and forward is not None:
        try:  # the attempt's params: any shape, any value
            p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
            if sum(v.size for v in p.values()) > MAX_PARAMS:
                raise ValueError("too many params to evaluate on a grid")
            gx, gy, classes, n_classes = grid_classes(forward, p, x)
        except (ValueError, TypeError, KeyError, IndexError):
            ax_xy.set_title("XOR points (the trained params do not fit\nthe network, so no decision boundary)")
    if classes is not None:
        levels = np.arange(n_classes + 1) - 0.5
        ax_xy.contourf(gx, gy, classes, levels=levels, cmap="coolwarm", alpha=0.25)
        ax_xy.contour(gx, gy, classes, levels=levels[1:-1], colors="k", linewidths=1.0)
        ax_xy.set_title("learned decision boundary" + (f" (accuracy {accuracy:.3f})" if accuracy is not None else ""))
    elif params is None or forward is None:
        ax_xy.set_title("XOR points (no trained params in the report,\nso no decision boundary)")
    points = ax_xy.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=14, edgecolors="k", linewidths=0.3)
    handles, _ = points.legend_elements()
    ax_xy.legend(handles, [f"class {c}" for c in np.unique(y)], loc="upper right", fontsize=8, framealpha=0.8,
                 title="label (points and regions)", title_fontsize=8)
    ax_xy.set(xlabel="x[:, 0]", ylabel="x[:, 1]")
    ax_xy.set_aspect("equal", adjustable="box")


def convergence(report, path: Path) -> Path:
    """The picture of one graded attempt's convergence run (see draw_convergence)."""
    from grader import catalog
    from grader.catalog import reference

    exercise = catalog.exercise(report.exercise)
    ref = reference.load(exercise.solution_path.read_text(encoding="utf-8"), str(exercise.solution_path))
    train = exercise.train
    x = y = None
    if train is not None and hasattr(ref, "make_xor"):
        x, y = ref.make_xor(n=train.n, seed=train.seed)
    conv = report.convergence or {}
    check = next((c for c in report.checks if c.name == "convergence"), None)
    from grader.course.formats import escaped

    title = escaped(report.file) + ("" if check is None else "\n" + textwrap.shorten(check.message, 110))
    return draw_convergence(path, conv.get("losses"), x, y, params=conv.get("params"), forward=getattr(ref, "forward", None),
                            title=title, accuracy=conv.get("accuracy"))


def _short_names(files: list[str]) -> tuple[list[str], str]:
    """The files relative to the folder they all share, and that folder ("" when none)."""
    try:
        common = os.path.commonpath([os.path.dirname(f) for f in files])
    except ValueError:  # absolute and relative paths mixed, or no files
        return files, ""
    return ([os.path.relpath(f, common) for f in files], common) if common else (files, "")


PASSED, NOT_RUN, WRONG = 1.0, 0.5, 0.0  # a cell of heat_matrix; NaN: not a check of that exercise


def heat_matrix(reports: list):
    """(check names in order of first appearance, a matrix with a row per report): PASSED,
    WRONG (judged wrong), NOT_RUN (nothing could be judged: not run, not written), NaN not a
    check of that report's exercise."""
    import numpy as np

    def cell(c) -> float:
        return PASSED if c.passed else NOT_RUN if c.open else WRONG

    names: list[str] = []
    for r in reports:
        names += [c.name for c in r.checks if c.name not in names]
    passed = np.array([[next((cell(c) for c in r.checks if c.name == n), np.nan) for n in names]
                       for r in reports], dtype=float).reshape(len(reports), len(names))
    return names, passed


def by_score(reports: list) -> list:
    """The reports by score, lowest first (those who need help on top), then by file."""
    return sorted(reports, key=lambda r: (r.score / r.max_score if r.max_score else 0.0, r.file))


def heatmap(reports: list, path: Path) -> Path:
    """Rows: attempts, lowest score on top; columns: checks, then the score. Pale green
    passed, dark red judged wrong, grey not run (the attempt could not be run that far, or
    the link is not written), white not a check of that exercise. Counts of wrong on top."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    Figure = _figure_class()
    reports = by_score(reports)
    names, passed = heat_matrix(reports)
    files, common = _short_names([r.file for r in reports])
    labels = [f + (f"  ({r.error['kind']})" if r.error else "") for f, r in zip(files, reports)]
    height = 2.2 + 0.22 * len(reports)
    fig = Figure(figsize=(2.2 + 0.55 * len(names) + 0.07 * max(map(len, labels), default=0), height),
                 layout="constrained")
    ax = fig.subplots()
    # Dark red, grey and pale green: told apart by lightness too, so by colour-blind eyes.
    cmap = ListedColormap(["#b2182b", "#969696", "#d9f0d3"]).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(passed), cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    _score_column(ax, reports, len(names))
    fails = (passed == WRONG).sum(axis=0).astype(int)
    ax.set_xticks(range(len(names) + 1), [f"{n} ({k})" for n, k in zip(names, fails)] + ["score"],
                  rotation=60, ha="left")
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(reports)), labels, fontsize=max(5, min(9, math.floor(600 / max(len(reports), 1)))))
    ax.set_xticks(np.arange(len(names) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(reports) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_xlim(-0.5, len(names) + 0.5)
    n_passed = sum(r.passed for r in reports)
    exercises = sorted({r.exercise for r in reports})
    fig.suptitle(f"Which checks fail: {', '.join(exercises)}, {len(reports)} attempts, {n_passed} passed")
    where = f"in {common}; " if common else ""
    white = ", white: not a check of that exercise" if np.isnan(passed).any() else ""
    ax.set_xlabel(f"{where}lowest score on top; pale: passed, dark red: wrong, grey: not run{white} "
                  "(wrong counted beside each check)")
    return _save(fig, path)


def _score_column(ax, reports: list, column: int) -> None:
    """Each attempt's score, as text in the column right of the checks."""
    for row, r in enumerate(reports):
        ax.text(column, row, f"{r.score:g}/{r.max_score:g}", ha="center", va="center", fontsize=8)


def progress_figure(progress: dict):
    """The Figure of draw_progress: time to a full score per attempt over the calendar (top;
    interview drills marked with a diamond), and each link's error rate over time (bottom)."""
    from datetime import datetime

    Figure = _figure_class()
    fig = Figure(figsize=(10, 8), layout="constrained")
    ax_time, ax_rate = fig.subplots(2, 1, sharex=True)
    for exercise, points in progress["times"].items():
        at = [datetime.fromisoformat(p["at"]) for p in points]
        ax_time.plot(at, [p["seconds"] / 60 for p in points], marker="o", label=exercise)
        marked = [(a, p["seconds"] / 60) for a, p in zip(at, points) if p["interview"]]
        if marked:
            ax_time.scatter(*zip(*marked), marker="D", s=70, facecolors="none", edgecolors="#d62728", zorder=3,
                            label=f"{exercise}: interview")
    if progress["times"]:
        ax_time.legend(fontsize="small")
    else:
        ax_time.text(0.5, 0.5, "no full score yet", ha="center", va="center", transform=ax_time.transAxes)
    ax_time.set(ylabel="minutes to a full score", title="Time to a full score, per attempt")
    # a link never got wrong is a flat line at 0: left out, and counted in the legend's title
    wrong = {label: points for label, points in progress["rates"].items() if any(p["rate"] for p in points)}
    for label, points in wrong.items():
        ax_rate.plot([datetime.fromisoformat(p["at"]) for p in points], [p["rate"] for p in points],
                     marker=".", label=label)
    never = len(progress["rates"]) - len(wrong)
    if wrong:
        ax_rate.legend(fontsize="x-small", ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title=f"{never} link(s) never wrong: not drawn" if never else None, title_fontsize="x-small")
    else:
        ax_rate.text(0.5, 0.5, f"no link wrong yet ({never} judged)" if never else "no link judged yet",
                     ha="center", va="center", transform=ax_rate.transAxes)
    ax_rate.set(ylabel=f"error rate (last {progress['window']} attempts)", ylim=(-0.05, 1.05), xlabel="date",
                title="Each link's error rate over time")
    _calendar_axis(ax_rate, [datetime.fromisoformat(p["at"]) for points in [*progress["times"].values(),
                                                                            *progress["rates"].values()]
                             for p in points])
    return fig


def _calendar_axis(ax, moments) -> None:
    """Dates on ax's x axis, spanning the moments with a margin (at least half a day each
    side: a single day of practice is not drawn across four years)."""
    import matplotlib.dates as mdates
    from datetime import timedelta

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if moments:
        first, last = min(moments), max(moments)
        margin = max(timedelta(hours=12), (last - first) * 0.05)
        ax.set_xlim(first - margin, last + margin)


def draw_progress(progress: dict, path: Path) -> Path:
    """`drill stats --plot`: progress_figure, written at path."""
    return _save(progress_figure(progress), path)
