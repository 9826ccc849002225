"""Capabilities: how scripts reach anything powerful (image generation, files, the store).

Plugin authors subclass :class:`Capability` and declare methods with :func:`method` and
:class:`ParamSpec`; hosts grant them with ``Runtime(grants=...)``; scripts use ``get_capability`` and
``std.call_method``. See ``docs/capabilities.md``.
"""

from __future__ import annotations

from .base import (
    MODEL_LIMITS,
    CallContext,
    Capability,
    Limit,
    MethodSpec,
    ParamSpec,
    Workload,
    image_workload,
    method,
)

__all__ = ["MODEL_LIMITS", "CallContext", "Capability", "Limit", "MethodSpec", "ParamSpec", "Workload",
           "image_workload", "method"]
