"""image.* opcodes: files under the allowed roots, embedded scripts, pixel-exact geometry and blending."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from viwoscript.errors import ScriptError
from viwoscript.io import read_image, read_metadata, script_from_image
from viwoscript.runtime import Runtime
from viwoscript.stdlib.image import composite_pixels
from viwoscript.values import Image


@pytest.fixture
def rt(tmp_path):
    return Runtime(roots=[tmp_path])


def test_save_and_load_round_trip_embeds_running_script(rt, tmp_path):
    src = '(std.seq (std.let im (image.with_metadata (image.new 6 4 "#ff8000") {"seed" 9 "prompt" (std.arg 0)}))' \
          ' (image.save im "out.png"))'
    assert rt.run(src, args=["a fox"]) == "out.png"
    back = read_image(tmp_path / "out.png")
    assert back.metadata == {"seed": 9, "prompt": "a fox"}
    assert tuple(back.pixels[0, 0]) == (255, 128, 0, 255)
    script, args = script_from_image(tmp_path / "out.png")
    assert args == ["a fox"]
    assert script[0] == "std.seq"
    # the embedded script re-runs to the same file content
    (tmp_path / "out.png").rename(tmp_path / "first.png")
    Runtime(roots=[tmp_path]).run(script, args=args)
    assert np.array_equal(read_image(tmp_path / "out.png").pixels, read_image(tmp_path / "first.png").pixels)
    loaded = rt.run('(image.metadata (image.load "out.png"))')
    assert loaded == {"seed": 9, "prompt": "a fox"}


def test_save_formats_and_options(rt, tmp_path):
    rt.run('(image.save (image.new 8 8 "rgba(0, 0, 255, 0)") "a.jpg" {"background" "red" "quality" 90})')
    px = read_image(tmp_path / "a.jpg").pixels
    assert px.shape == (8, 8, 3) and abs(int(px[4, 4, 0]) - 255) <= 2 and px[4, 4, 2] <= 3
    rt.run('(image.save (image.new 8 8 "red") "b.bin" {"format" "webp" "lossless" true})')
    with PILImage.open(tmp_path / "b.bin") as im:
        assert im.format == "WEBP"
    rt.run('(image.save (image.new 8 8 "red") "c.png" {"metadata" false})')
    with PILImage.open(tmp_path / "c.png") as im:
        assert "viwo" not in im.text and "parameters" not in im.text


def test_save_refuses_outside_roots_and_missing_folders(rt, tmp_path):
    with pytest.raises(ScriptError, match="outside the allowed folders"):
        rt.run('(image.save (image.new 1 1) "/etc/x.png")')
    with pytest.raises(ScriptError, match="folder of sub/x.png does not exist"):
        rt.run('(image.save (image.new 1 1) "sub/x.png")')
    with pytest.raises(ScriptError, match="not allowed in this runtime"):
        Runtime().run('(image.save (image.new 1 1) "x.png")')
    with pytest.raises(ScriptError, match="not allowed in this runtime"):
        Runtime().run('(image.load "x.png")')


def test_load_reads_other_tools_metadata(rt, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8")
    PILImage.new("RGB", (8, 8)).save(tmp_path / "a1111.png", pnginfo=info)
    meta = rt.run('(image.metadata (image.load "a1111.png"))')
    assert meta == {"prompt": "a cat", "seed": 5, "steps": 20, "sampler": "Euler a", "cfg_scale": 7,
                    "size": [8, 8], "source": "a1111"}


def test_load_refuses_bombs(rt, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(Exception, match="exceeds the limit"):
        rt.run('(image.load "bomb.png")')


def test_rotation_any_angle_keeps_content_centred():
    rt = Runtime()
    img = rt.run('(image.transform (image.composite (image.new 40 40 "white") (image.new 4 4 "red") '
                 '{"x" 30 "y" 18}) {"rotate" 45 "background" "black"})')
    px = img.pixels.astype(int)
    red = (px[:, :, 0] > 200) & (px[:, :, 1] < 80)
    cy, cx = np.argwhere(red).mean(0)
    # (32, 20) is 12 px right of the centre; 45° clockwise puts it 12/√2 right and down of the new centre.
    centre = (img.width - 1) / 2
    assert abs(cx - (centre + 12 / 2**0.5)) < 1.0 and abs(cy - (centre + 12 / 2**0.5)) < 1.0
    assert tuple(img.pixels[0, 0]) == (0, 0, 0, 255)


def test_resize_kernels_and_alpha_edges():
    rt = Runtime()
    # a red square on transparent: premultiplied resampling never darkens the edge colour
    img = rt.run('(image.transform (image.composite (image.new 16 16) (image.new 8 8 "red") {"x" 4 "y" 4})'
                 ' {"resize" [7 7]})')
    px = img.pixels
    visible = px[:, :, 3] > 8
    assert visible.any() and (px[:, :, 0][visible] >= 250).all() and (px[:, :, 1][visible] <= 5).all()
    for kernel in ("nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3"):
        out = rt.run(f'(image.transform (image.new 31 17 "#123456") {{"resize" [64 9] "kernel" "{kernel}"}})')
        assert (out.width, out.height) == (64, 9)
        assert np.abs(out.pixels.astype(int) - [0x12, 0x34, 0x56, 255]).max() <= 1, kernel


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**32 - 1), k=st.integers(-3, 3))
def test_right_angle_rotations_are_exact_and_invertible(h, w, seed, k):
    rt = Runtime()
    px = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image(px)
    rt.globals.vars["img"] = img
    out = rt.run(f'(image.transform img {{"rotate" {90 * k}}})', scope=rt.globals)
    assert np.array_equal(out.pixels, np.rot90(px, -k))
    rt.globals.vars["out"] = out
    back = rt.run(f'(image.transform out {{"rotate" {-90 * k} "flip" "both"}})', scope=rt.globals)
    assert np.array_equal(back.pixels, px[::-1, ::-1])


def reference_composite(base, over, x, y, opacity, mode):
    """Pixel-by-pixel W3C compositing in plain Python (the definition the vectorised code must match)."""
    def blend(cb, cs):
        return {"normal": cs, "multiply": cb * cs, "screen": cb + cs - cb * cs,
                "overlay": 2 * cb * cs if cb <= 0.5 else 1 - 2 * (1 - cb) * (1 - cs),
                "darken": min(cb, cs), "lighten": max(cb, cs), "add": min(cb + cs, 1.0),
                "difference": abs(cb - cs)}[mode]

    out = base.copy()
    for j in range(over.shape[0]):
        for i in range(over.shape[1]):
            bx, by = x + i, y + j
            if not (0 <= bx < base.shape[1] and 0 <= by < base.shape[0]):
                continue
            s, b = over[j, i] / 255.0, base[by, bx] / 255.0
            a_s, a_b = s[3] * opacity, b[3]
            a_o = a_s + a_b * (1 - a_s)
            if a_o == 0:
                continue  # nothing visible: the base pixel is kept as it is
            px = []
            for c in range(3):
                mixed = (1 - a_b) * s[c] + a_b * blend(b[c], s[c])
                co = a_s * mixed + a_b * b[c] * (1 - a_s)
                px.append(co / a_o if a_o > 0 else 0.0)
            out[by, bx] = [int(np.floor(min(max(v, 0), 1) * 255 + 0.5)) for v in px] + [int(np.floor(a_o * 255 + 0.5))]
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), x=st.integers(-5, 6), y=st.integers(-5, 6),
       opacity=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
       mode=st.sampled_from(["normal", "multiply", "screen", "overlay", "darken", "lighten", "add", "difference"]))
def test_composite_matches_reference(seed, x, y, opacity, mode):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    over = rng.integers(0, 256, (4, 7, 4), dtype=np.uint8)
    got = composite_pixels(base, over, x, y, opacity, mode)
    want = reference_composite(base, over, x, y, opacity, mode)
    assert np.abs(got.astype(int) - want).max() <= 1  # float32 vs float64 rounding at .5 boundaries


def test_composite_on_opaque_rgb_base_stays_rgb():
    base = np.full((4, 4, 3), 200, np.uint8)
    over = np.zeros((2, 2, 4), np.uint8)
    over[..., 0] = 255
    over[..., 3] = 128
    out = composite_pixels(base, over, 1, 1, 1.0, "normal")
    assert out.shape == (4, 4, 3)
    assert tuple(out[1, 1]) == (228, 100, 100) and tuple(out[0, 0]) == (200, 200, 200)


def test_metadata_survives_operations_and_with_metadata_is_pure():
    rt = Runtime()
    out = rt.run('(std.let a (image.with_metadata (image.new 4 4 "red") {"seed" 3}))'
                 '[(image.metadata (image.filter (image.transform a {"scale" 2}) "blur")) (image.metadata a)]')
    assert out == [{"seed": 3}, {"seed": 3}]


def test_read_metadata_of_a_saved_generation(tmp_path):
    rt = Runtime(roots=[tmp_path], grants="default")
    rt.run('(std.let g (get_capability "diffusers.generate"))'
           '(std.let r (std.call_method g "textToImage" "a red comet" {"width" 64 "height" 64 "steps" 2 "seed" 11}))'
           '(image.save (obj.get r "image") "gen.png")')
    info = read_metadata(tmp_path / "gen.png")
    assert (info["prompt"], info["seed"], info["steps"], info["capability"], info["method"]) == (
        "a red comet", 11, 2, "diffusers.generate", "textToImage")
    with PILImage.open(tmp_path / "gen.png") as im:
        assert "Seed: 11" in im.text["parameters"] and "Size: 64x64" in im.text["parameters"]
