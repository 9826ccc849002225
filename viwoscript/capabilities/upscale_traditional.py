"""Traditional (non-model) resizing on pyvips: lanczos, bicubic, bilinear, nearest and area.

Pixel centres are aligned the way Pillow aligns them (output pixel ``j`` samples the source at
``(j + 0.5) / factor - 0.5``), so results agree with ``PIL.Image.resize`` within a level or two:

- **lanczos** (Lanczos-3), **bicubic** (Catmull-Rom, a = -0.5) and **bilinear** at integer factors are
  *polyphase* convolutions, horizontal pass first and rounded to uint8 as Pillow does: horizontally each
  of the ``factor`` output phases is a float libvips ``conv`` of the source with that phase's normalised
  taps, band-joined (which *is* the interleaved row, no copy); vertically one batched float32 ``matmul``
  (phase weights × a sliding window of rows) yields the output rows already in order and is rounded
  straight into the output. (libvips' integer ``conv`` quantises masks to 8 bits, off by up to 5 levels,
  and its float ``conv`` is a scalar loop, 7× slower than the matmul here.) This is a real
  Lanczos/bicubic enlargement (libvips' own ``resize`` enlarges with a bicubic interpolator whatever
  kernel is named). At non-integer factors lanczos enlarges by the next integer factor and then
  reduces with a Lanczos-3 kernel; bicubic uses ``affine`` with the bicubic interpolator.
- **bilinear** at fractional factors is ``affine`` with the bilinear interpolator.
- **nearest** is ``zoom`` (pixel replication) at integer factors, ``affine`` with the nearest interpolator
  otherwise.
- **area**: the factor is taken as a fraction ``n / m`` (denominator ≤ 16); the image is replicated ``n``
  times and box-averaged over ``m × m`` blocks, which is the exact area average of every output pixel's
  footprint. Shrinking (factor < 1) is therefore a real area average (Pillow's ``BOX``); enlarging by an
  integer factor is pixel replication (each output pixel lies inside one source pixel), and enlarging by
  a fractional factor averages the source pixels an output pixel straddles.
- Shrinking (factor < 1) with lanczos/bicubic/bilinear is libvips ``resize`` (a ``reduce`` with that
  kernel, widened by the shrink factor, as Pillow does), without the box pre-shrink.

Images with alpha (LA, RGBA) are resized premultiplied (as Pillow does), except nearest. The output is
built strip by strip into one preallocated array, so peak memory is the output plus one strip (libvips
streams each strip from the source).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

METHODS = ("lanczos", "bicubic", "bilinear", "nearest", "area")
MIN_FACTOR = 0.125
MAX_FACTOR = 8.0
#: Bytes of output produced per strip (bounds the transient memory on top of the output array).
STRIP_BYTES = 32 * 1024 * 1024


def output_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The size a resize by ``factor`` produces: each side rounded, at least 1."""
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


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
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected H×W×{{1,2,3,4}} uint8 pixels, got {arr.shape} {arr.dtype}")
    h, w, c = arr.shape
    ow, oh = output_size(w, h, factor)
    alpha = c in (2, 4) and method != "nearest"
    if alpha:
        arr = _premultiply(arr)
    arr = np.ascontiguousarray(arr)
    out = np.empty((oh, ow, c), dtype=np.uint8)
    builder = _strip_builder(arr, factor, method, ow, oh)
    rows = max(1, min(oh, STRIP_BYTES // max(1, ow * c)))
    if float(factor).is_integer() and rows > factor:
        rows -= rows % int(factor)  # whole source rows per strip: no phase is computed twice
    total = math.ceil(oh / rows)
    for i, y0 in enumerate(range(0, oh, rows)):
        y1 = min(oh, y0 + rows)
        builder(y0, y1, out[y0:y1])
        if progress is not None:
            progress(i + 1, total)
    if alpha:
        out = _unpremultiply(out)
    return out


def resize_image(image, factor: float, method: str = "lanczos", progress=None):
    """Resize a viwoscript ``Image`` or a Pillow image (any mode: P and LA too); returns the same kind.

    Palette (P) and other Pillow modes are converted to RGB or RGBA first (RGBA when they carry
    transparency); a Pillow image comes back as a Pillow image in that mode.
    """
    import numpy as np

    from ..values import Image

    if isinstance(image, Image):
        pixels = resize_pixels(image.pixels, factor, method, progress)
        return Image(pixels, dict(image.metadata))
    pil = image
    if pil.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = "A" in pil.getbands() or "transparency" in pil.info
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    from PIL import Image as PILImage

    pixels = resize_pixels(np.asarray(pil), factor, method, progress)
    return PILImage.fromarray(pixels if pixels.shape[2] != 1 else pixels[:, :, 0], pil.mode)


# --- premultiplied alpha ---------------------------------------------------------------------------

def _premultiply(arr):
    import numpy as np

    a = arr[:, :, -1:].astype(np.uint16)
    color = (arr[:, :, :-1].astype(np.uint16) * a + 127) // 255
    return np.concatenate([color.astype(np.uint8), arr[:, :, -1:]], axis=2)


def _unpremultiply(arr):
    import numpy as np

    a = arr[:, :, -1:].astype(np.uint32)
    color = arr[:, :, :-1].astype(np.uint32)
    safe = np.maximum(a, 1)
    un = np.where(a > 0, np.minimum((color * 255 + safe // 2) // safe, 255), 0)
    return np.concatenate([un.astype(np.uint8), arr[:, :, -1:]], axis=2)


# --- pyvips plumbing -------------------------------------------------------------------------------

def _vips():
    try:
        import pyvips
    except ImportError as e:  # pragma: no cover - pyvips is a core dependency
        raise RuntimeError("pyvips is not installed: pip install pyvips pyvips-binary") from e
    return pyvips


def _from_numpy(arr):
    h, w, c = arr.shape
    return _vips().Image.new_from_memory(arr.data, w, h, c, "uchar")


def _to_numpy(img):
    import numpy as np

    return np.frombuffer(img.write_to_memory(), dtype=np.uint8).reshape(img.height, img.width, img.bands)


def _strip_builder(arr, factor: float, method: str, ow: int, oh: int):
    """A function ``(y0, y1, dst)`` that writes rows y0..y1 of the output into ``dst`` for this resize."""
    h, w, _ = arr.shape
    integer = float(factor).is_integer()
    if method in _KERNELS and integer and factor > 1:
        kernel, support = _KERNELS[method]
        return _polyphase(arr, int(factor), kernel, support)
    if method == "lanczos" and factor > 1:
        up = math.ceil(factor)
        stage = _polyphase(arr, up, _lanczos3, 3)
        big = _lazy_from_strips(stage, w * up, h * up, arr.shape[2])
        img = big.resize(ow / big.width, vscale=oh / big.height, kernel="lanczos3", gap=0.0)
        return _crop_rows(img, ow, oh)
    src = _from_numpy(arr)
    if method == "area":
        return _crop_rows(_area(src, factor, ow, oh), ow, oh)
    if method == "nearest" and integer:
        return _crop_rows(src.zoom(int(factor), int(factor)), ow, oh)
    if factor < 1 and method != "nearest":
        kernel = {"lanczos": "lanczos3", "bicubic": "cubic", "bilinear": "linear"}[method]
        return _crop_rows(src.resize(ow / w, vscale=oh / h, kernel=kernel, gap=0.0), ow, oh)
    pyvips = _vips()
    interp = pyvips.Interpolate.new({"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic",
                                     "lanczos": "bicubic"}[method])
    # centre alignment: output pixel X samples source x = (X + 0.5) / f - 0.5 (nearest: floor((X + 0.5) / f))
    idx = 0.0 if method == "nearest" else 0.5
    img = src.affine([ow / w, 0, 0, oh / h], interpolate=interp, idx=idx, idy=idx, odx=-0.5, ody=-0.5,
                     oarea=[0, 0, ow, oh], extend="copy")
    return _crop_rows(img, ow, oh)


def _crop_rows(img, ow: int, oh: int):
    """Strips of a lazy libvips image (cropped or edge-extended to exactly ow × oh)."""
    if img.width != ow or img.height != oh:
        if img.width < ow or img.height < oh:
            img = img.embed(0, 0, max(ow, img.width), max(oh, img.height), extend="copy")
        img = img.crop(0, 0, ow, oh)

    def build(y0: int, y1: int, dst) -> None:
        dst[...] = _to_numpy(img.crop(0, y0, ow, y1 - y0))

    return build


def _lazy_from_strips(build, width: int, height: int, bands: int):
    """Materialise a strip builder as a libvips image (used before a further reduce)."""
    import numpy as np

    full = np.empty((height, width, bands), dtype=np.uint8)
    rows = max(1, STRIP_BYTES // max(1, width * bands))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        build(y0, y1, full[y0:y1])
    img = _from_numpy(full)
    return img


def _area(src, factor: float, ow: int, oh: int):
    frac = Fraction(factor).limit_denominator(16)
    n, m = frac.numerator, frac.denominator
    img = src.zoom(n, n) if n > 1 else src
    # a side shorter than one m-block becomes one pixel, the mean of the whole side (as Pillow's BOX does)
    hs, vs = min(m, img.width), min(m, img.height)
    if hs > 1 or vs > 1:
        img = img.shrink(hs, vs)
    return img


# --- polyphase convolution (integer factors) -------------------------------------------------------

def _lanczos3(x):
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


def _catmull_rom(x):
    import numpy as np

    a = -0.5
    x = np.abs(np.asarray(x, dtype=np.float64))
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _triangle(x):
    import numpy as np

    return np.maximum(0.0, 1.0 - np.abs(np.asarray(x, dtype=np.float64)))


_KERNELS = {"lanczos": (_lanczos3, 3), "bicubic": (_catmull_rom, 2), "bilinear": (_triangle, 1)}


def _phase_masks(f: int, kernel, support: int, horizontal: bool) -> list:
    """One conv mask per output phase k: taps at source offsets -support..support, normalised, with an
    offset of 0.5 so that the float result cast to uchar (which truncates and clips) is rounded."""
    import numpy as np

    pyvips = _vips()
    masks = []
    n = np.arange(-support, support + 1)
    for k in range(f):
        d = (k + 0.5) / f - 0.5  # where phase k samples, relative to its source pixel
        wts = kernel(n - d)
        wts = wts / wts.sum()
        rows = [[float(v) for v in wts]] if horizontal else [[float(v)] for v in wts]
        masks.append(pyvips.Image.new_from_array(rows, scale=1.0, offset=0.5))
    return masks


def _conv(img, mask):
    """A float convolution cast to uint8; the masks' 0.5 offset makes the truncating cast round."""
    return img.conv(mask, precision="float").cast("uchar")


def _phase_weights(f: int, kernel, support: int):
    """``f × (2·support + 1)`` float32 taps: row k holds phase k's normalised weights at offsets -support..support."""
    import numpy as np

    n = np.arange(-support, support + 1)
    rows = []
    for k in range(f):
        wts = kernel(n - ((k + 0.5) / f - 0.5))
        rows.append(wts / wts.sum())
    return np.array(rows, dtype=np.float32)


def _polyphase(arr, f: int, kernel, support: int):
    """Strip builder for an integer-factor enlargement with a separable interpolation kernel.

    Horizontal pass (libvips): one float ``conv`` per phase, rounded to uchar as Pillow's first pass is,
    band-joined: a ``w × rows`` image of ``f × c`` bands whose memory *is* the ``f·w``-wide interleaved
    intermediate. Vertical pass (numpy/BLAS): for a chunk of source rows, the ``f × taps`` phase weights
    times a sliding window of intermediate rows is one batched float32 ``matmul`` whose result is already
    in output row order (row ``s·f + k``); rounded and clipped straight into the output.
    """
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    h, w, c = arr.shape
    hmasks = _phase_masks(f, kernel, support, True)
    weights = _phase_weights(f, kernel, support)
    taps = 2 * support + 1
    width = w * f * c
    chunk = max(1, min(32, (1 << 20) // max(1, width * f)))  # ≈ 4 MiB of float32 results per matmul

    def build(y0: int, y1: int, dst) -> None:
        # source rows this strip needs, with `support` rows of context where the image has them
        s0, s1 = y0 // f, min(h, (y1 - 1) // f + 1)
        c0, c1 = max(0, s0 - support), min(h, s1 + support)
        src = _from_numpy(arr[c0:c1])
        phases = [_conv(src, m) for m in hmasks]
        joined = phases[0].bandjoin(phases[1:]) if f > 1 else phases[0]
        mid = np.frombuffer(joined.write_to_memory(), dtype=np.uint8).reshape(c1 - c0, width)
        flat = dst.reshape(y1 - y0, width)
        res = np.empty((chunk, f, width), dtype=np.float32)
        for a in range(s0, s1, chunk):
            b = min(s1, a + chunk)
            # rows a - support .. b + support, the image's edge rows repeated beyond its borders
            rows = np.clip(np.arange(a - support, b + support), 0, h - 1) - c0
            win = sliding_window_view(mid[rows].astype(np.float32), taps, axis=0).transpose(0, 2, 1)
            out = res[: b - a]
            np.matmul(weights, win, out=out)
            out += 0.5
            np.clip(out, 0, 255, out=out)
            out = out.reshape((b - a) * f, width)
            lo, hi = max(y0, a * f), min(y1, b * f)  # output rows of this chunk inside the strip
            np.copyto(flat[lo - y0:hi - y0], out[lo - a * f:hi - a * f], casting="unsafe")

    return build
