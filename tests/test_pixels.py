"""The pixels floor: one decoder (EXIF orientation applied once), one encoder, data URLs, channels, and one
resize whose kernels are what they say when enlarging (checked against a direct float implementation of
each kernel, against Pillow where Pillow has the kernel, and by the kernels' known properties)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image as PILImage

from viwoscript.errors import ArgumentError
from viwoscript.pixels import channels
from viwoscript.pixels import resize as R
from viwoscript.pixels.decode import data_url_bytes, decode, decode_data_url
from viwoscript.pixels.encode import encode, to_data_url
from viwoscript.runtime import Runtime
from viwoscript.values import Image

# --- decoding: EXIF orientation ---------------------------------------------------------------------

#: EXIF orientation → what a viewer does to the stored pixels (numpy on H×W×C).
ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
          8: lambda a: np.rot90(a, 1)}


def _stored(w=40, h=20):
    """A 40×20 picture whose every pixel differs: any wrong turn or flip shows."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 6, y * 12, (x + y) * 4], axis=2).astype(np.uint8)


def _with_orientation(pixels, fmt, orientation, **kw) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format=fmt, exif=exif, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
    a = _stored()
    got = decode(_with_orientation(a, "PNG", orientation)).pixels
    assert np.array_equal(got, ORIENT[orientation](a))


def test_exif_rotated_jpeg_is_the_same_through_image_load_and_on_a_layer(tmp_path):
    a = _stored()
    (tmp_path / "side.jpg").write_bytes(_with_orientation(a, "JPEG", 6, quality=95))
    rt = Runtime(roots=[tmp_path], canvas_size=(64, 64))
    loaded = rt.run('(image.load "side.jpg")')
    assert (loaded.width, loaded.height) == (20, 40)  # stored 40×20, shown turned a quarter clockwise
    ref = np.asarray(PILImage.open(tmp_path / "side.jpg").convert("RGB"))  # as stored, 40×20
    assert np.abs(loaded.pixels.astype(int) - np.rot90(ref, -1)).max() == 0
    rt.run('(canvas.layer.create "a" "A") (canvas.layer.load_image "a" "side.jpg")')
    layer = rt.canvas.get("a").pixels
    assert np.array_equal(layer[:40, :20, :3], loaded.pixels) and (layer[:40, :20, 3] == 255).all()
    assert (layer[40:, :, 3] == 0).all() and (layer[:, 20:, 3] == 0).all()
    url = "data:image/jpeg;base64," + base64.b64encode((tmp_path / "side.jpg").read_bytes()).decode()
    assert np.array_equal(rt.run(f'(image.load "{url}")').pixels, loaded.pixels)


def test_data_urls_round_trip_and_bad_ones_are_argument_errors():
    a = np.dstack([_stored(), np.full((20, 40), 200, np.uint8)])
    assert np.array_equal(decode_data_url(to_data_url(a)).pixels, a)
    assert data_url_bytes("data:image/png;BASE64," + base64.b64encode(b"x").decode()) == b"x"
    for bad, msg in [("data:image/png;base64,!!!", "invalid base64"), ("data:text/plain;base64,aGk=", "not an image"),
                     ("data:image/png,raw", "base64-encoded"), ("data:nothing", "malformed")]:
        with pytest.raises(ArgumentError, match=msg):
            data_url_bytes(bad, "op")


def test_encode_formats():
    a = _stored()
    assert np.array_equal(decode(encode(a, "PNG")).pixels, a)
    assert np.array_equal(decode(encode(a, "WEBP", lossless=True)).pixels, a)
    rgba = np.zeros((4, 4, 4), np.uint8)
    jpeg = decode(encode(rgba, "JPEG", background=(255, 0, 0))).pixels
    assert jpeg.shape == (4, 4, 3) and np.abs(jpeg.astype(int) - [255, 0, 0]).max() <= 2


def test_channels():
    g = np.array([[10, 20]], np.uint8)
    assert channels.with_alpha(g).tolist() == [[[10, 10, 10, 255], [20, 20, 20, 255]]]
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 128]]], np.uint8)
    assert channels.to_rgba(rgba).tolist() == [[[0, 0, 0, 0], [255, 0, 0, 128]]]
    assert channels.to_rgb(rgba).tolist() == [[[255, 255, 255], [255, 127, 127]]]
    pil = np.asarray(PILImage.fromarray(_stored()).convert("L"))
    assert np.array_equal(channels.gray(_stored())[:, :, 0], pil)
    px = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    back = channels.unpremultiply(channels.premultiply(px))
    opaque = px[:, :, 3] == 255
    assert np.array_equal(back[opaque], px[opaque])


# --- resize: the kernels -------------------------------------------------------------------------------

def _k_linear(x):
    return np.maximum(0, 1 - abs(x))


