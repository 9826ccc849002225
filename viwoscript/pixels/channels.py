"""Channel conversions of H×W×C uint8 pixel arrays (C = 1 L, 3 RGB, 4 RGBA; 2 LA where noted).

Every function takes an array (a 2-D array is read as L) and returns a uint8 array; none changes its
input. Compositing over a background and premultiplication round to the nearest level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WHITE = (255, 255, 255)


def as_hwc(pixels: Any) -> np.ndarray:
    """The pixels as an H×W×C array (a 2-D array gets a channel axis); no copy."""
    arr = np.asarray(pixels.pixels if hasattr(pixels, "pixels") else pixels)
    return arr[:, :, None] if arr.ndim == 2 else arr


def with_alpha(pixels: Any) -> np.ndarray:
    """RGBA: L and RGB become opaque RGBA; an RGBA array is returned as it is."""
    px = as_hwc(pixels)
    c = px.shape[2]
    if c == 4:
        return px
    out = np.empty(px.shape[:2] + (4,), np.uint8)
    out[:, :, :3] = px if c == 3 else px[:, :, :1]
    out[:, :, 3] = 255
    return out


def to_rgba(pixels: Any) -> np.ndarray:
    """A new RGBA array whose fully transparent pixels are (0, 0, 0, 0) (what a canvas layer holds)."""
    px = as_hwc(pixels)
    out = with_alpha(px)
    if out is px:
        out = px.copy()
        out[out[:, :, 3] == 0] = 0
    return out


def as_rgb(pixels: Any) -> np.ndarray:
    """L replicated to RGB; RGB and RGBA are returned as they are (see :func:`to_rgb` to drop alpha)."""
    px = as_hwc(pixels)
    return np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px


def flatten(pixels: Any, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGBA composited over an opaque ``background`` colour → RGB; other arrays are returned as they are."""
    px = as_hwc(pixels)
    if px.shape[2] != 4:
        return px
    bg = np.asarray(background[:3], np.float32)
    a = px[:, :, 3:4].astype(np.float32) / 255.0
    return (px[:, :, :3].astype(np.float32) * a + bg * (1.0 - a) + 0.5).astype(np.uint8)


def to_rgb(pixels: Any, background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB: L is replicated, RGBA is composited over ``background`` (white)."""
    return flatten(as_rgb(pixels), background)


def gray(pixels: Any) -> np.ndarray:
    """ITU-R 601 luma (exactly as Pillow's ``convert("L")``), alpha kept: L stays L, RGB becomes L, RGBA
    becomes RGBA with equal colour channels."""
    px = as_hwc(pixels)
    if px.shape[2] == 1:
        return px
    rgb = px[:, :, :3].astype(np.uint32)
    y = ((rgb[:, :, 0] * 19595 + rgb[:, :, 1] * 38470 + rgb[:, :, 2] * 7471 + 0x8000) >> 16).astype(np.uint8)
    if px.shape[2] == 3:
        return y[:, :, None]
    out = np.empty_like(px)
    out[:, :, 0] = out[:, :, 1] = out[:, :, 2] = y
    out[:, :, 3] = px[:, :, 3]
    return out


def premultiply(pixels: np.ndarray) -> np.ndarray:
    """Colour × alpha / 255, rounded (the last channel is alpha: LA or RGBA)."""
    a = pixels[:, :, -1:].astype(np.uint16)
    color = (pixels[:, :, :-1].astype(np.uint16) * a + 127) // 255
    return np.concatenate([color.astype(np.uint8), pixels[:, :, -1:]], axis=2)


def unpremultiply(pixels: np.ndarray) -> np.ndarray:
    """The inverse of :func:`premultiply`, rounded; fully transparent pixels become 0."""
    a = pixels[:, :, -1:].astype(np.uint32)
    color = pixels[:, :, :-1].astype(np.uint32)
    safe = np.maximum(a, 1)
    un = np.where(a > 0, np.minimum((color * 255 + safe // 2) // safe, 255), 0)
    return np.concatenate([un.astype(np.uint8), pixels[:, :, -1:]], axis=2)
