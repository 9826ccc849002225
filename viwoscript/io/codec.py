"""Decoding and encoding image files with Pillow.

Decoding refuses images over a pixel limit *before* their pixels are decoded (decompression bombs), reads
only a list of raster formats (never EPS, which runs Ghostscript), follows the EXIF orientation, and
turns every mode into L, RGB or RGBA. Pillow's global settings (``MAX_IMAGE_PIXELS``) are never changed.

Encoding writes PNG, JPEG or WebP with the metadata payload of :mod:`viwoscript.io.metadata`, through a
temporary file renamed into place: a crash never leaves a half-written image under the final name.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, ScriptError, SizeLimitError
from ..values import Image
from .files import atomic_write
from .formats import DEFAULT_MAX_PIXELS
from .formats import input_formats as _input_formats

#: Largest encoded file read.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Formats written, by file suffix.
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
#: Largest XMP packet a JPEG APP1 segment holds.
JPEG_XMP_MAX = 65_000

_BOMB_HINT = "use a smaller image (decompression bombs are refused)"


def format_for_path(path: str | os.PathLike, op: str = "write_image", fmt: str | None = None) -> str:
    """``PNG``, ``JPEG`` or ``WEBP`` from an explicit format name or the file's suffix."""
    if fmt is not None:
        key = "." + str(fmt).lower().lstrip(".")
        if key not in OUTPUT_FORMATS:
            raise ArgumentError(f"{op}: unknown output format '{fmt}'", hint="use png, jpeg or webp")
        return OUTPUT_FORMATS[key]
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ArgumentError(f"{op}: cannot tell the format of '{Path(path).name}' from its suffix",
                            hint="name the file .png, .jpg, .jpeg or .webp")
    return OUTPUT_FORMATS[suffix]


# --- decoding --------------------------------------------------------------------------------------

def _pixels(pil) -> np.ndarray:
    """Any Pillow mode → H×W×{1,3,4} uint8."""
    mode = pil.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(pil)
    if mode == "1":
        return np.asarray(pil.convert("L"))
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(pil).astype(np.int64)
        if arr.size and int(arr.max()) > 255:
            arr = np.clip(arr, 0, 65535) >> 8
        return np.clip(arr, 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.nan_to_num(np.asarray(pil, dtype=np.float64))
        if arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        return np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    if mode in ("LA", "La", "PA", "RGBa", "RGBX") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        return np.asarray(rgba if mode != "RGBX" else rgba.convert("RGB"))
    return np.asarray(pil.convert("RGB"))


def _decode(fp, op: str, max_pixels: int, name: str) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    from .metadata import extract_raw, image_metadata

    formats = _input_formats()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # damaged EXIF: reported by read_metadata
            with PILImage.open(fp, formats=formats) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise SizeLimitError(f"{op}: image of {w}×{h} pixels exceeds the limit of {max_pixels} pixels",
                                         hint=_BOMB_HINT)
                im.seek(0)
                im.load()
                raw = extract_raw(im)
                fmt = im.format
                oriented = ImageOps.exif_transpose(im) if _orientation(im) not in (None, 1) else im
                pixels = _pixels(oriented)
    except (ScriptError, SizeLimitError):
        raise
    except PILImage.DecompressionBombError:
        raise SizeLimitError(f"{op}: image exceeds the limit of {max_pixels} pixels", hint=_BOMB_HINT) from None
    except UnidentifiedImageError:
        raise ScriptError(f"{op}: {name} is not an image in a supported format",
                          hint="supported: " + ", ".join(formats)) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, TypeError, IndexError, KeyError) as e:
        raise ScriptError(f"{op}: could not decode {name} ({type(e).__name__}: {e})",
                          hint="is the file complete? supported: " + ", ".join(formats)) from None
    return Image(pixels, image_metadata(raw, fmt))


def _orientation(im) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - damaged EXIF: keep the pixels as stored
        return None


def decode_bytes(data: bytes, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS,
                 name: str = "the image") -> Image:
    """Encoded bytes → :class:`~viwoscript.values.Image` (metadata: what the file says made it)."""
    if len(data) > MAX_FILE_BYTES:
        raise SizeLimitError(f"{op}: {name} is larger than {MAX_FILE_BYTES} bytes")
    return _decode(io.BytesIO(data), op, max_pixels, name)


