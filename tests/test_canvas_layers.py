"""Layer stack: blending, compositing, layer fields and images, pixel-exact where the math is defined."""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viwoscript.canvas.layers import LayerStack
from viwoscript.canvas.raster import coverage_array
from viwoscript.errors import ArgumentError, ScriptError, SizeLimitError
from viwoscript.pixels.colors import parse_color, to_css
from viwoscript.values import Image


def rnd(x: float) -> int:
    return math.floor(x + 0.5)


def ref_brush(dst, cov, rgb, ca):
    """The documented source-over formula, one pixel at a time in Python floats."""
    out = dst.copy()
    for j, i in zip(*np.nonzero(cov), strict=True):
        a_s = float(cov[j, i]) * ca
        Ad = float(dst[j, i, 3])
        Ao = Ad + (255 - Ad) * a_s
        k = 255 * a_s / Ao if Ao > 0 else 0.0
        px = [rnd(float(dst[j, i, c]) + (rgb[c] - float(dst[j, i, c])) * k) for c in range(3)] + [rnd(Ao)]
        out[j, i] = px if px[3] else [0, 0, 0, 0]
    return out


def ref_composite(layers, background=None):
    """Premultiplied source-over in Python floats (the documented composite formula)."""
    h, w = layers[0][0].shape[:2]
    out = np.zeros((h, w, 4), np.uint8)
    for j in range(h):
        for i in range(w):
            P = [0.0, 0.0, 0.0, 0.0]
            if background is not None:
                r, g, b, a = background
                P = [r * a, g * a, b * a, 255 * a]
            for px, opacity in layers:
                a = px[j, i, 3] / 255 * opacity
                P = [float(px[j, i, c]) * a + P[c] * (1 - a) for c in range(3)] + [255 * a + P[3] * (1 - a)]
            if rnd(P[3]) == 0:
                continue
            out[j, i] = [rnd(255 * P[c] / P[3]) for c in range(3)] + [rnd(P[3])]
    return out


def stack_with(w=8, h=8, *ids):
    s = LayerStack(w, h)
    for i in ids:
        s.create(i)
    return s


# --- strokes -----------------------------------------------------------------------------------------

def test_disc_on_empty_layer_is_colour_with_coverage_alpha():
    s = stack_with(8, 8, "a")
    s.draw_stroke("a", [[4, 4]], "#ff0000", 4)
    px = s.get("a").pixels
    cov = coverage_array([[4, 4]], 4, 8, 8)
    want = np.zeros((8, 8, 4), np.uint8)
    for j, i in zip(*np.nonzero(cov), strict=True):
        want[j, i] = (255, 0, 0, rnd(255 * cov[j, i]))
    assert np.array_equal(px, want)
    assert px[3, 3].tolist() == [255, 0, 0, 255]
    assert px[2, 2].tolist() == [255, 0, 0, 97]  # 255 × (2.5 − √4.5) = 96.56


def test_semi_transparent_colour_on_white():
    s = stack_with(8, 8, "a")
    s.put_image("a", Image(np.full((8, 8, 4), 255, np.uint8)))
    s.draw_stroke("a", [[1, 4], [7, 4]], "rgba(0, 0, 255, 0.5)", 2)
    px = s.get("a").pixels
    want = ref_brush(np.full((8, 8, 4), 255, np.uint8), coverage_array([[1, 4], [7, 4]], 2, 8, 8), (0, 0, 255), 0.5)
    assert np.array_equal(px, want)
    assert px[3, 3].tolist() == [128, 128, 255, 255]  # k = 0.5: 255 + (0 − 255)·0.5 = 127.5, rounded half up
    assert px[0, 0].tolist() == [255, 255, 255, 255]


def test_semi_transparent_on_transparent_keeps_colour():
    s = stack_with(8, 8, "a")
    s.draw_stroke("a", [[4, 4]], "#00ff0080", 4)
    px = s.get("a").pixels
    assert px[3, 3].tolist() == [0, 255, 0, 128]  # alpha 128/255 × coverage 1


