"""Models: configuration, resolution (names → folders), device policy and the one model manager.

Importing this package is cheap (no torch, no diffusers), and it knows no capability: the capabilities
that run models live in :mod:`viwoscript.capabilities` and ask ``runtime.models`` (a
:class:`~viwoscript.models.manager.ModelManager`) for weights. Hosts build a :class:`ModelConfig` and pass
:func:`viwoscript.capabilities.capabilities` to ``Runtime(capabilities=...)``::

    import viwoscript
    from viwoscript.capabilities import capabilities

    rt = viwoscript.Runtime(capabilities=capabilities({"default": "/models/sd15"}), grants="default")

``runtime.models`` holds every loaded weight (pipelines, ControlNets, annotators, upscaling and
face-restoration networks) under one byte budget; assign the same manager to several Runtimes to share
weights between them.
"""

from __future__ import annotations

from typing import Any

from .config import ModelConfig


def make_tiny(directory: Any, family: str = "sd15", **kw: Any):
    """Build a tiny random-weight model (see :mod:`viwoscript.models.tiny`)."""
    from .tiny import make_tiny as _make

    return _make(directory, family, **kw)


__all__ = ["ModelConfig", "make_tiny"]
