"""Script ⇄ layers: replay a script onto a layer stack, and decompile a layer stack back into a script.

``replay(source, runtime)`` runs the script in the caller's Runtime and returns the canvas it leaves
(``mode="execute"``). With ``mode="canvas"`` ("replay only") nothing outside the canvas runs: each top-level
statement that uses only ``canvas.*`` and pure opcodes is executed, and every other statement — a capability
call, a log, a file read, anything that fails — becomes a locked, empty placeholder layer that holds the
statement (``layer.op``), so :func:`decompile` writes it back in place. Layer ids are the script's own;
placeholders get ``op<N>`` from the statement's position, so replaying the same script always gives the same
ids.

``decompile(stack)`` writes each layer as ``canvas.layer.create`` followed by what was drawn on it since it
was created or cleared — strokes as ``canvas.draw_stroke`` (points written as the raw ``[[x, y], ...]`` array
that recorded scripts use), placed images as ``canvas.layer.load_image`` with a PNG ``data:`` URL — then its
fields (``canvas.layer.update``). Replay's placeholder layers are written back as the statements they stand
for. With ``snapshot=True`` each layer is written as one PNG of its current pixels instead of its history.
Rasterization is deterministic, so replaying the script gives the same pixels bit for bit.

This module is on the script floor (design §14): the canvas below it knows no script, and it builds no
Runtime — the caller passes the one to run in (``Runtime(canvas_size=...)``, the REPL's, a server session's).
"""

from __future__ import annotations

from typing import Any

from .canvas.layers import Layer, LayerStack, Placed, Stroke
from .errors import ViwoError
from .nodes import Array, Atom, Node, from_data, to_data

MODES = ("execute", "canvas")


def replay(source: Any, runtime: Any, *, mode: str = "execute", filename: str | None = None) -> LayerStack:
    """Run ``source`` (text, JSON text, JSON data or nodes) in ``runtime`` and return its layer stack.

    ``runtime`` is the caller's Runtime (anything with ``parse``, ``run``, ``registry``, ``globals``,
    ``canvas`` and ``emit``); its canvas is drawn on and returned.
    """
    from .scope import Scope

    if mode not in MODES:
        raise ValueError(f"replay mode must be one of {MODES}, got {mode!r}")
    rt = runtime
    tree = rt.parse(source, filename=filename)
    if mode == "execute":
        rt.run(tree, filename=filename)
        return rt.canvas
    scope = Scope(rt.globals)
    statements = tree.items[1:] if isinstance(tree, Array) and tree.head == "std.seq" else (tree,)
    for i, stmt in enumerate(statements):
        if replayable(stmt, rt.registry):
            try:
                rt.run(stmt, filename=filename, scope=scope)
                continue
            except ViwoError as e:
                if not e.catchable:
                    raise
                rt.emit({"type": "warn", "message": f"replay: statement {i + 1} kept as a placeholder: {e.message}"})
        placeholder(rt.canvas, i, stmt)
    return rt.canvas


def placeholder(stack: LayerStack, index: int, stmt: Node):
    """A locked, empty layer standing for a statement that replay does not run."""
    base = f"op{index}"
    id_, k = base, 1
    while id_ in stack:
        k += 1
        id_ = f"{base}-{k}"
    head = stmt.head if isinstance(stmt, Array) else None
    active = stack.active
    layer = stack.create(id_, head or "statement", "raster")
    stack.active = active  # a placeholder is never where drawing goes
    layer.locked = True
    layer.op = to_data(stmt)
    return layer


def replayable(node: Node, registry) -> bool:
    """Whether replay-only mode runs a statement: it calls only canvas opcodes and pure opcodes, all known
    to ``registry`` (raw data positions are not calls). A live canvas session decides the same way."""
    stack = [node]
    while stack:
        n = stack.pop()
        if not isinstance(n, Array):
            continue
        head = n.items[0] if n.items else None
        if not (isinstance(head, Atom) and isinstance(head.value, str)):
            continue  # raw data (e.g. a legacy points array)
        spec = registry.get(head.value)
        if spec is None:
            return False
        if not (spec.pure or spec.name.startswith("canvas.")):
            return False
        for i, arg in enumerate(n.items[1:]):
            p = spec.param_at(i)
            kind = p.kind if p is not None else "value"
            if kind in ("raw", "names") and spec.name != "canvas.draw_stroke":
                continue  # never evaluated
            stack.append(arg)
    return True


# --- layers → script ---------------------------------------------------------------------------------

def png_data_url(rgba) -> str:
    """A ``data:image/png;base64,...`` URL of an H×W×4 uint8 array."""
    from .pixels.encode import to_data_url

    return to_data_url(rgba)


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
    from .syntax import to_text

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