def test_eraser_on_filled_layer():
    s = stack_with(8, 8, "a")
    fill = np.zeros((8, 8, 4), np.uint8)
    fill[...] = (10, 20, 30, 200)
    s.put_image("a", Image(fill))
    s.draw_stroke("a", [[4, 4]], None, 4, "eraser")
    px = s.get("a").pixels
    cov = coverage_array([[4, 4]], 4, 8, 8)
    for j in range(8):
        for i in range(8):
            a = rnd(200 * (1 - cov[j, i]))
            assert px[j, i].tolist() == ([10, 20, 30, a] if a else [0, 0, 0, 0])
    assert px[3, 3].tolist() == [0, 0, 0, 0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 12, width=32), st.floats(0, 12, width=32)), min_size=1, max_size=4),
       st.floats(0.5, 8), st.integers(0, 255))
def test_property_eraser_never_increases_alpha(points, size, alpha):
    s = stack_with(12, 12, "a")
    base = np.random.default_rng(alpha).integers(0, 256, (12, 12, 4), dtype=np.uint8)
    s.put_image("a", Image(base))
    before = s.get("a").pixels.copy()
    s.draw_stroke("a", [list(p) for p in points], "#000", size, "eraser")
    after = s.get("a").pixels
    assert (after[:, :, 3] <= before[:, :, 3]).all()
    same = after[:, :, 3] > 0
    assert np.array_equal(after[same, :3], before[same, :3])  # colour untouched while visible


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 14, width=32), st.floats(-2, 14, width=32)), min_size=1, max_size=4),
       st.floats(0.5, 6), st.sampled_from(["#ff8000", "rgba(10, 200, 30, 0.3)", "#12345680"]))
def test_property_brush_matches_reference(points, size, color):
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (12, 12, 4), dtype=np.uint8)
    base[base[:, :, 3] == 0] = 0
    s = stack_with(12, 12, "a")
    s.get("a")._pixels = base.copy()
    s.draw_stroke("a", [list(p) for p in points], color, size)
    r, g, b, a = parse_color(color)
    want = ref_brush(base, coverage_array(points, size, 12, 12), (r, g, b), a)
    assert np.abs(s.get("a").pixels.astype(int) - want).max() <= 1  # float ties may round either way
    assert (s.get("a").pixels[:, :, 3] >= base[:, :, 3]).all()


def test_deferred_strokes_equal_immediate():
    rng = np.random.default_rng(3)
    strokes = [(rng.uniform(0, 40, (rng.integers(1, 6), 2)).tolist(), f"#{rng.integers(0, 1 << 24):06x}",
                float(rng.uniform(1, 9)), "eraser" if rng.random() < 0.2 else "brush") for _ in range(40)]
    lazy = stack_with(40, 40, "a")
    eager = stack_with(40, 40, "a")
    for pts, color, size, tool in strokes:
        lazy.draw_stroke("a", pts, color, size, tool)
        eager.draw_stroke("a", pts, color, size, tool)
        eager.get("a").pixels  # noqa: B018 - forces one stroke at a time
    assert np.array_equal(lazy.get("a").pixels, eager.get("a").pixels)


def test_mask_ignores_brush_colour():
    s = stack_with(8, 8, "m")
    s.update("m", {"name": "mask"})
    s.draw_stroke("m", [[4, 4]], "black", 4)
    black = np.asarray(s.mask_image("m")).copy()
    s.clear("m")
    s.draw_stroke("m", [[4, 4]], "white", 4)
    assert np.array_equal(np.asarray(s.mask_image("m")), black)
    assert s.mask_image("m").mode == "L" and black[3, 3] == 255 and black[0, 0] == 0


# --- compositing -------------------------------------------------------------------------------------

def test_opacity_composite_by_hand():
    s = stack_with(2, 1, "bottom", "top")
    s.put_image("bottom", Image(np.array([[[255, 0, 0, 255], [0, 0, 255, 255]]], np.uint8)))
    s.put_image("top", Image(np.array([[[0, 255, 0, 255], [0, 0, 0, 0]]], np.uint8)))
    s.update("top", {"opacity": 0.25})
    out = np.asarray(s.composite())
    # pixel 0: 0.25 green over red → (191.25, 63.75, 0); pixel 1: only blue
    assert out[0, 0].tolist() == [191, 64, 0, 255]
    assert out[0, 1].tolist() == [0, 0, 255, 255]