def _k_cubic(b, c):
    def k(x):
        x = abs(x)
        if x < 1:
            return ((12 - 9 * b - 6 * c) * x ** 3 + (-18 + 12 * b + 6 * c) * x ** 2 + 6 - 2 * b) / 6
        if x < 2:
            return ((-b - 6 * c) * x ** 3 + (6 * b + 30 * c) * x ** 2 + (-12 * b - 48 * c) * x + 8 * b + 24 * c) / 6
        return 0.0
    return k


def _k_lanczos(n):
    return lambda x: float(np.sinc(x) * np.sinc(x / n)) if abs(x) < n else 0.0


REFERENCE = {"linear": (_k_linear, 1), "cubic": (_k_cubic(0, 0.5), 2), "mitchell": (_k_cubic(1 / 3, 1 / 3), 2),
             "lanczos2": (_k_lanczos(2), 2), "lanczos3": (_k_lanczos(3), 3)}


def _reference_axis(src: np.ndarray, n_out: int, kernel: str) -> np.ndarray:
    """Direct, loop-by-loop resampling of axis 0 (float): output j samples (j + 0.5)·n/n_out − 0.5; edges repeat;
    a shrink widens the kernel by the shrink factor."""
    fn, support = REFERENCE[kernel]
    n = src.shape[0]
    if n == n_out:
        return src.astype(float)
    s = n_out / n
    widen = max(1.0, 1 / s)
    out = np.zeros((n_out,) + src.shape[1:])
    for j in range(n_out):
        centre = (j + 0.5) / s - 0.5
        lo, hi = int(np.floor(centre - support * widen)), int(np.ceil(centre + support * widen))
        wts = [(fn((i - centre) / widen), min(max(i, 0), n - 1)) for i in range(lo, hi + 1)]
        total = sum(w for w, _ in wts)
        out[j] = sum(w * src[i].astype(float) for w, i in wts) / total
    return out


def reference(a: np.ndarray, ow: int, oh: int, kernel: str) -> np.ndarray:
    """Horizontal pass rounded to 8 bits (as Pillow and the resize do), then vertical, rounded."""
    mid = np.clip(np.floor(_reference_axis(a.transpose(1, 0, 2), ow, kernel) + 0.5), 0, 255).transpose(1, 0, 2)
    return np.clip(np.floor(_reference_axis(mid, oh, kernel) + 0.5), 0, 255).astype(int)


NOISE = np.random.default_rng(7).integers(0, 256, (9, 11, 3), dtype=np.uint8)
NOISE12 = np.random.default_rng(8).integers(0, 256, (8, 12, 3), dtype=np.uint8)
KERNELS = ("linear", "cubic", "mitchell", "lanczos2", "lanczos3")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("image,size", [
    (NOISE, (33, 27)), (NOISE, (22, 9)), (NOISE, (11, 30)),  # whole factors, one side only (polyphase)
    (NOISE12, (18, 12)), (NOISE12, (15, 10)), (NOISE12, (30, 20)), (NOISE12, (16, 8)),  # p/q: polyphase
    (NOISE, (27, 23)), (NOISE12, (13, 21)), (NOISE, (30, 5)),  # other factors, one side up and one down
    (NOISE, (7, 6)), (NOISE12, (5, 3))])  # shrinking (libvips reduce)
def test_every_kernel_matches_a_direct_implementation(kernel, image, size):
    got = R.resize(image, *size, kernel).astype(int)
    ref = reference(image, *size, kernel)
    assert got.shape == ref.shape
    d = np.abs(got - ref)
    if size[0] >= image.shape[1] and size[1] >= image.shape[0]:
        # exact .5 ties are common with simple weights (linear at 3/2: 5/6 and 1/6); float32 and float64
        # sums round them either way (a level per pass)
        assert d.max() <= 2 and d.mean() < 0.1, (d.max(), d.mean())
    else:
        assert d.max() <= 4  # shrinking runs on libvips' reduce (its own rounding)


@pytest.mark.parametrize("kernel,pil", [("linear", PILImage.BILINEAR), ("cubic", PILImage.BICUBIC),
                                        ("lanczos3", PILImage.LANCZOS)])
