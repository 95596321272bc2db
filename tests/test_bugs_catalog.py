"""The bug catalogue: the shipped file loads, and a bad file is rejected naming the field."""
import pytest
import yaml

from grader import catalog

# The classic bugs, by the ids that users and teachers' scripts type (`drill inject-bug --bug ID`).
CLASSIC_IDS = {"missing-n", "onehot-off-by-one", "bad-transpose", "inplace-probs", "relu-ge", "unstable-softmax"}


def test_the_shipped_catalogue_loads_with_the_classic_ids():
    table = catalog.bugs("mlp_backprop")
    assert CLASSIC_IDS <= set(table)
    assert len(table) >= 14
    assert table.items() <= catalog.bugs().items()  # the whole catalogue holds every exercise's bugs
    assert table["relu-ge"].severity == "note"
    assert all(b.severity == "error" for b in table.values() if b.id != "relu-ge")


def test_the_catalogue_covers_the_whole_chain():
    exercise = catalog.exercise("mlp_backprop")
    links = {b.link for b in catalog.bugs("mlp_backprop").values()}
    assert {b.name for b in exercise.blanks} - links <= {"z2"}  # forward is covered by z1 and a1
    assert {"forward", "loss", "step", "purity", "stability"} <= {b.caught_by for b in catalog.bugs().values()}


def test_bug_lookup_names_what_exists():
    assert catalog.bug("missing-n").link == "dz2"
    with pytest.raises(KeyError, match=r"no bug called 'nope' \(`drill bugs` lists them all\)"):
        catalog.bug("nope")
    with pytest.raises(KeyError, match="no bug called 'misssing-n'; did you mean missing-n"):
        catalog.bug("misssing-n")


def test_an_unknown_name_gets_its_close_matches_and_a_short_list_in_full():
    assert catalog.no_such("exercise", "softmax", ["mlp_backprop", "softmax_ce"]) == \
        "no exercise called 'softmax'; did you mean softmax_ce? there is: mlp_backprop, softmax_ce"
    assert catalog.no_such("exercise", "xyz", ["a", "b"]) == "no exercise called 'xyz'; there is: a, b"
    many = [f"bug-{i}" for i in range(30)]
    assert catalog.no_such("bug", "zzz", many, "drill bugs") == "no bug called 'zzz' (`drill bugs` lists them all)"
    assert catalog.no_such("bug", "bug-1x", many, "drill bugs", where=" in e").startswith(
        "no bug called 'bug-1x' in e; did you mean bug-1")


GOOD = {
    "id": "some-bug", "exercise": "mlp_backprop", "link": "dz2", "title": "t", "explanation": "e",
    "symptom": "s", "hint": "h", "caught_by": "dz2", "severity": "error",
    "mutation": {"operator": "drop-division", "function": "backward", "target": "dz2"},
}


def write(tmp_path, *entries, top=None):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(top if top is not None else {"bugs": list(entries)}), encoding="utf-8")
    return path


def with_(**changes):
    entry = {**GOOD, **changes}
    return {k: v for k, v in entry.items() if v is not None}


def test_a_good_file_loads(tmp_path):
    (bug,) = catalog.load_bugs_file(write(tmp_path, GOOD))
    assert bug.mutation == catalog.Mutation("drop-division", "backward", "dz2", 0)
    assert bug.source == tmp_path / "bad.yaml"


@pytest.mark.parametrize("entry, field, problem", [
    (with_(colour="red"), "bugs[0].colour", "is not a known field"),
    (with_(title=None), "bugs[0].title", "is missing"),
    (with_(hint=""), "bugs[0].hint", "must not be empty"),
    (with_(severity="warning"), "bugs[0].severity", "must be one of error, note"),
    (with_(exercise="cnn"), "bugs[0].exercise", "names no exercise: 'cnn'"),
    (with_(link="dz3"), "bugs[0].link", "names no blank of mlp_backprop: 'dz3'"),
    (with_(caught_by="vibes"), "bugs[0].caught_by", "names no check of mlp_backprop: 'vibes'"),
    (with_(id="Missing N"), "bugs[0].id", "must be lower-case words"),
    (with_(mutation={**GOOD["mutation"], "operator": "explode"}), "bugs[0].mutation.operator",
     "names no mutation operator: 'explode'"),
    (with_(mutation={**GOOD["mutation"], "function": "helper"}), "bugs[0].mutation.function",
     "names no function of mlp_backprop"),
    (with_(mutation={**GOOD["mutation"], "occurrence": -1}), "bugs[0].mutation.occurrence",
     "must not be negative"),
    (with_(mutation={**GOOD["mutation"], "occurrence": "first"}), "bugs[0].mutation.occurrence",
     "must be int"),
    (with_(mutation={**GOOD["mutation"], "where": "here"}), "bugs[0].mutation.where",
     "is not a known field"),
    (with_(mutation="drop-division"), "bugs[0].mutation", "must be dict"),
])
def test_a_bad_entry_is_rejected_naming_file_and_field(tmp_path, entry, field, problem):
    path = write(tmp_path, entry)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_bugs_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: field '{field}' {problem}"), message


def test_a_duplicate_id_is_rejected(tmp_path):
    with pytest.raises(catalog.CatalogError, match=r"field 'bugs\[1\].id' repeats the id 'some-bug'"):
        catalog.load_bugs_file(write(tmp_path, GOOD, GOOD))


@pytest.mark.parametrize("top, words", [([GOOD], "the file must be a mapping of fields, not list"),
                                        ({"bugs": [GOOD], "extra": 1}, "field 'extra'"),
                                        ({"bugs": "none"}, "field 'bugs'")])
def test_a_bad_file_shape_is_rejected(tmp_path, top, words):
    path = write(tmp_path, top=top)
    with pytest.raises(catalog.CatalogError, match=words):
        catalog.load_bugs_file(path)


def test_an_id_in_two_files_is_rejected(tmp_path, monkeypatch):
    folder = tmp_path / "bugs"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"bugs": [GOOD]}), encoding="utf-8")
    monkeypatch.setattr(catalog.paths, "bugs_dir", lambda: folder)
    catalog._all_bugs.cache_clear()
    catalog.bugs.cache_clear()
    try:
        with pytest.raises(catalog.CatalogError, match=r"b\.yaml: field 'id' repeats 'some-bug'"):
            catalog.bugs()
    finally:
        catalog._all_bugs.cache_clear()
        catalog.bugs.cache_clear()


# The bugs real students make (issue 15): each catalogue's size, and the kinds it must hold.
MIN_SIZES = {"mlp_backprop": 25, "softmax_ce": 12, "batchnorm_mlp": 12, "attention_head": 12}
REAL_BUGS = {
    "mlp_backprop": ["dw2-missing-transpose", "db2-no-axis", "db2-mean", "dw2-from-z1", "relu-mask-missing",
                     "dw1-from-da1", "loss-mean-over-classes", "inplace-relu-mask", "softmax-global-max"],
    "softmax_ce": ["ce-global-max", "ce-loss-mean-over-classes"],
    "batchnorm_mlp": ["bn-softmax-global-max", "bn-relu-mask-missing"],
    "attention_head": ["attn-ds-missing-subtraction", "attn-dx-missing-key-path", "attn-softmax-global-max"],
}


@pytest.mark.parametrize("exercise", list(MIN_SIZES))
def test_each_catalogue_holds_the_bugs_real_students_make(exercise):
    table = catalog.bugs(exercise)
    assert len(table) >= MIN_SIZES[exercise]
    assert set(REAL_BUGS[exercise]) <= set(table)
