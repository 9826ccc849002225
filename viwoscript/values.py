"""Runtime values and the conversions the language defines (truthiness, number and value to text).

Script values are plain Python: ``None``, ``bool``, ``int``/``float``, ``str``, ``list``, ``dict``,
plus :class:`Lambda` and the host values (``Image``, ``CapabilityHandle``, ...) defined elsewhere.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import LimitError, ScriptError
from .limits import Meter

_REPR_RE = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?\Z")
MAX_SAFE_INT = 2**53
#: Text that cannot be written as UTF-8: half of a UTF-16 surrogate pair (the reader and json.parse refuse it).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Lambda:
    """A closure made by ``std.lambda``. Opaque to scripts."""

    __slots__ = ("params", "body", "scope", "name", "span", "code")

    def __init__(self, params: tuple[str, ...], body, scope, span=None, name: str | None = None, code=None):
        self.params = params
        self.body = body
        self.scope = scope
        self.span = span
        self.name = name
        #: The compiled body (``code(ev, scope, args)``) when the compiled runner made this lambda.
        self.code = code

    def __repr__(self) -> str:
        return f"<lambda ({' '.join(self.params)})>"


class HostValue:
    """Base for values the host gives scripts (images, capability handles, layers, entities).

    ``script_methods`` is the allowlist ``std.call_method`` may reach on this type; nothing else is.
    """

    type_name = "object"
    script_methods: frozenset[str] = frozenset()

    def to_json(self) -> Any:  # what json.stringify and the JSON printer show
        return {"type": self.type_name}


def is_number(v: Any) -> bool:
    return (type(v) is int or type(v) is float)


def normalize_number(x: float) -> int | float:
    """Integral doubles become Python ints (JavaScript has one number type); -0.0 stays a float."""
    if type(x) is float and x.is_integer() and -MAX_SAFE_INT <= x <= MAX_SAFE_INT and (x != 0.0 or math.copysign(1, x) > 0):
        return int(x)
    return x


def truthy(v: Any) -> bool:
    """``false``, ``0``, ``NaN``, ``""`` and ``null`` are falsy; everything else is truthy."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    t = type(v)
    if t is int:
        return v != 0
    if t is float:
        return v == v and v != 0.0
    if t is str:
        return v != ""
    return True


def js_number(x: Any) -> str:
    """JavaScript's Number.prototype.toString() for finite and non-finite numbers."""
    if type(x) is int:
        if -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
            return str(x)
        x = float(x)
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    if x == 0:
        return "0"
    m = _REPR_RE.match(repr(x))
    assert m is not None, repr(x)
    sign, ip, fp, exp = m.group(1), m.group(2), m.group(3) or "", int(m.group(4) or 0)
    digits = ip + fp
    n = len(ip) + exp
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    s = stripped.rstrip("0") or "0"
    k = len(s)
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        mant = s if k == 1 else s[0] + "." + s[1:]
        out = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


def typeof(v: Any) -> str:
    """``number|string|boolean|null|array|object`` (a lambda is ``object``)."""
    if v is None:
        return "null"
    if v is True or v is False:
        return "boolean"
    t = type(v)
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is list:
        return "array"
    return "object"


# --- traversals --------------------------------------------------------------------------------------
# Every walk over a value's parts lives here and counts what it visits with a Meter (limits.py): a list
# shared into itself 40 times has 2⁴⁰ parts, and converting it must stop at the limits like any loop.
# ``budget`` is a run's evaluator (gas, clock, interrupt), a limits.Budget (host-side work such as
# printing a result), a Meter shared by several calls, or None (only the default size limits).


def meter_for(budget: Any, op: str) -> Meter:
    """``budget`` itself when it is a Meter (several walks sharing one count), else a new Meter over it."""
    return budget if budget.__class__ is Meter else Meter(budget, op)


def _finish(m: Meter, budget: Any) -> None:
    if m is not budget:
        m.done()


def to_text(v: Any, budget: Any = None, op: str = "std.string") -> str:
    """Value → text as ``std.string``, ``str.concat`` and ``str.join`` convert it (language §2).

    A list inside itself converts to "" there (JavaScript's join); an object inside itself cannot be
    converted (a ScriptError, as JSON.stringify throws)."""
    t = type(v)
    if t is str:
        return v
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if t is int or t is float:
        return js_number(v)
    if t is not list and v.__class__ is Lambda:
        return repr(v)
    m = meter_for(budget, op)
    s = _text(v, m)
    _finish(m, budget)
    return s


