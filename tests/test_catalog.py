"""grader.catalog: the shipped exercise loads, and every kind of bad exercise file is rejected by name."""
import copy
from pathlib import Path

import pytest
import yaml

from grader import catalog
from grader.catalog import paths
from grader.catalog import CatalogError

# The exercise as its users know it (the README's tables), written down here by hand.
LINKS = ["dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1"]
CHECKS = {"forward", "loss", *LINKS, "step", "finite-difference", "convergence", "purity", "stability"}


@pytest.fixture(scope="module")
def shipped() -> dict:
    return yaml.safe_load((paths.exercises_dir() / "mlp_backprop.yaml").read_text(encoding="utf-8"))


def test_shipped_exercise_loads(exercise, shipped):
    assert exercise.id == "mlp_backprop"
    assert exercise.functions == ("forward", "softmax_cross_entropy", "backward", "sgd_step")
    names = [b.name for b in exercise.blanks]
    assert names[names.index("dz2"):names.index("db1") + 1] == LINKS  # chain order
    assert {c.name for c in exercise.checks} == CHECKS
    assert exercise.max_points == 100
    assert all(exercise.blank(n).check in CHECKS for n in names)
    assert exercise.solution_path.is_file() and exercise.stub_path.is_file()
    assert list(catalog.exercises()) == sorted(catalog.exercises())
    # every field is the YAML's, read here without the loader
    assert (exercise.title, exercise.summary, exercise.description, exercise.solution, exercise.sizes) == (
        shipped["title"], shipped["summary"], shipped["description"], shipped["solution"], shipped["sizes"])
    assert [(c.name, c.points) for c in exercise.checks] == [(c["name"], c["points"]) for c in shipped["checks"]]
    for blank, raw in zip(exercise.blanks, shipped["blanks"], strict=True):
        assert (blank.name, blank.check, blank.shape, blank.what, list(blank.hints), blank.assigns) == (
            raw["name"], raw["check"], raw["shape"], raw["what"], raw["hints"], raw.get("assigns"))
    t = exercise.train
    assert (t.n, t.iters, t.lr, t.min_accuracy, t.seed) == tuple(shipped["train"][k] for k in
                                                              ("n", "iters", "lr", "min_accuracy", "seed"))


def test_unknown_exercise_lists_what_exists():
    with pytest.raises(KeyError, match="no exercise called 'nope'; there is: .*mlp_backprop"):
        catalog.exercise("nope")


