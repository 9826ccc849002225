"""Which image files are read, and how big: shared by decoding (:mod:`.codec`) and metadata reading
(:mod:`.metadata`), so that neither imports the other's module for it."""

from __future__ import annotations

#: Largest image (width × height) decoded by default: 64 megapixels, like the canvas limit.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
#: Raster formats accepted as input (those this Pillow build can open). EPS (Ghostscript), vector and
#: scientific formats are left out on purpose.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "TGA", "PPM", "ICO", "CUR", "PCX", "SGI",
                 "QOI", "DDS", "PSD", "AVIF", "JPEG2000", "MPO", "BLP", "IM", "MSP", "SUN", "XBM", "XPM")


def input_formats() -> tuple[str, ...]:
    """The formats of :data:`INPUT_FORMATS` this Pillow build can open."""
    from PIL import Image as PILImage

    PILImage.init()
    return tuple(f for f in INPUT_FORMATS if f in PILImage.OPEN)