def join_text(items: list, sep: str = ",", budget: Any = None, op: str = "str.join") -> str:
    """A list's items as text joined by ``sep`` (null items as ""), as ``str.join`` writes them."""
    m = meter_for(budget, op)
    s = _list_text(items, m, set(), sep)
    _finish(m, budget)
    return s


def _text(v: Any, m: Meter) -> str:
    if type(v) is list:
        return _list_text(v, m, set(), ",")
    try:
        return _json_text(v, m, None)
    except ValueError:
        raise ScriptError("cannot convert an object that contains itself to text",
                          hint="convert a part of it, or build it without the self-reference") from None


def _list_text(v: list, m: Meter, seen: set, sep: str) -> str:
    m.left -= len(v) + 1
    if m.left < 0:
        m.poll()
    key = id(v)
    if key in seen:
        return ""
    seen.add(key)
    parts = []
    append = parts.append
    chars = m.chars + (len(v) - 1) * len(sep) if v else m.chars
    limit = m.max_chars
    for item in v:
        t = type(item)
        if t is str:
            s = item
        elif item is None:
            append("")
            continue
        elif t is int or t is float:
            s = js_number(item)
        elif t is bool:
            s = "true" if item else "false"
        elif t is list:
            m.chars = chars
            append(_list_text(item, m, seen, ","))
            chars = m.chars
            continue
        elif item.__class__ is Lambda:
            s = repr(item)
        else:
            m.chars = chars
            append(_text(item, m))
            chars = m.chars
            continue
        chars += len(s)
        if chars > limit:
            raise m.too_long()
        append(s)
    seen.discard(key)
    if chars > limit:
        raise m.too_long()
    m.chars = chars
    return sep.join(parts)


def to_json_value(v: Any, budget: Any = None, op: str = "json.stringify", *, host_json: Any = None) -> Any:
    """A JSON-safe copy (NaN/Infinity → null, lambdas → null, host values → their JSON form, or what
    ``host_json(value)`` returns). A list or object inside itself is a ValueError."""
    t = type(v)
    if v is None or t is bool or t is str or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else None
    m = meter_for(budget, op)
    out = _json_value(v, m, set(), host_json)
    _finish(m, budget)
    return out


