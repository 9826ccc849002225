"""The canvas: layer stacks in numpy, exact anti-aliased strokes, compositing, state files.

Modules: :mod:`.layers` (``LayerStack``, the Runtime's ``runtime.canvas``), :mod:`.raster` (pure geometry:
stroke → coverage), :mod:`.composite` (blending and compositing math), :mod:`.sources` (images from
values, data URLs and files), :mod:`.state` (``.viwo-canvas`` files, PNG export). Colours, decoding and
channel conversions are the pixels floor's (:mod:`viwoscript.pixels`). The canvas knows no script:
replaying a script onto layers and decompiling layers into a script live one floor up, in
:mod:`viwoscript.replay`. Nothing here is imported by ``import viwoscript``; numpy loads on first use. See
docs/canvas.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LayerStack"]


def __getattr__(name: str) -> Any:
    if name == "LayerStack":
        from .layers import LayerStack

        return LayerStack
    raise AttributeError(f"module 'viwoscript.canvas' has no attribute {name!r}")
