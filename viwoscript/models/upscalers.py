"""Upscaling and face-restoration weights: where the official files are, and loading them.

The official ``.pth`` files (Real-ESRGAN, ESRGAN, SRVGGNetCompact, GFPGAN) are found in host
configuration (never downloaded) and loaded with spandrel, whose restricted unpickler reads only
tensors. Loaded networks are held by the model manager (:meth:`ModelManager.hold`), which budgets their
bytes with every other weight. torch and spandrel are imported inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CapabilityError

#: Official file names, looked for in the models directory, per script-visible model name and net scale.
KNOWN_FILES: dict[str, dict[int, tuple[str, ...]]] = {
    "realesrgan": {4: ("RealESRGAN_x4plus.pth",), 2: ("RealESRGAN_x2plus.pth",)},
    "realesrgan-anime": {4: ("RealESRGAN_x4plus_anime_6B.pth",)},
    "realesrgan-general": {4: ("realesr-general-x4v3.pth",)},
    "esrgan": {4: ("ESRGAN_x4.pth", "RRDB_ESRGAN_x4.pth")},
    "gfpgan": {1: ("GFPGANv1.4.pth", "GFPGANv1.3.pth")},
}
#: The face detector's file (OpenCV YuNet), looked for in the models directory.
DETECTOR_FILES = ("face_detection_yunet_2023mar.onnx", "face_detection_yunet.onnx")
#: Environment variable naming the models directory when the host passes none.
MODELS_DIR_ENV = "VIWO_UPSCALE_MODELS"
INSTALL_HINT = "pip install 'viwoscript[diffusion]'"


@dataclass
class UpscaleConfig:
    """Host configuration: where weight files are, which device. Never visible to scripts.

    ``models_dir``: a folder holding official files under their release names (see :data:`KNOWN_FILES`);
    ``models``: explicit ``name -> file`` entries (a name may be new, e.g. ``"4x-ultrasharp"``; the
    names ``realesrgan@2`` / ``realesrgan@4`` pick the file for one scale; ``face_detector`` names the
    YuNet ONNX file); ``device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    """

    models_dir: Path | None = None
    models: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"

    def model_names(self) -> list[str]:
        names = set(KNOWN_FILES) - {"gfpgan"}
        names |= {k.split("@")[0] for k in self.models if k not in ("face_detector", "gfpgan")}
        return sorted(names)

    def weight_file(self, name: str, where: str, scale: int | None = None) -> tuple[Path, int | None]:
        """The file for ``name`` (preferring one whose net scale is ``scale``) and that scale if known."""
        looked: list[str] = []
        candidates: list[tuple[str, int | None]] = []
        if scale is not None:
            candidates.append((f"{name}@{scale}", scale))
        candidates.append((name, None))
        for s in sorted(KNOWN_FILES.get(name, {}), key=lambda s: (s != scale, -s)):
            candidates.append((f"{name}@{s}", s))
        for key, s in candidates:
            if key in self.models:
                path = Path(os.fspath(self.models[key])).expanduser()
                if path.is_file():
                    return path, s
                looked.append(str(path))
        folder = self.folder()
        if folder is not None:
            for s in sorted(KNOWN_FILES.get(name, {}), key=lambda s: (s != scale, -s)):
                for fname in KNOWN_FILES[name][s]:
                    path = folder / fname
                    if path.is_file():
                        return path, s
                    looked.append(str(path))
        known = name in KNOWN_FILES or any(k.split("@")[0] == name for k in self.models)
        if not known:
            raise CapabilityError(f"{where}: unknown model {name!r}",
                                  hint="models: " + ", ".join(self.model_names()))
        files = ", ".join(f for fs in KNOWN_FILES.get(name, {}).values() for f in fs) or f"a file for {name!r}"
        raise CapabilityError(f"{where}: no weight file for model {name!r} is configured"
                              + (f" (looked for {', '.join(looked)})" if looked else ""),
                              hint=f"put {files} in the models directory ({MODELS_DIR_ENV}=/path or "
                                   f"Upscale(models_dir=...)); weights are never downloaded")

    def detector_file(self) -> Path | None:
        if "face_detector" in self.models:
            path = Path(os.fspath(self.models["face_detector"])).expanduser()
            return path if path.is_file() else None
        folder = self.folder()
        for fname in DETECTOR_FILES:
            if folder is not None and (folder / fname).is_file():
                return folder / fname
        return None

    def folder(self) -> Path | None:
        if self.models_dir is not None:
            return Path(self.models_dir).expanduser()
        env = os.environ.get(MODELS_DIR_ENV)
        return Path(env).expanduser() if env else None


def require_torch(where: str):
    try:
        import spandrel  # noqa: F401
        import torch
    except ImportError as e:
        raise CapabilityError(f"{where}: needs torch and spandrel ({e.name} is not installed)",
                              hint=INSTALL_HINT) from e
    return torch


def pick_device(torch, device: str):
    from .device import torch_device

    return torch_device(device)


class LoadedNet:
    """A loaded spandrel model: the module on its device, its scale, dtype and architecture id."""

    def __init__(self, path: Path, descriptor, device, dtype):
        self.path = path
        self.descriptor = descriptor
        self.device = device
        self.dtype = dtype
        self.scale = int(descriptor.scale)
        self.arch = descriptor.architecture.id
        self.multiple_of = int(getattr(descriptor.size_requirements, "multiple_of", 1) or 1)

    @property
    def nbytes(self) -> int:
        """Bytes of the network's parameters and buffers (what the model manager budgets)."""
        from .manager import module_bytes

        return module_bytes([self.descriptor.model])

    def __call__(self, x):
        return self.descriptor(x)


def load_net(path: Path, device_name: str, where: str, purpose: str = "SR") -> LoadedNet:
    """Load an official weight file through spandrel (fp16 on CUDA where supported, else fp32)."""
    torch = require_torch(where)
    from spandrel import ModelLoader

    device = pick_device(torch, device_name)
    try:
        desc = ModelLoader(device="cpu").load_from_file(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file becomes one clear error
        raise CapabilityError(f"{where}: cannot load {path.name}: {type(e).__name__}: {e}"[:400],
                              hint="use an official Real-ESRGAN/ESRGAN/Compact/GFPGAN .pth file") from e
    is_face = desc.purpose == "FaceSR"
    if (purpose == "FaceSR") != is_face:
        want = "a face-restoration model (GFPGAN)" if purpose == "FaceSR" else "a super-resolution model"
        raise CapabilityError(f"{where}: {path.name} is a {desc.architecture.id} model, not {want}",
                              hint="check which file is configured for this model name")
    dtype = torch.float32
    if device.type == "cuda" and desc.supports_half:
        dtype = torch.float16
    elif device.type == "cuda" and desc.supports_bfloat16:
        dtype = torch.bfloat16
    desc.to(device)
    if dtype != torch.float32:
        desc.to(dtype)
    desc.eval()
    return LoadedNet(path, desc, device, dtype)
