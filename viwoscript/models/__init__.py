"""Models for the diffusers-backed capabilities: configuration, resolution, the pipeline manager.

Importing this package is cheap (no torch, no diffusers). Hosts use :class:`ModelConfig` and
:func:`capabilities`::

    import viwoscript
    from viwoscript.models import capabilities

    rt = viwoscript.Runtime(capabilities=capabilities({"default": "/models/sd15"}), grants="default")

``runtime.models`` (a :class:`~viwoscript.models.manager.ModelManager`) holds what is loaded; assign
the same manager to several Runtimes to share weights between them.
"""

from __future__ import annotations

from typing import Any

from .config import ModelConfig


def capabilities(config: ModelConfig | dict | None) -> list:
    """Configured ``diffusers.generate``, ``diffusers.inpaint`` and ``controlnet.generate`` classes for
    ``Runtime(capabilities=...)`` (a ``[models]`` table or a :class:`ModelConfig`), plus a configured
    ``diffusers.upscale`` instance when ``upscale_dir`` or ``face_detector`` is set."""
    from ..capabilities.controlnet import ControlNetGenerate
    from ..capabilities.diffusion import DiffusersGenerate
    from ..capabilities.inpaint import DiffusersInpaint

    if not isinstance(config, ModelConfig):
        config = ModelConfig.from_table(config)
    caps: list = [cls.configured(config) for cls in (DiffusersGenerate, DiffusersInpaint, ControlNetGenerate)]
    if config.upscale_dir or config.face_detector:
        from ..capabilities.upscale import Upscale

        caps.append(Upscale(models_dir=config.upscale_dir, face_detector=config.face_detector,
                            device=config.device))
    return caps


def make_tiny(directory: Any, family: str = "sd15", **kw: Any):
    """Build a tiny random-weight model (see :mod:`viwoscript.models.tiny`)."""
    from .tiny import make_tiny as _make

    return _make(directory, family, **kw)


__all__ = ["ModelConfig", "capabilities", "make_tiny"]
