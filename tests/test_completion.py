"""Shell completion: exercise names, link names and bug ids, through Click's own protocol."""
import pytest
from click.testing import CliRunner

from grader import catalog
from grader.cli import main


def complete(line: str) -> list[str]:
    """What `drill` offers for the last word of line (bash's protocol: `type,value` per line)."""
    words = line.split(" ")
    result = CliRunner().invoke(main, [], prog_name="drill", env={
        "_DRILL_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    assert result.exit_code == 0, result.output
    return [item.split(",", 1)[1] for item in result.output.split()]


@pytest.mark.parametrize("line, offered", [
    ("drill start so", ["softmax_ce"]),
    ("drill grade --exercise batch", ["batchnorm_mlp"]),
    ("drill prairielearn-question att", ["attention_head"]),
    ("drill gradescope-bundle mlp", ["mlp_backprop"]),
    ("drill next so", ["softmax_ce"]),
    ("drill ne", ["next"]),
    ("drill start --inter", ["--interview"]),
    ("drill stats --pl", ["--plot"]),
    ("drill explain missing-", ["missing-relu", "missing-bias", "missing-n"]),
])
def test_names_complete(line, offered):
    assert sorted(complete(line)) == sorted(offered)


def test_links_complete_for_the_exercise_named_before_them():
    links = [b.name for b in catalog.exercise("mlp_backprop").blanks]
    got = complete("drill start mlp_backprop --links dz2,d")
    assert got == [f"dz2,{n}" for n in links if n.startswith("d") and n != "dz2"]
    assert complete("drill start softmax_ce --links ") == [b.name for b in catalog.exercise("softmax_ce").blanks]
    assert set(complete("drill hint dW")) >= {"dW1", "dW2"}


def test_bug_ids_complete_for_the_exercise_named_before_them():
    assert set(complete("drill inject-bug softmax_ce --bug ")) == set(catalog.bugs("softmax_ce"))
    assert "missing-n" in complete("drill inject-bug --bug mis")
