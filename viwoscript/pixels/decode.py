"""The one image decoder: encoded bytes (or a ``data:`` URL) → an H×W×{1,3,4} uint8 array.

- Images over a pixel limit are refused from their header, *before* their pixels are decoded
  (decompression bombs); Pillow's global settings (``MAX_IMAGE_PIXELS``) are never changed.
- Only the raster formats of :data:`INPUT_FORMATS` are opened (never EPS, which runs Ghostscript).
- The EXIF orientation is applied here, once: a JPEG shot sideways comes out the way it is shown.
- Every Pillow mode becomes L, RGB or RGBA (16-bit and float images are scaled to 8 bits; palette images
  with transparency become RGBA).
- The first frame of an animation is read.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, ScriptError, SizeLimitError

#: Largest image (width × height) decoded by default: 64 megapixels, like the canvas limit.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
#: Largest encoded file read.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Raster formats accepted as input (those this Pillow build can open). EPS (Ghostscript), vector and
#: scientific formats are left out on purpose.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "TGA", "PPM", "ICO", "CUR", "PCX", "SGI",
                 "QOI", "DDS", "PSD", "AVIF", "JPEG2000", "MPO", "BLP", "IM", "MSP", "SUN", "XBM", "XPM")
#: EXIF tag of the orientation.
ORIENTATION = 0x0112

_BOMB_HINT = "use a smaller image (decompression bombs are refused)"
_DATA_URL_HINT = "expected data:image/png;base64,..."


@dataclass
class Decoded:
    """What :func:`decode` read: the pixels (orientation applied), Pillow's format name, and what the
    ``inspect`` callback returned for the opened file (e.g. its metadata chunks)."""

    pixels: np.ndarray
    format: str | None
    inspected: Any = field(default=None)


def input_formats() -> tuple[str, ...]:
    """The formats of :data:`INPUT_FORMATS` this Pillow build can open."""
    from PIL import Image as PILImage

    PILImage.init()
    return tuple(f for f in INPUT_FORMATS if f in PILImage.OPEN)


def orientation(im) -> int | None:
    """The EXIF orientation (1–8) of an opened Pillow image, or None (damaged EXIF counts as none)."""
    try:
        return im.getexif().get(ORIENTATION)
    except Exception:  # noqa: BLE001 - damaged EXIF: keep the pixels as stored
        return None


def from_pil(pil) -> np.ndarray:
    """Any Pillow image → H×W×{1,3,4} uint8 (L, RGB or RGBA; alpha kept where the image has it)."""
    mode = pil.mode
    if mode in ("L", "RGB", "RGBA"):
        arr = np.asarray(pil)
    elif mode == "1":
        arr = np.asarray(pil.convert("L"))
    elif mode.startswith("I;16") or mode == "I":
        arr = np.asarray(pil).astype(np.int64)
        if arr.size and int(arr.max()) > 255:
            arr = np.clip(arr, 0, 65535) >> 8
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    elif mode == "F":
        arr = np.nan_to_num(np.asarray(pil, dtype=np.float64))
        if arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    elif mode in ("LA", "La", "PA", "RGBa", "RGBX") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        arr = np.asarray(rgba if mode != "RGBX" else rgba.convert("RGB"))
    else:
        arr = np.asarray(pil.convert("RGB"))
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode(data: bytes, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "the image",
           inspect: Callable[[Any], Any] | None = None) -> Decoded:
    """Decode image bytes. ``inspect(pil_image)`` runs on the opened file before the orientation is
    applied (for reading metadata). Errors: :class:`SizeLimitError` over ``max_pixels`` or
    :data:`MAX_FILE_BYTES`, :class:`ScriptError` for what is not a readable image."""
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    if len(data) > MAX_FILE_BYTES:
        raise SizeLimitError(f"{op}: {name} is larger than {MAX_FILE_BYTES} bytes")
    formats = input_formats()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # damaged EXIF: reported by the metadata reader
            with PILImage.open(io.BytesIO(data), formats=formats) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise SizeLimitError(f"{op}: image of {w}×{h} pixels exceeds the limit of {max_pixels} pixels",
                                         hint=_BOMB_HINT)
                im.seek(0)
                im.load()
                inspected = inspect(im) if inspect is not None else None
                fmt = im.format
                oriented = ImageOps.exif_transpose(im) if orientation(im) not in (None, 1) else im
                pixels = from_pil(oriented)
    except (ScriptError, SizeLimitError):
        raise
    except PILImage.DecompressionBombError:
        raise SizeLimitError(f"{op}: image exceeds the limit of {max_pixels} pixels", hint=_BOMB_HINT) from None
    except UnidentifiedImageError:
        raise ScriptError(f"{op}: could not decode {name}: not an image in a supported format",
                          hint="supported: " + ", ".join(formats)) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, TypeError, IndexError, KeyError) as e:
        raise ScriptError(f"{op}: could not decode {name} ({type(e).__name__}: {e})",
                          hint="is the file complete? supported: " + ", ".join(formats)) from None
    return Decoded(pixels, fmt, inspected)


def read_file(path: str | os.PathLike, op: str = "image.load") -> bytes:
    """The bytes of an image file (refused over :data:`MAX_FILE_BYTES` before reading). The caller has
    already checked that the path is allowed."""
    import stat

    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ScriptError(f"{op}: not a file: {p}")
        if st.st_size > MAX_FILE_BYTES:
            raise SizeLimitError(f"{op}: {p.name} is larger than {MAX_FILE_BYTES} bytes")
        return p.read_bytes()
    except OSError as e:
        raise ScriptError(f"{op}: cannot read {p}: {e.strerror or e}") from None


def is_data_url(text: Any) -> bool:
    return isinstance(text, str) and text[:5].lower() == "data:"


def data_url_bytes(url: str, op: str = "image.load") -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL; anything else is an :class:`ArgumentError`."""
    head, sep, payload = url.partition(",")
    if not sep or not head[:5].lower() == "data:":
        raise ArgumentError(f"{op}: malformed data URL", hint=_DATA_URL_HINT)
    meta = head[5:].split(";")
    if "base64" not in (m.strip().lower() for m in meta[1:]):
        raise ArgumentError(f"{op}: data URL must be base64-encoded", hint=_DATA_URL_HINT)
    if meta[0] and not meta[0].strip().lower().startswith("image/"):
        raise ArgumentError(f"{op}: data URL is {meta[0][:40]}, not an image", hint=_DATA_URL_HINT)
    if len(payload) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise SizeLimitError(f"{op}: data URL is larger than {MAX_FILE_BYTES} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentError(f"{op}: data URL has invalid base64", hint=_DATA_URL_HINT) from None


def decode_data_url(url: str, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode a ``data:`` URL (see :func:`data_url_bytes` and :func:`decode`)."""
    return decode(data_url_bytes(url, op), op=op, max_pixels=max_pixels, name="the data URL")
