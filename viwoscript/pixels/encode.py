"""The one image encoder: H×W×{1,3,4} uint8 arrays → PNG, JPEG or WebP bytes, and PNG ``data:`` URLs.

What goes into the files' metadata is the caller's business (``viwoscript.io`` builds it and passes
Pillow's ``pnginfo``/``exif``/``xmp`` save options through).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from .channels import WHITE, as_hwc, flatten

FORMATS = ("PNG", "JPEG", "WEBP")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_pil(pixels: Any):
    """A Pillow image (L, RGB or RGBA) sharing nothing with the array."""
    from PIL import Image as PILImage

    px = as_hwc(pixels)
    arr = px[:, :, 0] if px.shape[2] == 1 else px
    return PILImage.fromarray(np.ascontiguousarray(arr), _MODES[px.shape[2]])


def encode(pixels: Any, fmt: str = "PNG", *, quality: int | None = None, lossless: bool = False,
           background: tuple[int, int, int] = WHITE, **save_options: Any) -> bytes:
    """Encode pixels. JPEG has no alpha: RGBA is composited over ``background`` first; its quality
    defaults to 95 (chroma not subsampled from 90 up). WebP is lossy unless ``lossless``. PNG uses zlib
    level 6. ``save_options`` go to Pillow's ``save`` (``pnginfo``, ``exif``, ``xmp``, ...)."""
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    px = as_hwc(pixels)
    if fmt == "JPEG":
        px = flatten(px, background)
    pil = to_pil(px)
    buf = io.BytesIO()
    if fmt == "PNG":
        save_options.setdefault("compress_level", 6)
        pil.save(buf, format="PNG", **save_options)
        return buf.getvalue()
    q = int(quality if quality is not None else 95)
    if fmt == "JPEG":
        pil.save(buf, format="JPEG", quality=q, subsampling=0 if q >= 90 else 2, **save_options)
    else:
        pil.save(buf, format="WEBP", quality=q, lossless=bool(lossless), exact=bool(lossless), **save_options)
    return buf.getvalue()


def to_data_url(pixels: Any) -> str:
    """A ``data:image/png;base64,...`` URL of the pixels (no metadata)."""
    return "data:image/png;base64," + base64.b64encode(encode(pixels, "PNG")).decode("ascii")
