"""Canvas state files (``.viwo-canvas``) and PNG export.

A state file is msgpack: ``{"format": "viwo-canvas", "version": 1, "width", "height", "active", "layers":
[...]}``; each layer has its fields, its pixels (zlib-compressed RGBA rows, or null when blank), replay's
``op`` and its drawing history (strokes with their points as little-endian float64, images as zlib RGBA)
so that a loaded canvas still decompiles to strokes. Loading checks every field and size before use:
a damaged or hostile file gives a :class:`~viwoscript.errors.ScriptError`, never a crash.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScriptError
from ..pixels.colors import parse_color
from .layers import LAYER_TYPES, TOOLS, Layer, LayerStack, Placed, Stroke, parse_points

FORMAT = "viwo-canvas"
VERSION = 1
SUFFIX = ".viwo-canvas"
OP = "canvas.load"


def dumps(stack: LayerStack) -> bytes:
    import msgpack

    layers = []
    for layer in stack.layers:
        pixels = None if layer.is_blank else zlib.compress(layer.pixels.tobytes(), 1)
        layers.append({
            "id": layer.id, "name": layer.name, "type": layer.type, "visible": layer.visible,
            "opacity": layer.opacity, "locked": layer.locked, "controlType": layer.control_type,
            "maskFor": layer.mask_for, "op": layer.op, "pixels": pixels,
            "history": [_dump_item(item) for item in layer.history],
        })
    doc = {"format": FORMAT, "version": VERSION, "width": stack.width, "height": stack.height,
           "active": stack.active, "layers": layers}
    return msgpack.packb(doc, use_bin_type=True)


def _dump_item(item: Stroke | Placed) -> dict:
    if isinstance(item, Stroke):
        return {"kind": "stroke", "points": item.points.astype("<f8").tobytes(), "color": item.color_text,
                "size": item.size, "tool": item.tool}
    h, w = item.pixels.shape[:2]
    return {"kind": "image", "width": w, "height": h, "x": item.x, "y": item.y,
            "data": zlib.compress(item.pixels.tobytes(), 1)}


def save(stack: LayerStack, path: str | os.PathLike) -> Path:
    """Write the canvas state (atomically: a temporary file renamed into place)."""
    from ..io.files import atomic_write

    return atomic_write(path, dumps(stack))


def load(path: str | os.PathLike, **kw) -> LayerStack:
    return loads(Path(path).read_bytes(), **kw)


def loads(data: bytes, **stack_kw) -> LayerStack:
    """Rebuild a LayerStack from :func:`dumps` output (``stack_kw`` go to ``LayerStack``: limits, fetch_url)."""
    import msgpack

    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=1 << 31)
    except (msgpack.UnpackException, ValueError, TypeError) as e:
        raise ScriptError(f"{OP}: not a canvas state file ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ScriptError(f"{OP}: not a canvas state file", hint=f"expected a {SUFFIX} file written by viwoscript")
    if doc.get("version") != VERSION:
        raise ScriptError(f"{OP}: unsupported canvas state version {doc.get('version')!r}",
                          hint=f"this viwoscript reads version {VERSION}")
    stack = LayerStack(_int(doc, "width"), _int(doc, "height"), **stack_kw)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ScriptError(f"{OP}: layers must be a list")
    for entry in layers:
        _load_layer(stack, entry)
    ids = stack.ids()
    for layer in stack.layers:
        if layer.mask_for is not None and layer.mask_for not in ids:
            raise ScriptError(f"{OP}: layer {layer.id!r} has maskFor {layer.mask_for!r}, which does not exist")
    active = doc.get("active")
    stack.active = None
    if active is not None:
        if active not in ids:
            raise ScriptError(f"{OP}: the active layer {active!r} does not exist")
        stack.active = _str(active, "active")
    return stack


def _load_layer(stack: LayerStack, e: Any) -> None:
    if not isinstance(e, dict):
        raise ScriptError(f"{OP}: a layer entry must be a map")
    ltype = e.get("type")
    if ltype not in LAYER_TYPES:
        raise ScriptError(f"{OP}: unknown layer type {ltype!r}")
    layer = stack.create(_str(e.get("id"), "id"), _str(e.get("name"), "name"), ltype)
    layer.visible = _bool(e.get("visible"), "visible")
    layer.locked = _bool(e.get("locked"), "locked")
    opacity = e.get("opacity")
    if type(opacity) not in (int, float) or not 0 <= opacity <= 1:
        raise ScriptError(f"{OP}: opacity must be a number from 0 to 1")
    layer.opacity = float(opacity)
    layer.control_type = _opt_str(e.get("controlType"), "controlType")
    layer.mask_for = _opt_str(e.get("maskFor"), "maskFor")
    layer.op = e.get("op")
    pixels = e.get("pixels")
    if pixels is not None:
        layer._pixels = _inflate(pixels, (stack.height, stack.width, 4), f"pixels of layer {layer.id!r}")
    history = e.get("history") or []
    if not isinstance(history, list):
        raise ScriptError(f"{OP}: history of layer {layer.id!r} must be a list")
    layer.history = [_load_item(item, stack, layer) for item in history]


def _load_item(item: Any, stack: LayerStack, layer: Layer) -> Stroke | Placed:
    if not isinstance(item, dict):
        raise ScriptError(f"{OP}: a history entry must be a map")
    kind = item.get("kind")
    if kind == "stroke":
        raw = item.get("points")
        if not isinstance(raw, bytes) or len(raw) % 16 or not raw:
            raise ScriptError(f"{OP}: bad stroke points in layer {layer.id!r}")
        pts = parse_points(np.frombuffer(raw, "<f8").astype(np.float64).reshape(-1, 2), OP)
        tool = item.get("tool")
        size = item.get("size")
        if tool not in TOOLS or type(size) not in (int, float) or not math.isfinite(size) or size <= 0:
            raise ScriptError(f"{OP}: bad stroke in layer {layer.id!r}")
        color_text = item.get("color")
        color = (0, 0, 0, 1.0) if color_text is None and tool == "eraser" else parse_color(color_text, OP)
        return Stroke(pts, color, color_text, float(size), tool)
    if kind == "image":
        w, h = _int(item, "width"), _int(item, "height")
        if w * h > stack.max_pixels:
            raise ScriptError(f"{OP}: image in layer {layer.id!r} is too large")
        x, y = item.get("x"), item.get("y")
        if type(x) is not int or type(y) is not int:
            raise ScriptError(f"{OP}: bad image position in layer {layer.id!r}")
        px = _inflate(item.get("data"), (h, w, 4), f"image in layer {layer.id!r}")
        px.flags.writeable = False
        return Placed(px, x, y)
    raise ScriptError(f"{OP}: unknown history entry {kind!r} in layer {layer.id!r}")


def _inflate(data: Any, shape: tuple[int, int, int], what: str) -> np.ndarray:
    if not isinstance(data, bytes):
        raise ScriptError(f"{OP}: {what} must be bytes")
    need = shape[0] * shape[1] * shape[2]
    try:
        d = zlib.decompressobj()
        raw = d.decompress(data, need + 1)
    except zlib.error:
        raise ScriptError(f"{OP}: {what} are corrupt") from None
    if len(raw) != need:
        raise ScriptError(f"{OP}: {what} have the wrong size")
    return np.frombuffer(raw, np.uint8).reshape(shape).copy()


def _int(d: dict, key: str) -> int:
    v = d.get(key)
    if type(v) is not int or v < 1:
        raise ScriptError(f"{OP}: {key} must be a positive integer")
    return v


def _str(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ScriptError(f"{OP}: {key} must be a string")
    return v


def _opt_str(v: Any, key: str) -> str | None:
    return None if v is None else _str(v, key)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ScriptError(f"{OP}: {key} must be true or false")
    return v


def save_png(stack: LayerStack, path: str | os.PathLike, layer: str | None = None, *,
             background: Any = None) -> Path:
    """Write one layer (``layer=id``) or the composite as a PNG file."""
    from ..io.files import atomic_write

    image = stack.layer_image(layer) if layer is not None else stack.composite(background)
    return atomic_write(path, image.to_png_bytes(), fsync=False)
