"""Runs inside the attempt's own process: loads the attempt, runs the grader's tasks, writes raw data.

This file is started as a script (`python -I -B worker.py [--box SPEC]`), never imported by the grader, and
needs only the standard library and numpy. It reads a JSON plan on stdin and writes one line
per result to the private channel whose fd is in DRILL_RESULT_FD. It judges nothing:
every comparison happens in the grader's own process, from the plain data written here.

Against an attempt that misbehaves (docs/hostile.md has the whole picture):

- Time: loading the file and each task run under a one-shot alarm (SIGALRM raises
  TaskTimeout, a BaseException) with the budget the plan gives; a function that overran
  once is not called again, and no task starts after the plan's deadline. An attempt that
  blocks, ignores or replaces the alarm still meets the grader's overall timeout.
- The channel: made close-on-exec and its number taken out of the environment before the
  attempt runs. Each line is `<pid> <hmac> <json>`, the HMAC-SHA256 of `<pid> <json>` under
  the plan's per-run key, so a line written by anything else is recognised as forged. A
  forked copy of this process may report a cheat but never a result; if the descriptor is
  closed or replaced, the worker stops with exit status CHANNEL_LOST.
- Reading the grader's files, or importing its package: an audit hook refuses it and reports
  it. Rebinding this module's own names: reported as tampering, and grading stops. Replacing
  functions of numpy, builtins, json, os or sys: reported, and put back after loading and
  after each task. This module's code and the wire format use their own copy of builtins.
- Exit: once the results are sent, os._exit, so no atexit handler, thread or child of the
  attempt can hold the process. If the grader dies outright, Linux kills this process.

All of this runs in the attempt's own process, which can reach this module's memory: these
guards stop accidents and casual cheating; they are not a security boundary.
"""
import builtins as _builtins_module
import os
import sys

# Were this file run without -I, its folder (the grader's package) would be sys.path[0]: take it
# off before anything else is imported, so that no module of the grader can shadow one of
# the standard library, and the attempt cannot import the grader's modules by their names.
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]

# `worker.py --box SPEC`: behind the kernel's walls (box.py) before numpy, the plan or the attempt.
if sys.argv[1:2] == ["--box"]:
    import json as _json

    _BOX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "box.py")
    _box = {"__name__": "drill_box", "__file__": _BOX}
    with open(_BOX, encoding="utf-8") as _f:
        exec(compile(_f.read(), _BOX, "exec"), _box)
    _box["enter"](_json.loads(sys.argv[2]))
    if "--serve" not in sys.argv:  # a warm worker keeps box.py: it forks each attempt behind its own walls
        del _box
    del _f, _BOX, _json

__builtins__ = dict(_builtins_module.__dict__)  # ours: an attempt patching builtins leaves it alone

import errno  # noqa: E402
import faulthandler  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import json.encoder  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE = os.path.join(HERE, "wire.py")
CHANNEL_LOST = 1  # exit status when the result channel was closed or replaced: the plan says which
DESCRIBE_SECONDS = 1.0  # the most an attempt's exception may take to turn into text


def _load_wire():
    """The wire format, shared with the grader, run with this module's own builtins."""
    namespace = {"__builtins__": __builtins__, "__name__": "drill_wire", "__file__": WIRE}
    with open(WIRE, encoding="utf-8") as f:
        exec(compile(f.read(), WIRE, "exec"), namespace)
    return namespace["encode"], namespace["decode"], namespace["printable"]


encode, decode, printable = _load_wire()

# Bound before the attempt runs, so that patching numpy, json, os or signal cannot change
# what this module does.
_dumps = json.dumps
_np_asarray = np.asarray
_np_ndarray = np.ndarray
_np_zeros_like = np.zeros_like
_np_ndindex = np.ndindex
_np_full = np.full
_nan = math.nan
_isfinite = math.isfinite  # bound before the attempt runs
_write = os.write
_fstat = os.fstat
_getpid = os.getpid
_exit = os._exit
_perf = time.perf_counter
_setitimer = signal.setitimer
_sigmask = signal.pthread_sigmask
_hmac_new = hmac.new
_sha256 = hashlib.sha256
_SYNC_SIGNALS = {signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE,
                 signal.SIGILL, signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}
