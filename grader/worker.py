"""Runs inside the attempt's own process: loads the attempt, runs the grader's tasks, writes raw data.

This file is started as a script (`python -I worker.py`), never imported by the grader, and
needs only the standard library and numpy. It reads a JSON plan on stdin and writes one JSON
line per result to the private channel whose fd is in DRILL_RESULT_FD. It judges nothing:
every comparison happens in the grader's own process, from the plain data written here.
"""
import io
import json
import os
import re
import sys
import time
import traceback

import numpy as np

# The wire format is shared with the grader. Run as a script under `python -I`, nothing of
# the grader's package is on the import path: wire.py is loaded from beside this file, and
# the path is restored before the attempt runs.
if __package__:
    from .wire import decode, encode
else:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from wire import decode, encode
    finally:
        del sys.path[0]
        sys.modules.pop("wire", None)

# Bound before the attempt runs, so that patching numpy or json cannot change what we send.
_dumps = json.dumps
_np_asarray = np.asarray
_np_ndarray = np.ndarray
_write = os.write
_perf = time.perf_counter
_isfinite = np.isfinite


class Channel:
    def __init__(self, fd):
        self.fd = fd

    def send(self, obj):
        data = (_dumps(obj, allow_nan=True) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = _write(self.fd, view)
            view = view[written:]


# ---------------------------------------------------------------- errors, located in the attempt

def describe(exc, attempt_file):
    """The exception's type and message, and the innermost line of the attempt it passed through."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == attempt_file:
            where = {"line": lineno, "function": frame.f_code.co_name}
    try:
        message = str(exc)
    except BaseException:  # a hostile __str__
        message = "<unprintable>"
    return {"type": type(exc).__name__[:100], "message": message[:500], "where": where}


# ---------------------------------------------------------------- partial attempts

class Blank:
    """Stands for a link the attempt has not written; any use of it raises."""

    drill_blank = True

    __array_ufunc__ = None
    __array_function__ = None

    def __init__(self, name, error=None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "error", error)

    def _raise(self, *args, **kwargs):
        raise BlankUsed(self.name)

    def __getattr__(self, item):
        raise BlankUsed(self.name)

    for _op in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "pow", "mod"):
        locals()[f"__{_op}__"] = _raise
        locals()[f"__r{_op}__"] = _raise
        locals()[f"__i{_op}__"] = _raise
    __neg__ = __pos__ = __abs__ = __getitem__ = __setitem__ = __len__ = __iter__ = _raise
    __lt__ = __le__ = __gt__ = __ge__ = __float__ = __int__ = __array__ = _raise
    del _op


class BlankUsed(NotImplementedError):
    pass


def _blank_for(exc, scope, names, attempt_file):
    """Why a statement's targets are left blank: the Blank it used, or the error it raised."""
    for n in names:
        if isinstance(scope.get(n), Blank):
            used = scope[n]
            return {"kind": "depends", "on": used.name, "error": used.error}
    kind = "todo" if isinstance(exc, NotImplementedError) else "raised"
    return {"kind": kind, **describe(exc, attempt_file)}


def _target_names(target):
    """The variables an assignment target binds or changes: `a, b` -> a, b; `d[i]` -> d."""
    import ast

    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
    return [target.id] if isinstance(target, ast.Name) else []


def partial_version(fn, attempt_file):
    """fn rewritten so that a statement raising NotImplementedError leaves its targets blank.

    Only the top-level statements of fn's body are wrapped; returns None when fn cannot be
    rewritten (defined elsewhere, decorated, a closure).
    """
    import ast

    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename != attempt_file or fn.__closure__:
        return None
    try:
        with open(attempt_file, encoding="utf-8") as f:
            tree = ast.parse(f.read(), attempt_file)
    except (OSError, SyntaxError, ValueError):
        return None
    node = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                 and n.name == fn.__name__ and n.lineno <= code.co_firstlineno <= n.body[0].lineno), None)
    if node is None or node.decorator_list:
        return None
    body = []
    for stmt in node.body:
        targets = []
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                targets += _target_names(t)
        loaded = sorted({n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
        handler = ast.parse(
            "try:\n    pass\n"
            "except Exception as __drill_exc__:\n"
            f"    __drill_why__ = __drill_blank_for__(__drill_exc__, locals(), {tuple(loaded)!r})\n"
            + "".join(f"    {t} = __drill_blank__({t!r}, __drill_why__)\n" for t in targets)
            + ("    pass\n" if not targets else "")
        ).body[0]
        handler.body = [stmt]
        ast.copy_location(handler, stmt)
        ast.fix_missing_locations(handler)
        body.append(handler)
    node.body = body
    module = ast.Module(body=[node], type_ignores=[])
    ast.fix_missing_locations(module)
    namespace = fn.__globals__
    namespace["__drill_blank__"] = Blank
    namespace["__drill_blank_for__"] = lambda exc, scope, names: _blank_for(exc, scope, names, attempt_file)
    local = {}
    exec(compile(module, attempt_file, "exec"), namespace, local)
    return local[node.name]


# ---------------------------------------------------------------- programs: `a, b = fn(x, y)`

_STEP = re.compile(r"^\s*(?P<out>[\w\s,]+?)\s*=\s*(?P<fn>\w+)\((?P<args>[\w\s,]*)\)\s*$")


def parse_step(text):
    m = _STEP.match(text)
    if not m:
        raise ValueError(f"bad program step {text!r}")
    outs = [o.strip() for o in m["out"].split(",") if o.strip()]
    args = [a.strip() for a in m["args"].split(",") if a.strip()]
    return m["fn"], args, outs


def run_steps(steps, env, functions):
    for fn, args, outs in steps:
        result = functions[fn](*[env[a] for a in args])
        if len(outs) == 1:
            env[outs[0]] = result
        else:
            if not isinstance(result, (tuple, list)) or len(result) != len(outs):
                raise TypeError(f"{fn} must return {len(outs)} values ({', '.join(outs)}), "
                                f"not {type(result).__name__}")
            env.update(zip(outs, result))
    return env


def scalar(value):
    arr = _np_asarray(value, dtype=float)
    if arr.size != 1:
        raise TypeError(f"the loss must be one number, not an array of shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def fresh(value):
    """A deep copy of plain data (arrays, dicts, lists) so every call gets untouched inputs."""
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fresh(v) for v in value)
    if isinstance(value, _np_ndarray):
        return value.copy()
    return value


# ---------------------------------------------------------------- tasks

RAW = {}  # task id -> what the attempt returned, for later tasks that build on it


def call_args(task):
    """The task's arguments; with cache_from, one of them is the attempt's own earlier output
    (its extra keys kept) with the grader's values laid over it."""
    args = [decode(a) for a in task["args"]]
    spec = task.get("cache_from")
    if spec:
        earlier = RAW.get(spec["task"])
        try:
            own = earlier[spec["index"]]
        except Exception:  # noqa: BLE001 - no usable earlier output: the grader's value alone
            own = None
        if isinstance(own, dict):
            merged = fresh(dict(own))
            merged.update(args[spec["arg"]])
            args[spec["arg"]] = merged
    return args


def task_call(task, functions, attempt_file):
    fn = functions[task["fn"]]
    args = call_args(task)
    out = {"id": task["id"]}
    start = _perf()
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the attempt's own failure is data
        out["error"] = describe(exc, attempt_file)
        rewritten = partial_version(fn, attempt_file) if task.get("partial") else None
        if rewritten is None:
            out["seconds"] = _perf() - start
            return out
        args = call_args(task)
        try:
            result = rewritten(*args)
            out["partial"] = True
        except BaseException as exc2:  # noqa: BLE001 - the attempt's own failure is data
            out["error"] = describe(exc2, attempt_file)
            out["seconds"] = _perf() - start
            return out
    out["seconds"] = _perf() - start
    RAW[task["id"]] = result
    out["result"] = encode(result)
    if task.get("keep_args"):
        out["args_after"] = [encode(a) for a in args]
    return out


def task_fd(task, functions, attempt_file):
    env = {k: decode(v) for k, v in task["env"].items()}
    loss_steps = [parse_step(s) for s in task["loss"]]
    grad_steps = [parse_step(s) for s in task["grads"]]
    pname, lname, gname = task["params"], task["result"], task["grads_name"]
    eps = task["eps"]
    out = {"id": task["id"]}
    try:
        analytic = run_steps(grad_steps, fresh(env), functions)[gname]
        out["analytic"] = encode(analytic)
        numeric = {}
        for key, value in env[pname].items():
            grad = np.zeros_like(value, dtype=float)
            for index in np.ndindex(value.shape):
                losses = []
                for sign in (1.0, -1.0):
                    trial = fresh(env)
                    trial[pname][key][index] += sign * eps
                    losses.append(scalar(run_steps(loss_steps, trial, functions)[lname]))
                grad[index] = (losses[0] - losses[1]) / (2 * eps)
            numeric[key] = grad
        out["numeric"] = encode(numeric)
    except BaseException as exc:  # noqa: BLE001
        out["error"] = describe(exc, attempt_file)
    return out


def task_train(task, functions, attempt_file):
    env = {k: decode(v) for k, v in task["env"].items()}
    steps = [parse_step(s) for s in task["steps"]]
    final = [parse_step(s) for s in task["final"]]
    lname, iters = task["record"], task["iters"]
    losses = np.full(iters, np.nan)
    out = {"id": task["id"]}
    start = _perf()
    i = 0
    try:
        for i in range(iters):
            run_steps(steps, env, functions)
            losses[i] = scalar(env[lname])
            if not _isfinite(losses[i]):
                out["stopped"] = i
                break
        out["iterations"] = i + 1
        run_steps(final, env, functions)
        out["outputs"] = encode({name: env.get(name) for name in task["outputs"]})
    except BaseException as exc:  # noqa: BLE001
        out["error"] = describe(exc, attempt_file)
        out["iterations"] = i
    out["losses"] = encode(losses)
    out["seconds"] = _perf() - start
    return out


TASKS = {"call": task_call, "fd": task_fd, "train": task_train}


# ---------------------------------------------------------------- guard against reading the reference

def install_guard(channel, forbidden_dirs, forbidden_modules):
    forbidden_dirs = tuple(os.path.realpath(d) + os.sep for d in forbidden_dirs)
    reported = set()

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            try:
                path = os.path.realpath(os.fsdecode(args[0]))
            except Exception:  # noqa: BLE001
                return
            if path.startswith(forbidden_dirs):
                if path not in reported:
                    reported.add(path)
                    channel.send({"event": "cheat", "what": "read", "path": path})
                raise PermissionError(f"drill: the attempt may not read {path}")
        elif event == "import" and args and isinstance(args[0], str):
            top = args[0].split(".")[0]
            if top in forbidden_modules:
                if args[0] not in reported:
                    reported.add(args[0])
                    channel.send({"event": "cheat", "what": "import", "module": args[0]})
                raise ImportError(f"drill: the attempt may not import {args[0]}")

    sys.addaudithook(hook)


def snapshot(modules):
    return {(m.__name__, k): id(v) for m in modules for k, v in vars(m).items()}


def main():
    channel = Channel(int(os.environ["DRILL_RESULT_FD"]))
    plan = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin = io.StringIO("")
    attempt_file = plan["attempt"]
    channel.send({"event": "ready"})
    try:
        with open(attempt_file, "rb") as f:
            source = f.read()
        code = compile(source, attempt_file, "exec")
    except SyntaxError as exc:
        channel.send({"event": "load", "error": {"kind": "syntax", "type": type(exc).__name__,
                                                 "message": str(exc.msg), "where": {"line": exc.lineno}}})
        return
    except (OSError, ValueError) as exc:
        channel.send({"event": "load", "error": {"kind": "import", "type": type(exc).__name__,
                                                 "message": str(exc), "where": None}})
        return
    import builtins
    watched = [np, np.linalg, np.random, builtins, json, os, sys]
    before = snapshot(watched)
    install_guard(channel, plan.get("forbidden_dirs", []), set(plan.get("forbidden_modules", [])))
    module = type(sys)("attempt")
    module.__file__ = attempt_file
    sys.modules["attempt"] = module
    attempt_dir = os.path.dirname(attempt_file)
    if attempt_dir not in sys.path:
        sys.path.append(attempt_dir)
    start = _perf()
    try:
        exec(code, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - whatever the attempt raises is reported
        error = describe(exc, attempt_file)
        error["kind"] = "exited" if isinstance(exc, (SystemExit, KeyboardInterrupt)) else "import"
        channel.send({"event": "load", "error": error, "seconds": _perf() - start})
        return
    functions = {}
    missing = []
    for name in plan["functions"]:
        value = module.__dict__.get(name)
        if callable(value):
            functions[name] = value
        else:
            missing.append(name)
    channel.send({"event": "load", "error": None, "missing": missing, "seconds": _perf() - start})
    for task in plan["tasks"]:
        needed = task.get("needs", [])
        if any(n in missing for n in needed):
            channel.send({"id": task["id"], "skipped": [n for n in needed if n in missing]})
            continue
        try:
            result = TASKS[task["kind"]](task, functions, attempt_file)
        except BaseException as exc:  # noqa: BLE001
            result = {"id": task["id"], "error": describe(exc, attempt_file)}
        channel.send(result)
    after = snapshot(watched)
    patched = sorted(f"{m}.{k}" for (m, k), ident in after.items()
                     if (m, k) in before and before[(m, k)] != ident and not k.startswith("__"))
    channel.send({"event": "done", "patched": patched[:50]})


if __name__ == "__main__":
    main()
