"""Partial attempts: an attempt's function rewritten so that a statement that raises leaves
what it assigns blank, and the statements after it still run.

Loaded by grader/run/worker.py the way it loads wire.py (run from the file, never imported as
part of the grader package, which the attempt's process must not import), with `describe`
(the worker's: an exception as plain data, located in the attempt) in its namespace.

- Blank stands for a link not written; any use of it raises BlankUsed.
- partial_version(fn, ...) is fn with every statement guarded (see _guarded): on an
  exception, its targets become Blanks (or the grader's stand-ins, `fill`), and why.
- CAUGHT lists what the guards caught, so the worker can tell a failure that recurs from
  one that does not.
"""
import ast
import builtins as _builtins_module
import re

try:
    describe  # noqa: B018 - given by the worker that loads this file (see above)
except NameError:  # imported on its own (tests, tools): exceptions described plainly
    def describe(exc, attempt_file):
        return {"type": type(exc).__name__, "message": str(exc), "where": None}


class Blank:
    """Stands for a link the attempt has not written; any use of it raises."""

    drill_blank = True

    __array_ufunc__ = None
    __array_function__ = None

    def __init__(self, name, error=None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "error", error)

    def _raise(self, *args, **kwargs):
        raise BlankUsed(self)

    def __getattr__(self, item):
        raise BlankUsed(self)

    for _op in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "pow", "mod"):
        locals()[f"__{_op}__"] = _raise
        locals()[f"__r{_op}__"] = _raise
        locals()[f"__i{_op}__"] = _raise
    __neg__ = __pos__ = __abs__ = __getitem__ = __setitem__ = __len__ = __iter__ = _raise
    __lt__ = __le__ = __gt__ = __ge__ = __float__ = __int__ = __array__ = _raise
    del _op


class BlankUsed(NotImplementedError):
    """A Blank was used; .blank is the one."""

    def __init__(self, blank):
        super().__init__(blank.name)
        self.blank = blank


CAUGHT = []  # (type, line) of what the guards of a partial run caught, in order


def forget_partial(fn):
    """Take the partial rewrite's helpers out of the attempt's globals again."""
    namespace = getattr(fn, "__globals__", None)
    if isinstance(namespace, dict):
        for name in ("__drill_blank__", "__drill_value__", "__drill_blank_for__", "__drill_names__",
                     "__drill_convert__"):
            namespace.pop(name, None)


def _convert(kind, value):
    """float(value) or int(value), but a Blank stays itself (its link is not written)."""
    return value if isinstance(value, Blank) else kind(value)


def _names_variable(exc, name):
    """Whether exc is a todo whose message starts with the variable name ('dS: later')."""
    if not isinstance(exc, NotImplementedError) or isinstance(exc, BlankUsed):
        return False
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__
        return False
    return re.match(rf"\s*{re.escape(name)}\b", text) is not None


def _blank_for(exc, scope, names, attempt_file):
    """Why a statement's targets are left blank: the Blank it used, or the error it raised."""
    if not isinstance(exc, BlankUsed):
        where = describe(exc, attempt_file)
        CAUGHT.append((where["type"], (where.get("where") or {}).get("line")))
    if isinstance(exc, BlankUsed):
        return {"kind": "depends", "on": exc.blank.name, "error": exc.blank.error}
    for n in names:
        if isinstance(scope.get(n), Blank):
            used = scope[n]
            return {"kind": "depends", "on": used.name, "error": used.error}
    kind = "todo" if isinstance(exc, NotImplementedError) else "raised"
    return {"kind": kind, **describe(exc, attempt_file)}


def _blanked(target):
    """What a failed assignment to target leaves blank: ("name", n) for a variable, or
    ("key", n, key) for `n["key"]`, an entry of a dict of gradients filled key by key."""
    if isinstance(target, ast.Name):
        return [("name", target.id)]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [b for elt in target.elts for b in _blanked(elt)]
    if isinstance(target, ast.Starred):
        return _blanked(target.value)
    if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
            and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
        return [("key", target.value.id, target.slice.value)]
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value  # an array changed in place: the whole array is unfinished
    return [("name", target.id)] if isinstance(target, ast.Name) else []