_QUIET = set(signal.valid_signals()) - _SYNC_SIGNALS  # held back while a line is written


class Channel:
    """The private result channel: authenticated lines, written whole."""

    def __init__(self, fd, key):
        self.fd = fd
        st = _fstat(fd)
        self.ident = (st.st_dev, st.st_ino)
        self.pid = _getpid()
        self.mac = _hmac_new(key, digestmod=_sha256)

    def send(self, obj, any_process=False):
        """Write obj as one line. A forked copy of this process sends only with any_process."""
        pid = _getpid()
        if pid != self.pid and not any_process:
            _exit(0)  # a child forked inside the attempt must not go on grading
        body = _dumps(obj, allow_nan=True).encode("utf-8")
        head = b"%d " % pid
        mac = self.mac.copy()
        mac.update(head + body)
        data = head + mac.hexdigest().encode("ascii") + b" " + body + b"\n"
        held = _sigmask(signal.SIG_BLOCK, _QUIET)  # no handler may cut a line in half
        try:
            st = _fstat(self.fd)
            if (st.st_dev, st.st_ino) != self.ident:
                _exit(CHANNEL_LOST)
            view = memoryview(data)
            while view:
                view = view[_write(self.fd, view):]
        except OSError:
            _exit(CHANNEL_LOST)
        finally:
            _sigmask(signal.SIG_SETMASK, held)


def open_channel(plan_key):
    """The channel named by DRILL_RESULT_FD, made private: close-on-exec, out of the environment."""
    fd = int(os.environ.pop("DRILL_RESULT_FD"))
    os.set_inheritable(fd, False)
    return Channel(fd, bytes.fromhex(plan_key))


# ---------------------------------------------------------------- time bounds

class TaskTimeout(BaseException):
    """Raised into the attempt's code when its time for the current task is up."""


_ALARM = {"armed": False, "message": ""}


def _on_alarm(signum, frame):
    if _ALARM["armed"]:
        _ALARM["armed"] = False
        raise TaskTimeout(_ALARM["message"])


def arm(seconds, message):
    _ALARM.update(armed=True, message=message)
    if seconds < math.inf:
        _setitimer(signal.ITIMER_REAL, max(seconds, 0.001))


def disarm():
    _ALARM["armed"] = False
    _setitimer(signal.ITIMER_REAL, 0)


# ---------------------------------------------------------------- errors, located in the attempt

def kind_of(exc):
    """What the grader calls this way of failing, when it is more than an ordinary exception."""
    if isinstance(exc, TaskTimeout):
        return "timeout"
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        return "exited"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file-size"
    if isinstance(exc, BadReturn):
        return "bad-return"
    return None


def describe(exc, attempt_file):
    """The exception's type and message, and the innermost line of the attempt it passed through."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == attempt_file:
            where = {"line": lineno, "function": printable(frame.f_code.co_name, 100)}
    kind = kind_of(exc)
    name = {"memory": "MemoryError", "timeout": "Timeout", "bad-return": "TypeError"}.get(kind, type(exc).__name__)
    try:
        message = str(exc)
    except BaseException:  # a hostile __str__
        message = "<unprintable>"
    out = {"type": printable(name, 100), "message": printable(message, 500), "where": where}
    if kind:
        out["kind"] = kind
    if kind == "timeout":
        out["running"] = RUNNING["fn"]
    return out


def describe_bounded(exc, attempt_file):
    """describe, for use outside a task: an exception whose text never comes is not waited for."""
    try:
        arm(DESCRIBE_SECONDS, "")
        try:
            return describe(exc, attempt_file)
        finally:
            disarm()
    except TaskTimeout:  # the alarm came just as describe returned
        return {"type": printable(type(exc).__name__, 100), "message": "<unprintable>", "where": None}


# ---------------------------------------------------------------- partial attempts

PARTIAL = os.path.join(HERE, "partial.py")


def _load_partial():
    """The partial-attempt machinery (partial.py), run with this module's describe."""
    namespace = {"__builtins__": __builtins__, "__name__": "drill_partial", "__file__": PARTIAL,
                 "describe": describe}
    with open(PARTIAL, encoding="utf-8") as f:
        exec(compile(f.read(), PARTIAL, "exec"), namespace)
    return namespace


