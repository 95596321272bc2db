"""Mutation operators on Python source: put one small, named bug into working code.

Only the standard library `ast` is used (`drill grade` builds the bugs' behaviour at grade
time, so this must import fast). An edit is a span of the source text, found through the
node's position, replaced by new text: the mutant differs from its input only in the
mutated expression, and every other byte, comments and formatting included, is kept.

A mutation is selected by its operator, the function it lives in, the target variable and
an occurrence index. The statements searched are those in that function that assign the
target, in source order: plain, annotated and augmented assignments, including those that
write into it (`dz2[rows, y] -= 1.0` assigns dz2). The sites an operator finds in those
statements are counted in source order, and the occurrence picks one (the first by default).

Each operator is one small function in OPERATORS, its docstring a before/after example.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

from grader import parse_ast


class MutationError(ValueError):
    """A mutation cannot be made: unknown operator, no such function, or source that does not parse."""


class NoSiteError(MutationError):
    """The operator's pattern does not fit the statements it was pointed at."""


@dataclass(frozen=True)
class Edit:
    """Replace source[start:end] (character offsets) by text."""

    start: int
    end: int
    text: str


class Source:
    """A module's text with its syntax tree, mapping node positions to character offsets."""

    def __init__(self, text: str, origin: str = "<source>"):
        self.text = text
        self.origin = origin
        try:
            self.tree = parse_ast(text)
        except SyntaxError as exc:
            raise MutationError(f"{origin}: is not valid Python (line {exc.lineno}: {exc.msg})") from None
        except ValueError as exc:  # e.g. a NUL byte
            raise MutationError(f"{origin}: is not valid Python ({exc})") from None
        # ast counts lines at \n, \r\n and \r only (not at \f or \x1c, as str.splitlines does)
        self.lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.parents: dict[ast.AST, ast.AST] = {}  # filled for each function searched
        self._functions: dict[str, ast.AST] | None = None
        self._statements: dict[ast.AST, list[ast.stmt]] = {}
        self.cache: dict = {}  # what an operator works out once per source (swap-operand's names)

    def function(self, name: str) -> ast.AST | None:
        """The first function (or method) called name, in source order."""
        if self._functions is None:
            defs = [n for n in ast.walk(self.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            self._functions = {}
            for n in sorted(defs, key=_position):
                self._functions.setdefault(n.name, n)
        return self._functions.get(name)

    def statements(self, fn: ast.AST) -> list[ast.stmt]:
        """Every statement inside fn, in source order; the parents of its nodes are noted."""
        if fn not in self._statements:
            found = []
            for node in ast.walk(fn):
                if isinstance(node, ast.stmt):
                    found.append(node)
                for child in ast.iter_child_nodes(node):
                    self.parents[child] = node
            self._statements[fn] = sorted(found, key=_position)
        return self._statements[fn]

    def offset(self, lineno: int, col: int) -> int:
        """The character offset of a position; ast columns count UTF-8 bytes."""
        line = self.lines[lineno - 1] if lineno <= len(self.lines) else ""
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),
                self.offset(node.end_lineno, node.end_col_offset))

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def grouped(self, node: ast.AST, within: ast.AST) -> tuple[int, int]:
        """node's span widened over the grouping parentheses around it, staying inside within."""
        start, end = self.span(node)
        lo, hi = self.span(within)
        while True:
            before = self.text[lo:start].rstrip()
            after = self.text[end:hi]
            after_stripped = after.lstrip()
            if not (before.endswith("(") and after_stripped.startswith(")")):
                return start, end
            start = len(before) - 1 + lo
            end = end + (len(after) - len(after_stripped)) + 1

    def text_in(self, node: ast.AST, within: ast.AST, needed: int) -> str:
        """node's text with its own grouping parentheses, or parenthesised if it binds looser than needed."""
        start, end = self.grouped(node, within)
        text = self.text[start:end]
        return fit(node, text, needed) if start == self.span(node)[0] else text

    def lift(self, child: ast.AST, replaced: ast.AST) -> Edit:
        """An edit that puts child (with its own parentheses) where replaced stands."""
        return Edit(*self.span(replaced), self.text_in(child, replaced, context(self, replaced)))

    def unwrap(self, arg: ast.AST, call: ast.Call) -> Edit:
        """An edit that puts a call's argument where the call stands (the call's parentheses go)."""
        return Edit(*self.span(call), fit(arg, self.segment(arg), context(self, call)))

    def gap(self, left: ast.AST, right: ast.AST) -> tuple[int, int]:
        """The text between two sibling nodes: the operator token and its spacing."""
        return self.span(left)[1], self.span(right)[0]

    def swap_token(self, left: ast.AST, right: ast.AST, old: str, new: str) -> Edit:
        """Replace the operator token old between left and right by new."""
        start, end = self.gap(left, right)
        between = self.text[start:end]
        # the token itself: not part of a longer operator (`>` is not the start of `>=`)
        match = re.search(rf"(?<![<>=!*/+\-@%&|^]){re.escape(old)}(?![=<>*/])", between)
        if match is None:
            raise MutationError(f"{self.origin}: cannot find {old!r} between operands")
        return Edit(start + match.start(), start + match.end(), new)

    def delete_statement(self, stmt: ast.stmt) -> Edit:
        """Remove stmt: its whole lines when it stands alone on them, else `pass` in its place."""
        start, end = self.span(stmt)
        parent = self.parents.get(stmt)
        alone_in_block = any(getattr(parent, f, None) == [stmt] for f in ("body", "orelse", "finalbody"))
        line_start = self.starts[stmt.lineno - 1]
        line_end = self.starts[stmt.end_lineno]
        head = self.text[line_start:start]
        tail = self.text[end:line_end]
        if alone_in_block or head.strip() or not re.fullmatch(r"\s*(#[^\r\n]*)?\s*", tail):
            return Edit(start, end, "pass")
        return Edit(line_start, line_end, "")