def _stored(stmt):
    """Everything a statement assigns, nested blocks included (not nested functions)."""
    found, todo = [], [stmt]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and node is not stmt:
            continue
        if isinstance(node, ast.Assign):
            for t in node.targets:
                found += _blanked(t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            found += _blanked(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found += _blanked(node.optional_vars)
        elif isinstance(node, ast.NamedExpr):
            found += _blanked(node.target)
        todo.extend(ast.iter_child_nodes(node))
    return list(dict.fromkeys(found))


_BLOCKS = ("body", "orelse", "finalbody")


def _split_return(stmt):
    """`return {"dz2": dz2, "dz1": todo()}` (or `return dict(dz2=..., ...)`) as one statement
    per entry and a return, so that a todo in one entry leaves only that entry blank."""
    value = getattr(stmt, "value", None) if isinstance(stmt, ast.Return) else None
    if isinstance(value, ast.Tuple):
        # `return float(loss), probs`: a conversion of a blank hands the blank on
        value.elts = [_converted(e) for e in value.elts]
        return [stmt]
    items = _returned_entries(value)
    if items is None:
        return [stmt]
    name = ast.Name("__drill_returned__", ast.Store())
    out = [ast.Assign([name], ast.Dict([], []))]
    for key, item in items:
        target = ast.Subscript(ast.Name("__drill_returned__", ast.Load()), ast.Constant(key), ast.Store())
        out.append(ast.copy_location(ast.Assign([target], item), item))
    out.append(ast.Return(ast.Name("__drill_returned__", ast.Load())))
    for node in (out[0], out[-1]):
        ast.copy_location(node, stmt)
    return out


def _converted(e):
    """An element of a returned tuple: `float(x)` or `int(x)` as `__drill_convert__(float, x)`."""
    if (isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in ("float", "int")
            and len(e.args) == 1 and not e.keywords):
        return ast.copy_location(ast.Call(ast.Name("__drill_convert__", ast.Load()), [e.func, e.args[0]], []), e)
    return e


def _returned_entries(value):
    """[(key, value node)] of a returned dict with string keys, written `{"k": v}` or
    `dict(k=v)`; None for any other returned value."""
    if isinstance(value, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str)
                                           for k in value.keys):
        return [(k.value, v) for k, v in zip(value.keys, value.values)]
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict"
            and not value.args and all(k.arg for k in value.keywords)):
        return [(k.arg, k.value) for k in value.keywords]
    return None