_PARTIAL = _load_partial()
partial_version, CAUGHT, _forget_partial = (_PARTIAL[k] for k in ("partial_version", "CAUGHT", "forget_partial"))


# ---------------------------------------------------------------- programs: `a, b = fn(x, y)`

_STEP = re.compile(r"^\s*(?P<out>[\w\s,]+?)\s*=\s*(?P<fn>\w+)\((?P<args>[\w\s,]*)\)\s*$")


class BadReturn(TypeError):
    """A function of the attempt returned something a program step cannot unpack (kind bad-return)."""


def parse_step(text):
    m = _STEP.match(text)
    if not m:
        raise ValueError(f"bad program step {text!r}")
    outs = [o.strip() for o in m["out"].split(",") if o.strip()]
    args = [a.strip() for a in m["args"].split(",") if a.strip()]
    return m["fn"], args, outs


def run_steps(steps, env, functions):
    for fn, args, outs in steps:
        RUNNING["fn"] = fn
        result = functions[fn](*[env[a] for a in args])
        if len(outs) == 1:
            env[outs[0]] = result
        else:
            env.update(zip(outs, unpack(result, fn, outs)))
    return env


def unpack(result, fn, outs):
    """result as len(outs) values, or BadReturn saying what fn should have returned."""
    if not isinstance(result, (tuple, list)) or len(result) != len(outs):
        raise BadReturn(f"{fn} must return {len(outs)} values ({', '.join(outs)}), "
                        f"not {printable(type(result).__name__, 100)}")
    return tuple(result)


def compile_loop(steps, record):
    """A training loop over steps, as one function of plain local variables.

    Same meaning as calling run_steps once an iteration and recording scalar(record), but
    without a dictionary look-up per name and per call: the loop's own cost per iteration
    stays far below the attempt's. Returns loop(env, functions, losses, state), which runs
    len(losses) iterations (stopping at a non-finite loss), keeps state["i"] and
    state["stopped"], and writes the variables back into env.
    """
    assigned = [o for _, _, outs in steps for o in outs]
    lines = ["def loop(_env, _functions, _losses, _state):"]
    for fn in dict.fromkeys(fn for fn, _, _ in steps):
        lines.append(f"    {fn} = _functions[{fn!r}]")
    for name in dict.fromkeys(a for _, args, _ in steps for a in args):
        lines.append(f"    if {name!r} in _env: {name} = _env[{name!r}]")
    lines += ["    for _i in range(len(_losses)):", "        _state['i'] = _i"]
    for fn, args, outs in steps:
        call = f"{fn}({', '.join(args)})"
        lines.append(f"        _running['fn'] = {fn!r}")
        if len(outs) == 1:
            lines.append(f"        {outs[0]} = {call}")
        else:
            lines += [f"        _r = {call}",
                      f"        {', '.join(outs)} = _r if type(_r) is tuple and len(_r) == {len(outs)} "
                      f"else _unpack(_r, {fn!r}, {tuple(outs)!r})"]
    lines += [f"        _loss = _losses[_i] = _scalar({record})",
              "        if not _isfinite(_loss):",
              "            _state['stopped'] = _i",
              "            break",
              "    _here = locals()",
              f"    _env.update({{k: _here[k] for k in {tuple(dict.fromkeys(assigned))!r} if k in _here}})"]
    namespace = {"_running": RUNNING, "_unpack": unpack, "_scalar": scalar, "_isfinite": _isfinite}
    exec(compile("\n".join(lines) + "\n", "<drill training loop>", "exec"), namespace)
    return namespace["loop"]


