"""Runtime values and the conversions the language defines (truthiness, number and value to text).

Script values are plain Python: ``None``, ``bool``, ``int``/``float``, ``str``, ``list``, ``dict``,
plus :class:`Lambda` and the host values (``Image``, ``CapabilityHandle``, ...) defined elsewhere.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_REPR_RE = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?\Z")
MAX_SAFE_INT = 2**53


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


def to_text(v: Any, _seen: set[int] | None = None) -> str:
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
    if t is list:
        seen = _seen if _seen is not None else set()
        if id(v) in seen:
            return ""
        seen.add(id(v))
        try:
            return ",".join("" if item is None else to_text(item, seen) for item in v)
        finally:
            seen.discard(id(v))
    if isinstance(v, Lambda):
        return repr(v)
    try:
        return to_json_text(v)
    except ValueError:
        from .errors import ScriptError

        raise ScriptError("cannot convert an object that contains itself to text",
                          hint="convert a part of it, or build it without the self-reference") from None


def to_json_value(v: Any, _seen: set[int] | None = None) -> Any:
    """A JSON-safe copy (NaN/Infinity → null, lambdas → null, host values → their JSON form)."""
    t = type(v)
    if v is None or t is bool or t is str or t is int:
        return v
    if t is float:
        return v if math.isfinite(v) else None
    seen = _seen if _seen is not None else set()
    if t is list or t is dict:
        if id(v) in seen:
            raise ValueError("cyclic structure")
        seen.add(id(v))
        try:
            if t is list:
                return [to_json_value(i, seen) for i in v]
            return {k: to_json_value(val, seen) for k, val in v.items()}
        finally:
            seen.discard(id(v))
    if isinstance(v, HostValue):
        return to_json_value(v.to_json(), seen)
    return None


def to_json_text(v: Any, indent: int | None = None) -> str:
    """``JSON.stringify``: numbers written as JavaScript writes them, NaN/Infinity and lambdas as null."""
    out: list[str] = []
    _write_json(to_json_value(v), out, indent, 0)
    return "".join(out)


def _write_json(v: Any, out: list[str], indent: int | None, level: int) -> None:
    t = type(v)
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif t is int or t is float:
        out.append(js_number(v))
    elif t is str:
        out.append(json.dumps(v, ensure_ascii=False))
    elif t is list or t is dict:
        if not v:
            out.append("[]" if t is list else "{}")
            return
        open_, close = ("[", "]") if t is list else ("{", "}")
        pad = "" if indent is None else "\n" + " " * (indent * (level + 1))
        sep = "," if indent is None else ","
        colon = ":" if indent is None else ": "
        out.append(open_)
        for i, item in enumerate(v.items() if t is dict else v):
            if i:
                out.append(sep)
            out.append(pad)
            if t is dict:
                out.append(json.dumps(item[0], ensure_ascii=False))
                out.append(colon)
                item = item[1]
            _write_json(item, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + " " * (indent * level))
        out.append(close)
    else:  # pragma: no cover - to_json_value leaves only JSON data
        out.append("null")


def to_display(v: Any) -> str:
    """How a value prints as a result: strings quoted, numbers as JavaScript prints them."""
    t = type(v)
    if t is str:
        return json.dumps(v, ensure_ascii=False)
    if t is int or t is float:
        return js_number(v)
    if v is None or t is bool:
        return to_text(v)
    if t is list:
        return "[" + ", ".join(to_display(i) for i in v) + "]"
    if t is dict:
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {to_display(x)}" for k, x in v.items()) + "}"
    return repr(v)


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