def _guarded(stmts, top, names=()):
    """stmts with each statement in a try whose handler leaves what it assigns blank.

    Statements inside blocks (if, for, with, try; not while) are guarded one by one too,
    and the block as a whole for what its header raises. A `raise` inside a block is left to
    reach the block's guard, so an unfinished block leaves everything it assigns blank, and
    the variable among names (the function's) that its NotImplementedError message starts
    with: `raise NotImplementedError("dS: later")` in a loop that fills a ready array dS."""
    out = []
    for stmt in [s for stmt in stmts for s in _split_return(stmt)]:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(stmt)
            continue
        if isinstance(stmt, ast.Raise) and not top:
            out.append(stmt)
            continue
        # what the user's statement reads and assigns, before its blocks get guards of their own
        loaded = sorted({n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
        stored = _stored(stmt)
        if not isinstance(stmt, ast.While):  # guarded inside, a while loop could spin for ever
            _guard_blocks(stmt, names)
        lines = []
        if isinstance(stmt, ast.Raise) or any(getattr(stmt, f, None) for f in _BLOCKS):  # may name its link
            lines += [_named_blank(n) for n in names]
        lines += [_stored_blank(b) for b in stored]
        handler = ast.parse(
            "try:\n    pass\n"
            "except Exception as __drill_exc__:\n"
            f"    __drill_why__ = __drill_blank_for__(__drill_exc__, locals(), {tuple(loaded)!r})\n"
            + "".join(lines) + "    pass\n"
        ).body[0]
        handler.body = [stmt]
        ast.copy_location(handler, stmt)
        out.append(handler)
    return out


def _guard_blocks(stmt, names):
    """Guard the statements of stmt's blocks and of its except handlers, in place."""
    for field in _BLOCKS:
        inner = getattr(stmt, field, None)
        if inner and isinstance(inner, list):
            setattr(stmt, field, _guarded(inner, top=False, names=names))
    for handler in getattr(stmt, "handlers", None) or []:
        handler.body = _guarded(handler.body, top=False, names=names)


def _named_blank(n):
    """A guard's lines that blank the variable n when the error's message names it."""
    return (f"    if __drill_names__(__drill_exc__, {n!r}) and "
            f"not isinstance(locals().get({n!r}), __drill_blank__):\n"
            f"        {n} = __drill_value__({n!r}, __drill_why__)\n")


def _stored_blank(b):
    """A guard's lines that blank what a statement assigns: b from _blanked, a variable or
    the entry of a dict (the whole variable when it is no dict yet)."""
    if b[0] == "name":
        n = b[1]
        return (f"    if not isinstance(locals().get({n!r}), __drill_blank__):\n"
                f"        {n} = __drill_value__({n!r}, __drill_why__)\n")
    _, n, key = b
    return (f"    if isinstance(locals().get({n!r}), dict):\n"
            f"        if not isinstance({n}.get({key!r}), __drill_blank__):\n"
            f"            {n}[{key!r}] = __drill_value__({key!r}, __drill_why__)\n"
            f"    elif not isinstance(locals().get({n!r}), __drill_blank__):\n"
            f"        {n} = __drill_value__({n!r}, __drill_why__)\n")


def partial_version(fn, attempt_file, fill=None):
    """fn rewritten so that a statement raising NotImplementedError leaves its targets blank.

    Every statement of fn's body is guarded, those inside blocks too (see _guarded). A
    decorated fn is rewritten without its decorators when they kept the original (as
    functools.wraps does), and a closure keeps its free variables' values. Returns None
    when fn cannot be rewritten (not defined in the attempt's file, its source not found).
    fill: stand-in values the grader sends for targets left blank in a first run (by name),
    so that the statements after them can be judged.
    """
    fn = _unwrapped(fn)
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename != attempt_file:
        return None
    try:
        free = [cell.cell_contents for cell in (fn.__closure__ or ())]
    except ValueError:  # a free variable not bound yet
        return None
    node = _definition(fn, code, attempt_file)
    if node is None:
        return None
    node.decorator_list = []
    node.body = _guarded(node.body, top=True, names=_variables(node, fn.__globals__))
    # a closure: inside a factory whose parameters are its free variables
    if code.co_freevars:
        factory = ast.parse(f"def __drill_factory__({', '.join(code.co_freevars)}):\n    pass\n").body[0]
        factory.body = [node, ast.Return(ast.Name(node.name, ast.Load()))]
        module = ast.Module(body=[factory], type_ignores=[])
    else:
        module = ast.Module(body=[node], type_ignores=[])
    ast.fix_missing_locations(module)
    namespace = fn.__globals__
    _lend_helpers(namespace, fill or {}, attempt_file)
    local = {}
    exec(compile(module, attempt_file, "exec"), namespace, local)
    rewritten = local["__drill_factory__"](*free) if code.co_freevars else local[node.name]
    if hasattr(code, "co_qualname"):  # Python 3.11: messages name it as the attempt did
        rewritten.__code__ = rewritten.__code__.replace(co_qualname=code.co_qualname)
    rewritten.__qualname__ = fn.__qualname__
    return rewritten


def _unwrapped(fn):
    """fn through (at most ten) decorators that kept the original function as __wrapped__."""
    for _ in range(10):
        inner = getattr(fn, "__wrapped__", None)
        if inner is None or not callable(inner):
            break
        fn = inner
    return fn


def _definition(fn, code, attempt_file):
    """The FunctionDef of fn (whose code is `code`) in a fresh parse of the attempt's file, or
    None when the file cannot be read or parsed, or fn is not found in it."""
    try:
        with open(attempt_file, encoding="utf-8") as f:
            tree = ast.parse(f.read(), attempt_file)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None

    def first_line(n):
        return n.decorator_list[0].lineno if n.decorator_list else n.lineno

    return next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                 and n.name == fn.__name__ and first_line(n) <= code.co_firstlineno <= n.body[0].lineno), None)


def _variables(node, namespace):
    """The function's variables, sorted: those it assigns, and those it reads that nothing
    else defines (`dz1 = da1 * mask` after `raise NotImplementedError("da1: later")`)."""
    names = {b[1] for stmt in node.body for b in _stored(stmt) if b[0] == "name"}
    names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
              and n.id not in namespace and not hasattr(_builtins_module, n.id)}
    return sorted(names)


def _lend_helpers(namespace, fill, attempt_file):
    """Put the helpers the guards call into the attempt's globals (forget_partial takes them out)."""
    namespace["__drill_blank__"] = Blank
    namespace["__drill_value__"] = lambda name, why: (fill[name].copy() if hasattr(fill.get(name), "copy")
                                                      else fill[name]) if name in fill else Blank(name, why)
    namespace["__drill_blank_for__"] = lambda exc, scope, names: _blank_for(exc, scope, names, attempt_file)
    namespace["__drill_names__"] = _names_variable
    namespace["__drill_convert__"] = _convert