def test_enlarging_matches_pillow_away_from_the_borders(kernel, pil):
    a = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for size in ((100, 75), (120, 90), (57, 52)):
        got = R.resize(a, *size, kernel).astype(int)
        ref = np.asarray(PILImage.fromarray(a).resize(size, pil)).astype(int)
        b = 3 * -(-size[0] // 40) * 3  # Pillow drops taps outside the image, we repeat the edge
        assert np.abs(got - ref)[b:-b, b:-b].max() <= 1


def test_enlarging_kernels_differ_as_they_should():
    """The reported bug: lanczos3, cubic, linear and mitchell all came out bicubic when enlarging."""
    a = NOISE
    out = {k: R.resize(a, 33, 27, k).astype(int) for k in KERNELS + ("nearest",)}
    for i, k1 in enumerate(out):
        for k2 in list(out)[i + 1:]:  # cubic and lanczos2 are close cousins (both two-lobed, interpolating)
            d = np.abs(out[k1] - out[k2])
            assert d.mean() > 0.5 and d.max() >= 4, (k1, k2)
    # at 3× the middle output pixel of each source pixel samples its centre: interpolating kernels give
    # the source pixel back exactly; Mitchell (B = ⅓) blurs, nearest replicates
    centre = (slice(1, None, 3), slice(1, None, 3))
    for k in ("linear", "cubic", "lanczos2", "lanczos3", "nearest"):
        assert np.array_equal(out[k][centre], a), k
    assert np.abs(out["mitchell"][centre] - a).mean() > 5
    # a step edge: linear never leaves [lo, hi]; cubic and lanczos ring past it, lanczos3 twice (second lobe);
    # Mitchell (B = ⅓) overshoots less than Catmull-Rom
    step = np.repeat(np.array([[64] * 8 + [192] * 8], np.uint8)[:, :, None], 3, axis=0)
    rows = {k: R.resize(step, 16 * 5, 3, k)[1, :, 0].astype(int) for k in KERNELS}
    assert rows["linear"].min() == 64 and rows["linear"].max() == 192 and (np.diff(rows["linear"]) >= 0).all()
    assert rows["cubic"].min() < 64 - 5 and rows["cubic"].max() > 192 + 5
    assert rows["lanczos3"].max() > rows["cubic"].max()
    assert rows["cubic"].min() < rows["mitchell"].min() < 64 and 192 < rows["mitchell"].max() < rows["cubic"].max()
    lz = rows["lanczos3"] - 64
    assert (lz[:40] > 0).any() and (lz[:40] < 0).any()  # ripples above and below before the edge


def test_image_transform_and_upscale_use_the_one_resize():
    rt = Runtime()
    rt.globals.vars["img"] = Image(NOISE)
    for k in ("lanczos3", "cubic", "linear", "mitchell"):
        got = rt.run(f'(image.transform img {{"scale" 2.5 "kernel" "{k}"}})', scope=rt.globals)
        assert np.array_equal(got.pixels, R.resize(NOISE, 28, 22, k))
    from viwoscript.capabilities.upscale_traditional import resize_pixels
    assert np.array_equal(resize_pixels(NOISE, 2.5, "mitchell"), R.resize(NOISE, 28, 22, "mitchell"))
    assert np.array_equal(resize_pixels(NOISE, 2.5, "lanczos"), R.resize(NOISE, 28, 22, "lanczos3"))


def test_paths_agree_and_strips_do_not_matter(monkeypatch):
    a = np.random.default_rng(1).integers(0, 256, (20, 16, 4), dtype=np.uint8)
    rgb = np.ascontiguousarray(a[:, :, :3])
    for k in KERNELS:
        for size in ((48, 60), (24, 25), (40, 50), (20, 20)):  # 3×3, 3/2 × 5/4, 5/2 × 5/2, 5/4 × 1
            assert R._ratio(16, size[0]) and R._ratio(20, size[1])
            poly = R.resize(rgb, *size, k)
            sep = np.empty_like(poly)
            R._separable(rgb, *size, k)(0, size[1], sep)
            assert np.abs(poly.astype(int) - sep).max() <= 2, (k, size)
    sizes = ((40, 50), (40, 55), (24, 60))
    whole = {(k, s): R.resize(a, *s, k) for k in KERNELS + ("nearest", "area") for s in sizes}
    monkeypatch.setattr(R, "STRIP_BYTES", 40 * 4 * 3)  # 3 output rows per strip: strips start mid-phase
    for (k, s), ref in whole.items():
        assert np.array_equal(R.resize(a, *s, k), ref), (k, s)


def test_shapes_kernels_and_names():
    assert R.resize(np.zeros((5, 7), np.uint8), 3, 2).shape == (2, 3)  # 2-D stays 2-D
    assert R.resize(np.zeros((5, 7, 2), np.uint8), 14, 1, "mitchell").shape == (1, 14, 2)
    assert R.kernel_name("lanczos") == "lanczos3" and R.kernel_name("bicubic") == "cubic"
    with pytest.raises(ValueError, match="unknown kernel"):
        R.resize(NOISE, 3, 3, "sinc")
    for k in R.KERNELS:
        flat = np.full((6, 5, 3), 91, np.uint8)
        for size in ((13, 7), (2, 3), (5, 18), (10, 12)):
            assert (R.resize(flat, *size, k) == 91).all(), (k, size)
