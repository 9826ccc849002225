"""Blending: strokes and images into a layer, layers into one image. All the pixel math lives here.

Layers store straight (not premultiplied) RGBA uint8; a pixel with alpha 0 is stored as (0, 0, 0, 0).
Channel values C are 0–255, alphas α are 0–1, and ``round(x)`` means ``floor(x + 0.5)``. In float64:

Brush (source-over), with ``αs = colour alpha × coverage`` and destination (Cd, Ad = 255·αd)::

    Ao = Ad + (255 − Ad)·αs              stored round(Ao)
    k  = 255·αs / Ao                      (0 when Ao = 0)
    Co = Cd + (Cs − Cd)·k                 stored round(Co)

Eraser: ``Ao = Ad·(1 − coverage)``, colour kept. Images placed on a layer use the brush formula with
``αs`` = the image's alpha / 255. If the stored alpha rounds to 0 the colour is cleared too.

Compositing (:func:`composite`) runs bottom to top in float32 on premultiplied pixels ``P = (C·α, 255·α)``:
for each visible layer with ``α = A/255 × opacity``, ``P ← (C, 255)·α + P·(1 − α)``, starting from the
background colour (transparent by default). The result's alpha is ``round(P_A)`` and its colour
``round(255·P_C / P_A)``.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .raster import Coverage

#: Rows × width per composite work unit (kept in cache), and the most threads used.
CHUNK_PIXELS = 1 << 16
MAX_THREADS = 4


def pack(color: tuple[int, int, int, int]) -> np.uint32:
    """An RGBA uint8 quadruple as the uint32 a layer's ``uint32`` view holds."""
    return np.array(color, dtype=np.uint8).view(np.uint32)[0]


def _round_u8(x: np.ndarray) -> np.ndarray:
    """``floor(x + 0.5)`` as uint8 for x in [0, 255] (the cast truncates, which is floor for x >= 0)."""
    x += 0.5
    return x.astype(np.uint8)


def blend_pixels(dst: np.ndarray, rgb, alpha: np.ndarray) -> np.ndarray:
    """Source-over of colour(s) ``rgb`` with alpha ``alpha`` (0–1, > 0) onto ``dst`` (n, 4) uint8 → (n, 4) uint8."""
    F = dst.astype(np.float64)
    Ad = F[:, 3]
    Ao = 255.0 - Ad
    Ao *= alpha
    Ao += Ad  # >= 255·alpha > 0
    k = alpha * 255.0
    k /= Ao
    C = F[:, :3]
    delta = np.asarray(rgb, dtype=np.float64) - C
    delta *= k[:, None]
    C += delta
    F[:, 3] = Ao
    out = _round_u8(F)
    if not out[:, 3].all():
        out[out[:, 3] == 0] = 0
    return out


def apply_stroke(pixels: np.ndarray, c: Coverage, color: tuple[int, int, int, float], tool: str) -> None:
    """Blend one stroke's coverage into ``pixels`` (H, W, 4) uint8, in place."""
    r, g, b, a = color
    h, w = c.interior.shape
    flat = pixels.view(np.uint32).reshape(-1)  # one uint32 per pixel: gathers and scatters move 4 bytes at once
    window = pixels[c.y0:c.y0 + h, c.x0:c.x0 + w].view(np.uint32)[:, :, 0]
    idx = c.fy * pixels.shape[1] + c.fx
    fc = c.fc
    if tool == "eraser":
        np.copyto(window, np.uint32(0), where=c.interior)
        if len(fc):
            px = flat[idx].view(np.uint8).reshape(-1, 4)
            alpha = px[:, 3] * (1.0 - fc)
            px[:, 3] = _round_u8(alpha)
            if not px[:, 3].all():
                px[px[:, 3] == 0] = 0
            flat[idx] = px.view(np.uint32).reshape(-1)
        return
    if a <= 0:
        return
    if a >= 1:
        np.copyto(window, pack((r, g, b, 255)), where=c.interior)
    else:
        iy, ix = np.nonzero(c.interior)
        idx = np.concatenate(((iy + c.y0) * pixels.shape[1] + (ix + c.x0), idx))
        fc = np.concatenate((np.ones(len(iy)), fc))
    if len(fc):
        dst = flat[idx].view(np.uint8).reshape(-1, 4)
        flat[idx] = blend_pixels(dst, (r, g, b), fc * a).view(np.uint32).reshape(-1)