# Binding strength, loosest first, as in the Python grammar.
_BINOP = {ast.BitOr: 5, ast.BitXor: 6, ast.BitAnd: 7, ast.LShift: 8, ast.RShift: 8, ast.Add: 9,
          ast.Sub: 9, ast.Mult: 10, ast.MatMult: 10, ast.Div: 10, ast.FloorDiv: 10, ast.Mod: 10,
          ast.Pow: 12}
ATOM = 14


def precedence(node: ast.AST) -> int:
    if isinstance(node, ast.BinOp):
        return _BINOP[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return 3 if isinstance(node.op, ast.Not) else 11
    if isinstance(node, ast.BoolOp):
        return 1 if isinstance(node.op, ast.Or) else 2
    if isinstance(node, ast.Compare):
        return 4
    if isinstance(node, ast.Await):
        return 13
    if isinstance(node, (ast.IfExp, ast.Lambda)):
        return 0
    if isinstance(node, (ast.NamedExpr, ast.Tuple, ast.Starred, ast.Yield, ast.YieldFrom)):
        return -1  # these need parentheses inside any expression
    return ATOM


def context(src: Source, node: ast.AST) -> int:
    """The least precedence an expression needs to stand where node stands without parentheses."""
    parent = src.parents.get(node)
    if isinstance(parent, ast.BinOp):
        strength = _BINOP[type(parent.op)]
        right = node is parent.right
        # left-associative operators need a tighter right operand; ** is the other way round
        return strength + (right != isinstance(parent.op, ast.Pow))
    if isinstance(parent, ast.UnaryOp):
        return precedence(parent)
    if isinstance(parent, (ast.Compare, ast.BoolOp)):
        return precedence(parent) + 1
    if isinstance(parent, (ast.Attribute, ast.Await)) or (
            isinstance(parent, ast.Subscript) and node is parent.value) or (
            isinstance(parent, ast.Call) and node is parent.func):
        return ATOM
    return 0


def fit(node: ast.AST, text: str, needed: int) -> str:
    """text (the source of node) parenthesised when it binds more loosely than needed."""
    return f"({text})" if precedence(node) < needed else text


Finder = Callable[[ast.AST, Source], "list[Edit]"]


@dataclass(frozen=True)
class Operator:
    """One kind of edit: name, what it looks for (for messages) and its finder."""

    name: str
    what: str
    find: Finder

    @property
    def example(self) -> str:
        return (self.find.__doc__ or "").strip().splitlines()[0]


OPERATORS: dict[str, Operator] = {}


def operator(name: str, what: str):
    def register(fn: Finder) -> Finder:
        OPERATORS[name] = Operator(name, what, fn)
        return fn
    return register


def _is_transpose(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "T"


def _is_method(node: ast.AST, names: tuple[str, ...]) -> bool:
    """A call of x.name(...) or np.name(...) for a name in names."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names


@operator("drop-division", "division")
def drop_division(node, src):
    """`(a - b) / N` -> `(a - b)`; the statement `x /= N` is deleted (`pass` if it is alone in its block)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return [src.lift(node.left, node)]
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div):
        return [src.delete_statement(node)]
    return []


@operator("drop-transpose", "transpose (.T)")
def drop_transpose(node, src):
    """`a1.T @ dz2` -> `a1 @ dz2`."""
    return [src.lift(node.value, node)] if _is_transpose(node) else []


def _transposed(src: Source, node: ast.AST, within: ast.AST, needed: int) -> str:
    """The text of node's transpose: `a.T` for a, a for `a.T`."""
    if _is_transpose(node):
        return src.text_in(node.value, node, needed)
    return f"{src.text_in(node, within, ATOM)}.T"


def _operands(src: Source, node: ast.BinOp) -> tuple[int, int, int, int]:
    """The spans of a binary operation's two operands, each with its grouping parentheses."""
    return (*src.grouped(node.left, node), *src.grouped(node.right, node))


@operator("misplace-transpose", "matrix product with a transpose (.T)")
def misplace_transpose(node, src):
    """`a1.T @ dz2` -> `dz2.T @ a1`: the transposed product, as if the .T went on the wrong operand."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)):
        return []
    if not (_is_transpose(node.left) or _is_transpose(node.right)):
        return []
    strength = _BINOP[ast.MatMult]
    left_start, left_end, right_start, right_end = _operands(src, node)
    new_left = _transposed(src, node.right, node, strength)
    new_right = _transposed(src, node.left, node, strength + 1)
    return [Edit(left_start, right_end, new_left + src.text[left_end:right_start] + new_right)]


@operator("swap-matmul", "matrix product (@)")
def swap_matmul(node, src):
    """`a @ b` -> `b @ a`."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)):
        return []
    strength = _BINOP[ast.MatMult]
    left_start, left_end, right_start, right_end = _operands(src, node)
    new_left = src.text_in(node.right, node, strength)
    new_right = src.text_in(node.left, node, strength + 1)
    return [Edit(left_start, right_end, new_left + src.text[left_end:right_start] + new_right)]


@operator("change-axis", "axis= argument")
def change_axis(node, src):
    """`dz2.sum(axis=0)` -> `dz2.sum(axis=1)` (and axis=1 -> axis=0; any other axis -> 0)."""
    if not (isinstance(node, ast.keyword) and node.arg == "axis"):
        return []
    try:
        number = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return []
    if type(number) is not int:
        return []
    return [Edit(*src.span(node.value), "1" if number == 0 else "0")]


def _compare_ops(node, src, swaps: dict[type, tuple[str, str]]) -> list[Edit]:
    if not isinstance(node, ast.Compare):
        return []
    edits = []
    operands = [node.left, *node.comparators]
    for i, op in enumerate(node.ops):
        if type(op) in swaps:
            old, new = swaps[type(op)]
            edits.append(src.swap_token(operands[i], operands[i + 1], old, new))
    return edits


@operator("gt-to-ge", "> comparison")
def gt_to_ge(node, src):
    """`z1 > 0` -> `z1 >= 0`."""
    return _compare_ops(node, src, {ast.Gt: (">", ">=")})


@operator("flip-comparison", "order comparison (<, >, <=, >=)")
def flip_comparison(node, src):
    """`z1 > 0` -> `z1 < 0` (and < to >, <= to >=, >= to <=)."""
    return _compare_ops(node, src, {ast.Gt: (">", "<"), ast.Lt: ("<", ">"),
                                    ast.GtE: (">=", "<="), ast.LtE: ("<=", ">=")})


@operator("drop-copy", "copy (.copy() or np.copy)")
def drop_copy(node, src):
    """`probs.copy()` -> `probs`; `np.copy(probs)` -> `probs`."""
    if not _is_method(node, ("copy",)) or node.keywords:
        return []
    if not node.args:
        return [src.lift(node.func.value, node)]
    if len(node.args) == 1 and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy"):
        return [src.unwrap(node.args[0], node)]
    return []


@operator("flip-sign", "+ or - (or -=, +=)")
def flip_sign(node, src):
    """`a - b` -> `a + b`, `a + b` -> `a - b`; `x -= 1.0` -> `x += 1.0`, `x += 1.0` -> `x -= 1.0`."""
    signs = {ast.Sub: ("-", "+"), ast.Add: ("+", "-")}
    if isinstance(node, ast.BinOp) and type(node.op) in signs:
        return [src.swap_token(node.left, node.right, *signs[type(node.op)])]
    if isinstance(node, ast.AugAssign) and type(node.op) in signs:
        old, new = signs[type(node.op)]
        return [src.swap_token(node.target, node.value, old + "=", new + "=")]
    return []


@operator("shift-index", "name used as an index")
def shift_index(node, src):
    """`probs[np.arange(N), y]` -> `probs[np.arange(N), y - 1]`: the column next to the right one.

    A negative index wraps round in numpy, so the mutant never raises: it silently uses the
    wrong column whenever there are at least two.
    """
    if not isinstance(node, ast.Subscript):
        return []
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return [Edit(*src.span(p), f"{src.segment(p)} - 1") for p in parts if isinstance(p, ast.Name)]


@operator("drop-term", "sum (+)")
def drop_term(node, src):
    """`x @ W + b` -> `x @ W`: the right-hand term is dropped."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [src.lift(node.left, node)]
    return []


def _rename_call(node, src, old: str, new: str) -> list[Edit]:
    if not _is_method(node, (old,)):
        return []
    _, end = src.span(node.func)
    return [Edit(end - len(old), end, new)]


@operator("drop-subtracted", "difference (-)")
def drop_subtracted(node, src):
    """`A * (dA - (dA * A).sum(axis=-1, keepdims=True))` -> `A * (dA)`: the subtracted term is dropped."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        return [src.lift(node.left, node)]
    return []


@operator("mean-to-sum", "mean (.mean() or np.mean)")
def mean_to_sum(node, src):
    """`losses.mean()` -> `losses.sum()`; `np.mean(x)` -> `np.sum(x)`."""
    return _rename_call(node, src, "mean", "sum")


@operator("sum-to-mean", "sum (.sum() or np.sum)")
def sum_to_mean(node, src):
    """`dz1.sum(axis=0)` -> `dz1.mean(axis=0)`; `np.sum(x)` -> `np.mean(x)`."""
    return _rename_call(node, src, "sum", "mean")


@operator("drop-max-shift", "subtraction of a max (z - z.max(...))")
def drop_max_shift(node, src):
    """`z2 - z2.max(axis=1, keepdims=True)` -> `z2`."""
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)
            and _is_method(node.right, ("max", "amax"))):
        return [src.lift(node.left, node)]
    return []


