"""The canvas: layer stacks in numpy, exact anti-aliased strokes, compositing, replay and decompile.

Modules: :mod:`.layers` (``LayerStack``, the Runtime's ``runtime.canvas``), :mod:`.raster` (pure geometry:
stroke → coverage), :mod:`.composite` (blending and compositing math), :mod:`.colors`, :mod:`.sources`
(images from values, data URLs and files), :mod:`.replay`, :mod:`.decompile`, :mod:`.state`
(``.viwo-canvas`` files, PNG export). Nothing here is imported by ``import viwoscript``; numpy loads on
first use. See docs/canvas.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LayerStack", "decompile", "replay"]


def __getattr__(name: str) -> Any:
    if name == "LayerStack":
        from .layers import LayerStack

        return LayerStack
    if name == "replay":
        from .replay import replay

        return replay
    if name == "decompile":
        from .decompile import decompile

        return decompile
    raise AttributeError(f"module 'viwoscript.canvas' has no attribute {name!r}")
