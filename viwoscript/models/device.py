"""Device policy: which device and dtype weights load on (torch is imported inside the functions).

CUDA with float16 when available (bfloat16 or float32 on request), else the CPU with float32 (never
float16 on a CPU). Every loader asks here: diffusers pipelines, ControlNets and their annotators, the
upscaling and face-restoration networks.
"""

from __future__ import annotations

from typing import Any

from ..errors import CapabilityError


def resolve_device(name: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when CUDA is available, else ``"cpu"``; a configured CUDA device that is
    not there is an error with a hint."""
    import torch

    device = name or "auto"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CapabilityError(f"models: device {device!r} is configured but CUDA is not available",
                              hint="set device = \"cpu\" (or \"auto\") under [models]")
    return device


def device_policy(config: Any) -> tuple[str, Any]:
    """``(device, torch dtype)`` for a :class:`~viwoscript.models.config.ModelConfig` on this machine."""
    import torch

    device = resolve_device(config.device)
    if device == "cpu" or device == "mps":
        dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
    else:
        dtype = {"auto": torch.float16, "float16": torch.float16, "bfloat16": torch.bfloat16,
                 "float32": torch.float32}[config.dtype]
    return device, dtype


def torch_device(name: str = "auto") -> Any:
    """A ``torch.device`` for a configured device name (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    return torch.device(resolve_device(name))
