"""CSS colours → ``(r, g, b, a)`` with integer channels 0–255 and alpha a float in [0, 1].

Accepted: ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``, ``rgb(r, g, b)``, ``rgba(r, g, b, a)`` (also
the CSS Color 4 forms ``rgb(r g b / a)`` and percentages), the CSS named colours and ``transparent``.
Anything else is an :class:`~viwoscript.errors.ArgumentError` naming the opcode: a bad colour is never
guessed at. A list ``[r, g, b]`` or ``[r, g, b, a]`` (channels 0–255, alpha 0–1) is accepted too.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import ArgumentError

Color = tuple[int, int, int, float]

_HINT = 'write a colour as "#rrggbb", "#rrggbbaa", "rgb(255, 0, 0)", "rgba(0, 0, 255, 0.5)" or a CSS name like "red"'
_HEX = re.compile(r"#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FUNC = re.compile(r"(rgba?)\((.*)\)", re.IGNORECASE | re.DOTALL)
_NUM = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def _named(name: str) -> Color | None:
    """A CSS colour name's value, or None.

    Pillow's table (the CSS Color 3 names, 148 with rebeccapurple) holds "#rrggbb" strings, but
    ``ImageColor.getrgb`` caches what it resolved back into it as ``(r, g, b)`` tuples (after any
    ``Image.new(..., "red")`` in the process), so both forms are read.
    """
    from PIL import ImageColor

    value = ImageColor.colormap.get(name)
    if isinstance(value, tuple) and len(value) in (3, 4):
        r, g, b = (int(v) for v in value[:3])
        return r, g, b, value[3] / 255 if len(value) == 4 else 1.0
    if isinstance(value, str) and _HEX.fullmatch(value):
        return parse_color(value)
    return None


def parse_color(value, op: str = "color") -> Color:
    """Parse a colour value; raise ``ArgumentError("<op>: invalid colour ...")`` when it is not one."""
    if isinstance(value, list):
        return _from_list(value, op)
    if not isinstance(value, str):
        raise ArgumentError(f"{op}: expected a colour string, got {_show(value)}", hint=_HINT)
    text = value.strip()
    low = text.lower()
    if _HEX.fullmatch(text):
        h = text[1:]
        if len(h) in (3, 4):
            h = "".join(c * 2 for c in h)
        r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
        a = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
        return r, g, b, a
    m = _FUNC.fullmatch(text)
    if m:
        return _from_func(value, m.group(2), op)
    if low == "transparent":
        return 0, 0, 0, 0.0
    named = _named(low)
    if named is not None:
        return named
    raise ArgumentError(f"{op}: invalid colour {_show(value)}", hint=_HINT)


def _from_func(value: str, body: str, op: str) -> Color:
    body = body.strip()
    if "/" in body:
        left, _, alpha = body.partition("/")
        parts = left.split()
        if "," in left or len(parts) != 3:
            raise ArgumentError(f"{op}: invalid colour {_show(value)}", hint=_HINT)
        parts.append(alpha.strip())
    elif "," in body:
        parts = [p.strip() for p in body.split(",")]
    else:
        parts = body.split()
    if len(parts) not in (3, 4) or not all(_NUM.fullmatch(p) for p in parts):
        raise ArgumentError(f"{op}: invalid colour {_show(value)}", hint=_HINT)
    channels = []
    for p in parts[:3]:
        v = float(p[:-1]) * 255 / 100 if p.endswith("%") else float(p)
        if not 0 <= v <= 255:
            raise ArgumentError(f"{op}: colour channel {p} out of range 0–255 in {_show(value)}", hint=_HINT)
        channels.append(int(math.floor(v + 0.5)))
    a = 1.0
    if len(parts) == 4:
        p = parts[3]
        a = float(p[:-1]) / 100 if p.endswith("%") else float(p)
        if not 0 <= a <= 1:
            raise ArgumentError(f"{op}: colour alpha {p} out of range 0–1 in {_show(value)}", hint=_HINT)
    return channels[0], channels[1], channels[2], a


def _from_list(value: list, op: str) -> Color:
    ok = len(value) in (3, 4) and all(type(v) in (int, float) and math.isfinite(v) for v in value)
    if not ok or not all(0 <= v <= 255 for v in value[:3]) or (len(value) == 4 and not 0 <= value[3] <= 1):
        raise ArgumentError(f"{op}: invalid colour {_show(value)}",
                            hint="a colour list is [r, g, b] or [r, g, b, a] with channels 0–255 and alpha 0–1")
    r, g, b = (int(math.floor(v + 0.5)) for v in value[:3])
    return r, g, b, float(value[3]) if len(value) == 4 else 1.0


def to_css(color: Color) -> str:
    """The canonical text of a colour: ``#rrggbb`` when opaque, else ``rgba(r, g, b, a)``."""
    r, g, b, a = color
    if a == 1:
        return f"#{r:02x}{g:02x}{b:02x}"
    return f"rgba({r}, {g}, {b}, {a!r})"


def _show(value) -> str:
    """A short rendering of a rejected colour value in the language's spelling (pixels know no values)."""
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= 60 else value[:60], ensure_ascii=False)
    elif value is None or isinstance(value, bool):
        text = json.dumps(value)
    elif isinstance(value, int | float):
        text = _number(value)
    elif isinstance(value, list):
        if len(value) <= 5 and all(type(v) in (int, float) for v in value):
            text = "[" + ", ".join(_number(v) for v in value) + "]"
        else:
            text = f"a list of {len(value)} items"
    elif isinstance(value, dict):
        text = "an object"
    else:
        text = f"a value of type {getattr(value, 'type_name', type(value).__name__)}"
    return text if len(text) <= 60 else text[:57] + "..."


def _number(v: float) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
    return repr(v)
