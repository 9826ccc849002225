"""Capabilities: how scripts reach anything powerful (image generation, files, the store).

Plugin authors subclass :class:`Capability` and declare methods with :func:`method` and
:class:`ParamSpec`; hosts grant them with ``Runtime(grants=...)``; scripts use ``get_capability`` and
``std.call_method``. See ``docs/capabilities.md``.

:func:`capabilities` builds the model-running capabilities from a host's model configuration::

    import viwoscript
    from viwoscript.capabilities import capabilities

    rt = viwoscript.Runtime(capabilities=capabilities({"default": "/models/sd15"}), grants="default")
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


def capabilities(config=None) -> list:
    """Configured ``diffusers.generate``, ``diffusers.inpaint`` and ``controlnet.generate`` classes for
    ``Runtime(capabilities=...)`` from a ``[models]`` table or a :class:`~viwoscript.models.ModelConfig`,
    plus a configured ``diffusers.upscale`` instance when ``upscale_dir`` or ``face_detector`` is set.
    Cheap: nothing loads until a script calls a method (weights then go to ``runtime.models``)."""
    from ..models.config import ModelConfig
    from .controlnet import ControlNetGenerate
    from .diffusion import DiffusersGenerate
    from .inpaint import DiffusersInpaint

    if not isinstance(config, ModelConfig):
        config = ModelConfig.from_table(config)
    caps: list = [cls.configured(config) for cls in (DiffusersGenerate, DiffusersInpaint, ControlNetGenerate)]
    if config.upscale_dir or config.face_detector:
        from .upscale import Upscale

        caps.append(Upscale(models_dir=config.upscale_dir, face_detector=config.face_detector,
                            device=config.device))
    return caps


__all__ = ["MODEL_LIMITS", "capabilities", "CallContext", "Capability", "Limit", "MethodSpec", "ParamSpec", "Workload",
           "image_workload", "method"]