@operator("drop-factor", "product (*)")
def drop_factor(node, src):
    """`lr * grads["dW1"]` -> `grads["dW1"]`: the left-hand factor is dropped."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return [src.lift(node.right, node)]
    return []


@operator("drop-call", "function call with an argument")
def drop_call(node, src):
    """`np.maximum(z1, 0.0)` -> `z1`: the call is replaced by its first argument."""
    if isinstance(node, ast.Call) and node.args and not isinstance(node.args[0], ast.Starred):
        return [src.unwrap(node.args[0], node)]
    return []


@operator("divisor-minus-one", "division")
def divisor_minus_one(node, src):
    """`sq.sum(axis=0) / N` -> `sq.sum(axis=0) / (N - 1)`: one less in the divisor (an unbiased variance)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        start, end = src.grouped(node.right, node)
        return [Edit(start, end, f"({src.text[start:end]} - 1)")]
    return []


@operator("drop-axis", "axis= argument")
def drop_axis(node, src):
    """`dz2.sum(axis=0)` -> `dz2.sum()`: the reduction runs over every entry (a global max, a scalar sum)."""
    if not isinstance(node, ast.Call):
        return []
    edits = []
    for i, kw in enumerate(node.keywords):
        if kw.arg != "axis":
            continue
        start, end = src.offset(kw.lineno, kw.col_offset), src.span(kw.value)[1]
        rest = node.keywords[i + 1:]
        if rest:  # `axis=1, keepdims=True` -> `keepdims=True`
            end = src.offset(rest[0].lineno, rest[0].col_offset)
        else:  # `x, axis=1` -> `x`; `axis=1` alone -> nothing
            before = src.text[src.span(node.func)[1]:start]
            start -= len(before) - len(before.rstrip().rstrip(",").rstrip()) if (node.args or i) else 0
        edits.append(Edit(start, end, ""))
    return edits