def test_composite_matches_reference():
    rng = np.random.default_rng(11)
    layers = []
    s = LayerStack(9, 7)
    for k in range(4):
        px = rng.integers(0, 256, (7, 9, 4), dtype=np.uint8)
        px[rng.random((7, 9)) < 0.3, 3] = 0
        px[px[:, :, 3] == 0] = 0
        s.create(f"l{k}")
        s.get(f"l{k}")._pixels = px
        op = [1.0, 0.5, 0.8, 1.0][k]
        s.update(f"l{k}", {"opacity": op})
        layers.append((px, op))
    got = np.asarray(s.composite()).astype(int)
    assert np.abs(got - ref_composite(layers)).max() <= 1  # float32 accumulation
    got_bg = np.asarray(s.composite("#336699")).astype(int)
    assert np.abs(got_bg - ref_composite(layers, (0x33, 0x66, 0x99, 1.0))).max() <= 1
    assert (got_bg[:, :, 3] == 255).all()


def test_composite_threads_and_chunks_agree(monkeypatch):
    from viwoscript.canvas import composite as comp

    rng = np.random.default_rng(5)
    s = LayerStack(600, 500)
    for k in range(3):
        s.create(f"l{k}")
        s.get(f"l{k}")._pixels = rng.integers(0, 256, (500, 600, 4), dtype=np.uint8)
    s.get("l1")._pixels[:, :, 3] = 255  # an opaque layer hides what is under it
    threaded = s.composite_array()
    monkeypatch.setattr(comp, "MAX_THREADS", 1)
    monkeypatch.setattr(comp, "CHUNK_PIXELS", 7777)
    assert np.array_equal(threaded, s.composite_array())


def test_composite_skips_hidden_control_and_mask_layers():
    s = LayerStack(8, 8)
    for lid, kind in (("base", "raster"), ("ctl", "control"), ("msk", "mask"), ("hidden", "raster")):
        s.create(lid, lid, kind)
    for lid in s.ids():
        s.draw_stroke(lid, [[4, 4]], "#ffffff", 6)
    s.update("hidden", {"visible": False})
    s.clear("base")
    assert not np.asarray(s.composite())[:, :, 3].any()


def test_display_tints_stay_on_their_layer():
    s = LayerStack(16, 8)
    s.create("base")
    s.put_image("base", Image(np.full((8, 16, 3), 200, np.uint8)))
    s.create("m", "Mask", "mask")
    s.draw_stroke("m", [[3, 4]], "#000", 4)
    s.create("c", "Control", "control")
    s.draw_stroke("c", [[12, 4]], "#fff", 4)
    plain = np.asarray(s.composite())
    shown = np.asarray(s.composite(display=True))
    untouched = (s.get("m").pixels[:, :, 3] == 0) & (s.get("c").pixels[:, :, 3] == 0)
    assert np.array_equal(shown[untouched], plain[untouched])
    assert (shown[4, 3, 0] > shown[4, 3, 2]) and (shown[4, 12, 2] > shown[4, 12, 0])  # red mask, blue control
    assert (plain == [200, 200, 200, 255]).all()  # exported images never show mask or control layers


def test_control_image_is_rgb_over_black():
    s = LayerStack(8, 8)
    s.create("c", "Scribble", "control")
    s.update("c", {"controlType": "scribble"})
    s.draw_stroke("c", [[1, 1], [6, 6]], "white", 2)
    img = s.control_image("c")
    arr = np.asarray(img)
    assert img.mode == "RGB" and img.metadata["controlType"] == "scribble"
    a = s.get("c").pixels[:, :, 3].astype(float)
    assert np.array_equal(arr[:, :, 0], np.floor(a + 0.5).astype(np.uint8))  # white × alpha over black


# --- layer fields and errors --------------------------------------------------------------------------

