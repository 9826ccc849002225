"""Super-resolution networks for ``diffusers.upscale``: tiled inference with seamless blending.

Finding the official weight files and loading them (spandrel's restricted unpickler reads only tensors)
is the model floor's job (:mod:`viwoscript.models.upscalers`); loaded networks live in the Runtime's
model manager. torch is imported inside functions: the module imports without the diffusion extra.
"""

from __future__ import annotations

from collections.abc import Callable

from ..models.upscalers import (  # noqa: F401 - the names capabilities and tests reach here
    DETECTOR_FILES,
    INSTALL_HINT,
    KNOWN_FILES,
    MODELS_DIR_ENV,
    LoadedNet,
    UpscaleConfig,
    load_net,
    pick_device,
    require_torch,
)

MIN_TILE = 32


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
