"""canvas.* opcodes through the Runtime: argument forms, legacy recorded scripts, errors, metadata."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from viwoscript.errors import ArgumentError, ScriptError, ViwoError
from viwoscript.runtime import Runtime
from viwoscript.values import Image


@pytest.fixture
def crt():
    return Runtime(canvas_size=(32, 32))


RECORDED = [
    "std.seq",
    ["canvas.layer.create", "layer-1", "Layer 1", "raster"],
    ["canvas.draw_stroke", "layer-1", [{"x": 3, "y": 4}, {"x": 20, "y": 25}], "#ff0000", 5],
    ["canvas.draw_stroke", "layer-1", [[28, 2], [2, 28]], "#0000ff", 3, "eraser"],
    ["canvas.layer.update", "layer-1", {"opacity": 0.8}],
]


def test_recorded_legacy_script_runs_and_checks_clean(crt):
    assert [d for d in crt.check(RECORDED) if d.severity == "error"] == []
    crt.run(RECORDED)
    px = crt.canvas.get("layer-1").pixels
    assert px[10, 8].tolist() == [255, 0, 0, 255]
    assert px[15, 15, 3] == 0  # erased where the strokes cross
    assert crt.canvas.to_list()[0]["opacity"] == 0.8


def test_legacy_points_equal_computed_points():
    a, b = Runtime(canvas_size=(32, 32)), Runtime(canvas_size=(32, 32))
    a.run(RECORDED)
    b.run("""(std.seq (canvas.layer.create "layer-1" "Layer 1" "raster")
      (std.let pts [{"x" 3 "y" 4} {"x" (+ 10 10) "y" 25}])
      (canvas.draw_stroke "layer-1" pts "#ff0000" 5)
      (canvas.draw_stroke "layer-1" [[28 2] [2 28]] "#0000ff" 3 "eraser")
      (canvas.layer.update "layer-1" {"opacity" 0.8}))""")
    assert np.array_equal(a.canvas.get("layer-1").pixels, b.canvas.get("layer-1").pixels)


def test_text_and_json_forms_agree():
    text = '(std.seq (canvas.layer.create "s" "S") (canvas.draw_stroke "s" [[10 10] [20 12]] "#ff0000" 12 "brush"))'
    a, b = Runtime(canvas_size=(32, 32)), Runtime(canvas_size=(32, 32))
    a.run(text)
    b.run(json.dumps(["std.seq", ["canvas.layer.create", "s", "S"],
                      ["canvas.draw_stroke", "s", [[10, 10], [20, 12]], "#ff0000", 12, "brush"]]))
    assert np.array_equal(a.canvas.get("s").pixels, b.canvas.get("s").pixels)


def test_size_layers_and_images(crt):
    assert crt.run("(canvas.get_size)") == [32, 32]
    crt.run("(canvas.size 40 20)")
    assert crt.run("(canvas.get_size)") == [40, 20]
    made = crt.run('(canvas.layer.create "a" "A")')
    assert made == {"id": "a", "name": "A", "type": "raster", "visible": True, "opacity": 1.0, "locked": False,
                    "controlType": None, "maskFor": None, "index": 0}
    crt.run('(canvas.layer.create "m" "Mask" "mask")')
    crt.run('(canvas.draw_stroke "m" [[5 5]] "black" 4)')
    mask = crt.run('(canvas.layer.mask "m")')
    assert isinstance(mask, Image) and mask.mode == "L" and np.asarray(mask)[5, 5] == 255
    img = crt.run('(canvas.layer.image "m")')
    assert np.asarray(img).shape == (20, 40, 4)
    crt.run('(std.seq (std.let im (canvas.layer.mask "m")) (canvas.layer.put_image "a" im 10 0))')
    assert crt.canvas.get("a").pixels[5, 15].tolist() == [255, 255, 255, 255]
    comp = crt.run('(canvas.composite "#000000")')
    assert comp.mode == "RGBA" and np.asarray(comp)[5, 15].tolist() == [255, 255, 255, 255]
    assert np.asarray(comp)[5, 5].tolist() == [0, 0, 0, 255]  # the mask layer is not in the picture
    crt.run('(canvas.layer.create "c" "Ctl" "control")')
    crt.run('(canvas.layer.update "c" {"controlType" "scribble"})')
    assert crt.run('(canvas.layer.control_image "c")').mode == "RGB"
    crt.run('(canvas.layer.set_active "a")')
    assert crt.canvas.active == "a"
    crt.run('(canvas.layer.clear "m")')
    crt.run('(canvas.layer.remove "c")')
    assert [lay["id"] for lay in crt.run("(canvas.layers)")] == ["a", "m"]
    with pytest.raises(ScriptError, match="only be set while it is empty"):
        crt.run("(canvas.size 64 64)")


def test_load_image_through_runtime_roots(tmp_path):
    img = Image(np.full((3, 3, 3), 77, np.uint8))
    (tmp_path / "in.png").write_bytes(img.to_png_bytes())
    rt = Runtime(canvas_size=(8, 8), roots=[tmp_path])
    rt.run('(std.seq (canvas.layer.create "a") (canvas.layer.load_image "a" "in.png" 1 2))')
    assert rt.canvas.get("a").pixels[2, 1].tolist() == [77, 77, 77, 255]
    url = "data:image/png;base64," + base64.b64encode(img.to_png_bytes()).decode()
    rt.run(["canvas.layer.load_image", "a", url, 5, 5])
    assert rt.canvas.get("a").pixels[7, 7].tolist() == [77, 77, 77, 255]
    with pytest.raises(ScriptError, match=r"canvas.layer.load_image: '\.\.' is not allowed"):
        rt.run('(canvas.layer.load_image "a" "../in.png")')
    with pytest.raises(ScriptError, match="file access is not allowed"):
        Runtime(canvas_size=(8, 8)).run('(std.seq (canvas.layer.create "a") (canvas.layer.load_image "a" "in.png"))')


@pytest.mark.parametrize("src,kind,message", [
    ('(canvas.draw_stroke "nope" [[1 1]] "red" 2)', ScriptError, "canvas.draw_stroke: unknown layer 'nope'"),
    ('(canvas.draw_stroke "a" [[1 1]] "reddish" 2)', ArgumentError, 'canvas.draw_stroke: invalid colour "reddish"'),
    ('(canvas.draw_stroke "a" [[1 1]] "red" "big")', ArgumentError, "canvas.draw_stroke: expected number for size"),
    ('(canvas.draw_stroke "a" 5 "red" 2)', ArgumentError, "canvas.draw_stroke: expected array for points"),
    ('(canvas.draw_stroke "a" [[1 1]] "red" 2 "spray")', ArgumentError, "canvas.draw_stroke: unknown tool 'spray'"),
    ('(canvas.layer.update "a" {"color" "red"})', ArgumentError, "canvas.layer.update: unknown property 'color'"),
    ('(canvas.layer.create "a")', ScriptError, "canvas.layer.create: layer 'a' already exists"),
    ('(canvas.layer.create 5)', ArgumentError, "canvas.layer.create: expected string for id"),
    ('(canvas.layer.put_image "a" "not an image")', ArgumentError, "canvas.layer.put_image: expected image for image"),
    ('(canvas.size 0 10)', ArgumentError, "canvas.size: width 0 out of range 1–16384"),
    ('(canvas.composite "nocolour")', ArgumentError, 'canvas.composite: invalid colour "nocolour"'),
])
def test_errors_name_the_opcode(src, kind, message):
    rt = Runtime(canvas_size=(16, 16))
    rt.run('(canvas.layer.create "a")')
    with pytest.raises(kind) as e:
        rt.run(src)
    assert e.value.message == message
    assert e.value.span is not None  # the evaluator points at the call


def test_locked_layer_error_is_catchable_with_hint(crt):
    crt.run('(std.seq (canvas.layer.create "a") (canvas.layer.update "a" {"locked" true}))')
    with pytest.raises(ViwoError) as e:
        crt.run('(canvas.draw_stroke "a" [[1 1]] "red" 2)')
    assert e.value.message == "canvas.draw_stroke: layer 'a' is locked" and "locked" in e.value.hint
    assert "locked" in crt.run('(std.try (canvas.draw_stroke "a" [[1 1]] "red" 2) err err)')


def test_draw_stroke_respects_list_limit():
    from viwoscript.errors import SizeLimitError
    from viwoscript.limits import Limits

    rt = Runtime(canvas_size=(8, 8), limits=Limits(max_list=3))
    rt.run('(canvas.layer.create "a")')
    with pytest.raises(SizeLimitError):
        rt.run(["canvas.draw_stroke", "a", [[1, 1], [2, 2], [3, 3], [4, 4]], "red", 1])


def test_metadata_and_signatures():
    rt = Runtime()
    meta = {m["opcode"]: m for m in rt.opcodes_metadata()}
    names = ["canvas.size", "canvas.get_size", "canvas.layers", "canvas.composite", "canvas.layer.create",
             "canvas.layer.remove", "canvas.layer.clear", "canvas.layer.set_active", "canvas.layer.update",
             "canvas.layer.image", "canvas.layer.mask", "canvas.layer.control_image", "canvas.layer.put_image",
             "canvas.layer.load_image", "canvas.draw_stroke"]
    for name in names:
        m = meta[name]
        assert m["category"] == "canvas" and m["description"] and m["label"] != name
    ds = meta["canvas.draw_stroke"]
    assert [p["name"] for p in ds["parameters"]] == ["layerId", "points", "color", "size", "tool"]
    assert ds["parameters"][4]["default"] == "brush" and ds["lazy"] is True
    assert [p["name"] for p in meta["canvas.layer.load_image"]["parameters"]] == ["layerId", "src", "x", "y"]
    assert rt.registry.get("canvas.layer.create").signature() == \
        '(canvas.layer.create id: string name: string = null type: string = "raster") -> object'


def test_check_flags_bad_literals_but_not_raw_points():
    rt = Runtime()
    diags = rt.check('(canvas.layer.create 5)')
    assert any("expected string for id" in d.message for d in diags)
    assert rt.check(["canvas.draw_stroke", "a", [{"x": 1, "y": 1}], "red", 2]) == []
    assert rt.check('(canvas.draw_stroke "a" [[1 1]] "red" 2 "brush")') == []


def test_canvases_are_per_runtime():
    a, b = Runtime(canvas_size=(8, 8)), Runtime(canvas_size=(8, 8))
    a.run('(canvas.layer.create "only-in-a")')
    assert b.run("(canvas.layers)") == []


def test_examples_results():
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    rt = Runtime(roots=[examples], canvas_size=(256, 256))
    out = rt.run((examples / "canvas_sketch.viwo").read_text(encoding="utf-8"))
    assert out["layers"] == ["paper", "sketch", "hole"]
    mask, image = np.asarray(out["mask"]), np.asarray(out["image"])
    assert mask[128, 128] == 255 and mask[0, 0] == 0
    assert image[128, 128].tolist() == [0xfd, 0xf6, 0xe3, 255]  # the erased window shows the paper
    rt = Runtime(roots=[examples], canvas_size=(256, 256))
    img = rt.run((examples / "canvas_recorded.viwo").read_text(encoding="utf-8"))
    assert isinstance(img, Image) and (np.asarray(img)[:, :, 3] == 255).all()
    assert rt.canvas.get("layer-1").pixels[100, 128, 3] == 0  # erased
    assert rt.canvas.active == "layer-1"


def test_extend_grows_the_canvas_and_keeps_every_picture_exactly():
    from viwoscript.replay import decompile

    rt = Runtime(canvas_size=(32, 24))
    rt.run('(canvas.layer.create "a") (canvas.draw_stroke "a" [[0 0] [40 30]] "red" 6) (canvas.layer.create "b")'
           '(canvas.layer.update "a" {"locked": true})')
    before = rt.canvas.get("a").pixels.copy()
    rt.run("(canvas.extend 8 4 0 16)")  # locked layers move too: it is the canvas that grows
    assert rt.run("(canvas.get_size)") == [40, 44]
    px = rt.canvas.get("a").pixels
    assert np.array_equal(px[4:28, 8:40], before) and not px[:4].any() and not px[:, :8].any() and not px[28:].any()
    assert rt.canvas.get("b").is_blank
    rt.run('(canvas.layer.update "a" {"locked": false}) (canvas.draw_stroke "a" [[0 43] [39 0]] "blue" 4)')
    again = Runtime(canvas_size=(8, 8))
    again.run(decompile(rt.canvas))  # the history became the picture: a decompiled script gives the same pixels
    assert np.array_equal(again.canvas.get("a").pixels, rt.canvas.get("a").pixels)
    with pytest.raises(ArgumentError, match=r"canvas.extend: left must be a whole number of pixels, 0 or more"):
        rt.run("(canvas.extend -8)")
    with pytest.raises(ViwoError, match="canvas.extend: width 20040 out of range"):
        rt.run("(canvas.extend 0 0 20000)")
