"""Makes the stub from the reference solution: one source of truth for both.

The solution marks each blank either on one line, `z1 = x @ W1 + b1  # drill: z1`, or as a
region between `# drill-begin: loss` and `# drill-end`. The stub is the solution with every
marked blank replaced by a comment saying what it computes and a call that raises
NotImplementedError naming the link and its shape; `keep` leaves chosen blanks filled in.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from grader.catalog import CatalogError, Exercise

_LINE = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s*#\s*drill:\s*(?P<name>[\w-]+)\s*$")
_BEGIN = re.compile(r"^(?P<indent>\s*)#\s*drill-begin:\s*(?P<name>[\w-]+)\s*$")
_END = re.compile(r"^\s*#\s*drill-end\s*$")
_ASSIGN = re.compile(r"^(?P<target>[A-Za-z_][\w ,]*?)\s*=(?!=)")
_DOCSTRING = re.compile(r'^"""(.*?)"""\n', re.S)

TODO_HELPER = '''

def todo(link, shape):
    """A blank for you to fill in: replace the call to todo() with your own code."""
    raise NotImplementedError(f"{link} is not written yet: it should be {shape}")
'''


@dataclass(frozen=True)
class Marked:
    """One marked blank in the solution: its name, its lines [start, end) and its code."""

    name: str
    start: int
    end: int
    indent: str
    code: list[str]


def find_blanks(source: str, origin: str = "solution") -> list[Marked]:
    """Every marked blank of a solution's source, in file order."""
    lines = source.splitlines(keepends=True)
    found: list[Marked] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = _BEGIN.match(line)
        single = _LINE.match(line)
        if begin:
            j = i + 1
            while j < len(lines) and not _END.match(lines[j]):
                if _BEGIN.match(lines[j]):
                    raise CatalogError(f"{origin}:{j + 1}: drill-begin inside the blank {begin['name']}")
                j += 1
            if j == len(lines):
                raise CatalogError(f"{origin}:{i + 1}: drill-begin: {begin['name']} has no drill-end")
            found.append(Marked(begin["name"], i, j + 1, begin["indent"], lines[i + 1:j]))
            i = j + 1
            continue
        if single:
            code = single["indent"] + single["code"] + "\n"
            found.append(Marked(single["name"], i, i + 1, single["indent"], [code]))
        elif _END.match(line):
            raise CatalogError(f"{origin}:{i + 1}: drill-end without drill-begin")
        i += 1
    seen: dict[str, int] = {}
    for m in found:
        if m.name in seen:
            raise CatalogError(f"{origin}:{m.start + 1}: the blank {m.name} is marked twice "
                               f"(first at line {seen[m.name] + 1})")
        seen[m.name] = m.start
    return found


def _blank_lines(exercise: Exercise, marked: Marked) -> list[str]:
    try:
        blank = exercise.blank(marked.name)
    except KeyError:
        raise CatalogError(f"{exercise.source}: the solution marks {marked.name!r}, "
                           "which is not in the exercise's blanks") from None
    code = marked.code[-1].strip() if len(marked.code) == 1 else ""
    if blank.assigns:
        target = blank.assigns
    elif (m := _ASSIGN.match(code)):
        target = m["target"].strip()
    else:
        raise CatalogError(f"{exercise.source}: blank {blank.name!r} needs an 'assigns' field")
    return [
        f"{marked.indent}# {blank.name}: {blank.what}; {blank.shape}\n",
        f'{marked.indent}{target} = todo("{blank.name}", "{blank.shape}")\n',
    ]


def generate(exercise: Exercise, solution_source: str, keep: frozenset[str] = frozenset()) -> str:
    """The stub for exercise: every blank not in keep replaced by a todo() call."""
    marked = find_blanks(solution_source, str(exercise.solution_path))
    declared = {b.name for b in exercise.blanks}
    missing = declared - {m.name for m in marked}
    if missing:
        raise CatalogError(f"{exercise.solution_path}: no marker for the blanks {sorted(missing)}")
    lines = solution_source.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    for m in marked:
        out.extend(lines[cursor:m.start])
        out.extend(m.code if m.name in keep else _blank_lines(exercise, m))
        cursor = m.end
    out.extend(lines[cursor:])
    text = "".join(out)
    return _add_header(exercise, text, all_kept=declared <= keep)


def _add_header(exercise: Exercise, text: str, all_kept: bool) -> str:
    doc = _DOCSTRING.match(text)
    if not doc:
        raise CatalogError(f"{exercise.solution_path}: must start with a module docstring")
    intro = (f'"""{exercise.title}: fill in every todo().\n\n'
             f"{exercise.description.rstrip()}\n\n"
             f"Grade it with `drill grade`; run it with `python {exercise.solution}`.\n"
             '"""\n')
    text = intro + text[doc.end():]
    if all_kept:
        return text
    imports_end = _end_of_imports(text)
    return text[:imports_end] + TODO_HELPER + text[imports_end:]


def _end_of_imports(text: str) -> int:
    """Offset just after the last top-level import line."""
    end = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line)
        if line.startswith(("import ", "from ")):
            end = offset
    return end


def stub_for(exercise: Exercise, keep: frozenset[str] = frozenset()) -> str:
    """The stub of exercise made from its shipped solution."""
    return generate(exercise, exercise.solution_path.read_text(encoding="utf-8"), keep)


def strip_markers(solution_source: str) -> str:
    """The solution as a user should see it: code as is, without the drill markers."""
    out = []
    for line in solution_source.splitlines(keepends=True):
        if _BEGIN.match(line) or _END.match(line):
            continue
        single = _LINE.match(line)
        out.append(single["indent"] + single["code"] + "\n" if single else line)
    return "".join(out)


def main() -> None:
    """Regenerate every committed stub from its solution: `python -m grader.catalog.stubgen`."""
    from grader.catalog import exercises

    for ex in exercises().values():
        ex.stub_path.write_text(stub_for(ex), encoding="utf-8")
        print(f"wrote {ex.stub_path}")


if __name__ == "__main__":
    main()