def test_create_fields_and_duplicates():
    s = LayerStack(8, 8)
    d = s.create("a", "Alpha", "control")
    assert s.to_list() == [{"id": "a", "name": "Alpha", "type": "control", "visible": True, "opacity": 1.0,
                            "locked": False, "controlType": None, "maskFor": None, "index": 0}]
    assert d.id == "a" and s.active == "a"
    with pytest.raises(ScriptError, match="canvas.layer.create: layer 'a' already exists"):
        s.create("a")
    with pytest.raises(ArgumentError, match="unknown layer type 'vector'"):
        s.create("b", None, "vector")


def test_update_props_and_order():
    s = stack_with(8, 8, "a", "b")
    s.create("c", "C", "mask")
    s.update("a", {"index": 2, "opacity": 0.5, "name": "A", "visible": False})
    assert s.ids() == ["b", "c", "a"]
    s.update("a", {"order": 0})
    assert s.ids() == ["a", "b", "c"]
    s.update("c", {"maskFor": "a"})
    assert s.get("c").mask_for == "a"
    s.remove("a")
    assert s.get("c").mask_for is None and s.active == "c"
    with pytest.raises(ArgumentError) as e:
        s.update("b", {"colour": 1})
    assert e.value.message == "canvas.layer.update: unknown property 'colour'"
    assert "name, visible, opacity, locked, controlType, maskFor, index" in e.value.hint
    for bad in ({"opacity": 2}, {"visible": 1}, {"index": 5}, {"index": 0.5}, {"controlType": "canny"},
                {"maskFor": "b"}):
        with pytest.raises(ArgumentError):
            s.update("b", bad)
    before = s.to_list()
    with pytest.raises(ArgumentError):
        s.update("b", {"name": "new", "opacity": -1})  # nothing applied when one property is bad
    assert s.to_list() == before


def test_locked_and_unknown_layers_refuse():
    s = stack_with(8, 8, "a")
    s.update("a", {"locked": True})
    for call in (lambda: s.draw_stroke("a", [[1, 1]], "red", 2), lambda: s.clear("a"),
                 lambda: s.put_image("a", Image(np.zeros((2, 2, 4), np.uint8)))):
        with pytest.raises(ScriptError, match="layer 'a' is locked"):
            call()
    with pytest.raises(ScriptError, match="canvas.draw_stroke: unknown layer 'nope'"):
        s.draw_stroke("nope", [[1, 1]], "red", 2)


@pytest.mark.parametrize("points,color,size,tool,msg", [
    ([], "red", 2, "brush", "at least one point"),
    ([[1]], "red", 2, "brush", "point 0 is not"),
    ([[1, "x"]], "red", 2, "brush", "non-numeric"),
    ([[1, 1]], "reddish", 2, "brush", "invalid colour"),
    ([[1, 1]], "red", 0, "brush", "size must be"),
    ([[1, 1]], "red", 2, "pencil", "unknown tool"),
    ([[1, 1e9]], "red", 2, "brush", "within"),
])
def test_stroke_argument_errors(points, color, size, tool, msg):
    s = stack_with(8, 8, "a")
    with pytest.raises(ArgumentError, match=msg):
        s.draw_stroke("a", points, color, size, tool)
    assert s.get("a").history == []


def test_size_rules():
    s = LayerStack(8, 8)
    s.set_size(20, 10)
    assert s.size == (20, 10)
    s.create("a")
    with pytest.raises(ScriptError, match="only be set while it is empty"):
        s.set_size(30, 30)
    with pytest.raises(ArgumentError):
        LayerStack(0, 10)
    with pytest.raises(SizeLimitError):
        LayerStack(16384, 16384)
    with pytest.raises(SizeLimitError, match="MiB"):
        t = LayerStack(1024, 1024, max_bytes=8 << 20)
        for i in range(3):
            t.create(f"l{i}")


