"""Super-resolution networks for ``diffusers.upscale``: finding weight files, loading, tiled inference.

Weights are the official ``.pth`` files (Real-ESRGAN, ESRGAN, SRVGGNetCompact, GFPGAN), found in host
configuration (never downloaded) and loaded with spandrel, whose restricted unpickler reads only tensors.
torch and spandrel are imported inside functions: the module imports without the diffusion extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
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
MIN_TILE = 32


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
    from ..models.device import torch_device

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
        from ..models.manager import module_bytes

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


def is_oom(exc: BaseException) -> bool:
    torch = __import__("torch")
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool):
    """1-D blending weights of a tile: linear ramps over the overlap on sides that touch another tile."""
    import numpy as np

    w = np.ones(n, dtype=np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = np.minimum(w[:overlap], r[: min(overlap, n)])
        if not at_end:
            w[-overlap:] = np.minimum(w[-overlap:], r[::-1][-min(overlap, n):])
    return w


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def tiled(net: LoadedNet, rgb, tile: int, overlap: int, progress: Callable[[int, int], None] | None = None,
          check: Callable[[], None] | None = None):
    """Run ``net`` over an H×W×3 uint8 array in overlapping tiles; returns the (H·s)×(W·s)×3 uint8 result.

    Tiles overlap by ``overlap`` source pixels and are blended with linear ramps, so seams vanish; a tile
    that does not fit in memory halves the tile size and starts again (down to :data:`MIN_TILE`). Returns
    ``(pixels, tile size used)``.
    """
    while True:
        try:
            return _tiled_once(net, rgb, tile, overlap, progress, check), tile
        except Exception as e:
            if not is_oom(e) or tile // 2 < MIN_TILE:
                raise
            torch = __import__("torch")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            tile //= 2
            overlap = min(overlap, tile // 4)


def _tiled_once(net, rgb, tile, overlap, progress, check):
    import numpy as np
    import torch

    with torch.inference_mode():
        return blend_tiles(rgb, tile, overlap, lambda patch: _run_patch(net, patch, net.multiple_of, net.scale,
                                                                        torch, np),
                           scale=net.scale, multiple_of=net.multiple_of, progress=progress, check=check)


def blend_tiles(rgb, tile: int, overlap: int, run: Callable, *, scale: int = 1, multiple_of: int = 1,
                min_tile: int = MIN_TILE, progress: Callable[[int, int], None] | None = None,
                check: Callable[[], None] | None = None):
    """Run ``run`` over an H×W×3 uint8 array in overlapping tiles and blend the results seamlessly.

    ``run(patch)`` gets an h×w×3 uint8 patch and returns its float32 result (h·scale × w·scale × 3, in
    0..1). Tiles overlap by ``overlap`` source pixels and are blended with linear ramps (feathered), so
    seams vanish. Tiles run row by row; a row is blended horizontally into a float strip, strips are
    blended vertically, and rows no later tile touches go straight to the uint8 output, so the float
    buffers hold about two tile rows whatever the image height. Used by the SR networks and by
    ``upscaleImg2Img``.
    """
    import numpy as np

    h, w, _ = rgb.shape
    s = scale
    m = multiple_of
    tile = max(min_tile, tile // m * m)
    overlap = max(0, min(overlap, tile // 2))
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    out = np.empty((h * s, w * s, 3), dtype=np.uint8)
    total = len(ys) * len(xs)
    done = 0
    num = den = None  # vertical accumulators for output rows [top, top + len(num))
    top = 0
    for iy, y in enumerate(ys):
        ph = min(tile, h - y)
        row = np.zeros((ph * s, w * s, 3), dtype=np.float32)
        rw = np.zeros((1, w * s, 1), dtype=np.float32)
        for x in xs:
            if check is not None:
                check()
            pw = min(tile, w - x)
            res = run(rgb[y:y + ph, x:x + pw])
            wx = _ramp(pw * s, overlap * s, x == 0, x + pw >= w)[None, :, None]
            row[:, x * s:(x + pw) * s] += res * wx
            rw[:, x * s:(x + pw) * s] += wx
            done += 1
            if progress is not None:
                progress(done, total)
        row /= rw
        wy = _ramp(ph * s, overlap * s, y == 0, y + ph >= h)[:, None, None]
        end = (y + ph) * s
        if num is None:
            num, den, top = row * wy, np.broadcast_to(wy, (ph * s, 1, 1)).copy(), y * s
        else:
            grow = end - (top + len(num))
            if grow > 0:
                num = np.concatenate([num, np.zeros((grow, w * s, 3), np.float32)])
                den = np.concatenate([den, np.zeros((grow, 1, 1), np.float32)])
            a = y * s - top
            num[a:a + ph * s] += row * wy
            den[a:a + ph * s] += wy
        final = (ys[iy + 1] * s if iy + 1 < len(ys) else h * s) - top
        out[top:top + final] = (num[:final] / den[:final] * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
        num, den, top = num[final:], den[final:], top + final
    return out


def pad_to_multiple(patch, m: int):
    """``patch`` padded at the bottom and right to multiples of ``m`` (reflected where it can be)."""
    import numpy as np

    ph, pw = patch.shape[:2]
    py, px = (-ph) % m, (-pw) % m
    if py or px:
        patch = np.pad(patch, ((0, py), (0, px), (0, 0)), mode="reflect" if min(ph, pw) > max(py, px) else "edge")
    return patch


def _run_patch(net, patch, m, s, torch, np):
    """The net's float32 output (h·s × w·s × 3, 0..1) for one uint8 patch, padded to its size multiple."""
    ph, pw = patch.shape[:2]
    patch = pad_to_multiple(patch, m)
    t = torch.from_numpy(np.array(patch)).to(net.device)
    t = t.permute(2, 0, 1).unsqueeze(0).to(net.dtype) / 255.0
    res = net(t).float().clamp_(0, 1)[0].permute(1, 2, 0)[: ph * s, : pw * s]
    return res.cpu().numpy()
