"""Where layer images come from: Image values, ``data:`` URLs, files under the allowed roots.

Decoding goes through Pillow with a pixel limit checked *before* the pixels are decoded (decompression
bombs are refused), a short list of formats, and no change to Pillow's global settings.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, ScriptError

#: Formats a script may load.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
#: Largest encoded file read from disk or a URL.
MAX_FILE_BYTES = 256 * 1024 * 1024


def to_rgba(pixels: np.ndarray) -> np.ndarray:
    """H×W×{1,3,4} (or H×W) uint8 → a new H×W×4 uint8 array; fully transparent pixels become (0, 0, 0, 0)."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    out = np.empty((h, w, 4), np.uint8)
    if c == 1:
        out[:, :, :3] = arr
        out[:, :, 3] = 255
    elif c == 3:
        out[:, :, :3] = arr
        out[:, :, 3] = 255
    else:
        out[...] = arr
        out[out[:, :, 3] == 0] = 0
    return out


def decode(data: bytes, op: str, max_pixels: int) -> np.ndarray:
    """Encoded image bytes → RGBA uint8 array, refusing images over ``max_pixels``."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ScriptError(f"{op}: image of {w}×{h} pixels exceeds the limit of {max_pixels} pixels",
                                  hint="use a smaller image (decompression bombs are refused)")
            im.seek(0)
            rgba = im.convert("RGBA")
            return to_rgba(np.asarray(rgba))
    except ScriptError:
        raise
    except PILImage.DecompressionBombError:
        raise ScriptError(f"{op}: image exceeds the limit of {max_pixels} pixels",
                          hint="use a smaller image (decompression bombs are refused)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise ScriptError(f"{op}: could not decode the image ({type(e).__name__}: {e})",
                          hint=f"supported formats: {', '.join(FORMATS)}") from None


def decode_data_url(url: str, op: str, max_pixels: int) -> np.ndarray:
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:"):
        raise ArgumentError(f"{op}: malformed data URL", hint="expected data:image/png;base64,...")
    meta = head[5:].split(";")
    if "base64" not in meta[1:]:
        raise ArgumentError(f"{op}: data URL must be base64-encoded", hint="expected data:image/png;base64,...")
    if meta[0] and not meta[0].lower().startswith("image/"):
        raise ArgumentError(f"{op}: data URL is {meta[0]}, not an image", hint="expected data:image/png;base64,...")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentError(f"{op}: data URL has invalid base64", hint="expected data:image/png;base64,...") from None
    return decode(data, op, max_pixels)


def load_source(src, op: str, *, max_pixels: int, resolve_path: Callable[[str, str], Path] | None = None,
                fetch_url: Callable[[str], bytes] | None = None) -> np.ndarray:
    """An Image value, a ``data:`` URL, a remote URL (only through the host's ``fetch_url``) or a path."""
    from ..values import Image

    if isinstance(src, Image):
        return to_rgba(src.pixels)
    if isinstance(src, np.ndarray):
        return to_rgba(src)
    if not isinstance(src, str) or not src:
        raise ArgumentError(f"{op}: expected an image, a data URL or a file path for src")
    low = src[:16].lower()
    if low.startswith("data:"):
        return decode_data_url(src, op, max_pixels)
    if low.startswith(("http://", "https://", "ftp://", "file:")):
        if fetch_url is None or low.startswith("file:"):
            raise ScriptError(f"{op}: remote URLs are not allowed here ({src[:80]})",
                              hint="the host can allow them (LayerStack.fetch_url); or pass a data: URL or a file")
        data = fetch_url(src)
        if len(data) > MAX_FILE_BYTES:
            raise ScriptError(f"{op}: downloaded file is larger than {MAX_FILE_BYTES} bytes")
        return decode(data, op, max_pixels)
    if resolve_path is None:
        raise ScriptError(f"{op}: file access is not allowed here",
                          hint="the host must allow a folder (Runtime(roots=[...]))")
    path = resolve_path(src, op)
    if not path.is_file():
        raise ScriptError(f"{op}: not a file: {src}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ScriptError(f"{op}: {src} is larger than {MAX_FILE_BYTES} bytes")
    return decode(path.read_bytes(), op, max_pixels)