def _json_value(v: Any, m: Meter, seen: set, host: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is str or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else None
    if t is list or t is dict:
        m.left -= len(v) + 1
        if m.left < 0:
            m.poll()
        key = id(v)
        if key in seen:
            raise ValueError("cyclic structure")
        seen.add(key)
        if t is list:
            out = [_json_value(i, m, seen, host) for i in v]
        else:
            out = {k: _json_value(x, m, seen, host) for k, x in v.items()}
        seen.discard(key)
        return out
    if isinstance(v, HostValue):
        return _json_value(v.to_json() if host is None else host(v), m, seen, host)
    return None


def to_json_text(v: Any, indent: int | None = None, budget: Any = None, op: str = "json.stringify", *,
                 host_json: Any = None, number: Any = None, separators: tuple[str, str] = (",", ":")) -> str:
    """``JSON.stringify``: numbers written as JavaScript writes them (or by ``number``: ``repr`` keeps
    Python's exact round trip), NaN/Infinity and lambdas as null; ``separators`` as in ``json.dumps``
    (without ``indent``)."""
    m = meter_for(budget, op)
    s = _json_text(v, m, indent, host_json, number or js_number, separators)
    _finish(m, budget)
    return s


def _json_text(v: Any, m: Meter, indent: int | None, host: Any = None, number: Any = js_number,
               separators: tuple[str, str] = (",", ":")) -> str:
    out: list[str] = []
    _write_json(_json_value(v, m, set(), host), out, indent, 0, m, number,
                separators if indent is None else (",", ": "))
    return "".join(out)


def _write_json(v: Any, out: list[str], indent: int | None, level: int, m: Meter, number: Any,
                seps: tuple[str, str]) -> None:
    t = type(v)
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif t is int or t is float:
        out.append(number(v))
    elif t is str:
        s = json.dumps(v, ensure_ascii=False)
        m.chars += len(s)
        if m.chars > m.max_chars:
            raise m.too_long()
        out.append(s)
    elif t is list or t is dict:
        n = len(v)
        m.left -= n + 1
        if m.left < 0:
            m.poll()
        if not n:
            out.append("[]" if t is list else "{}")
            return
        m.chars += n * (2 + len(seps[0]) + len(seps[1]) + (0 if indent is None else indent * (level + 1)))
        if m.chars > m.max_chars:
            raise m.too_long()
        open_, close = ("[", "]") if t is list else ("{", "}")
        pad = "" if indent is None else "\n" + " " * (indent * (level + 1))
        comma, colon = seps
        out.append(open_)
        for i, item in enumerate(v.items() if t is dict else v):
            if i:
                out.append(comma)
            out.append(pad)
            if t is dict:
                key = json.dumps(item[0], ensure_ascii=False)
                m.chars += len(key)
                out.append(key)
                out.append(colon)
                item = item[1]
            _write_json(item, out, indent, level + 1, m, number, seps)
        if indent is not None:
            out.append("\n" + " " * (indent * level))
        out.append(close)
    else:  # pragma: no cover - _json_value leaves only JSON data
        out.append("null")


#: Width a displayed result fits on one line in (the REPL's and ``viwo run``'s printer).
DISPLAY_WIDTH = 88


def to_display(v: Any, budget: Any = None, op: str = "display") -> str:
    """How a value prints as a result on one line: strings quoted, numbers as JavaScript prints them, a
    list or object inside itself as ``[...]``/``{...}``, lambdas and host values as ``<...>``."""
    t = type(v)
    if t is str:
        return json.dumps(v, ensure_ascii=False)
    if t is int or t is float:
        return js_number(v)
    if v is None or t is bool:
        return "null" if v is None else ("true" if v else "false")
    if t is not list and t is not dict:
        return repr(v)
    m = meter_for(budget, op)
    s = _flat(v, m, set())
    _finish(m, budget)
    return s


def display(v: Any, width: int = DISPLAY_WIDTH, budget: Any = None, op: str = "display") -> str:
    """A result as the REPL and ``viwo run`` print it: one line when it fits in ``width``, else indented."""
    m = meter_for(budget, op)
    s = _pretty(v, 0, width, m, set())
    _finish(m, budget)
    return s


def _flat(v: Any, m: Meter, seen: set) -> str:
    t = type(v)
    if t is str:
        s = json.dumps(v, ensure_ascii=False)
    elif t is int or t is float:
        s = js_number(v)
    elif v is None:
        s = "null"
    elif t is bool:
        s = "true" if v else "false"
    elif t is list or t is dict:
        key = id(v)
        if key in seen:
            s = "[...]" if t is list else "{...}"
        else:
            m.left -= len(v) + 1
            if m.left < 0:
                m.poll()
            m.chars += 2 * len(v)
            seen.add(key)
            if t is list:
                s = "[" + ", ".join([_flat(i, m, seen) for i in v]) + "]"
            else:
                s = "{" + ", ".join([_flat(k, m, seen) + ": " + _flat(x, m, seen) for k, x in v.items()]) + "}"
            seen.discard(key)
            return s
    else:
        s = repr(v)
    m.chars += len(s)
    if m.chars > m.max_chars:
        raise m.too_long()
    return s


def _pretty(v: Any, level: int, width: int, m: Meter, seen: set) -> str:
    chars = m.chars
    flat = _flat(v, m, seen)
    if len(flat) + level * 2 <= width or type(v) not in (list, dict) or not v or id(v) in seen:
        return flat
    m.chars = chars  # the one-line form is not printed: only what is
    seen.add(id(v))
    pad, end = "  " * (level + 1), "  " * level
    m.chars += len(v) * (len(pad) + 2)
    if type(v) is list:
        items = [pad + _pretty(i, level + 1, width, m, seen) for i in v]
        out = "[\n" + ",\n".join(items) + f"\n{end}]"
    else:
        items = [f"{pad}{_flat(k, m, seen)}: {_pretty(x, level + 1, width, m, seen)}" for k, x in v.items()]
        out = "{\n" + ",\n".join(items) + f"\n{end}}}"
    seen.discard(id(v))
    return out


def type_name(v: Any) -> str:
    """A value's type as the language names it in messages: null, boolean, number, string, array, object,
    lambda, or a host value's type (image, capability, ...)."""
    if v.__class__ is Lambda:
        return "lambda"
    if isinstance(v, HostValue):
        return v.type_name
    return typeof(v)


def describe(v: Any, width: int = 40) -> str:
    """A value named in a message: its type and a short preview (``number NaN``, ``string "nope"``,
    ``array [1, 2]``, ``null``)."""
    if v is None:
        return "null"
    if v.__class__ is Lambda or isinstance(v, HostValue):
        return type_name(v) if v.__class__ is Lambda else f"{type_name(v)} {preview(v, width)}"
    return f"{type_name(v)} {preview(v, width)}"


def preview(v: Any, width: int = 60, *, as_json: bool = False) -> str:
    """A value shown inside a message: as it displays (or as compact JSON), cut to ``width`` characters (a
    huge or deeply shared value costs no more than that)."""
    m = Meter(None, "preview")
    m.max_chars = m.max_nodes = 4 * width
    try:
        if as_json:
            s = _json_text(v, m, None)
        else:
            s = _flat(v, m, set()) if type(v) in (list, dict) else to_display(v)
    except LimitError:
        return f"a list of {len(v)} items" if type(v) is list else f"an object of {len(v)} keys"
    except ValueError:
        return "a list or object that contains itself"
    return s if len(s) <= width else s[:width - 1] + "…"



def strict_equal(a: Any, b: Any) -> bool:
    """``==``: no coercion; numbers by value; lists, objects and host values by identity."""
    ta, tb = type(a), type(b)
    if ta is int or ta is float:
        return (tb is int or tb is float) and a == b
    if ta is str:
        return tb is str and a == b
    if a is None or ta is bool:
        return a is b
    return a is b


class Image(HostValue):
    """An image value: pixels (H×W×C uint8 numpy array, C = 1, 3 or 4) plus a metadata dict.

    ``numpy.asarray(image)`` gives the pixels; ``to_pil()`` a Pillow image; ``to_data_url()`` a PNG
    data URL. Images are immutable: operations return new images.
    """

    type_name = "image"
    script_methods = frozenset({"width", "height", "size", "mode", "metadata"})
    _MODES = {1: "L", 3: "RGB", 4: "RGBA"}

    __slots__ = ("pixels", "metadata")

    def __init__(self, pixels, metadata: dict | None = None):
        import numpy as np

        arr = np.asarray(pixels)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"image pixels must be H×W×{{1,3,4}}, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            raise ValueError(f"image pixels must be uint8, got {arr.dtype}")
        arr = np.ascontiguousarray(arr)
        arr.flags.writeable = False
        self.pixels = arr
        self.metadata = dict(metadata or {})

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def mode(self) -> str:
        return self._MODES[self.pixels.shape[2]]

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        arr = self.pixels[:, :, 0] if self.pixels.shape[2] == 1 else self.pixels
        if dtype is not None and dtype != arr.dtype:
            return arr.astype(dtype)
        return np.array(arr) if copy else arr

    def to_pil(self):
        from .pixels.encode import to_pil

        return to_pil(self.pixels)

    @classmethod
    def from_pil(cls, img, metadata: dict | None = None) -> Image:
        from .pixels.decode import from_pil

        return cls(from_pil(img), metadata)

    def with_metadata(self, **changes) -> Image:
        return Image(self.pixels, {**self.metadata, **changes})

    def to_png_bytes(self) -> bytes:
        from .pixels.encode import encode

        return encode(self.pixels, "PNG")

    def to_data_url(self) -> str:
        from .pixels.encode import to_data_url

        return to_data_url(self.pixels)

    def to_json(self):
        return {"type": "image", "width": self.width, "height": self.height, "mode": self.mode,
                **({"seed": self.metadata["seed"]} if "seed" in self.metadata else {})}

    def __repr__(self) -> str:
        seed = f" seed={self.metadata['seed']}" if "seed" in self.metadata else ""
        return f"<image {self.width}×{self.height} {self.mode}{seed}>"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__