def paste(pixels: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Source-over of an RGBA uint8 image onto ``pixels`` with its top-left corner at (x, y), clipped."""
    H, W = pixels.shape[:2]
    h, w = image.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    src = image[y0 - y:y1 - y, x0 - x:x1 - x]
    dst = pixels[y0:y1, x0:x1]
    sa = src[:, :, 3]
    if (sa == 255).all():
        dst[...] = src
        return
    shape = dst.shape
    flat_src = src.reshape(-1, 4)
    flat_dst = dst.reshape(-1, 4) if dst.flags.c_contiguous else dst.reshape(-1, 4).copy()
    sel = np.flatnonzero(flat_src[:, 3])
    if not len(sel):
        return
    out = flat_dst.copy()
    out[sel] = blend_pixels(flat_dst[sel], flat_src[sel, :3], flat_src[sel, 3] / 255.0)
    dst[...] = out.reshape(shape)


def erase_all(pixels: np.ndarray) -> None:
    pixels[...] = 0


def composite(layers: list[tuple[np.ndarray, float]], width: int, height: int,
              background: tuple[int, int, int, float] | None = None) -> np.ndarray:
    """Composite ``(pixels, opacity)`` pairs bottom to top into a new (height, width, 4) uint8 array."""
    out = np.empty((height, width, 4), np.uint8)
    layers = [(p, float(o)) for p, o in layers if o > 0]
    rows = max(1, CHUNK_PIXELS // max(width, 1))
    spans = [(y, min(y + rows, height)) for y in range(0, height, rows)]
    threads = min(MAX_THREADS, os.cpu_count() or 1, len(spans))
    if threads < 2 or width * height < 1 << 18:
        _Compositor(out, layers, background, rows).run(spans)
        return out
    groups = [spans[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL in the loops below
        for _ in pool.map(lambda g: _Compositor(out, layers, background, rows).run(g), groups):
            pass
    return out


def _alpha(px: np.ndarray) -> np.ndarray:
    """The alpha plane of RGBA uint8 pixels, read through a uint32 view (faster than a strided slice)."""
    u = px.view(np.uint32)[:, :, 0]
    return u >> 24 if sys.byteorder == "little" else u & 0xFF


class _Compositor:
    """One worker's buffers (planar float32: channel-major keeps every numpy loop long and contiguous)."""

    def __init__(self, out: np.ndarray, layers, background, rows: int):
        self.out, self.layers, self.background = out, layers, background
        shape = (4, rows, out.shape[1])
        self.acc_buf = np.empty(shape, np.float32)
        self.pf_buf = np.empty(shape, np.float32)
        self.a_buf = np.empty(shape[1:], np.float32)

    def run(self, spans) -> None:
        for y0, y1 in spans:
            self.rows(y0, y1)

    def rows(self, y0: int, y1: int) -> None:
        n = y1 - y0
        acc, pf, a = self.acc_buf[:, :n], self.pf_buf[:, :n], self.a_buf[:n]
        res = self.out[y0:y1]
        empty = True
        bg = self.background
        if bg is not None and bg[3] > 0:
            ba = np.float32(bg[3])
            for i in range(3):
                acc[i] = np.float32(bg[i]) * ba
            acc[3] = np.float32(255.0) * ba
            empty = False
        for pixels, opacity in self.layers:
            px = pixels[y0:y1]
            A = _alpha(px)
            if not A.any():
                continue
            if opacity == 1.0 and A.min() == 255:
                np.copyto(acc, px.transpose(2, 0, 1))  # an opaque layer hides everything below it
                empty = False
                continue
            np.copyto(pf, px.transpose(2, 0, 1))
            np.multiply(pf[3], np.float32(opacity / 255.0), out=a)
            pf[3] = 255.0
            pf *= a
            if empty:
                acc[...] = pf
                empty = False
                continue
            np.subtract(np.float32(1.0), a, out=a)
            acc *= a
            acc += pf
        if empty:
            res[...] = 0
            return
        alpha = acc[3]
        np.multiply(acc[:3], np.float32(255.0), out=pf[:3])
        np.divide(pf[:3], alpha, out=pf[:3], where=alpha > 0)
        pf[3] = alpha
        pf += np.float32(0.5)  # the cast below truncates: floor(x + 0.5) for x >= 0
        res[...] = pf.transpose(1, 2, 0)
        res[res[:, :, 3] == 0] = 0
