"""Decoding and encoding image files with Pillow.

Decoding refuses images over a pixel limit *before* their pixels are decoded (decompression bombs), reads
only a list of raster formats (never EPS, which runs Ghostscript), follows the EXIF orientation, and
turns every mode into L, RGB or RGBA. Pillow's global settings (``MAX_IMAGE_PIXELS``) are never changed.

Encoding writes PNG, JPEG or WebP with the metadata payload of :mod:`viwoscript.io.metadata`, through a
temporary file renamed into place: a crash never leaves a half-written image under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ArgumentError
from ..pixels.colors import parse_color
from ..pixels.decode import DEFAULT_MAX_PIXELS, INPUT_FORMATS, MAX_FILE_BYTES, decode, read_file
from ..pixels.encode import encode
from ..values import Image
from .files import atomic_write

__all__ = ["DEFAULT_MAX_PIXELS", "INPUT_FORMATS", "MAX_FILE_BYTES", "OUTPUT_FORMATS", "decode_bytes", "encode_image",
           "format_for_path", "read_image", "user_comment", "write_image"]

#: Formats written, by file suffix.
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
#: Largest XMP packet a JPEG APP1 segment holds.
JPEG_XMP_MAX = 65_000


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

def decode_bytes(data: bytes, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS,
                 name: str = "the image") -> Image:
    """Encoded bytes → :class:`~viwoscript.values.Image` (metadata: what the file says made it)."""
    from .metadata import extract_raw, image_metadata

    d = decode(data, op=op, max_pixels=max_pixels, name=name, inspect=extract_raw)
    return Image(d.pixels, image_metadata(d.inspected, d.format))


def read_image(path: str | os.PathLike, *, op: str = "image.load", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image file. ``image.metadata`` holds the metadata of the image viwoscript wrote (seed,
    prompt, ...) or, for other tools' files, the normalised fields (see :func:`read_metadata`)."""
    return decode_bytes(read_file(path, op), op=op, max_pixels=max_pixels, name=Path(path).name)


# --- encoding --------------------------------------------------------------------------------------

def _background(color: Any, op: str) -> tuple[int, int, int]:
    r, g, b, _a = parse_color(color, op)
    return int(r), int(g), int(b)


def encode_image(image: Image, fmt: str = "PNG", *, script: Any = None, args: Any = None,
                 extra: dict | None = None, quality: int | None = None, lossless: bool = False,
                 background: Any = "white", op: str = "write_image", metadata: bool = True,
                 budget: Any = None) -> bytes:
    """Encode to PNG/JPEG/WEBP bytes with the viwo payload and A1111 ``parameters`` embedded (``budget``:
    the limits the metadata's values are walked under, see ``build_payload``)."""
    from PIL import Image as PILImage

    from .a1111 import a1111_parameters
    from .metadata import build_payload, payload_json, xmp_packet

    fmt = fmt.upper()
    if fmt not in ("PNG", "JPEG", "WEBP"):
        raise ArgumentError(f"{op}: unknown output format '{fmt}'", hint="use png, jpeg or webp")
    if quality is not None and (type(quality) not in (int, float) or not 1 <= quality <= 100):
        raise ArgumentError(f"{op}: quality must be a number from 1 to 100, got {quality!r}")
    payload = build_payload(image, script=script, args=args, extra=extra, budget=budget) if metadata else None
    params = a1111_parameters(payload["metadata"], (image.width, image.height)) if payload else None
    kw: dict[str, Any] = {}
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        if payload is not None:
            info.add_itxt("viwo", payload_json(payload, budget))
        if params:
            info.add_text("parameters", params)
        kw["pnginfo"] = info
    elif payload is not None:
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
    bg = _background(background, op) if fmt == "JPEG" else (255, 255, 255)
    return encode(image.pixels, fmt, quality=quality, lossless=lossless, background=bg, **kw)


def user_comment(text: str) -> bytes:
    """EXIF UserComment bytes: ``ASCII`` when the text is ASCII, else ``UNICODE`` (UTF-16BE, as A1111)."""
    try:
        return b"ASCII\0\0\0" + text.encode("ascii")
    except UnicodeEncodeError:
        return b"UNICODE\0" + text.encode("utf-16-be")


def write_image(image: Image, path: str | os.PathLike, *, script: Any = None, args: Any = None,
                extra: dict | None = None, format: str | None = None, quality: int | None = None,
                lossless: bool = False, background: Any = "white", op: str = "write_image",
                budget: Any = None) -> Path:
    """Write ``image`` to ``path`` (format from the suffix unless given) with its metadata embedded.

    ``script`` is the script that made it (text, JSON data or a node tree; stored in JSON form), ``args``
    its arguments, ``extra`` more fields for the ``viwo`` payload. The file appears atomically.
    """
    if not isinstance(image, Image):
        raise ArgumentError(f"{op}: expected an image, got {type(image).__name__}")
    p = Path(path)
    fmt = format_for_path(p, op, format)
    data = encode_image(image, fmt, script=script, args=args, extra=extra, quality=quality, lossless=lossless,
                        background=background, op=op, budget=budget)
    return atomic_write(p, data)