def _is_mask(node: ast.AST) -> bool:
    """A comparison, possibly cast: `(z1 > 0)`, `(z1 > 0).astype(float)`."""
    if _is_method(node, ("astype",)):
        node = node.func.value
    return isinstance(node, ast.Compare)


@operator("drop-mask", "product with a comparison (a mask)")
def drop_mask(node, src):
    """`da1 * (z1 > 0)` -> `da1`: the mask is dropped, the gradient passes everywhere."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return []
    if _is_mask(node.right):
        return [src.lift(node.left, node)]
    if _is_mask(node.left):
        return [src.lift(node.right, node)]
    return []


_AUGMENTED = {ast.Mult: "*=", ast.Add: "+=", ast.Sub: "-=", ast.Div: "/="}


@operator("alias-inplace", "assignment of a name combined with another value")
def alias_inplace(node, src):
    """`dz1 = da1 * (z1 > 0)` -> `dz1 = da1; dz1 *= (z1 > 0)`: dz1 is da1, edited in place."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
        return []
    value = node.value
    if not (isinstance(value, ast.BinOp) and type(value.op) in _AUGMENTED and isinstance(value.left, ast.Name)):
        return []
    name = node.targets[0].id
    start, end = src.grouped(value.right, value)
    return [Edit(*src.span(value), f"{value.left.id}; {name} {_AUGMENTED[type(value.op)]} {src.text[start:end]}")]


