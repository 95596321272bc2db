"""The wire format between the grader and the attempt's process: plain JSON, never pickle.

Arrays travel as dtype, shape and base64 of their little-endian bytes, so they arrive
bit for bit; dicts, lists and tuples are tagged; anything else is described, not sent.
Decoding accepts only these forms and a fixed list of numeric dtypes.
"""
import base64

import numpy as np

# Bound at import, before an attempt runs, so that patching numpy cannot change what is sent.
_b64 = base64.b64encode
_np_asarray = np.asarray
_np_ndarray = np.ndarray
_np_generic = np.generic
_str, _int, _float = str.__str__, int.__int__, float.__float__  # base methods: exact types back
_dict_items = dict.items
from itertools import islice as _islice  # noqa: E402

MAX_DEPTH = 6
MAX_ELEMENTS = 5_000_000
MAX_ITEMS = 64
SAFE_DTYPES = {"float64", "float32", "float16", "int64", "int32", "int16", "int8",
               "uint8", "uint16", "uint32", "uint64", "bool"}


def encode(value, depth=0):
    """Plain JSON data for value. Subclasses are read through their base type's own methods
    (never an override of the attempt's), and containers only up to MAX_ITEMS entries."""
    if getattr(type(value), "drill_blank", False):
        return {"__blank__": value.name, "error": value.error}
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else None
    if isinstance(value, str):
        return _str(value)[:200]  # data, sent as it is: whatever shows it must make it printable
    if isinstance(value, int):
        number = _int(value)
        return number if abs(number) < 2**63 else _float(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (_np_ndarray, _np_generic)):
        arr = _np_asarray(value)
        dtype = arr.dtype.name
        if dtype not in SAFE_DTYPES:
            return {"__type__": f"ndarray of {dtype}", "shape": list(arr.shape)}
        if arr.size > MAX_ELEMENTS:
            return {"__type__": "ndarray too large", "shape": list(arr.shape)}
        out = {"__nd__": dtype, "shape": list(arr.shape),
               "b64": _b64(arr.astype(arr.dtype.newbyteorder("<"), order="C").tobytes()).decode("ascii")}
        if isinstance(value, _np_ndarray) and type(value) is not _np_ndarray:
            out["subclass"] = _type_name(value)  # an np.matrix, say: sent as its values, and named
        return out
    if depth >= MAX_DEPTH:
        return {"__type__": "nested too deep"}
    if isinstance(value, dict):
        items = _islice(_dict_items(value), MAX_ITEMS)
        return {"__dict__": {_key(k): encode(v, depth + 1) for k, v in items}}
    if isinstance(value, (list, tuple)):
        base = tuple if isinstance(value, tuple) else list
        return {"__list__": [encode(v, depth + 1) for v in base.__getitem__(value, slice(0, MAX_ITEMS))],
                "tuple": isinstance(value, tuple)}
    return {"__type__": _type_name(value)}


def _key(key):
    """A dict key as text: plain str and numbers as they are, anything else by its type."""
    if isinstance(key, str):
        return _str(key)[:100]
    if isinstance(key, (bool, int, float)) or key is None:
        return repr(encode(key))[:100]
    return f"<{_type_name(key)}>"


def _type_name(value):
    return printable(type(value).__name__, 100)


def printable(text, limit):
    """text (a str) cut to `limit` characters, with whatever a terminal would act on (control
    characters, line breaks, lone surrogates, bidi overrides) written as an escape instead.
    Text that comes from an attempt passes through here before the grader shows it."""
    text = _str(text)[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] if c != "'" else c for c in text)


class Subclassed(np.ndarray):
    """A decoded array that was a subclass of ndarray where it was sent from (an np.matrix
    coming out of the attempt's loss, say): its values, with ndarray's own behaviour, and the
    subclass's name in .sent_as, so that a check can say where it came from. What is computed
    from it is not marked (sent_as is the class's "")."""

    sent_as = ""


def sent_as(value) -> str:
    """The name of the ndarray subclass value was sent as ("matrix"), or "" for anything else."""
    return value.__dict__.get("sent_as", "") if isinstance(value, Subclassed) else ""


def decode(data):
    if isinstance(data, dict):
        if "__nd__" in data:
            if data["__nd__"] not in SAFE_DTYPES:
                raise ValueError(f"unexpected dtype {data['__nd__']!r}")
            raw = base64.b64decode(data["b64"], validate=True)
            dtype = np.dtype(data["__nd__"]).newbyteorder("<")
            arr = np.frombuffer(raw, dtype=dtype).reshape(data["shape"]).astype(dtype.newbyteorder("="))
            if "subclass" not in data:
                return arr
            if not isinstance(data["subclass"], str):
                raise ValueError("the name of a subclass must be text")
            marked = arr.view(Subclassed)
            marked.sent_as = printable(data["subclass"], 100) or "?"
            return marked
        if "__dict__" in data:
            return {k: decode(v) for k, v in data["__dict__"].items()}
        if "__list__" in data:
            items = [decode(v) for v in data["__list__"]]
            return tuple(items) if data.get("tuple") else items
        if "__blank__" in data or "__type__" in data:
            return data  # described, not sent: the grader reports it as such
        raise ValueError(f"unknown value {sorted(data)}")
    return data
