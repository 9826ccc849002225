"""Image files: decode and encode (PNG, JPEG, WebP; anything Pillow reads as input) and the metadata that
records what made an image.

>>> from viwoscript.io import write_image, read_image, read_metadata   # doctest: +SKIP
>>> path = write_image(image, "out/cat.png", script=tree, args=["a cat"])
>>> read_metadata(path)["prompt"]

Every image viwoscript writes embeds a ``viwo`` JSON payload (script, args, seeds, models, capability,
version) and an A1111-style ``parameters`` text; :func:`read_metadata` understands viwo, A1111, ComfyUI
and InvokeAI metadata and returns one normalised dict plus the raw fields.
"""

from __future__ import annotations

from .a1111 import a1111_parameters, parse_a1111
from .codec import (
    OUTPUT_FORMATS,
    decode_bytes,
    encode_image,
    format_for_path,
    read_image,
    write_image,
)
from .formats import DEFAULT_MAX_PIXELS, INPUT_FORMATS
from .metadata import build_payload, read_metadata, script_from_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "a1111_parameters",
    "build_payload",
    "decode_bytes",
    "encode_image",
    "format_for_path",
    "parse_a1111",
    "read_image",
    "read_metadata",
    "script_from_image",
    "write_image",
]