def _chain_names(src: Source, fn: ast.AST, before: ast.AST) -> list[str]:
    """The function's parameters and the names it assigns before the statement `before`, in order."""
    key = ("chain names", fn)
    if key not in src.cache:
        stored = sorted((n for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)),
                        key=_position)
        src.cache[key] = ([a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs], stored)
    params, stored = src.cache[key]
    names = params + [n.id for n in stored if _position(n) < _position(before)]
    return list(dict.fromkeys(names))


def _enclosing(src: Source, node: ast.AST, kinds) -> ast.AST | None:
    while node is not None and not isinstance(node, kinds):
        node = src.parents.get(node)
    return node


@operator("swap-operand", "variable of the chain")
def swap_operand(node, src):
    """`a1.T @ dz2` -> `z1.T @ dz2`: a variable replaced by another of the chain (each other
    parameter or earlier variable of the function, in order, is one site)."""
    if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
        return []
    parent = src.parents.get(node)
    if isinstance(parent, ast.Call) and node is parent.func:
        return []
    stmt = _enclosing(src, node, ast.stmt)
    fn = _enclosing(src, stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
    if stmt is None or fn is None:
        return []
    names = _chain_names(src, fn, stmt)
    if node.id not in names:
        return []
    return [Edit(*src.span(node), other) for other in names if other != node.id]


@operator("mean-over-columns", "mean (.mean() or np.mean)")
def mean_over_columns(node, src):
    """`l.mean()` -> `l.mean() / z2.shape[1]`: a mean over all N*C entries of the function's
    first argument (N, C), not over its N rows."""
    if not _is_method(node, ("mean",)):
        return []
    fn = _enclosing(src, node, (ast.FunctionDef, ast.AsyncFunctionDef))
    if fn is None or not fn.args.args:
        return []
    text = f"{src.segment(node)} / {fn.args.args[0].arg}.shape[1]"
    return [Edit(*src.span(node), f"({text})" if context(src, node) > _BINOP[ast.Div] else text)]


def _rename_variable(old: str, new: str, example: str) -> Finder:
    """An operator that reads the variable new where old stands (only where old is used)."""
    def find(node, src):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id == old:
            return [Edit(*src.span(node), new)]
        return []
    find.__doc__ = example
    return find


# A variable of the chain read in the place of its neighbour: the swaps students make.
SWAPS = [  # (name, old, new, example)
    ("z1-for-a1", "a1", "z1", "`a1.T @ dz2` -> `z1.T @ dz2`: the pre-activation for the activation."),
    ("da1-for-dz1", "dz1", "da1", "`x.T @ dz1` -> `x.T @ da1`: the gradient before the ReLU's mask."),
    ("h-for-a1", "a1", "h", "`a1.T @ dz2` -> `h.T @ dz2`: batch norm's output before the ReLU."),
]
for _name, _old, _new, _example in SWAPS:
    operator(_name, f"use of {_old}")(_rename_variable(_old, _new, _example))


# --- selecting and applying -------------------------------------------------------------

def _root_names(target: ast.AST) -> set[str]:
    """The variables an assignment target writes: `x`, `x[i]`, `x.a` and `a, b` all count."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        return _root_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_root_names(t) for t in target.elts)) if target.elts else set()
    return set()


def _assigns(stmt: ast.AST, name: str) -> bool:
    if isinstance(stmt, ast.Assign):
        return any(name in _root_names(t) for t in stmt.targets)
    if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        return name in _root_names(stmt.target) and (
            not isinstance(stmt, ast.AnnAssign) or stmt.value is not None)
    return False


def _position(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset


def statements(src: Source, function: str, target: str) -> list[ast.stmt]:
    """The statements of function that assign target, in source order."""
    fn = src.function(function)
    if fn is None:
        raise NoSiteError(f"{src.origin}: there is no function {function}()")
    found = [n for n in src.statements(fn) if _assigns(n, target)]
    if not found:
        raise NoSiteError(f"{src.origin}: no statement in {function}() assigns {target}")
    return found


def sites(source: str | Source, operator: str, function: str, target: str) -> list[Edit]:
    """Every place where operator applies among the statements of function that assign target."""
    if operator not in OPERATORS:
        raise MutationError(f"no mutation operator {operator!r}; there is: {', '.join(OPERATORS)}")
    src = source if isinstance(source, Source) else Source(source)
    found: list[Edit] = []
    for stmt in statements(src, function, target):
        edits = [e for node in ast.walk(stmt) for e in OPERATORS[operator].find(node, src)]
        found.extend(sorted(edits, key=lambda e: (e.start, -e.end)))
    return found


def apply(source: str | Source, operator: str, function: str, target: str, occurrence: int = 0,
          origin: str = "<source>") -> str:
    """source with one mutation made; raises NoSiteError when the pattern does not fit."""
    src = source if isinstance(source, Source) else Source(source, origin)
    source, origin = src.text, src.origin
    found = sites(src, operator, function, target)
    what = OPERATORS[operator].what
    if not found:
        raise NoSiteError(f"{origin}: the pattern does not fit: no {what} among the statements "
                          f"that compute {target} in {function}()")
    if occurrence >= len(found):
        raise NoSiteError(f"{origin}: the pattern does not fit: occurrence {occurrence} asked for, "
                          f"but only {len(found)} {what} among the statements that compute "
                          f"{target} in {function}()")
    edit = found[occurrence]
    mutant = source[:edit.start] + edit.text + source[edit.end:]
    try:
        parse_ast(mutant)
    except SyntaxError as exc:  # a bug in an operator, never in the user's code
        raise MutationError(f"{origin}: {operator} made code that does not parse ({exc.msg})") from None
    return mutant
