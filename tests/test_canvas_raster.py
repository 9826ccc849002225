"""Stroke geometry: coverage against hand-computed arrays and an independent slow reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viwoscript.canvas import raster
from viwoscript.canvas.raster import coverage_array


def reference(points, size, width, height):
    """Per-pixel, per-segment distance with the textbook clamped projection (pure Python floats)."""
    pts = [(float(x), float(y)) for x, y in points]
    segs = list(zip(pts, pts[1:], strict=False)) or [(pts[0], pts[0])]
    out = np.zeros((height, width))
    for j in range(height):
        for i in range(width):
            px, py = i + 0.5, j + 0.5
            best = math.inf
            for (ax, ay), (bx, by) in segs:
                vx, vy = bx - ax, by - ay
                vv = vx * vx + vy * vy
                t = 0.0 if vv == 0 else min(1.0, max(0.0, ((px - ax) * vx + (py - ay) * vy) / vv))
                best = min(best, math.hypot(px - ax - t * vx, py - ay - t * vy))
            out[j, i] = min(1.0, max(0.0, size / 2 - best + 0.5))
    return out


def test_disc_8x8_by_hand():
    # one point at (4, 4), size 4: pixel centres sit at offsets ±0.5, ±1.5, ... from the point
    got = coverage_array([[4, 4]], 4, 8, 8)
    a = 1.0                      # offset (0.5, 0.5): d = 0.707, 2.5 − d > 1
    b = 2.5 - math.sqrt(2.5)     # offset (0.5, 1.5)
    c = 2.5 - math.sqrt(4.5)     # offset (1.5, 1.5)
    want = np.zeros((8, 8))
    want[2:6, 2:6] = [[c, b, b, c], [b, a, a, b], [b, a, a, b], [c, b, b, c]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_two_point_line_by_hand():
    # horizontal line y = 4 from x = 1 to x = 7, size 2 (radius 1)
    got = coverage_array([[1, 4], [7, 4]], 2, 8, 8)
    cap = 1.5 - math.sqrt(0.5)   # pixels (0, 3) and (7, 3): the caps, d = √0.5
    want = np.zeros((8, 8))
    want[3:5, 1:7] = 1.0
    want[3:5, 0] = cap
    want[3:5, 7] = cap
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_half_coverage_exact():
    # vertical line x = 4, size 3: the column whose centre is 1.5 away gets exactly 0.5
    got = coverage_array([[4, 0], [4, 8]], 3, 8, 8)
    assert got[4, 2] == 0.5 and got[4, 5] == 0.5
    assert got[4, 3] == 1.0 and got[4, 1] == 0.0


def test_overlapping_segments_do_not_double():
    back_and_forth = coverage_array([[2, 4], [6, 4], [2, 4], [6, 4]], 3, 8, 8)
    once = coverage_array([[2, 4], [6, 4]], 3, 8, 8)
    assert np.array_equal(back_and_forth, once)


@pytest.mark.parametrize("points,size", [
    ([[3.2, 4.7], [9.9, 1.1], [12.5, 12.5]], 5),
    ([[0, 0], [15.99, 15.99]], 1),
    ([[8, 8], [8, 8], [8.0001, 8]], 7.3),
    ([[-5, 3], [20, 3.5]], 2.5),
    ([[7.5, 7.5]], 0.5),
    ([[4, 1], [4, 14], [11, 14], [11, 1]], 3),
    ([[7.775, 10.694], [7.869, -1.159], [2.113, 4.933]], 3),  # a near-vertical segment: a past bug
])
def test_matches_reference(points, size):
    np.testing.assert_allclose(coverage_array(points, size, 16, 16), reference(points, size, 16, 16),
                               rtol=0, atol=1e-9)


coord = st.floats(-6, 22, allow_nan=False, width=32)
pts_strategy = st.lists(st.tuples(coord, coord), min_size=1, max_size=5)
sizes = st.sampled_from([0.25, 0.5, 1, 1.5, 2, 3, 4.5, 8, 13])


@settings(max_examples=120, deadline=None)
@given(pts_strategy, sizes, st.booleans())
def test_property_reference(points, size, snap):
    if snap:  # integer and half-integer points hit the exact-boundary cases
        points = [(round(x * 2) / 2, round(y * 2) / 2) for x, y in points]
    got = coverage_array(points, size, 16, 16)
    assert got.min() >= 0 and got.max() <= 1
    np.testing.assert_allclose(got, reference(points, size, 16, 16), rtol=0, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(pts_strategy, sizes)
def test_property_inside_bounding_box(points, size):
    got = coverage_array(points, size, 16, 16)
    R = size / 2 + 0.5
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    # a pixel centre exactly on the edge gets rounding noise (~1e-16: the distance is 0.999…), never paint
    jj, ii = np.nonzero(got > 1e-9)
    assert ((ii + 0.5 > min(xs) - R) & (ii + 0.5 < max(xs) + R)).all()
    assert ((jj + 0.5 > min(ys) - R) & (jj + 0.5 < max(ys) + R)).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(pts_strategy, sizes), min_size=1, max_size=6))
def test_property_batch_equals_single(strokes):
    jobs = [job for pts, size in strokes for job in raster.plan(np.array(pts, float), size, 16, 16)]
    together = raster.rasterize(jobs)
    for job, cov in zip(jobs, together, strict=True):
        alone = raster.rasterize([job])[0]
        assert np.array_equal(cov.cov, alone.cov)
        assert np.array_equal(cov.fy, alone.fy) and np.array_equal(cov.fx, alone.fx)


def test_row_bands_equal_whole():
    pts = np.array([[3.0, 2.0], [60.0, 50.0], [10.0, 61.0]])
    whole = raster.rasterize(raster.plan(pts, 9, 64, 64))
    banded = raster.rasterize(raster.plan(pts, 9, 64, 64, max_pixels=300))
    assert len(whole) == 1 and len(banded) > 5
    full = np.zeros((64, 64))
    for c in banded:
        h, w = c.interior.shape
        full[c.y0:c.y0 + h, c.x0:c.x0 + w] = c.cov
    assert np.array_equal(full, coverage_array(pts, 9, 64, 64))


def test_fringe_and_interior_partition_the_stroke():
    c = raster.rasterize(raster.plan(np.array([[5.0, 5.0], [20.0, 9.0]]), 6, 32, 32))[0]
    cov = c.cov
    h, w = cov.shape
    marked = c.interior.copy()
    local_y, local_x = c.fy - c.y0, c.fx - c.x0
    assert not marked[local_y, local_x].any()  # disjoint
    marked[local_y, local_x] = True
    assert np.array_equal(marked, cov > 0)
    assert (cov[c.interior] == 1).all() and ((c.fc > 0) & (c.fc <= 1)).all()


def test_off_canvas_and_huge_brush():
    assert raster.plan(np.array([[-100.0, -100.0]]), 10, 16, 16) == []
    full = coverage_array([[8, 8]], 1000, 16, 16)
    assert (full == 1).all()


def test_segment_groups_equal_one_pass(monkeypatch):
    rng = np.random.default_rng(4)
    pts = np.cumsum(rng.normal(0, 3, (400, 2)), axis=0) + 32
    whole = coverage_array(pts, 5, 64, 64)
    monkeypatch.setattr(raster, "ROW_BUDGET", 50)  # many groups of segments, combined by max
    assert np.array_equal(coverage_array(pts, 5, 64, 64), whole)


def test_many_points_stay_bounded():
    rng = np.random.default_rng(9)
    pts = rng.uniform(0, 256, (10_000, 2))  # a scribble: every segment crosses many rows
    cov = coverage_array(pts, 3, 256, 256)
    assert cov.min() >= 0 and cov.max() == 1 and (cov == 1).mean() > 0.9
