"""Image normalisation shared by the model-running capabilities (numpy/Pillow only, no torch).

Masks → L (painted alpha = repaint, else luminance for opaque images); sizes rounded down to multiples of
8; feathering; paste-back. Channel conversions (``to_rgb``: RGBA over white) and ``resize`` are the
pixels floor's (:mod:`viwoscript.pixels`), re-exported here for the capabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..pixels.channels import to_rgb
from ..pixels.resize import resize as _resize

__all__ = ["blur_mask", "mask_bbox", "paste_back", "resize", "round8", "to_mask", "to_rgb", "to_uint8"]


def to_mask(image: Any) -> np.ndarray:
    """H×W uint8 mask, 255 = repaint.

    An L image is the mask itself; an image with any transparency uses its alpha (painted = repaint,
    whatever the colour, like a canvas mask layer); an opaque RGB(A) image uses its luminance (white =
    repaint, the diffusers convention).
    """
    px = np.asarray(image.pixels if hasattr(image, "pixels") else image)
    if px.ndim == 2:
        return px.astype(np.uint8)
    if px.shape[2] == 1:
        return px[:, :, 0]
    if px.shape[2] == 4 and (px[:, :, 3] < 255).any():
        return px[:, :, 3].copy()
    rgb = px[:, :, :3].astype(np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5).clip(0, 255).astype(np.uint8)


def round8(width: int, height: int) -> tuple[int, int]:
    """Round down to multiples of 8 (at least 8)."""
    return max(8, int(width) // 8 * 8), max(8, int(height) // 8 * 8)


def resize(px: np.ndarray, width: int, height: int, *, resample: str = "lanczos") -> np.ndarray:
    """:func:`viwoscript.pixels.resize.resize` (``resample`` is a kernel name: lanczos, bilinear, nearest, ...)."""
    return _resize(px, width, height, resample)


def blur_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an L mask (feathering); radius 0 returns it unchanged."""
    if radius <= 0:
        return mask
    from PIL import Image as PILImage
    from PIL import ImageFilter

    return np.asarray(PILImage.fromarray(mask, "L").filter(ImageFilter.GaussianBlur(radius)))


def paste_back(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend ``generated`` into ``original`` by ``mask`` (255 = generated); where the mask is 0 the
    original pixels come back exactly."""
    m = mask.astype(np.float32)[:, :, None] / 255.0
    out = original.astype(np.float32) * (1.0 - m) + generated.astype(np.float32) * m
    out = (out + 0.5).astype(np.uint8)
    keep = mask == 0
    out[keep] = original[keep]
    return out


def mask_bbox(mask: np.ndarray, padding: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1) around the painted region plus ``padding``, clipped, or None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (max(0, int(xs.min()) - padding), max(0, int(ys.min()) - padding),
            min(width, int(xs.max()) + 1 + padding), min(height, int(ys.max()) + 1 + padding))


def to_uint8(images: Any) -> list[np.ndarray]:
    """Pipeline output (``output_type="np"``: N×H×W×3 floats in [0, 1]) → uint8 arrays."""
    arr = np.asarray(images, dtype=np.float32)
    return [(np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8) for a in arr]