def read_image(path: str | os.PathLike, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image file. ``image.metadata`` holds the metadata of the image viwoscript wrote (seed,
    prompt, ...) or, for other tools' files, the normalised fields (see :func:`read_metadata`)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ScriptError(f"{op}: cannot read {p}: {e.strerror or e}") from None
    if size > MAX_FILE_BYTES:
        raise SizeLimitError(f"{op}: {p.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ScriptError(f"{op}: cannot read {p}: {e.strerror or e}") from None
    return _decode(io.BytesIO(data), op, max_pixels, p.name)


# --- encoding --------------------------------------------------------------------------------------

def _background(color: Any, op: str) -> tuple[int, int, int]:
    from ..canvas.colors import parse_color

    r, g, b, _a = parse_color(color, op)
    return int(r), int(g), int(b)


def flatten(pixels: np.ndarray, background: Any = "white", op: str = "image.convert") -> np.ndarray:
    """RGBA → RGB over a background colour (other modes are returned as they are)."""
    if pixels.shape[2] != 4:
        return pixels
    bg = np.asarray(_background(background, op), np.float32)
    a = pixels[:, :, 3:4].astype(np.float32) / 255.0
    out = pixels[:, :, :3].astype(np.float32) * a + bg * (1.0 - a) + 0.5
    return out.astype(np.uint8)


def encode_image(image: Image, fmt: str = "PNG", *, script: Any = None, args: Any = None,
                 extra: dict | None = None, quality: int | None = None, lossless: bool = False,
                 background: Any = "white", op: str = "write_image", metadata: bool = True) -> bytes:
    """Encode to PNG/JPEG/WEBP bytes with the viwo payload and A1111 ``parameters`` embedded."""
    from PIL import Image as PILImage

    from .metadata import a1111_parameters, build_payload, payload_json, xmp_packet

    fmt = fmt.upper()
    if fmt not in ("PNG", "JPEG", "WEBP"):
        raise ArgumentError(f"{op}: unknown output format '{fmt}'", hint="use png, jpeg or webp")
    if quality is not None and (type(quality) not in (int, float) or not 1 <= quality <= 100):
        raise ArgumentError(f"{op}: quality must be a number from 1 to 100, got {quality!r}")
    pixels = image.pixels
    if fmt == "JPEG":
        pixels = flatten(pixels, background, op)
    arr = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    pil = PILImage.fromarray(np.ascontiguousarray(arr), {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]])
    payload = build_payload(image, script=script, args=args, extra=extra) if metadata else None
    params = a1111_parameters(payload["metadata"], (image.width, image.height)) if payload else None
    buf = io.BytesIO()
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        if payload is not None:
            info.add_itxt("viwo", payload_json(payload))
        if params:
            info.add_text("parameters", params)
        pil.save(buf, format="PNG", pnginfo=info, compress_level=6)
        return buf.getvalue()
    kw: dict[str, Any] = {"quality": int(quality if quality is not None else 95)}
    if payload is not None:
        exif = PILImage.Exif()
        if params:
            exif.get_ifd(0x8769)[0x9286] = user_comment(params)
        exif[0x0131] = "viwoscript"  # Software
        kw["exif"] = exif
        xmp = xmp_packet(payload, params)
        if fmt == "JPEG" and len(xmp) > JPEG_XMP_MAX:
            # A JPEG segment holds 64 KB: keep everything but the script, and say so.
            slim = dict(payload, script=None, script_omitted="too large for a JPEG metadata segment")
            xmp = xmp_packet(slim, params)
            if len(xmp) > JPEG_XMP_MAX:
                xmp = xmp_packet({"viwo": payload["viwo"], "viwoscript": payload["viwoscript"],
                                  "omitted": "metadata too large for a JPEG metadata segment"}, None)
        kw["xmp"] = xmp
    if fmt == "JPEG":
        kw["subsampling"] = 0 if kw["quality"] >= 90 else 2
        pil.save(buf, format="JPEG", **kw)
    else:
        kw["lossless"] = bool(lossless)
        kw["exact"] = bool(lossless)
        pil.save(buf, format="WEBP", **kw)
    return buf.getvalue()


def user_comment(text: str) -> bytes:
    """EXIF UserComment bytes: ``ASCII`` when the text is ASCII, else ``UNICODE`` (UTF-16BE, as A1111)."""
    try:
        return b"ASCII\0\0\0" + text.encode("ascii")
    except UnicodeEncodeError:
        return b"UNICODE\0" + text.encode("utf-16-be")


def write_image(image: Image, path: str | os.PathLike, *, script: Any = None, args: Any = None,
                extra: dict | None = None, format: str | None = None, quality: int | None = None,
                lossless: bool = False, background: Any = "white", op: str = "write_image") -> Path:
    """Write ``image`` to ``path`` (format from the suffix unless given) with its metadata embedded.

    ``script`` is the script that made it (text, JSON data or a node tree; stored in JSON form), ``args``
    its arguments, ``extra`` more fields for the ``viwo`` payload. The file appears atomically.
    """
    if not isinstance(image, Image):
        raise ArgumentError(f"{op}: expected an image, got {type(image).__name__}")
    p = Path(path)
    fmt = format_for_path(p, op, format)
    data = encode_image(image, fmt, script=script, args=args, extra=extra, quality=quality, lossless=lossless,
                        background=background, op=op)
    return atomic_write(p, data)