# --- colours -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("#f00", (255, 0, 0, 1.0)), ("#ff000080", (255, 0, 0, 128 / 255)), ("#0f08", (0, 255, 0, 136 / 255)),
    ("rgb(1, 2, 3)", (1, 2, 3, 1.0)), ("rgba(1,2,3,0.25)", (1, 2, 3, 0.25)), ("rgb(100% 0% 50% / 50%)", (255, 0, 128, 0.5)),
    ("RebeccaPurple", (0x66, 0x33, 0x99, 1.0)), ("transparent", (0, 0, 0, 0.0)), ([9, 8, 7], (9, 8, 7, 1.0)),
])
def test_colours(text, want):
    assert parse_color(text) == want


@pytest.mark.parametrize("bad", ["#ff000", "rgb(1,2)", "rgb(300,0,0)", "rgba(1,2,3,2)", "blurple", "", 5, None,
                                 [1, 2], "rgb(1, 2, 3) x"])
def test_bad_colours(bad):
    with pytest.raises(ArgumentError, match="op:"):
        parse_color(bad, "op")


def test_named_colours_after_pillow_cached_them():
    # Pillow's ImageColor.getrgb stores what it resolved back into its name table as (r, g, b) tuples
    from PIL import Image as PILImage
    from PIL import ImageColor

    PILImage.new("RGB", (1, 1), "red")
    ImageColor.getrgb("DarkOrange")
    assert isinstance(ImageColor.colormap["red"], tuple)
    assert parse_color("red") == (255, 0, 0, 1.0)
    assert parse_color("darkorange", "op") == (255, 140, 0, 1.0)
    assert parse_color("rebeccapurple") == (0x66, 0x33, 0x99, 1.0)
    with pytest.raises(ArgumentError, match="op: invalid colour"):
        parse_color("reddish", "op")


def test_css_text_round_trip():
    for c in [(1, 2, 3, 1.0), (255, 0, 10, 0.5)]:
        assert parse_color(to_css(c)) == c


# --- images ------------------------------------------------------------------------------------------

def png_bytes(arr) -> bytes:
    return Image(np.asarray(arr, np.uint8)).to_png_bytes()


def test_put_image_offsets_clip_and_blend():
    s = stack_with(6, 4, "a")
    s.put_image("a", Image(np.full((2, 3, 3), 50, np.uint8)), -1, 3)  # partly outside
    px = s.get("a").pixels
    assert px[3, 0:2].tolist() == [[50, 50, 50, 255]] * 2 and not px[:3].any() and not px[3, 2:].any()
    half = np.zeros((4, 6, 4), np.uint8)
    half[...] = (250, 0, 0, 128)
    before = px.copy()
    s.put_image("a", Image(half))
    want = ref_brush(before, np.full((4, 6), 128 / 255), (250, 0, 0), 1.0)
    assert np.array_equal(s.get("a").pixels, want)
    with pytest.raises(ArgumentError, match="whole number"):
        s.put_image("a", Image(half), 0.5, 0)


def test_load_image_data_url_and_files(tmp_path):
    img = np.random.default_rng(2).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    img[img[:, :, 3] == 0] = 0
    url = "data:image/png;base64," + base64.b64encode(png_bytes(img)).decode()
    s = stack_with(7, 5, "a", "b", "c")
    s.load_image("a", url)
    assert np.array_equal(s.get("a").pixels, img)  # source-over onto transparent: the image itself
    (tmp_path / "pic.png").write_bytes(png_bytes(img))
    from viwoscript.paths import resolve_under_roots

    def resolve(path, op):
        return resolve_under_roots(path, [tmp_path.resolve()], op)

    s.load_image("b", "pic.png", resolve_path=resolve)
    assert np.array_equal(s.get("b").pixels, s.get("a").pixels)
    with pytest.raises(ScriptError, match="'..' is not allowed"):
        s.load_image("c", "../pic.png", resolve_path=resolve)
    with pytest.raises(ScriptError, match="outside the allowed folders"):
        s.load_image("c", "/etc/hostname", resolve_path=resolve)
    (tmp_path / "link.png").symlink_to("/etc/hostname")
    with pytest.raises(ScriptError, match="outside the allowed folders"):
        s.load_image("c", "link.png", resolve_path=resolve)
    with pytest.raises(ScriptError, match="file access is not allowed"):
        s.load_image("c", "pic.png")