def scalar(value):
    if type(value) is float:  # the usual case, without a round trip through numpy
        return value
    arr = _np_asarray(value, dtype=float)
    if arr.size != 1:
        raise TypeError(f"the loss must be one number, not an array of shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def fresh(value, _copies=None):
    """A deep copy of plain data (arrays, dicts, lists) so every call gets untouched inputs.
    A dict or list that contains itself (cache["self"] = cache) is copied as such, once."""
    copies = {} if _copies is None else _copies
    if isinstance(value, dict):
        if id(value) in copies:
            return copies[id(value)]
        out = copies[id(value)] = {}
        for k, v in dict.items(value):
            out[k] = fresh(v, copies)
        return out
    if isinstance(value, list):
        if id(value) in copies:
            return copies[id(value)]
        out = copies[id(value)] = []
        out.extend(fresh(v, copies) for v in list.__iter__(value))
        return out
    if isinstance(value, tuple):
        return tuple(fresh(v, copies) for v in tuple.__iter__(value))
    if isinstance(value, _np_ndarray):
        return value.copy()
    return value


# ---------------------------------------------------------------- tasks

RAW = {}  # task id -> what the attempt returned, for later tasks that build on it
RUNNING = {"fn": None}  # the attempt's function being called: the one to blame for a timeout


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
    RUNNING["fn"] = task["fn"]
    args = call_args(task)
    out = {"id": task["id"]}
    start = _perf()
    more_args_after = []  # inputs as an earlier call of this task left them
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the attempt's own failure is data
        out["error"] = describe(exc, attempt_file)
        # Running it again statement by statement would only meet the same limit again.
        retry = task.get("partial") and kind_of(exc) is None
        fill = {k: decode(v) for k, v in task["fill"].items()} if retry and task.get("fill") else None
        rewritten = partial_version(fn, attempt_file, fill) if retry else None
        if rewritten is None:
            out["seconds"] = _perf() - start
            return out
        if task.get("keep_args"):
            more_args_after.append([encode(a) for a in args])  # what the failed call did to them
        args = call_args(task)
        CAUGHT.clear()
        try:
            result = rewritten(*args)
            out["partial"] = True
        except BaseException as exc2:  # noqa: BLE001 - the attempt's own failure is data
            out["error"] = describe(exc2, attempt_file)
            out["seconds"] = _perf() - start
            return out
        finally:
            _forget_partial(fn)
        first = (out["error"]["type"], (out["error"].get("where") or {}).get("line"))
        if result is None or first not in CAUGHT:
            # It never reached a return, or it did not fail again where it failed at first (it
            # behaves differently when run again): the first failure is the answer.
            out.pop("partial", None)
            out["seconds"] = _perf() - start
            return out
    out["seconds"] = _perf() - start
    RAW[task["id"]] = result
    out["result"] = encode(result)
    if task.get("keep_args"):
        out["args_after"] = [encode(a) for a in args]
        if more_args_after:
            out["args_after_more"] = more_args_after
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
        # the parameters: a dict of arrays, or one array (e.g. the logits themselves)
        whole = isinstance(env[pname], _np_ndarray)
        numeric = {}
        for key, value in ([(None, env[pname])] if whole else env[pname].items()):
            grad = _np_zeros_like(value, dtype=float)
            for index in _np_ndindex(value.shape):
                losses = []
                for sign in (1.0, -1.0):
                    trial = fresh(env)
                    (trial[pname] if whole else trial[pname][key])[index] += sign * eps
                    losses.append(scalar(run_steps(loss_steps, trial, functions)[lname]))
                grad[index] = (losses[0] - losses[1]) / (2 * eps)
            numeric[key] = grad
        out["numeric"] = encode(numeric[None] if whole else numeric)
    except BaseException as exc:  # noqa: BLE001
        out["error"] = describe(exc, attempt_file)
    return out


def task_train(task, functions, attempt_file):
    env = {k: decode(v) for k, v in task["env"].items()}
    steps = [parse_step(s) for s in task["steps"]]
    final = [parse_step(s) for s in task["final"]]
    lname, iters = task["record"], task["iters"]
    losses = _np_full(iters, _nan)
    out = {"id": task["id"]}
    start = _perf()
    i = 0
    try:
        state = {"i": 0}
        try:
            compile_loop(steps, lname)(env, functions, losses, state)
        finally:
            i = state["i"]
        if "stopped" in state:
            out["stopped"] = state["stopped"]
        out["iterations"] = i + 1
        run_steps(final, env, functions)
        out["outputs"] = encode({name: env.get(name) for name in task["outputs"]})
    except BaseException as exc:  # noqa: BLE001
        out["error"] = describe(exc, attempt_file)
        out["iterations"] = i
    out["losses"] = encode(losses)
    out["seconds"] = _perf() - start
    return out


def _holds_blank(data, depth=0):
    """Whether encoded data holds a blank anywhere (a link the attempt has not written)."""
    if isinstance(data, dict):
        return "__blank__" in data or (depth < 8 and any(_holds_blank(v, depth + 1) for v in data.values()))
    if isinstance(data, list):
        return depth < 8 and any(_holds_blank(v, depth + 1) for v in data)
    return False


def partial_functions(functions, attempt_file):
    """Every function of the attempt rewritten as a partial attempt (no stand-ins): a todo
    whose value nothing uses leaves it blank, and the function still runs to its end."""
    out = {}
    for name, fn in functions.items():
        try:
            rewritten = partial_version(fn, attempt_file)
        except Exception:  # noqa: BLE001 - not rewritable: the original, which fails as before
            rewritten = None
        out[name] = rewritten or fn
    return out


def finish_partially(run, task, functions, attempt_file, out):
    """A finite-difference or training task that stopped at a todo() runs again with partial
    versions of the functions, and counts when they run to the end: a blank the attempt never
    uses (it computes dW2 without the dz2 it left to do) does not stop a check whose
    functions run. Anything else keeps the first failure: a blank that is used (its
    BlankUsed ends the run, or a blank reaches the trained outputs), a todo that does not
    recur, or any other exception swallowed on the way. The judge gets the first error too,
    for gradients it needs that came back blank."""
    error = out.get("error") or {}
    if error.get("type") != "NotImplementedError" or error.get("kind") or error.get("not_run"):
        return out
    partial = partial_functions(functions, attempt_file)
    CAUGHT.clear()
    try:
        again = run(task, partial, attempt_file)
    finally:
        for fn in functions.values():
            _forget_partial(fn)
    first = (error["type"], (error.get("where") or {}).get("line"))
    todos_only = all(kind == "NotImplementedError" for kind, _ in CAUGHT)
    recurs = first in CAUGHT
    CAUGHT.clear()
    if again.get("error") or not (todos_only and recurs) or _holds_blank(again.get("outputs")):
        return out
    again["partial"] = True
    again["first_error"] = error
    return again


def task_fd_or_partial(task, functions, attempt_file):
    return finish_partially(task_fd, task, functions, attempt_file, task_fd(task, functions, attempt_file))


def task_train_or_partial(task, functions, attempt_file):
    return finish_partially(task_train, task, functions, attempt_file, task_train(task, functions, attempt_file))


TASKS = {"call": task_call, "fd": task_fd_or_partial, "train": task_train_or_partial}


# ---------------------------------------------------------------- guards: the grader's files, this module

# audit event -> what touching a path in its first argument means, and in its second
_PATH_EVENTS = {"open": ("read", None), "os.link": ("read", "change"), "os.symlink": ("read", "change"),
                "shutil.copyfile": ("read", "change"), "shutil.copytree": ("read", "change"),
                "os.rename": ("change", "change"), "shutil.move": ("change", "change"),
                "os.remove": ("change", None), "os.rmdir": ("change", None), "os.chmod": ("change", None),
                "os.chown": ("change", None), "os.utime": ("change", None), "os.truncate": ("change", None),
                "os.mkdir": ("change", None), "shutil.rmtree": ("change", None)}
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_RUN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"}


def _strings(value, depth=0):
    """The text in an audit event's arguments: paths, commands, argument lists."""
    if isinstance(value, (str, bytes, os.PathLike)):
        try:
            yield os.fsdecode(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(value, (list, tuple)) and depth < 2:
        for item in value[:1000]:
            yield from _strings(item, depth + 1)


def install_guard(channel, forbidden_dirs, forbidden_modules, attempt_file):
    """Refuse, and report, reading or changing the grader's files, running a command that names
    them, and importing the grader's package. This file and the wire format may be read: Python
    reads them itself to print a traceback or a warning, and they hold nothing to copy. So may
    the attempt's own file, wherever it is (the reference itself is graded by the self-test)."""
    realpath, sep = os.path.realpath, os.sep
    dirs = tuple(realpath(d) for d in forbidden_dirs)
    allowed = {realpath(__file__), realpath(WIRE), realpath(attempt_file)}
    reported = set()

    def forbidden(path):
        return path not in allowed and any(path == d or path.startswith(d + sep) for d in dirs)

    def report(what, target):
        if (what, target) not in reported:
            reported.add((what, target))
            channel.send({"event": "cheat", "what": what, "target": target[:300]}, any_process=True)

    def hook(event, args):
        if event in _PATH_EVENTS:
            for position, what in enumerate(_PATH_EVENTS[event]):
                if what is None or len(args) <= position:
                    continue
                if event == "open" and isinstance(args[2], int) and args[2] & _WRITING:
                    what = "change"
                for name in _strings(args[position]):
                    try:
                        path = realpath(name)
                    except (OSError, ValueError):
                        continue
                    if forbidden(path):
                        report(what, path)
                        raise PermissionError(f"drill: the attempt may not {what} {path}")
        elif event in _RUN_EVENTS:
            for text in _strings(args):
                if any(d in text for d in dirs):
                    report("run", text)
                    raise PermissionError("drill: the attempt may not run a command on the grader's files")
        elif event == "import" and args and isinstance(args[0], str):
            if args[0].split(".")[0] in forbidden_modules:
                report("import", args[0])
                raise ImportError(f"drill: the attempt may not import {args[0]}")

    sys.addaudithook(hook)


_WATCHED = (_builtins_module, np, np.linalg, np.random, json, json.encoder, math, os, sys)


def originals():
    """The functions and classes of the modules the attempt might patch, as they are now."""
    return {(m, k): v for m in _WATCHED for k, v in list(vars(m).items())
            if callable(v) and not k.startswith("__") and "hook" not in k}


def put_back(before):
    """Names of the entries the attempt replaced or removed since `before`; each is restored."""
    changed = []
    for (m, k), v in before.items():
        if vars(m).get(k, None) is not v:
            changed.append(f"{m.__name__}.{k}")
            try:
                setattr(m, k, v)
            except (AttributeError, TypeError):
                pass
    return changed


def own_names():
    """This module's names, partial.py's, its builtins and the Channel's methods: rebinding any
    is tampering."""
    return {**{("", k): v for k, v in globals().items()},
            **{("partial.py: ", k): v for k, v in _PARTIAL.items() if k != "__builtins__"},
            **{("builtins of the worker: ", k): v for k, v in __builtins__.items()},
            **{("Channel.", k): v for k, v in vars(Channel).items()}}


def tampered(before):
    now = own_names()
    return sorted(f"{scope}{k}" for (scope, k), v in before.items() if now.get((scope, k), None) is not v)


# ---------------------------------------------------------------- the run

def _seconds(value):
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


LIMIT_WORDS = {"load": "the limit for loading the file", "call": "the limit for one call",
               "fd": "the limit for the finite differences", "train": "the time left for training"}


def bounded_run(kind, budget, cut, fn, *args):
    """fn(*args) under an alarm of `budget` seconds; `cut`: the budget is what was left of the run."""
    words = "the time left of the whole run" if cut else LIMIT_WORDS.get(kind, "its time limit")
    arm(budget, f"did not finish within {_seconds(budget)} ({words}); it was stopped")
    try:
        return fn(*args)
    finally:
        disarm()


def load_attempt(attempt_file, code, plan, budget):
    """exec the attempt as module `attempt`; (namespace, None) or (None, the load error)."""
    module = type(sys)("attempt")
    module.__file__ = attempt_file
    module.__builtins__ = _builtins_module  # the real builtins, not this module's own copy
    sys.modules["attempt"] = module
    attempt_dir = os.path.dirname(attempt_file)
    if attempt_dir not in sys.path:
        sys.path.append(attempt_dir)
    try:
        bounded_run("load", budget[0], budget[1], exec, code, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - whatever the attempt raises is reported
        error = describe_bounded(exc, attempt_file)
        error.setdefault("kind", "import")
        return None, error
    return module.__dict__, None


def run_tasks(channel, plan, functions, missing, attempt_file, deadline, checkpoint):
    limits = plan.get("seconds", {})
    hung = {}  # function name -> the task in which it did not finish
    for task in plan["tasks"]:
        needed = task.get("needs", [])
        if any(n in missing for n in needed):
            channel.send({"id": task["id"], "skipped": [n for n in needed if n in missing]})
            continue
        stuck = [n for n in needed if n in hung]
        left = deadline - _perf()
        if stuck or left <= 0:
            why = (f"was not called again: it did not finish in {hung[stuck[0]]}" if stuck
                   else "was not run: no time was left of the whole run")
            channel.send({"id": task["id"], "error": {
                "type": "Timeout", "kind": "timeout", "message": why, "where": None,
                "running": stuck[0] if stuck else None, "not_run": True}})
            continue
        channel.send({"event": "task", "id": task["id"]})
        cap = limits.get(task["kind"], left)
        try:
            result = bounded_run(task["kind"], min(cap, left), cap > left, TASKS[task["kind"]],
                                 task, functions, attempt_file)
        except BaseException as exc:  # noqa: BLE001 - the attempt's failure, or its time is up
            result = {"id": task["id"], "error": describe_bounded(exc, attempt_file)}
        error = result.get("error") or {}
        if error.get("kind") == "timeout":
            hung[error.get("running") or task.get("fn") or task["id"]] = task["id"]
        if not checkpoint():
            return
        channel.send(result)
        if not checkpoint():
            return


def die_with_the_grader(grader_pid):
    """Ask Linux to SIGKILL this process if the grader dies first; go now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if grader_pid and os.getppid() != grader_pid:
        _exit(0)


def main():
    global CHANNEL_LOST
    plan = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    CHANNEL_LOST = int(plan.get("channel_lost", CHANNEL_LOST))
    die_with_the_grader(plan.get("grader_pid"))
    channel = open_channel(plan.pop("key"))
    sys.stdin = io.StringIO("")
    sys.dont_write_bytecode = True  # the attempt's helper modules leave no __pycache__ behind
    faulthandler.enable()  # a segfault in the attempt prints where it happened on stderr
    started = _perf()
    limits = plan.get("seconds", {})
    deadline = started + limits.get("total", math.inf)
    stdout, stderr = sys.stdout, sys.stderr
    attempt_file = plan["attempt"]
    channel.send({"event": "ready"})
    status = 0
    try:
        _grade(channel, plan, attempt_file, deadline)
    except BaseException:  # noqa: BLE001 - the worker itself failed (or was made to): say where
        status = 1
        try:
            arm(DESCRIBE_SECONDS, "")
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        disarm()
    for stream in (stdout, stderr):  # the attempt's own buffered prints
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    _exit(status)  # no atexit handler, thread or buffered file of the attempt may hold us


def _grade(channel, plan, attempt_file, deadline):
    try:
        with open(attempt_file, "rb") as f:
            source = f.read()
        code = compile(source, attempt_file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        channel.send({"event": "load", "error": {"kind": "syntax", "type": type(exc).__name__,
                                                 "message": str(exc.msg), "where": {"line": exc.lineno}}})
        return
    except (OSError, ValueError) as exc:
        channel.send({"event": "load", "error": {"kind": "import", "type": type(exc).__name__,
                                                 "message": str(exc), "where": None}})
        return
    before = originals()
    mine = own_names()
    patched = []

    def checkpoint():
        """After the attempt ran: put back what it patched; False once it has tampered with us."""
        new = [name for name in put_back(before) if name not in patched]
        if new:
            patched.extend(new)
            channel.send({"event": "patched", "names": new})
        changed = tampered(mine)
        if changed:
            channel.send({"event": "cheat", "what": "tamper", "target": ", ".join(changed)[:300]})
            return False
        return True

    signal.signal(signal.SIGALRM, _on_alarm)
    install_guard(channel, plan.get("forbidden_dirs", []), set(plan.get("forbidden_modules", [])), attempt_file)
    left = deadline - _perf()
    cap = plan.get("seconds", {}).get("load", left)
    start = _perf()
    namespace, error = load_attempt(attempt_file, code, plan, (min(cap, left), cap > left))
    if not checkpoint():
        return
    if error:
        channel.send({"event": "load", "error": error, "seconds": _perf() - start})
        return
    functions = {}
    missing = []
    for name in plan["functions"]:
        value = namespace.get(name)
        if callable(value):
            functions[name] = value
        else:
            missing.append(name)
    channel.send({"event": "load", "error": None, "missing": missing, "seconds": _perf() - start})
    run_tasks(channel, plan, functions, missing, attempt_file, deadline, checkpoint)
    channel.send({"event": "done", "patched": patched[:50]})


def serve(fd):
    """A warm worker (`--box SPEC --serve FD`, spec "serve"): behind the walls, with numpy and
    this module loaded once, it forks one fresh attempt process per request on the socket FD
    (box.py fork_attempt; the request's descriptors become its stdin, stdout, stderr and
    channel) and goes on as main() there. Here no code of an attempt ever runs: this loop
    only forks and reports each child's end and its resource use. EOF on FD ends it."""
    import socket

    spec = json.loads(sys.argv[sys.argv.index("--box") + 1])
    sock = socket.socket(fileno=fd)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        except OSError:
            break
        if not data:
            break
        try:
            request = json.loads(data)
        except ValueError:
            request = None
        if not isinstance(request, dict) or len(fds) != 4:
            for f in fds:
                os.close(f)
            sock.send(b'{"ended": null}')
            continue
        pid = _box["fork_attempt"](spec, request, fds, sock)
        if pid is None:  # the attempt's own process, a fresh copy of this one
            np.random.seed()  # not the sequence every other fork of this worker draws
            main()
        for f in fds:
            os.close(f)
        _, status, usage = os.wait4(pid, 0)
        sock.send(_dumps({"ended": status, "usage": [usage.ru_utime, usage.ru_stime, usage.ru_maxrss]}).encode())
    _exit(0)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]))
    main()
