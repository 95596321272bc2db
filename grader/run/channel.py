"""The grader's end of the worker's private result channel: authenticated lines, decoded.

Each line the worker writes is `<pid> <hmac> <json>` (worker.Channel), the HMAC-SHA256 of
`<pid> <json>` under the run's key. A line without the right HMAC is forged; a line from
another process than the worker's is taken only if it reports a cheat. A last line without
its newline was cut short (the channel's cap, or the worker died while writing it): it is
unreadable, never forged, so an oversized result is `bad-output`, not `cheating`. Nothing here
judges: the Channel is plain data for the judge.

An authentic line is still the attempt's to write: it runs in the worker's process and can
reach the worker's Channel (its HMAC state included). So what a line holds is checked before it
is kept: its text made printable (no terminal escapes), nesting that Python cannot follow, an
error or a list of names of the wrong type, or data that does not decode, make it unreadable.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

CHANNEL_LOST = 86  # the worker's exit status when the attempt closed or replaced its channel (sent in the plan)


@dataclass
class Channel:
    """What the worker sent back, authenticated: events, results by task id, and what was wrong."""

    results: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)  # ready, load, done: the last of each
    cheats: list = field(default_factory=list)
    patched: list = field(default_factory=list)
    started: list = field(default_factory=list)  # task ids, in the order the worker began them
    forged: int = 0  # lines without the run's key: not written by the worker
    unreadable: int = 0  # authentic lines whose data could not be decoded

    @property
    def running(self) -> str | None:
        """The task the worker had begun and not reported when the channel ended."""
        return next((t for t in reversed(self.started) if t not in self.results), None)


class Reader:
    """Reads a run's channel line by line as it comes (sandbox's sink): each line is
    authenticated and decoded at once, and only the decoded results are kept."""

    def __init__(self, key: str):
        self.channel = Channel()
        self._mac = hmac.new(bytes.fromhex(key), digestmod=hashlib.sha256)
        self._worker = None

    def line(self, line: bytes) -> None:
        if not line:
            return
        out = self.channel
        head, _, rest = line.partition(b" ")
        digest, _, body = rest.partition(b" ")
        check = self._mac.copy()
        check.update(head + b" " + body)
        if not head.isdigit() or not hmac.compare_digest(check.hexdigest().encode(), digest):
            out.forged += 1
            return
        try:
            obj = _clean(json.loads(body))
        except (ValueError, RecursionError):  # nested past what Python follows: made to crash the grader
            out.unreadable += 1
            return
        if not isinstance(obj, dict) or not _well_formed(obj):
            out.unreadable += 1
            return
        self._worker = self._worker or head
        _take(out, obj, from_worker=head == self._worker)

    def cut(self) -> None:
        """The last line was cut short (the channel's cap, or the worker died mid-line): unreadable, not forged."""
        self.channel.unreadable += 1


def read_channel(data: bytes, key: str) -> Channel:
    """The Channel that data, the bytes read from the channel of a run under key, holds."""
    reader = Reader(key)
    lines = data.split(b"\n")
    for line in lines[:-1]:
        reader.line(line)
    if lines[-1]:
        reader.cut()
    return reader.channel


def _take(out: Channel, obj: dict, from_worker: bool) -> None:
    if obj.get("event") == "cheat":
        out.cheats.append(obj)
    elif not from_worker:
        return  # a forked copy of the worker: it may report a cheat, never a result
    elif obj.get("event") == "patched":
        out.patched += [str(n) for n in obj.get("names", [])]
    elif obj.get("event") == "task":
        out.started.append(str(obj.get("id")))
    elif "event" in obj:
        out.events[str(obj["event"])] = obj
    else:
        try:
            out.results.setdefault(str(obj["id"]), _decode_result(obj))
        except Exception:  # noqa: BLE001 - data that does not decode, however it fails
            out.unreadable += 1


def _clean(value):
    """value (parsed JSON) with every text in it printable (grader/run/wire.py printable)."""
    from grader.run.wire import printable  # numpy: not before `drill grade` has started its worker

    if isinstance(value, str):
        return printable(value, len(value))
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {printable(k, len(k)): _clean(v) for k, v in value.items()}
    return value


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _error_ok(error) -> bool:
    """An error as the worker's describe() writes it, or None."""
    if error is None:
        return True
    if not isinstance(error, dict):
        return False
    where = error.get("where")
    return (all(isinstance(error.get(k), (str, type(None))) for k in ("type", "message", "kind", "running"))
            and (where is None or isinstance(where, dict) and isinstance(where.get("line"), (int, type(None)))
                 and isinstance(where.get("function"), (str, type(None)))))


def _well_formed(obj: dict) -> bool:
    """The fields the judge reads without looking are of the types the worker writes."""
    return (_error_ok(obj.get("error")) and _error_ok(obj.get("first_error"))
            and all(_texts(obj[k]) for k in ("missing", "names", "patched", "skipped") if k in obj))


def _decode_result(obj: dict) -> dict:
    from grader.run.wire import decode  # numpy: not before `drill grade` has started its worker

    out = dict(obj)
    for key in ("result", "analytic", "numeric", "losses", "outputs"):
        if key in out:
            out[key] = decode(out[key])
    if "args_after" in out:
        out["args_after"] = [decode(a) for a in out["args_after"]]
    if "args_after_more" in out:
        out["args_after_more"] = [[decode(a) for a in afters] for afters in out["args_after_more"]]
    return out