def test_load_image_refusals():
    s = stack_with(8, 8, "a")
    with pytest.raises(ScriptError, match="remote URLs are not allowed"):
        s.load_image("a", "https://example.com/x.png")
    s.fetch_url = lambda url: png_bytes(np.zeros((2, 2, 3)))
    s.load_image("a", "https://example.com/x.png")
    assert s.get("a").pixels[0, 0].tolist() == [0, 0, 0, 255]
    for bad, msg in [("data:image/png;base64,!!!", "invalid base64"), ("data:text/plain;base64,aGk=", "not an image"),
                     ("data:image/png,raw", "base64-encoded"),
                     ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "could not decode")]:
        with pytest.raises((ArgumentError, ScriptError), match=msg):
            s.load_image("a", bad)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_decompression_bomb_refused_before_decoding():
    # a PNG header claiming 40000×40000 pixels (1.6 Gpx) with almost no data: refused from the header alone
    bomb = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))
    s = stack_with(8, 8, "a")
    url = "data:image/png;base64," + base64.b64encode(bomb).decode()
    with pytest.raises(SizeLimitError, match="exceeds the limit"):  # the one decoder's error, as image.load
        s.load_image("a", url)
    small = LayerStack(8, 8, max_pixels=100)
    small.create("a")
    big = "data:image/png;base64," + base64.b64encode(png_bytes(np.zeros((20, 20, 3)))).decode()
    with pytest.raises(SizeLimitError, match="20×20 pixels exceeds the limit of 100 pixels"):
        small.load_image("a", big)


def test_layer_image_is_a_copy():
    s = stack_with(4, 4, "a")
    s.draw_stroke("a", [[2, 2]], "red", 4)
    img = s.layer_image("a")
    assert img.mode == "RGBA" and np.asarray(img).shape == (4, 4, 4)
    assert not np.asarray(img).flags.writeable
    s.clear("a")
    assert np.asarray(img)[1, 1, 3] == 255 and not s.get("a").pixels.any()


def test_pil_round_trip_of_composite():
    s = stack_with(4, 3, "a")
    s.draw_stroke("a", [[0, 0], [4, 3]], "#abcdef", 2)
    from PIL import Image as PILImage

    back = np.asarray(PILImage.open(io.BytesIO(s.composite().to_png_bytes())))
    assert np.array_equal(back, s.composite_array())


def test_interrupted_rasterization_resumes_exactly(monkeypatch):
    from viwoscript.canvas import layers as layers_mod
    from viwoscript.errors import InterruptedError_

    monkeypatch.setattr(layers_mod, "FLUSH_EVERY", 10_000)
    rng = np.random.default_rng(8)
    strokes = [(rng.uniform(0, 48, (4, 2)).tolist(), f"#{rng.integers(0, 1 << 24):06x}80", 5) for _ in range(200)]
    plain, stopped = stack_with(48, 48, "a"), stack_with(48, 48, "a")
    for pts, color, size in strokes:
        plain.draw_stroke("a", pts, color, size)
        stopped.draw_stroke("a", pts, color, size)
    calls = []

    def poll():
        calls.append(1)
        if len(calls) == 2:
            raise InterruptedError_("Script interrupted")

    stopped.poll = poll
    with pytest.raises(InterruptedError_):
        stopped.get("a").pixels  # noqa: B018
    assert len(stopped.get("a")._pending) == 200 - 2 * layers_mod.POLL_EVERY
    stopped.poll = None
    assert np.array_equal(stopped.get("a").pixels, plain.get("a").pixels)


def test_timeout_stops_a_long_drawing_script():
    from viwoscript.errors import TimeoutLimitError
    from viwoscript.limits import Limits
    from viwoscript.runtime import Runtime

    rt = Runtime(canvas_size=(512, 512), limits=Limits(timeout=0.2, gas=None))
    with pytest.raises(TimeoutLimitError):
        rt.run('(std.seq (canvas.layer.create "a") (std.while true '
               '(canvas.draw_stroke "a" [[0 0] [512 512] [0 512]] "red" 40)))')
    assert rt.canvas.poll is None  # not left pointing at the finished run
