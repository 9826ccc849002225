"""Traditional (non-model) resizing for ``diffusers.upscale``'s ``upscaleTraditional``: the capability's
names and bounds around the one resize of :mod:`viwoscript.pixels.resize` (kernels, geometry, how it
matches Pillow, memory).

Methods: lanczos (Lanczos-3), bicubic (Catmull-Rom), bilinear, nearest, area (exact area average), and
the kernels mitchell and lanczos2. Enlarging honours the method.
"""

from __future__ import annotations

from collections.abc import Callable

from ..pixels.resize import output_size, scale

METHODS = ("lanczos", "bicubic", "bilinear", "nearest", "area", "mitchell", "lanczos2")
MIN_FACTOR = 0.125
MAX_FACTOR = 8.0

__all__ = ["MAX_FACTOR", "METHODS", "MIN_FACTOR", "output_size", "resize_image", "resize_pixels"]


def resize_pixels(pixels, factor: float, method: str = "lanczos",
                  progress: Callable[[int, int], None] | None = None):
    """Resize an H×W×C uint8 array (C = 1..4; 2 and 4 carry alpha) by ``factor``; returns a new array.

    ``progress(done, total)`` is called after each strip (it may raise to stop the work).
    """
    import numpy as np

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    if not (MIN_FACTOR <= factor <= MAX_FACTOR):
        raise ValueError(f"factor must be between {MIN_FACTOR} and {MAX_FACTOR}")
    arr = np.asarray(pixels)
    return scale(arr[:, :, None] if arr.ndim == 2 else arr, factor, method, progress)


def resize_image(image, factor: float, method: str = "lanczos", progress=None):
    """Resize a viwoscript ``Image`` or a Pillow image (any mode: P and LA too); returns the same kind.

    Palette (P) and other Pillow modes are converted to RGB or RGBA first (RGBA when they carry
    transparency); a Pillow image comes back as a Pillow image in that mode.
    """
    import numpy as np

    from ..values import Image

    if isinstance(image, Image):
        return Image(resize_pixels(image.pixels, factor, method, progress), dict(image.metadata))
    pil = image
    if pil.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = "A" in pil.getbands() or "transparency" in pil.info
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    from PIL import Image as PILImage

    pixels = resize_pixels(np.asarray(pil), factor, method, progress)
    return PILImage.fromarray(pixels if pixels.shape[2] != 1 else pixels[:, :, 0], pil.mode)
