"""Where layer images come from: Image values, arrays, ``data:`` URLs, files under the allowed roots, and
(only through the host's ``fetch_url``) remote URLs. Decoding is :mod:`viwoscript.pixels.decode` (pixel
limit checked before decoding, EXIF orientation applied): a file is the same on a layer as through
``image.load``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, ScriptError
from ..pixels.channels import to_rgba
from ..pixels.decode import data_url_bytes, decode, is_data_url, read_file

__all__ = ["load_source", "to_rgba"]


def load_source(src, op: str, *, max_pixels: int, resolve_path: Callable[[str, str], Path] | None = None,
                fetch_url: Callable[[str], bytes] | None = None) -> np.ndarray:
    """An Image value, a ``data:`` URL, a remote URL (only through the host's ``fetch_url``) or a path →
    a new RGBA array."""
    from ..values import Image

    if isinstance(src, Image):
        return to_rgba(src.pixels)
    if isinstance(src, np.ndarray):
        return to_rgba(src)
    if not isinstance(src, str) or not src:
        raise ArgumentError(f"{op}: expected an image, a data URL or a file path for src")
    name = "the image"
    if is_data_url(src):
        data, name = data_url_bytes(src, op), "the data URL"
    elif src[:16].lower().startswith(("http://", "https://", "ftp://", "file:")):
        if fetch_url is None or src[:5].lower() == "file:":
            raise ScriptError(f"{op}: remote URLs are not allowed here ({src[:80]})",
                              hint="the host can allow them (LayerStack.fetch_url); or pass a data: URL or a file")
        data = fetch_url(src)
    else:
        if resolve_path is None:
            raise ScriptError(f"{op}: file access is not allowed here",
                              hint="the host must allow a folder (Runtime(roots=[...]))")
        path = resolve_path(src, op)
        data, name = read_file(path, op), path.name
    return to_rgba(decode(data, op=op, max_pixels=max_pixels, name=name).pixels)
