"""The packages we build: the sdist is the whole source tree, the wheel carries the data and
the licence, and both say what they are (PEP 639 licence expression, classifiers, authors).

Built here with the build backend itself (hatchling, in the test extra), without an
isolated environment: about two seconds. `.ci/run` also builds them with `python -m build`
and runs `twine check --strict` on them (see the README's development section).
"""
import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from grader import catalog

ROOT = Path(__file__).resolve().parent.parent
NAME, VERSION = "backprop_drill", "0.1.0"
BUILD = ("import sys, hatchling.build as backend; "
         "print(backend.build_sdist(sys.argv[1])); print(backend.build_wheel(sys.argv[1]))")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-c", BUILD, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    sdist, wheel = (out / name for name in done.stdout.split())
    with tarfile.open(sdist) as tar:
        top = f"{NAME}-{VERSION}/"
        members = {m.name.removeprefix(top): m for m in tar.getmembers() if m.isfile()}
        pkg_info = tar.extractfile(top + "PKG-INFO").read().decode()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode()
    return {"sdist": set(members), "wheel": names, "pkg_info": pkg_info, "metadata": metadata}


def source_files() -> set[str]:
    """Every file of this source tree that git would commit: the files git lists in a checkout;
    in an unpacked sdist (no .git), every file .gitignore leaves."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        return {f for f in listed if (ROOT / f).is_file()}  # not a file deleted but not yet committed
    import pathspec  # hatchling's own dependency

    ignored = pathspec.GitIgnoreSpec.from_lines((ROOT / ".gitignore").read_text(encoding="utf-8").splitlines())
    every = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()}
    return {f for f in every if not ignored.match_file(f)}


def test_the_sdist_holds_the_whole_source_tree(built):
    missing = source_files() - built["sdist"]
    assert not missing, f"the sdist leaves out {sorted(missing)}"
    # what the tests and the README's commands read outside the package: here by name, so that
    # a source tree that lost them fails too
    assert {"LICENSE", "README.md", "pyproject.toml", ".ci/run", "docs/hostile.md", "tests/conftest.py"} <= built["sdist"]


def test_the_wheel_carries_the_licence_and_every_exercise(built):
    assert f"{NAME}-{VERSION}.dist-info/licenses/LICENSE" in built["wheel"]
    for exercise in catalog.exercises().values():
        for path in (f"exercises/{exercise.id}.yaml", f"exercises/{exercise.solution}",
                     f"solutions/{exercise.solution}", f"bugs/{exercise.id}.yaml"):
            assert f"grader/_data/{path}" in built["wheel"], path
    assert not {n for n in built["wheel"] if n.startswith(("tests/", "solutions/", "docs/"))}


@pytest.mark.parametrize("which", ["pkg_info", "metadata"])
def test_the_metadata_says_what_the_package_is(built, which):
    meta = email.message_from_string(built[which])
    assert meta["Name"] == "backprop-drill" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    assert meta["Author"] and meta["Maintainer"]
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3" in classifiers and len(classifiers) >= 5
    assert not [c for c in classifiers if c.startswith("License ::")]  # the expression says it (PEP 639)
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# backprop-drill")


def test_the_licence_is_mit():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "backprop-drill contributors" in text
