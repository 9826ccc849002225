"""upscaleTraditional (the pixels floor's one resize) compared with Pillow, exact sizes, alpha, L/P images, limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from viwoscript.capabilities import upscale_traditional as ut
from viwoscript.capabilities.upscale import Upscale
from viwoscript.errors import ArgumentError, CapabilityError
from viwoscript.pixels import resize as pixels_resize
from viwoscript.runtime import Runtime
from viwoscript.values import Image

PIL_FILTERS = {"lanczos": PILImage.LANCZOS, "bicubic": PILImage.BICUBIC, "bilinear": PILImage.BILINEAR,
               "nearest": PILImage.NEAREST, "area": PILImage.BOX}


def smooth(h=40, w=50, c=3, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, c), dtype=np.uint8)
    pil = PILImage.fromarray(small if c > 1 else small[:, :, 0])
    return np.asarray(pil.resize((w, h), PILImage.BICUBIC)).reshape(h, w, c)


def pillow(arr, factor, method):
    h, w = arr.shape[:2]
    ow, oh = ut.output_size(w, h, factor)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    pil = PILImage.fromarray(arr if arr.shape[2] > 1 else arr[:, :, 0], mode)
    return np.asarray(pil.resize((ow, oh), PIL_FILTERS[method])).reshape(oh, ow, -1).astype(int)


# Documented tolerance vs Pillow on smooth images: integer factors ≤ 1 level mean, ≤ 3 max.
@pytest.mark.parametrize("method", ["lanczos", "bicubic", "bilinear", "nearest", "area"])
@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_integer_factors_match_pillow(method, factor):
    a = smooth()
    out = ut.resize_pixels(a, factor, method)
    assert out.shape == (40 * factor, 50 * factor, 3)
    d = np.abs(out.astype(int) - pillow(a, factor, method))
    assert d.mean() <= 0.1 and d.max() <= 2


@pytest.mark.parametrize("method", ["lanczos", "bicubic", "bilinear"])
@pytest.mark.parametrize("factor", [2, 4])
def test_high_contrast_noise_matches_pillow(method, factor):
    a = np.random.default_rng(3).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    d = np.abs(ut.resize_pixels(a, factor, method).astype(int) - pillow(a, factor, method))
    b = 3 * factor  # away from the borders the two are identical
    assert d[b:-b, b:-b].max() == 0
    # at the borders Pillow drops taps outside the image and renormalises; libvips extends the edge pixels
    assert d.max() <= 24


@pytest.mark.parametrize("method", ["lanczos", "bicubic", "bilinear"])
@pytest.mark.parametrize("factor", [1.5, 2.5, 0.5, 0.3])
def test_fractional_factors_close_to_pillow(method, factor):
    a = smooth()
    out = ut.resize_pixels(a, factor, method)
    ref = pillow(a, factor, method)
    assert out.shape == ref.shape
    d = np.abs(out.astype(int) - ref)
    assert d.mean() <= 1.0 and d.max() <= 12  # libvips' reduce and Pillow quantise their kernels differently


def test_nearest_fractional_picks_neighbouring_source_pixels():
    a = (np.arange(20, dtype=np.uint8) * 10).reshape(1, 20, 1).repeat(3, 0)
    for factor in (1.5, 2.5, 0.3):
        out = ut.resize_pixels(a, factor, "nearest")[0, :, 0].astype(int)
        ref = pillow(a, factor, "nearest")[0, :, 0]
        assert np.all(np.abs(out - ref) <= 10)  # at most one source pixel apart (ties at exact halves)
        assert set(out.tolist()) <= set(a[0, :, 0].tolist())


def test_area_is_a_real_area_average_when_shrinking():
    a = (np.arange(20, dtype=np.uint8) * 10).reshape(1, 20, 1).repeat(2, 0)
    out = ut.resize_pixels(a, 0.3, "area")[0, :, 0]
    # output pixel j covers source [j/0.3, (j+1)/0.3): exact overlap-weighted averages
    src = a[0, :, 0].astype(float)
    ref = []
    for j in range(6):
        lo, hi = j / 0.3, (j + 1) / 0.3
        wts = np.clip(np.minimum(np.arange(1, 21), hi) - np.maximum(np.arange(20), lo), 0, None)
        ref.append(round(float((wts * src).sum() / wts.sum())))
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert np.array_equal(ut.resize_pixels(a, 0.5, "area"), pillow(a, 0.5, "area"))


def test_area_enlarging_by_integer_factor_replicates_pixels():
    a = smooth(8, 10)
    assert np.array_equal(ut.resize_pixels(a, 3, "area"), np.repeat(np.repeat(a, 3, 0), 3, 1))


@given(w=st.integers(1, 40), h=st.integers(1, 40), factor=st.sampled_from([1, 2, 4, 1.25, 2.5, 3.7, 0.5, 0.125, 8]),
       method=st.sampled_from(ut.METHODS))
@settings(max_examples=60, deadline=None)
def test_exact_output_sizes(w, h, factor, method):
    a = np.zeros((h, w, 3), np.uint8)
    assert ut.resize_pixels(a, factor, method).shape == (max(1, round(h * factor)), max(1, round(w * factor)), 3)


def test_area_shrinks_a_side_shorter_than_one_block_to_its_mean():
    a = (np.arange(6, dtype=np.uint8) * 10).reshape(1, 6, 1)  # 1×6 shrunk by 8: both sides become 1 pixel
    assert ut.resize_pixels(a, 0.125, "area").tolist() == [[[25]]]
    b = np.repeat(np.array([[[0], [100]]], np.uint8), 16, axis=0).transpose(1, 0, 2)  # 2×16
    assert ut.resize_pixels(b, 0.125, "area")[:, :, 0].tolist() == [[50, 50]]
    for m in ut.METHODS:  # the smallest image at the smallest factor works with every method
        px = np.array([[[9, 80, 200, 255]]], np.uint8)
        assert ut.resize_pixels(px, 0.125, m).tolist() == px.tolist()


def test_constant_images_stay_constant():
    a = np.full((9, 11, 3), 77, np.uint8)
    for m in ut.METHODS:
        for f in (2, 2.5, 0.5):
            assert np.all(ut.resize_pixels(a, f, m) == 77), (m, f)


def test_alpha_is_premultiplied_like_pillow():
    a = smooth(c=4).copy()
    a[:, :25, 3] = 0  # transparent half with colour garbage must not bleed into the opaque half
    out = ut.resize_pixels(a, 2, "lanczos")
    assert out.shape == (80, 100, 4)
    ref = pillow(a, 2, "lanczos")
    opaque = ref[:, :, 3] > 200
    assert np.abs(out.astype(int) - ref)[opaque].max() <= 3
    assert np.abs(out[:, :, 3].astype(int) - ref[:, :, 3]).max() <= 2


def test_grey_and_palette_images():
    g = smooth(c=1)
    out = ut.resize_pixels(g, 2, "bicubic")
    assert out.shape == (80, 100, 1)
    assert np.abs(out.astype(int) - pillow(g, 2, "bicubic")).max() <= 1
    p = PILImage.fromarray(smooth()).quantize(16)
    res = ut.resize_image(p, 4, "nearest")
    assert res.mode == "RGB" and res.size == (200, 160)
    assert np.array_equal(np.asarray(res), np.asarray(p.convert("RGB").resize((200, 160), PILImage.NEAREST)))
    la = PILImage.fromarray(smooth(c=4)).convert("LA")
    assert ut.resize_image(la, 2, "bilinear").mode == "LA"


def test_strips_give_the_same_result(monkeypatch):
    a = smooth(30, 40)
    whole = ut.resize_pixels(a, 4, "lanczos")
    monkeypatch.setattr(pixels_resize, "STRIP_BYTES", 40 * 4 * 3 * 7)  # 7 output rows per strip
    seen = []
    assert np.array_equal(ut.resize_pixels(a, 4, "lanczos", lambda i, n: seen.append((i, n))), whole)
    assert seen[-1][0] == seen[-1][1] > 10


@pytest.mark.parametrize("method", ["lanczos", "bicubic", "bilinear"])
def test_polyphase_strips_need_not_align_with_phases(method):
    a = smooth(30, 40)
    whole = ut.resize_pixels(a, 3, method)
    build, _ = pixels_resize._strip_builder(np.ascontiguousarray(a), 120, 90, pixels_resize.kernel_name(method))
    out = np.zeros_like(whole)
    for y0, y1 in ((0, 7), (7, 8), (8, 44), (44, 89), (89, 90)):  # strips starting and ending mid-phase
        build(y0, y1, out[y0:y1])
    assert np.array_equal(out, whole)


@pytest.mark.parametrize("method", ["lanczos", "bicubic"])
def test_large_noise_interior_matches_pillow(method):
    a = np.random.default_rng(11).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    d = np.abs(ut.resize_pixels(a, 4, method).astype(int) - pillow(a, 4, method))[12:-12, 12:-12]
    # bicubic is identical; lanczos differs by one level in ~1e-4 of the pixels (values within ~1e-4 of a
    # rounding tie, where Pillow's 22-bit fixed-point weights and our float weights round differently)
    assert d.max() <= 1 and (d > 0).mean() <= (5e-4 if method == "lanczos" else 0)


# --- through the capability ----------------------------------------------------------------------

def call(rt, *args, method="upscaleTraditional"):
    return rt.caps.call(None, rt.caps.held_by()[0], method, list(args))


def test_capability_method_returns_image_and_reports_progress():
    events = []
    rt = Runtime(capabilities=[Upscale()], grants=["diffusers.upscale"], on_event=events.append)
    img = Image(smooth(), {"seed": 5})
    r = call(rt, img, {"method": "bicubic", "factor": 4})
    assert (r["width"], r["height"], r["method"], r["factor"]) == (200, 160, "bicubic", 4)
    assert r["image"].metadata["seed"] == 5 and r["image"].metadata["upscale"]["method"] == "bicubic"
    assert any(e["type"] == "progress" and e["task"] == "upscaleTraditional" for e in events)
    assert call(rt, img)["width"] == 100  # lanczos 2× by default


def test_capability_rejects_bad_arguments_and_oversize_before_work(monkeypatch):
    rt = Runtime(capabilities=[Upscale()], grants=[{"type": "diffusers.upscale", "params": {"max_width": 150}}])
    img = Image(smooth())
    with pytest.raises(ArgumentError, match="method must be one of"):
        call(rt, img, {"method": "sinc"})
    with pytest.raises(ArgumentError, match="factor must be between"):
        call(rt, img, {"factor": 9})
    monkeypatch.setattr(ut, "resize_pixels", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(CapabilityError, match="width 200 exceeds this grant's max_width of 150"):
        call(rt, img, {"factor": 4})


def test_script_calls_it():
    rt = Runtime(capabilities=[Upscale()], grants="default")
    img = Image(smooth())
    out = rt.run('(std.call_method (get_capability "diffusers.upscale") "upscaleTraditional" '
                 '(std.arg 0) {"factor" 4 "method" "nearest"})', args={"img": img}, syntax="text")
    assert out["width"] == 200 and np.array_equal(out["image"].pixels, np.repeat(np.repeat(img.pixels, 4, 0), 4, 1))
