"""Pure geometry: a stroke (polyline + brush size) → per-pixel coverage in [0, 1]. No blending here.

The definition (design §6), exactly: pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``; with
``d`` the Euclidean distance from that centre to the polyline (round caps and joins, a single point is
a disc), the coverage is ``clamp(size/2 − d + 0.5, 0, 1)``. Segments of one stroke combine by max (the
distance to the polyline is the minimum over its segments), so overlaps never double-count.

How it is computed fast with numpy, without approximating: with ``r = size/2``, every pixel whose
centre lies within ``r − 0.5`` of some segment has coverage exactly 1, and every pixel farther than
``r + 0.5`` from all segments has coverage 0. For each segment and pixel row, the x-intervals of both
capsules (radius ``r ± 0.5``) are computed analytically; the inner intervals are filled with 1 (a
difference array and a cumulative sum), and only the pixels between the two — a band about one pixel
wide along the outline — get an exact distance computation. Many strokes are rasterized in one
vectorized batch (:func:`rasterize`), so the per-call overhead of numpy is paid once per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Slack when turning interval ends into pixel indices: the outer interval is widened and the inner
#: one narrowed by this much, so float rounding can only move a pixel into the exact-distance band.
EPS = 1e-7
#: Pixels (bounding-box area) rasterized per batch; a stroke larger than this is split into row bands.
BATCH_PIXELS = 1 << 17
#: Most jobs per batch.
BATCH_JOBS = 16
#: Most (segment, pixel row) pairs worked on at once (bounds memory for strokes with very many points).
ROW_BUDGET = 1 << 17


@dataclass(frozen=True)
class Job:
    """One stroke restricted to a window ``[x0, x1) × [y0, y1)`` of the canvas (its clipped bbox or a band)."""

    points: np.ndarray  # (n, 2) float64, n >= 1
    size: float
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def pixels(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass
class Coverage:
    """The coverage of one job over its window at ``(y0, x0)``; ``interior`` is an ``(h, w)`` view.

    ``interior`` marks pixels known to have coverage exactly 1 without a distance computation; the
    other covered pixels are listed in ``fy, fx`` (canvas coordinates) with their coverage ``fc``
    (0 < fc <= 1): blending touches only those two sets.
    """

    y0: int
    x0: int
    interior: np.ndarray
    fy: np.ndarray
    fx: np.ndarray
    fc: np.ndarray

    @property
    def cov(self) -> np.ndarray:
        """The coverage of every pixel of the window, as a new ``(h, w)`` float64 array."""
        out = self.interior.astype(np.float64)
        out[self.fy - self.y0, self.fx - self.x0] = self.fc
        return out


def stroke_window(points: np.ndarray, size: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The canvas window ``(x0, y0, x1, y1)`` that can receive coverage, or None when it is empty.

    Coverage is non-zero only where ``d < size/2 + 0.5``; the window is the points' bounding box grown by
    that radius, clipped to the canvas.
    """
    R = size / 2 + 0.5
    xmin, ymin = points.min(axis=0)
    xmax, ymax = points.max(axis=0)
    x0 = max(math.floor(xmin - R), 0)
    y0 = max(math.floor(ymin - R), 0)
    x1 = min(math.ceil(xmax + R), width)
    y1 = min(math.ceil(ymax + R), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def plan(points: np.ndarray, size: float, width: int, height: int, max_pixels: int = BATCH_PIXELS) -> list[Job]:
    """The jobs for one stroke: its window, split into row bands of at most ``max_pixels``."""
    win = stroke_window(points, size, width, height)
    if win is None:
        return []
    x0, y0, x1, y1 = win
    rows = max(1, max_pixels // (x1 - x0))
    return [Job(points, float(size), x0, y, x1, min(y + rows, y1)) for y in range(y0, y1, rows)]


class Scratch:
    """Work buffers reused across batches (fresh large arrays cost a page fault per 4 KiB on first touch).

    Coverages computed with a scratch are views into it: use them before the next batch.
    """

    def __init__(self) -> None:
        self.size = 0

    def get(self, total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Buffers for ``total`` pixels: raw, diff and mark are all zero (each use resets what it touched)."""
        if total > self.size:
            self.size = max(total, BATCH_PIXELS + BATCH_PIXELS // 4)
            self.raw = np.zeros(self.size)
            self.diff = np.zeros(self.size + 1, np.int64)
            self.csum = np.zeros(self.size, np.int64)
            self.inside = np.zeros(self.size, bool)
            self.mark = np.zeros(self.size, bool)
        return (self.raw[:total], self.diff[:total + 1], self.csum[:total], self.inside[:total],
                self.mark[:total])


def rasterize(jobs: list[Job], scratch: Scratch | None = None) -> list[Coverage]:
    """Coverage for every job, computed in one vectorized pass (results in the same order)."""
    if not jobs:
        return []
    with np.errstate(all="ignore"):
        return _rasterize(jobs, scratch or Scratch())


def _rasterize(jobs: list[Job], scratch: Scratch) -> list[Coverage]:
    S = len(jobs)
    npts = np.array([len(j.points) for j in jobs])
    P = np.concatenate([j.points for j in jobs]) if S > 1 else jobs[0].points
    win = np.array([(j.size, j.x0, j.y0, j.x1 - j.x0, j.y1 - j.y0) for j in jobs])
    R = win[:, 0] / 2 + 0.5
    x0 = win[:, 1].astype(np.int64)
    y0 = win[:, 2].astype(np.int64)
    w = win[:, 3].astype(np.int64)
    h = win[:, 4].astype(np.int64)
    ww = w + 1  # one spare column per row keeps the difference array's -1 inside its row
    area = h * ww
    boff = np.cumsum(area) - area
    total = int(area.sum())

    # --- segments (a single point is a zero-length segment) ---------------------------------------
    sid = np.repeat(np.arange(S), npts)
    pairs = np.flatnonzero(sid[:-1] == sid[1:])
    if (npts == 1).any():
        singles = (np.cumsum(npts) - npts)[npts == 1]
        ia = np.concatenate((pairs, singles))
        ib = np.concatenate((pairs + 1, singles))
    else:
        ia, ib = pairs, pairs + 1
    st = sid[ia]
    A = P[ia]
    B = P[ib]
    V = B - A
    L = np.hypot(V[:, 0], V[:, 1])
    zero = L == 0
    V[zero] = (1.0, 0.0)
    L1 = np.where(zero, 1.0, L)
    ux = V[:, 0] / L1
    uy = V[:, 1] / L1
    # 1/u with exact zeros replaced by a tiny number: a slab then becomes huge (the whole row) or lies
    # far away (nothing), and the other slab, which is finite, decides.
    iux = 1.0 / np.where(ux == 0, 1e-200, ux)
    iuy = 1.0 / np.where(uy == 0, 1e-200, uy)

    # --- rows each segment can reach, in window coordinates ---------------------------------------
    Rs = R[st]
    hs = h[st]
    j0 = np.clip(np.floor(np.minimum(A[:, 1], B[:, 1]) - Rs) - y0[st], 0, hs).astype(np.int64)
    j1 = np.clip(np.ceil(np.maximum(A[:, 1], B[:, 1]) + Rs) - y0[st], 0, hs).astype(np.int64)
    nr = j1 - j0
    segp = np.array((A[:, 0], A[:, 1], B[:, 0], B[:, 1], ux, uy, iux, iuy, L, Rs, st, j0))
    frame = (x0, y0, w, ww, boff)

    # Segments go in groups of at most ROW_BUDGET (segment, row) pairs so that memory stays bounded
    # whatever the number of points; coverage combines by max, so groups can be done one by one.
    ends_at = np.cumsum(nr)
    cuts = [0]
    while cuts[-1] < len(nr):
        done = int(ends_at[cuts[-1] - 1]) if cuts[-1] else 0
        cuts.append(max(int(np.searchsorted(ends_at, done + ROW_BUDGET, side="right")), cuts[-1] + 1))
    groups = list(zip(cuts[:-1], cuts[1:], strict=True))

    raw, diff, csum, interior, mark = scratch.get(total)
    # pass 1: the interior, from every group's inner spans (difference array, cumulative sum)
    cached = None
    for a, b in groups:
        sp = _spans(segp[:, a:b], nr[a:b], frame)
        np.add.at(diff, sp.starts, 1)
        np.add.at(diff, sp.ends, -1)
        if len(groups) == 1:
            cached = sp
    np.cumsum(diff[:total], out=csum)
    np.greater(csum, 0, out=interior)
    diff[:total + 1] = 0

    # pass 2: exact distances in the band between the capsules, skipping interior pixels
    touched = []
    for a, b in groups:
        sp = cached if cached is not None else _spans(segp[:, a:b], nr[a:b], frame)
        pos = _band(sp, interior, raw, mark)
        if pos is not None:
            touched.append(pos)
    fringe = np.flatnonzero(mark) if touched else np.zeros(0, np.int64)
    mark[fringe] = False
    fc = raw[fringe]
    for pos in touched:
        raw[pos] = 0.0

    owner = np.searchsorted(boff, fringe, side="right") - 1
    local = fringe - boff[owner]
    frow = local // ww[owner]
    fy = frow + y0[owner]
    fx = local - frow * ww[owner] + x0[owner]
    cut = np.searchsorted(fringe, np.append(boff, total))

    out = []
    for i, job in enumerate(jobs):
        a, b = int(boff[i]), int(boff[i] + area[i])
        shape = (int(h[i]), int(ww[i]))
        c0, c1 = cut[i], cut[i + 1]
        out.append(Coverage(job.y0, job.x0, interior[a:b].reshape(shape)[:, :-1], fy[c0:c1], fx[c0:c1], fc[c0:c1]))
    return out


@dataclass
class _Spans:
    starts: np.ndarray  # buffer positions where inner spans start, and end (+1)
    ends: np.ndarray
    rs: np.ndarray  # band runs: first column and length, two per row (left and right of the inner span)
    n: np.ndarray
    base: np.ndarray  # buffer position of each run's row
    dxs: np.ndarray  # centre of each run's first pixel, relative to its segment's start point
    dys: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    L: np.ndarray
    R: np.ndarray


def _spans(segp: np.ndarray, nr: np.ndarray, frame) -> _Spans:
    """Outer (r + 0.5) and inner (r − 0.5) capsule spans of every (segment, pixel row) pair.

    A capsule is the union of the discs at both ends and the rectangle between them; it is convex, so a
    row meets it in one interval: the hull of the three pieces' intervals (NaN where a piece is missed).
    """
    x0, y0, w, ww, boff = frame
    rows = np.take(segp, np.repeat(np.arange(segp.shape[1]), nr), axis=1)  # (12, rows), rows contiguous
    tot = rows.shape[1]
    ax, ay, bx, by, rux, ruy, riux, riuy, rL, rR, rst, j0 = rows
    t = rst.astype(np.int64)
    j = np.arange(tot) - np.repeat(np.cumsum(nr) - nr, nr) + j0.astype(np.int64)
    yc = j + y0[t] + 0.5
    da = yc - ay
    db = yc - by
    # rectangle, along the segment: 0 <= (x − ax)·ux + da·uy <= L
    t1 = -(da * ruy) * riux
    t2 = t1 + rL * riux
    s_lo = np.minimum(t1, t2) + ax
    s_hi = np.maximum(t1, t2) + ax
    # rectangle, across it: |da·ux − (x − ax)·uy| <= rho
    qc = da * rux * riuy + ax
    aiy = np.abs(riuy)
    rho = np.concatenate((rR, rR - 1.0))
    rho[tot:][rho[tot:] < 0] = np.nan  # no inner capsule for brushes under one pixel
    rho2 = rho * rho
    ha = np.sqrt(rho2 - np.concatenate((da, da)) ** 2)  # NaN when the row misses the end disc
    hb = np.sqrt(rho2 - np.concatenate((db, db)) ** 2)
    half = rho * np.concatenate((aiy, aiy))
    qc2 = np.concatenate((qc, qc))
    r_lo = np.maximum(np.concatenate((s_lo, s_lo)), qc2 - half)
    r_hi = np.minimum(np.concatenate((s_hi, s_hi)), qc2 + half)
    none = ~(r_lo <= r_hi)
    r_lo[none] = np.nan
    r_hi[none] = np.nan
    ax2 = np.concatenate((ax, ax))
    bx2 = np.concatenate((bx, bx))
    lo = np.fmin(np.fmin(ax2 - ha, bx2 - hb), r_lo)
    hi = np.fmax(np.fmax(ax2 + ha, bx2 + hb), r_hi)
    # to window columns; NaN (empty) → an empty range; clip first so the integer casts cannot overflow
    xoff = x0[t] + 0.5
    wt = w[t]
    lim = np.concatenate((wt, wt)) + 2.0
    xoff2 = np.concatenate((xoff, xoff))
    lo = np.maximum(np.fmin(lo - xoff2, lim), -2.0)
    hi = np.minimum(np.fmax(hi - xoff2, -2.0), lim)
    o0 = np.maximum(np.ceil(lo[:tot] - EPS), 0).astype(np.int64)
    o1 = np.minimum(np.floor(hi[:tot] + EPS), wt - 1).astype(np.int64)
    i0 = np.maximum(np.ceil(lo[tot:] + EPS), 0).astype(np.int64)
    i1 = np.minimum(np.floor(hi[tot:] - EPS), wt - 1).astype(np.int64)
    filled = i0 <= i1
    i0 = np.where(filled, i0, o1 + 1)
    i1 = np.where(filled, i1, o1)
    row_base = boff[t] + j * ww[t]
    rs = np.concatenate((o0, np.maximum(i1 + 1, o0)))
    n = np.maximum(np.concatenate((np.minimum(i0 - 1, o1), o1)) - rs + 1, 0)
    return _Spans((row_base + i0)[filled], (row_base + i1 + 1)[filled], rs, n,
                  np.concatenate((row_base, row_base)), rs + (xoff2 - ax2), np.concatenate((da, da)),
                  np.concatenate((rux, rux)), np.concatenate((ruy, ruy)), np.concatenate((rL, rL)),
                  np.concatenate((rR, rR)))


def _band(sp: _Spans, interior: np.ndarray, raw: np.ndarray, mark: np.ndarray) -> np.ndarray | None:
    """Exact coverage of the band pixels outside the interior, max-combined into ``raw``; marks them."""
    n = sp.n
    N = int(n.sum())
    if not N:
        return None
    rid = np.repeat(np.arange(len(n)), n)
    m = np.arange(N) - (np.cumsum(n) - n)[rid]  # offset within the run
    pos = (sp.base + sp.rs)[rid]
    pos += m
    sel = np.flatnonzero(~interior[pos])
    if not len(sel):
        return None
    rid, m, pos = rid[sel], m[sel].astype(np.float64), pos[sel]
    runp = np.array((sp.dxs * sp.ux + sp.dys * sp.uy, sp.dys * sp.ux - sp.dxs * sp.uy, sp.ux, sp.uy, sp.L, sp.R))
    s0, q0, eux, euy, eL, eR = np.take(runp, rid, axis=1)
    s = s0 + m * eux
    q = q0 - m * euy
    e = np.minimum(s, 0.0)
    s -= eL
    np.maximum(s, e, out=e)
    e *= e
    q *= q
    e += q
    np.sqrt(e, out=e)
    np.subtract(eR, e, out=e)
    np.clip(e, 0.0, 1.0, out=e)
    np.maximum.at(raw, pos, e)
    mark[pos[e > 0]] = True
    return pos


def coverage_array(points, size: float, width: int, height: int) -> np.ndarray:
    """The whole canvas's coverage of one stroke as a ``(height, width)`` float64 array (for tests, docs)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((height, width))
    for c in rasterize(plan(pts, size, width, height)):
        hh, wd = c.cov.shape
        out[c.y0:c.y0 + hh, c.x0:c.x0 + wd] = c.cov
    return out