def write(tmp_path, data, name="mlp_backprop.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_faithful_copy_loads(tmp_path, shipped, exercise):
    assert catalog.load_exercise_file(write(tmp_path, shipped)) == exercise


def drop(key):
    return lambda d: d.pop(key)


def put(key, value):
    return lambda d: d.__setitem__(key, value)


def in_blank(i, key, value):
    return lambda d: d["blanks"][i].__setitem__(key, value)


# (case, edit of the shipped exercise, field the error must name, words it must contain)
BAD = [
    ("missing-field", drop("title"), "title", "is missing"),
    ("missing-blank-field", lambda d: d["blanks"][2].pop("shape"), "blanks[2].shape", "is missing"),
    ("wrong-type", put("functions", "forward"), "functions", "must be list, not str"),
    ("wrong-type-nested", lambda d: d["train"].__setitem__("lr", "fast"), "train.lr", "must be float, not str"),
    ("wrong-type-bool", lambda d: d["train"].__setitem__("iters", True), "train.iters", "must be int, not bool"),
    ("bad-size", lambda d: d["sizes"].__setitem__("H", 0), "sizes.H", "positive whole number"),
    ("unknown-field", put("colour", "red"), "colour", "is not a known field"),
    ("unknown-blank-field", in_blank(0, "formula", "x @ W1"), "blanks[0].formula", "is not a known field"),
    ("points-not-100", lambda d: d["checks"][0].__setitem__("points", 9), "checks", "add up to 100, not 101"),
    ("duplicate-check", lambda d: d["checks"].append({"name": "forward", "points": 0}), "checks",
     "names a check twice"),
    ("blank-unknown-check", in_blank(4, "check", "gradient"), "blanks[4].check",
     "names no check of this exercise: 'gradient'"),
    ("one-hint", in_blank(1, "hints", ["ReLU keeps positive entries."]), "blanks[1].hints", "at least two"),
    ("id-not-file-name", put("id", "mlp"), "id", "must match the file name 'mlp_backprop'"),
    ("solution-not-shipped", put("solution", "nowhere.py"), "solution", "names no file in solutions/"),
]


@pytest.mark.parametrize("edit, field, words", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_exercise_file_is_rejected_naming_file_and_field(tmp_path, shipped, edit, field, words):
    data = copy.deepcopy(shipped)
    edit(data)
    path = write(tmp_path, data)
    with pytest.raises(CatalogError) as info:
        catalog.load_exercise_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert words in message


@pytest.mark.parametrize("text, words", [("id: [unclosed\n", "is not valid YAML"), ("- a\n- b\n", "must be a mapping"),
                                         (b"\xff\xfe", "is not UTF-8")], ids=["yaml", "list", "bytes"])
def test_unreadable_exercise_file_is_rejected_naming_the_file(tmp_path, text, words):
    path = tmp_path / "mlp_backprop.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CatalogError, match=words) as info:
        catalog.load_exercise_file(path)
    assert str(path) in str(info.value)


# --- which exercise an unnamed file attempts ------------------------------------------------

FIXTURE_ROOT = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("path", sorted(p for p in FIXTURE_ROOT.glob("*/*.py") if p.parent.name in catalog.exercises()),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_is_told_its_exercise_without_being_named(path, tmp_path):
    from grader.judge.source import guess_exercise

    copy = tmp_path / "attempt.py"  # a name that tells nothing
    copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert guess_exercise(copy).id == path.parent.name


def test_a_file_name_that_is_an_exercise_id_decides(tmp_path):
    from grader.judge.source import guess_exercise

    for ex in catalog.exercises():
        f = tmp_path / f"my_{ex}_try2.py"
        f.write_text("x = 1\n")
        assert guess_exercise(f).id == ex
    assert guess_exercise(tmp_path / "nothing_here.py").id == catalog.DEFAULT_EXERCISE  # no such file: the default
    assert catalog.guess("import os\n") is None and catalog.guess("def forward(:\n") is not None


def test_content_outweighs_helpers_and_file_names(tmp_path):
    from grader.catalog import stubgen
    from grader.judge.source import guess_exercise

    mlp = stubgen.strip_markers(catalog.exercise("mlp_backprop").solution_path.read_text(encoding="utf-8"))
    ce = stubgen.strip_markers(catalog.exercise("softmax_ce").solution_path.read_text(encoding="utf-8"))
    # an MLP attempt that writes softmax_ce's functions as helpers is still an MLP attempt
    helpers = mlp + "\n\ndef softmax(z):\n    shift = z - z.max(axis=1, keepdims=True)\n    return shift\n\n\n" \
                    "def grad_logits(probs, y):\n    dz = probs\n    return dz\n"
    assert catalog.guess(helpers).id == "mlp_backprop"
    # a name that mentions an exercise does not beat what the file defines
    f = tmp_path / "softmax_ce_warmup_before_mlp_backprop.py"
    f.write_text(ce)
    assert guess_exercise(f).id == "softmax_ce"
    # functions defined inside module-level blocks count
    blocked = "try:\n" + "".join("    " + line + "\n" for line in ce.splitlines()) + "except ImportError:\n    pass\n"
    assert catalog.guess(blocked).id == "softmax_ce"


def test_names_bound_by_unpacking_or_annotation_count_as_defined():
    source = ("class Net:\n    pass\n\n\nforward, softmax_cross_entropy = Net.forward, Net.loss\n"
              "backward: object = Net.backward\n(sgd_step) = Net.step\n")
    assert {"forward", "softmax_cross_entropy", "backward", "sgd_step", "Net"} <= catalog.defined_names(source)
    assert catalog.guess(source).id in ("mlp_backprop", "batchnorm_mlp")


# --- the fields come from the dataclasses, and every file says its format --------------------

def test_every_shipped_catalogue_file_says_its_format():
    for path in [*paths.exercises_dir().glob("*.yaml"), *paths.bugs_dir().glob("*.yaml")]:
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["format_version"] == catalog.FORMAT_VERSION, path


@pytest.mark.parametrize("version", [2, 0])
def test_an_unknown_format_version_is_rejected_naming_the_file(tmp_path, shipped, version):
    path = write(tmp_path, {**shipped, "format_version": version})
    with pytest.raises(CatalogError) as info:
        catalog.load_exercise_file(path)
    assert str(info.value).startswith(f"{path}: field 'format_version' is {version}, a format this drill cannot read")
    bugs = tmp_path / "bugs.yaml"
    bugs.write_text(yaml.safe_dump({"format_version": version, "bugs": []}), encoding="utf-8")
    with pytest.raises(CatalogError, match=f"^{bugs}: field 'format_version' is {version}"):
        catalog.load_bugs_file(bugs)


def test_a_file_without_a_format_version_is_read_as_format_1(tmp_path, shipped, exercise):
    assert catalog.load_exercise_file(write(tmp_path, {k: v for k, v in shipped.items() if k != "format_version"})) \
        == exercise


def test_known_keys_and_defaults_are_the_dataclasses_own():
    assert catalog.keys(catalog.Blank) == {"name", "check", "shape", "what", "hints", "assigns"}
    assert catalog.keys(catalog.Bug) == {"id", "exercise", "link", "title", "explanation", "symptom", "hint",
                                         "caught_by", "severity", "mutation"}  # not source: the loader's
    f = catalog.Fields({"n": 4, "iters": 10, "lr": 1, "min_accuracy": 0.9}, "t.yaml", "train")
    assert catalog.read(catalog.TrainSpec, f) == catalog.TrainSpec(4, 10, 1.0, 0.9, seed=0)
