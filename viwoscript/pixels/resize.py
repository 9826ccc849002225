"""The one resize: H×W×C uint8 pixels (C = 1..4; 2 and 4 carry alpha) to any size, with every kernel.

Kernels (:data:`KERNELS`; :data:`ALIASES` maps the upscaler's names):

==========  =======  ====================================================================================
nearest     –        the source pixel whose centre is nearest: pixel replication
linear      1        triangle (bilinear)
cubic       2        Catmull-Rom cubic (B = 0, C = ½; Pillow's BICUBIC), interpolating
mitchell    2        Mitchell–Netravali (B = C = ⅓): smoother than cubic, blurs a little even at 1×
lanczos2    2        sinc windowed by sinc, 2 lobes
lanczos3    3        sinc windowed by sinc, 3 lobes (Pillow's LANCZOS); the default
area        –        box: the exact area average of each output pixel's footprint
==========  =======  ====================================================================================

Geometry is Pillow's: output pixel ``j`` of an axis scaled by ``s`` samples the source at
``(j + 0.5) / s - 0.5``; beyond the image's borders its edge pixels repeat. **Enlarging honours the
kernel** (libvips' own ``resize`` enlarges with a bicubic interpolator whatever kernel is named; this
module does not use it for enlarging). Shrinking widens the kernel by the shrink factor (a low-pass
filter, as Pillow does), so nothing aliases. Separable kernels run horizontally first, rounded to
uint8, then vertically, as Pillow's two passes do; agreement with Pillow is within a level or two.

How, fastest first (all compute the same function; tests hold them to each other and to a direct
float implementation of the kernels):

- enlarging both sides by factors p/q with q ≤ 4 (2, 3, 1.5, 2.5, 1.25, 4/3, ...): *polyphase*
  convolution — horizontally each of the p output phases is a float libvips ``conv`` of the source with
  that phase's normalised taps, sampled every q pixels and band-joined (which *is* the interleaved row),
  vertically one batched float32 ``matmul`` of phase weights × a window of rows;
- shrinking both sides: libvips ``resize`` (a ``reduce`` with the kernel, no box pre-shrink);
- anything else (other enlargements, one side up and one down): a separable gather in numpy;
- nearest: libvips ``zoom`` for whole factors, else numpy picks by pixel centres;
- area: replicate ``n`` times and box-average ``m × m`` blocks (factor ≈ ``n / m``, ``m`` ≤ 16).

Images with alpha are resized premultiplied (except nearest). The output is built strip by strip into
one preallocated array: peak memory is the output plus one strip. pyvips is imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from .channels import premultiply, unpremultiply

KERNELS = ("nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3", "area")
#: Other names accepted for kernels (the traditional upscaler's and Pillow's).
ALIASES = {"lanczos": "lanczos3", "bicubic": "cubic", "bilinear": "linear", "box": "area"}
#: Bytes of output produced per strip (bounds the transient memory on top of the output array).
STRIP_BYTES = 32 * 1024 * 1024
#: Float32 bytes computed per step inside a strip of the separable paths.
_CHUNK_BYTES = 4 * 1024 * 1024


def kernel_name(kernel: str) -> str:
    """The canonical name of a kernel or alias; ``ValueError`` for an unknown one."""
    name = ALIASES.get(kernel, kernel)
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
    return name


def output_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The size a resize by ``factor`` produces: each side rounded, at least 1."""
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def scale(pixels, factor: float, kernel: str = "lanczos3",
          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Resize by ``factor`` (see :func:`output_size`)."""
    arr = np.asarray(pixels)
    ow, oh = output_size(arr.shape[1], arr.shape[0], factor)
    return resize(arr, ow, oh, kernel, progress=progress)


def resize(pixels, width: int, height: int, kernel: str = "lanczos3", *,
           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Resize an H×W×C (or H×W) uint8 array to ``width`` × ``height``; returns a new array of the same
    number of dimensions and channels. ``progress(done, total)`` is called after each strip (it may raise
    to stop the work)."""
    kernel = kernel_name(kernel)
    arr = np.asarray(pixels)
    flat = arr.ndim == 2
    if flat:
        arr = arr[:, :, None]
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected H×W×{{1,2,3,4}} uint8 pixels, got {arr.shape} {arr.dtype}")
    ow, oh = int(width), int(height)
    if ow < 1 or oh < 1:
        raise ValueError(f"output size must be at least 1×1, got {ow}×{oh}")
    h, w, c = arr.shape
    if (ow, oh) == (w, h):
        out = arr.copy()
    else:
        out = _resize(arr, ow, oh, kernel, progress)
    return out[:, :, 0] if flat else out


def _resize(arr: np.ndarray, ow: int, oh: int, kernel: str, progress) -> np.ndarray:
    c = arr.shape[2]
    alpha = c in (2, 4) and kernel != "nearest"
    if alpha:
        arr = premultiply(arr)
    arr = np.ascontiguousarray(arr)
    out = np.empty((oh, ow, c), dtype=np.uint8)
    builder, period = _strip_builder(arr, ow, oh, kernel)
    rows = max(1, min(oh, STRIP_BYTES // max(1, ow * c)))
    if rows > period:
        rows -= rows % period  # whole source rows per strip: no phase is computed twice
    total = math.ceil(oh / rows)
    for i, y0 in enumerate(range(0, oh, rows)):
        y1 = min(oh, y0 + rows)
        builder(y0, y1, out[y0:y1])
        if progress is not None:
            progress(i + 1, total)
    return unpremultiply(out) if alpha else out


def _strip_builder(arr: np.ndarray, ow: int, oh: int, kernel: str):
    """``(build, period)``: ``build(y0, y1, dst)`` writes output rows y0..y1 into ``dst``; strips are
    best made of whole multiples of ``period`` rows."""
    h, w, _ = arr.shape
    fx, fy = ow / w, oh / h
    whole = ow % w == 0 and oh % h == 0
    rx, ry = _ratio(w, ow), _ratio(h, oh)
    if kernel == "nearest":
        if whole:
            return _crop_rows(_from_numpy(arr).zoom(ow // w, oh // h), ow, oh), oh // h
        return _nearest(arr, ow, oh), 1
    if kernel == "area":
        return _crop_rows(_area(_from_numpy(arr), w, h, ow, oh), ow, oh), 1
    if rx and ry:
        return _polyphase(arr, rx, ry, kernel), ry[0]
    if fx <= 1 and fy <= 1:
        img = _from_numpy(arr).resize(fx, vscale=fy, kernel=kernel, gap=0.0)
        return _crop_rows(img, ow, oh), 1
    return _separable(arr, ow, oh, kernel), 1


# --- kernels -----------------------------------------------------------------------------------------

def _triangle(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _bc_cubic(b: float, c: float):
    """The Mitchell–Netravali family of cubics (B = 0, C = ½ is Catmull-Rom)."""
    def k(x):
        x = np.abs(x)
        near = ((12 - 9 * b - 6 * c) * x ** 3 + (-18 + 12 * b + 6 * c) * x ** 2 + (6 - 2 * b)) / 6
        far = ((-b - 6 * c) * x ** 3 + (6 * b + 30 * c) * x ** 2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    return k


def _lanczos(lobes: int):
    def k(x):
        return np.where(np.abs(x) < lobes, np.sinc(x) * np.sinc(x / lobes), 0.0)

    return k


#: kernel → (function of the distance in source pixels, support radius)
FUNCTIONS = {"linear": (_triangle, 1), "cubic": (_bc_cubic(0.0, 0.5), 2), "mitchell": (_bc_cubic(1 / 3, 1 / 3), 2),
             "lanczos2": (_lanczos(2), 2), "lanczos3": (_lanczos(3), 3)}


def axis_weights(n_in: int, n_out: int, kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """``(index, weight)``, both ``n_out × taps``: output pixel ``j`` of the axis is
    ``Σ weight[j, t] · source[index[j, t]]`` (indices clipped to the image: edges repeat; weights
    normalised). An axis whose size does not change is the identity."""
    if n_in == n_out:
        return np.arange(n_out)[:, None], np.ones((n_out, 1), np.float64)
    fn, support = FUNCTIONS[kernel]
    s = n_out / n_in
    widen = max(1.0, 1.0 / s)  # shrinking: the kernel stretched over the footprint (a low-pass filter)
    radius = support * widen
    centre = (np.arange(n_out) + 0.5) / s - 0.5
    first = np.floor(centre - radius).astype(np.int64) + 1
    taps = int(math.ceil(2 * radius)) + 1
    index = first[:, None] + np.arange(taps)
    weight = fn((index - centre[:, None]) / widen)
    weight /= weight.sum(axis=1, keepdims=True)
    return np.clip(index, 0, n_in - 1), weight


# --- pyvips plumbing ---------------------------------------------------------------------------------

def _vips():
    try:
        import pyvips
    except (ImportError, OSError) as e:  # pragma: no cover - pyvips is a core dependency
        raise RuntimeError(f"pyvips is not available ({e}): pip install pyvips pyvips-binary") from e
    return pyvips


def _from_numpy(arr: np.ndarray):
    h, w, c = arr.shape
    return _vips().Image.new_from_memory(np.ascontiguousarray(arr).data, w, h, c, "uchar")


def _to_numpy(img) -> np.ndarray:
    return np.frombuffer(img.write_to_memory(), dtype=np.uint8).reshape(img.height, img.width, img.bands)


def _crop_rows(img, ow: int, oh: int):
    """Strips of a lazy libvips image (cropped or edge-extended to exactly ow × oh)."""
    if img.width != ow or img.height != oh:
        if img.width < ow or img.height < oh:
            img = img.embed(0, 0, max(ow, img.width), max(oh, img.height), extend="copy")
        img = img.crop(0, 0, ow, oh)

    def build(y0: int, y1: int, dst) -> None:
        dst[...] = _to_numpy(img.crop(0, y0, ow, y1 - y0))

    return build


def _area(src, w: int, h: int, ow: int, oh: int):
    """Replicate n times, box-average m × m blocks, per axis (factor ≈ n / m)."""
    fx, fy = Fraction(ow, w).limit_denominator(16), Fraction(oh, h).limit_denominator(16)
    nx, mx, ny, my = max(1, fx.numerator), fx.denominator, max(1, fy.numerator), fy.denominator
    img = src.zoom(nx, ny) if nx > 1 or ny > 1 else src
    # a side shorter than one m-block becomes one pixel, the mean of the whole side (as Pillow's BOX does)
    hs, vs = min(mx, img.width), min(my, img.height)
    if hs > 1 or vs > 1:
        img = img.shrink(hs, vs)
    return img


# --- nearest -----------------------------------------------------------------------------------------

def _nearest(arr: np.ndarray, ow: int, oh: int):
    h, w, _ = arr.shape
    ys = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)

    def build(y0: int, y1: int, dst) -> None:
        np.take(arr[ys[y0:y1]], xs, axis=1, out=dst)

    return build


# --- separable gather (any sizes) --------------------------------------------------------------------

def _separable(arr: np.ndarray, ow: int, oh: int, kernel: str):
    """Strip builder for any sizes: horizontal pass (rounded to uint8) on the source rows a strip needs,
    then the vertical pass, each as a sum over taps of gathered rows/columns × weights."""
    h, w, c = arr.shape
    xi, xw = axis_weights(w, ow, kernel)
    yi, yw = axis_weights(h, oh, kernel)
    xw32, yw32 = xw.astype(np.float32), yw.astype(np.float32)
    step = max(1, _CHUNK_BYTES // max(1, 4 * ow * c))

    def horizontal(rows: np.ndarray) -> np.ndarray:
        mid = np.empty((len(rows), ow, c), np.uint8)
        for a in range(0, len(rows), step):
            src = rows[a:a + step].astype(np.float32)
            acc = np.zeros((len(src), ow, c), np.float32)
            for t in range(xi.shape[1]):
                acc += src[:, xi[:, t]] * xw32[None, :, t, None]
            _round_into(acc, mid[a:a + step])
        return mid

    def build(y0: int, y1: int, dst) -> None:
        s0, s1 = int(yi[y0:y1].min()), int(yi[y0:y1].max()) + 1
        mid = horizontal(arr[s0:s1])
        for a in range(y0, y1, step):
            b = min(y1, a + step)
            acc = np.zeros((b - a, ow, c), np.float32)
            for t in range(yi.shape[1]):
                acc += mid[yi[a:b, t] - s0] * yw32[a:b, t, None, None]
            _round_into(acc, dst[a - y0:b - y0])

    return build


def _round_into(acc: np.ndarray, dst: np.ndarray) -> None:
    acc += 0.5
    np.clip(acc, 0, 255, out=acc)
    np.copyto(dst, acc, casting="unsafe")


# --- polyphase convolution (rational enlargements) ---------------------------------------------------

#: Largest denominator q of an enlargement p/q run as a polyphase convolution (each output pixel then costs
#: about q·(q + 2·support) taps); others go to the separable gather.
MAX_PHASE_STEP = 4
#: Largest numerator p (number of output phases).
MAX_PHASES = 64


def _ratio(n_in: int, n_out: int) -> tuple[int, int] | None:
    """``(p, q)`` with n_out / n_in = p / q when it is an enlargement (or 1) a polyphase pass can run."""
    r = Fraction(n_out, n_in)
    p, q = r.numerator, r.denominator
    return (p, q) if p >= q and q <= MAX_PHASE_STEP and p <= MAX_PHASES else None


def _phase_weights(p: int, q: int, kernel: str) -> tuple[np.ndarray, int]:
    """``(weights, lo)``: ``weights[k, i]`` is output phase k's normalised weight of the source pixel at
    offset ``lo + i`` from ``m·q`` (output pixel ``m·p + k``). p = q = 1 is the identity."""
    if p == q:
        return np.ones((1, 1)), 0
    fn, support = FUNCTIONS[kernel]
    d = (np.arange(p) + 0.5) * q / p - 0.5  # where phase k samples, relative to source pixel m·q
    lo, hi = int(math.floor(d.min() - support)), int(math.ceil(d.max() + support))
    weights = fn(np.arange(lo, hi + 1)[None, :] - d[:, None])
    return weights / weights.sum(axis=1, keepdims=True), lo


def _phase_masks(weights: np.ndarray, lo: int) -> list:
    """One horizontal conv mask per phase, odd-sized and centred on offset 0 (libvips anchors a mask at
    its middle), with an offset of 0.5 so that the float result cast to uchar (which truncates and clips)
    is rounded."""
    pyvips = _vips()
    r = max(-lo, lo + weights.shape[1] - 1)
    masks = []
    for row in weights:
        full = np.zeros(2 * r + 1)
        full[r + lo:r + lo + len(row)] = row
        masks.append(pyvips.Image.new_from_array([[float(v) for v in full]], scale=1.0, offset=0.5))
    return masks


def _polyphase(arr: np.ndarray, rx: tuple[int, int], ry: tuple[int, int], kernel: str):
    """Strip builder for an enlargement by rational factors px/qx, py/qy with a separable kernel.

    Horizontal pass (libvips): one float ``conv`` per output phase, rounded to uchar as Pillow's first
    pass is, sampled every ``qx`` columns and band-joined: a ``w/qx × rows`` image of ``px × c`` bands
    whose memory *is* the ``ow``-wide interleaved intermediate. (libvips' integer ``conv`` quantises masks
    to 8 bits, off by up to 5 levels.) Vertical pass (numpy/BLAS): for a chunk of ``m`` (output rows
    ``m·py .. m·py + py - 1``), the ``py × taps`` phase weights times a window of intermediate rows
    starting at ``m·qy + lo`` is one batched float32 ``matmul`` whose result is already in output row
    order; rounded and clipped straight into the output. Beyond the borders the edge pixels repeat.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    h, w, c = arr.shape
    (px, qx), (py, qy) = rx, ry
    hmasks = _phase_masks(*_phase_weights(px, qx, kernel)) if px != qx else None
    weights, lo = _phase_weights(py, qy, kernel)
    weights = weights.astype(np.float32)
    taps = weights.shape[1]
    ow = w // qx * px
    width = ow * c
    chunk = max(1, min(32, (1 << 20) // max(1, width * py)))  # ≈ 4 MiB of float32 results per matmul

    def build(y0: int, y1: int, dst) -> None:
        m0, m1 = y0 // py, (y1 - 1) // py + 1
        # source rows this strip needs (the image's edge rows repeated beyond its borders)
        c0, c1 = max(0, m0 * qy + lo), min(h, (m1 - 1) * qy + lo + taps)
        if hmasks is None:
            mid = arr[c0:c1].reshape(c1 - c0, width)
        else:
            src = _from_numpy(arr[c0:c1])
            phases = [src.conv(m, precision="float").cast("uchar") for m in hmasks]
            if qx > 1:
                phases = [ph.subsample(qx, 1) for ph in phases]
            joined = phases[0].bandjoin(phases[1:])
            mid = np.frombuffer(joined.write_to_memory(), dtype=np.uint8).reshape(c1 - c0, width)
        flat = dst.reshape(y1 - y0, width)
        res = np.empty((chunk, py, width), dtype=np.float32)
        for a in range(m0, m1, chunk):
            b = min(m1, a + chunk)
            first = a * qy + lo
            rows = np.clip(np.arange(first, (b - 1) * qy + lo + taps), 0, h - 1) - c0
            win = sliding_window_view(mid[rows].astype(np.float32), taps, axis=0)[::qy].transpose(0, 2, 1)
            out = res[: b - a]
            np.matmul(weights, win, out=out)
            out += 0.5
            np.clip(out, 0, 255, out=out)
            out = out.reshape((b - a) * py, width)
            lo_row, hi_row = max(y0, a * py), min(y1, b * py)  # output rows of this chunk inside the strip
            np.copyto(flat[lo_row - y0:hi_row - y0], out[lo_row - a * py:hi_row - a * py], casting="unsafe")

    return build
