"""Layer stack → script (JSON form, design §4) that recreates identical pixels when replayed.

Each layer is written as ``canvas.layer.create`` followed by what was drawn on it since it was created or
cleared — strokes as ``canvas.draw_stroke`` (points written as the raw ``[[x, y], ...]`` array that recorded
scripts use), placed images as ``canvas.layer.load_image`` with a PNG ``data:`` URL — then its fields
(``canvas.layer.update``). Replay's placeholder layers are written back as the statements they stand for.
With ``snapshot=True`` each layer is written as one PNG of its current pixels instead of its history.
Rasterization is deterministic, so replaying the script gives the same pixels bit for bit.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .layers import Layer, LayerStack, Placed, Stroke


def png_data_url(rgba: np.ndarray) -> str:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def decompile(stack: LayerStack, *, snapshot: bool = False) -> list:
    """The script, as JSON data: ``["std.seq", ...]``."""
    out: list = ["std.seq", ["canvas.size", stack.width, stack.height]]
    masks: list = []
    for layer in stack.layers:
        if layer.op is not None:
            out.append(layer.op)
            continue
        out.append(["canvas.layer.create", layer.id, layer.name, layer.type])
        out.extend(_drawing(layer, snapshot))
        props = _props(layer)
        if props:
            out.append(["canvas.layer.update", layer.id, props])
        if layer.mask_for is not None:
            masks.append(["canvas.layer.update", layer.id, {"maskFor": layer.mask_for}])
    out.extend(masks)  # after every layer exists
    if stack.active is not None or stack.layers:
        out.append(["canvas.layer.set_active", stack.active])
    return out


def decompile_text(stack: LayerStack, *, snapshot: bool = False) -> str:
    """The same script in the text form (points written as ``[[x y] ...]`` lists)."""
    from ..nodes import from_data
    from ..syntax import to_text

    script = decompile(stack, snapshot=snapshot)
    for stmt in script[1:]:
        if isinstance(stmt, list) and stmt and stmt[0] == "canvas.draw_stroke" and len(stmt) > 2:
            stmt[2] = ["list.new", *(["list.new", *p] for p in stmt[2])]
    return to_text(from_data(script))


def _drawing(layer: Layer, snapshot: bool) -> list:
    if snapshot:
        if layer.is_blank:
            return []
        px = layer.pixels
        if not px[:, :, 3].any():
            return []
        return [["canvas.layer.load_image", layer.id, png_data_url(px), 0, 0]]
    ops = []
    for item in layer.history:
        if isinstance(item, Stroke):
            ops.append(item.to_script(layer.id))
        elif isinstance(item, Placed):
            ops.append(["canvas.layer.load_image", layer.id, png_data_url(item.pixels), item.x, item.y])
    return ops


def _props(layer: Layer) -> dict:
    props: dict = {}
    if not layer.visible:
        props["visible"] = False
    if layer.opacity != 1.0:
        props["opacity"] = layer.opacity
    if layer.control_type is not None:
        props["controlType"] = layer.control_type
    if layer.locked:
        props["locked"] = True  # last: a locked layer refuses the drawing above
    return props
