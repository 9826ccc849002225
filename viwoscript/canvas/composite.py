"""Blending: strokes and images into a layer, layers into one image. All the pixel math lives here.

Layers store straight (not premultiplied) RGBA uint8; a pixel with alpha 0 is stored as (0, 0, 0, 0).
Channel values C are 0–255, alphas α are 0–1, and ``round(x)`` means ``floor(x + 0.5)``. In float64:

Brush (source-over), with ``αs = colour alpha × coverage`` and destination (Cd, Ad = 255·αd)::

    Ao = Ad + (255 − Ad)·αs              stored round(Ao)
    k  = 255·αs / Ao                      (0 when Ao = 0)
    Co = Cd + (Cs − Cd)·k                 stored round(Co)

Eraser: ``Ao = Ad·(1 − coverage)``, colour kept. Images placed on a layer use the brush formula with
``αs`` = the image's alpha / 255. If the stored alpha rounds to 0 the colour is cleared too.

Compositing (:func:`composite`), bottom to top in float32, premultiplied: for each visible layer with
``α = A/255 × opacity``, ``P = C·α + P·(1 − α)`` and ``αacc = α + αacc·(1 − α)``; the result is
``round(P / αacc)`` and ``round(255·αacc)``, starting from the background colour (transparent by
default).
"""

from __future__ import annotations

import os
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
    x += 0.5
    np.floor(x, out=x)
    return x.astype(np.uint8)


def blend_pixels(dst: np.ndarray, rgb: np.ndarray | tuple, alpha: np.ndarray) -> np.ndarray:
    """Source-over of colour(s) ``rgb`` with alpha ``alpha`` (0–1, > 0) onto ``dst`` (n, 4) uint8 → (n, 4) uint8."""
    Ad = dst[:, 3].astype(np.float64)
    Ao = 255.0 - Ad
    Ao *= alpha
    Ao += Ad
    k = np.divide(alpha * 255.0, Ao, out=np.zeros_like(Ao), where=Ao > 0)
    Cd = dst[:, :3].astype(np.float64)
    Co = np.asarray(rgb, dtype=np.float64) - Cd
    Co *= k[:, None]
    Co += Cd
    out = np.empty(dst.shape, np.uint8)
    out[:, :3] = _round_u8(Co)
    out[:, 3] = _round_u8(Ao)
    out[out[:, 3] == 0] = 0
    return out


def apply_stroke(pixels: np.ndarray, c: Coverage, color: tuple[int, int, int, float], tool: str) -> None:
    """Blend one stroke's coverage into ``pixels`` (H, W, 4) uint8, in place."""
    r, g, b, a = color
    h, w = c.interior.shape
    window = pixels[c.y0:c.y0 + h, c.x0:c.x0 + w]
    ys, xs, fc = c.fy, c.fx, c.fc
    if tool == "eraser":
        np.copyto(window.view(np.uint32)[:, :, 0], np.uint32(0), where=c.interior)
        if len(fc):
            px = pixels[ys, xs]
            alpha = _round_u8(px[:, 3] * (1.0 - fc))
            px[:, 3] = alpha
            px[alpha == 0] = 0
            pixels[ys, xs] = px
        return
    if a <= 0:
        return
    if a >= 1:
        np.copyto(window.view(np.uint32)[:, :, 0], pack((r, g, b, 255)), where=c.interior)
    else:
        iy, ix = np.nonzero(c.interior)
        ys = np.concatenate((iy + c.y0, ys))
        xs = np.concatenate((ix + c.x0, xs))
        fc = np.concatenate((np.ones(len(iy)), fc))
    if len(fc):
        pixels[ys, xs] = blend_pixels(pixels[ys, xs], (r, g, b), fc * a)


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

    def work(span: tuple[int, int]) -> None:
        _composite_rows(out, layers, background, *span)

    threads = min(MAX_THREADS, os.cpu_count() or 1, len(spans))
    if threads > 1 and width * height >= 1 << 18:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(work, spans):
                pass
    else:
        for span in spans:
            work(span)
    return out


def _composite_rows(out: np.ndarray, layers, background, y0: int, y1: int) -> None:
    shape = (y1 - y0, out.shape[1])
    P = np.zeros(shape + (3,), np.float32)
    acc = np.zeros(shape, np.float32)
    empty = True
    if background is not None and background[3] > 0:
        P[...] = np.asarray(background[:3], np.float32) * np.float32(background[3])
        acc[...] = background[3]
        empty = False
    for pixels, opacity in layers:
        px = pixels[y0:y1]
        A = px[:, :, 3]
        if not A.any():
            continue
        a = A.astype(np.float32)
        a *= np.float32(opacity / 255.0)
        if opacity == 1.0 and (A == 255).all():
            P[...] = px[:, :, :3]
            acc[...] = 1.0
            empty = False
            continue
        if empty:
            np.multiply(px[:, :, :3], a[:, :, None], out=P)
            acc[...] = a
            empty = False
            continue
        inv = 1.0 - a
        P *= inv[:, :, None]
        P += px[:, :, :3] * a[:, :, None]
        acc *= inv
        acc += a
    res = out[y0:y1]
    if empty:
        res[...] = 0
        return
    alpha = acc * np.float32(255.0)
    res[:, :, 3] = _round_u8(alpha)
    np.divide(P, acc[:, :, None], out=P, where=acc[:, :, None] > 0)
    res[:, :, :3] = _round_u8(P)
    res[res[:, :, 3] == 0] = 0
