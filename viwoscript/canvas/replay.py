"""Script → layer stack.

``replay(source)`` runs the script and returns the canvas it leaves (``mode="execute"``). With
``mode="canvas"`` ("replay only") nothing outside the canvas runs: each top-level statement that uses only
``canvas.*`` and pure opcodes is executed, and every other statement — a capability call, a log, a file
read, anything that fails — becomes a locked, empty placeholder layer that holds the statement
(``layer.op``), so :func:`~viwoscript.canvas.decompile.decompile` writes it back in place. Layer ids are the
script's own; placeholders get ``op<N>`` from the statement's position, so replaying the same script
always gives the same ids.
"""

from __future__ import annotations

from typing import Any

from ..errors import ViwoError
from ..nodes import Array, Atom, Node, to_data
from .layers import LayerStack

MODES = ("execute", "canvas")


def replay(source: Any, *, mode: str = "execute", runtime=None, canvas_size: tuple[int, int] | None = None,
           filename: str | None = None) -> LayerStack:
    """Run ``source`` (text, JSON text, JSON data or nodes) and return the resulting layer stack."""
    from ..runtime import Runtime

    if mode not in MODES:
        raise ValueError(f"replay mode must be one of {MODES}, got {mode!r}")
    rt = runtime if runtime is not None else Runtime(canvas_size=canvas_size or (1024, 1024))
    tree = rt.parse(source, filename=filename)
    if mode == "execute":
        rt.run(tree, filename=filename)
        return rt.canvas
    from ..evaluator import Scope

    scope = Scope(rt.globals)
    statements = tree.items[1:] if isinstance(tree, Array) and tree.head == "std.seq" else (tree,)
    for i, stmt in enumerate(statements):
        if _replayable(stmt, rt.registry):
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


def _replayable(node: Node, registry) -> bool:
    """Only canvas opcodes and pure opcodes, all known (raw data positions are not calls)."""
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
