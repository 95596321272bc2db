"""A batch as one self-contained HTML page (`drill grade DIR --html report.html`).

render() makes a single file that opens offline: no external script, style sheet, font or
picture. It holds the summary, a heatmap of which checks fail where (an HTML table coloured
by inline CSS), one row per attempt with its score and failing checks (sortable by a few
lines of inline JavaScript: click a column's heading), and under each row that attempt's
full text report, folded (<details>). Everything that comes from a submission (file names,
messages, what the attempt printed) is HTML-escaped.
"""
from __future__ import annotations

import html
import re
import statistics

from grader.judge.report import Report, render_text

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; } th, td { padding: 3px 8px; text-align: left; vertical-align: top; }
th button { font: inherit; font-weight: bold; border: 0; background: none; cursor: pointer; padding: 0; }
tbody.attempt { border-top: 1px solid #ccc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { background: #2ca02c; } .fail { background: #d62728; } .open { background: #bbb; }
.verdict-pass { color: #1a7a1a; font-weight: bold; } .verdict-fail { color: #b01c1c; font-weight: bold; }
table.heatmap td.cell { width: 1.6em; height: 1.2em; padding: 0; border: 1px solid #fff; }
table.heatmap th.check { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; }
.legend span { display: inline-block; width: 1em; height: 1em; vertical-align: middle; margin: 0 .3em 0 1em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
details summary { cursor: pointer; color: #555; }
"""

# Sort the attempts by a column: each <tbody class="attempt"> carries its row and its folded report.
SCRIPT = """
document.querySelectorAll("table.attempts th button").forEach(function (button) {
  button.addEventListener("click", function () {
    var key = button.dataset.key, table = button.closest("table");
    var down = button.dataset.dir !== "down";
    button.dataset.dir = down ? "down" : "up";
    var groups = Array.prototype.slice.call(table.querySelectorAll("tbody.attempt"));
    groups.sort(function (a, b) {
      var x = a.dataset[key], y = b.dataset[key], nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return down ? -order : order;
    });
    groups.forEach(function (g) { table.appendChild(g); });
  });
});
"""


def _e(text) -> str:
    """text escaped for HTML, without the control characters HTML cannot hold."""
    return html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True)


def _verdict(r: Report) -> str:
    return "PASS" if r.passed else (r.error["kind"] if r.error else "FAIL")


def _summary(reports: list[Report], summary: dict | None) -> str:
    summary = summary or {}
    scores = [r.score for r in reports]
    passed = sum(r.passed for r in reports)
    lines = [f"{len(reports)} attempt{'s' if len(reports) != 1 else ''} graded"
             + (f" as {_e(summary['exercise'])}" if summary.get("exercise") else "")
             + f": {passed} passed, {len(reports) - passed} not passed "
               f"({sum(r.error is not None for r in reports)} could not be run to the end)."]
    if scores:
        top = max(r.max_score for r in reports)
        lines.append(f"Score: mean {statistics.fmean(scores):.4g}, median {statistics.median(scores):.4g} "
                     f"of {top:g}.")
    failing: dict[str, int] = {}
    for r in reports:
        for c in r.checks:
            failing[c.name] = failing.get(c.name, 0) + (not c.passed)
    most = sorted(((n, k) for n, k in failing.items() if k), key=lambda item: -item[1])
    if most:
        lines.append("Checks failed most: " + ", ".join(f"{_e(n)} {k}" for n, k in most) + ".")
    return "".join(f"<p>{line}</p>\n" for line in lines)


def _heatmap(reports: list[Report]) -> str:
    checks: list[str] = []
    for r in reports:
        checks += [c.name for c in r.checks if c.name not in checks]
    head = "".join(f'<th class="check" scope="col">{_e(n)}</th>' for n in checks)
    rows = []
    for r in reports:
        by_name = {c.name: c for c in r.checks}
        cells = []
        for name in checks:
            c = by_name.get(name)
            status = "open" if c is None else c.status
            tip = f"{name}: {'not run' if c is None else c.message}"
            cells.append(f'<td class="cell {status}" title="{_e(tip)}"></td>')
        rows.append(f'<tr><th scope="row">{_e(r.file)}</th><td class="num">{r.score:g}</td>{"".join(cells)}</tr>')
    legend = ('<p class="legend"><span class="pass"></span>passed<span class="fail"></span>failed'
              '<span class="open"></span>not run or not written yet</p>')
    return (f'<table class="heatmap"><thead><tr><th>file</th><th>score</th>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + f"\n</tbody></table>\n{legend}\n")


def _attempt(r: Report) -> str:
    failing = [c.name for c in r.checks if not c.passed]
    verdict = _verdict(r)
    data = (f'data-file="{_e(r.file)}" data-score="{r.score:g}" data-verdict="{_e(verdict)}" '
            f'data-failing="{len(failing)}"')
    row = (f'<tr><td>{_e(r.file)}</td><td class="num">{r.score:g}</td>'
           f'<td class="verdict-{"pass" if r.passed else "fail"}">{_e(verdict)}</td>'
           f'<td>{_e(", ".join(failing)) or "none"}</td></tr>')
    folded = (f'<tr><td colspan="4"><details><summary>full report</summary>'
              f"<pre>{_e(render_text(r, color=False))}</pre></details></td></tr>")
    return f'<tbody class="attempt" {data}>\n{row}\n{folded}\n</tbody>'


def render(reports: list[Report], summary: dict | None = None, title: str = "drill grade") -> str:
    """The whole page for these reports (in the order given); summary: the batch's, for its exercise."""
    heads = "".join(f'<th scope="col"><button type="button" data-key="{key}">{label}</button></th>'
                    for key, label in (("file", "file"), ("score", "score"), ("verdict", "result"),
                                       ("failing", "failing checks")))
    body = "\n".join(_attempt(r) for r in reports)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n"
            f"<h2>Summary</h2>\n{_summary(reports, summary)}"
            f"<h2>Which checks fail where</h2>\n{_heatmap(reports)}"
            f'<h2>Attempts</h2>\n<p>Click a heading to sort; open "full report" for everything drill grade said.</p>\n'
            f'<table class="attempts">\n<thead><tr>{heads}</tr></thead>\n{body}\n</table>\n'
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
