"""`drill grade DIR --html report.html`: one self-contained page, checked with an HTML parser
(and in headless Chromium when the machine has it)."""
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.course import html_report
from grader.judge.report import CheckResult, Diagnosis, Report

FIXTURES = Path(__file__).parent / "fixtures" / "mlp_backprop"
HOSTILE = '<img src=x onerror="alert(1)">&amp;'
TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "thead", "tbody", "tr",
        "th", "td", "button", "details", "summary", "pre", "script", "span"}


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the text inside each <script>."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts, self._in = [], [], [], None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        (self.scripts if self._in == "script" else self.text).append(data)

    def all(self, tag, cls=None):
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def assert_self_contained(page: Page):
    assert {t for t, _ in page.tags} <= TAGS, {t for t, _ in page.tags} - TAGS
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            assert name not in attrs, (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)  # no inline handlers: ours is a <script>
    assert page.scripts == [html_report.SCRIPT]
    assert "@import" not in "".join(page.text) and "url(" not in html_report.STYLE


def hostile_report() -> Report:
    checks = [CheckResult("dz2", False, 0, 12, f"wrong: {HOSTILE}"), CheckResult("dW2", True, 8, 8, "right")]
    return Report(exercise="mlp_backprop", file=f"subs/{HOSTILE}/mlp_backprop.py", checks=checks,
                  diagnosis=[Diagnosis(None, "dz2", "error", f"</pre></details><script>{HOSTILE}")],
                  output={"stdout": [f"</td>{HOSTILE}"]})


def test_every_student_has_a_row_a_heatmap_line_and_a_folded_report():
    good = Report(exercise="mlp_backprop", file="subs/ann/mlp_backprop.py",
                  checks=[CheckResult("dz2", True, 12, 12, "right"), CheckResult("dW2", True, 8, 8, "right")])
    page = Page(html_report.render([good, hostile_report()], {"exercise": "mlp_backprop"}))
    assert_self_contained(page)
    groups = page.all("tbody", "attempt")
    assert [g["data-file"] for g in groups] == [good.file, hostile_report().file]
    assert [g["data-score"] for g in groups] == ["20", "8"] and groups[1]["data-verdict"] == "FAIL"
    assert len(page.all("details")) == 2 and len(page.all("pre")) == 2
    assert len(page.all("td", "pass")) == 3 and len(page.all("td", "fail")) == 1  # the heatmap
    assert [b["data-key"] for b in page.all("button")] == ["file", "score", "verdict", "failing"]
    text = "".join(page.text)
    assert "2 attempts graded as mlp_backprop: 1 passed" in text and "Checks failed most: dz2 1" in text


def test_what_a_student_controls_is_escaped():
    page = Page(html_report.render([hostile_report()]))
    assert_self_contained(page)  # no <img>, no second <script>: the hostile text stayed text
    text = "".join(page.text)
    assert f"subs/{HOSTILE}/mlp_backprop.py" in text and f"wrong: {HOSTILE}" in text
    assert f"</pre></details><script>{HOSTILE}" in text and f"</td>{HOSTILE}" in text
    raw = html_report.render([Report(exercise="e", file="a\x1bb\x00.py", checks=[])])
    assert "\x1b" not in raw and "\x00" not in raw


@pytest.fixture
def submissions(tmp_path):
    for student, fixture in (("ann", "correct_reference.py"), ("bob", "wrong_missing_n.py")):
        (tmp_path / "subs" / student).mkdir(parents=True)
        shutil.copy(FIXTURES / fixture, tmp_path / "subs" / student / "mlp_backprop.py")
    hostile = tmp_path / "subs" / '<img src=x onerror="alert(1)">'
    hostile.mkdir()
    shutil.copy(FIXTURES / "broken_syntax.py", hostile / "mlp_backprop.py")
    return tmp_path / "subs"


def test_drill_grade_dir_html_writes_the_page(submissions, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["grade", str(submissions), "--html", str(out), "--jobs", "2"])
    assert result.exit_code == 1, result.output
    assert f"Wrote {out}" in result.output
    page = Page(out.read_text(encoding="utf-8"))
    assert_self_contained(page)
    rows = {Path(g["data-file"]).parent.name: g for g in page.all("tbody", "attempt")}
    assert sorted(rows) == sorted(['<img src=x onerror="alert(1)">', "ann", "bob"])
    assert rows["ann"]["data-verdict"] == "PASS" and rows["bob"]["data-score"] == "74"
    assert rows['<img src=x onerror="alert(1)">']["data-verdict"] == "syntax"
    assert "Score: 100/100" in "".join(page.text)  # ann's full report, folded


def test_one_file_gets_a_page_too_and_attempts_are_never_overwritten(tmp_path):
    attempt = tmp_path / "mlp_backprop.py"
    shutil.copy(FIXTURES / "correct_reference.py", attempt)
    out = tmp_path / "one.html"
    result = CliRunner().invoke(main, ["grade", str(attempt), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert len(Page(out.read_text(encoding="utf-8")).all("tbody", "attempt")) == 1
    for target in (attempt, tmp_path / "other.py", tmp_path / "nb.ipynb"):
        before = target.read_bytes() if target.exists() else None
        result = CliRunner().invoke(main, ["grade", str(attempt), "--html", str(target)])
        assert result.exit_code == 2 and "--html" in result.output
        assert (target.read_bytes() if target.exists() else None) == before


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no headless Chromium on this machine")
def test_chromium_renders_the_page_and_sorts_it(tmp_path):
    good = Report(exercise="mlp_backprop", file="ann.py", checks=[CheckResult("dz2", True, 12, 12, "right")])
    page = html_report.render([hostile_report(), good]) .replace(
        "</script>", 'document.querySelector(\'button[data-key="score"]\').click();</script>')
    out = tmp_path / "report.html"
    out.write_text(page, encoding="utf-8")
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    dom = Page(run.stdout)
    assert not dom.all("img")  # the hostile name stayed text in a real browser too
    assert [g["data-file"] for g in dom.all("tbody", "attempt")] == ["ann.py", hostile_report().file]  # sorted
