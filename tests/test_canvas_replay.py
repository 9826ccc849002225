"""Script ⇄ layers: replay, decompile round trips, .viwo-canvas state files, PNG export."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viwoscript.canvas import state
from viwoscript.canvas.layers import LayerStack
from viwoscript.errors import ScriptError
from viwoscript.replay import decompile, decompile_text, replay
from viwoscript.runtime import Runtime
from viwoscript.values import Image


def same_stack(a: LayerStack, b: LayerStack) -> None:
    assert a.size == b.size and a.active == b.active
    assert a.to_list() == b.to_list()
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.pixels, lb.pixels), la.id


point = st.tuples(st.floats(-4, 28, width=32), st.floats(-4, 20, width=32)).map(list)
stroke = st.fixed_dictionaries({
    "points": st.lists(point, min_size=1, max_size=6),
    "color": st.sampled_from(["#e0115f", "rgba(0, 128, 255, 0.4)", "black", "#ffffff80", "rgb(10 20 30 / 70%)"]),
    "size": st.sampled_from([0.5, 1, 2.5, 4, 9]),
    "tool": st.sampled_from(["brush", "brush", "brush", "eraser"]),
    "layer": st.integers(0, 2),
})


@settings(max_examples=40, deadline=None)
@given(st.lists(stroke, max_size=12), st.lists(st.floats(0, 1), min_size=3, max_size=3), st.integers(0, 2),
       st.booleans())
def test_property_decompile_round_trip(strokes, opacities, locked, with_image):
    s = LayerStack(24, 16)
    for i, kind in enumerate(("raster", "control", "mask")):
        s.create(f"l{i}", f"Layer {i}", kind)
    if with_image:
        rng = np.random.default_rng(len(strokes))
        s.put_image("l0", Image(rng.integers(0, 256, (5, 9, 4), dtype=np.uint8)), 3, -2)
    for st_ in strokes:
        s.draw_stroke(f"l{st_['layer']}", st_["points"], st_["color"], st_["size"], st_["tool"])
    for i, o in enumerate(opacities):
        s.update(f"l{i}", {"opacity": o})
    s.update("l1", {"controlType": "canny", "index": 0})
    s.update("l2", {"maskFor": "l0", "visible": False})
    s.update(f"l{locked}", {"locked": True})
    s.set_active("l0")
    script = decompile(s)
    same_stack(s, replay(script, Runtime(canvas_size=(5, 5))))
    same_stack(s, replay(decompile_text(s), Runtime()))
    same_stack(s, replay(decompile(s, snapshot=True), Runtime()))


def test_replay_execute_keeps_ids_and_runs_everything():
    script = """
    (canvas.size 32 32)
    (canvas.layer.create "sky" "Sky")
    (std.for p [[4 4] [20 8]] (canvas.draw_stroke "sky" [p [(+ (list.get p 0) 5) 12]] "#88f" 3))
    (canvas.layer.create "ink")
    """
    s = replay(script, Runtime())
    assert s.ids() == ["sky", "ink"] and s.size == (32, 32)
    assert s.get("sky").pixels[:, :, 3].any()
    again = replay(script, Runtime())
    same_stack(s, again)


def test_replay_only_mode_makes_placeholders():
    script = ["std.seq",
              ["canvas.layer.create", "sketch", "Sketch"],
              ["std.let", "gen", ["get_capability", "diffusers.generate"]],
              ["canvas.draw_stroke", "sketch", [{"x": 1, "y": 2}, {"x": 9, "y": 9}], "#000", 3],
              ["std.log", "hello"],
              ["canvas.layer.put_image", "sketch", ["std.var", "missing"]],
              ["std.let", "n", ["+", 1, 2]],
              ["canvas.layer.create", "two"]]
    warnings = []
    rt = Runtime(canvas_size=(16, 16), on_event=lambda e: warnings.append(e))
    s = replay(script, rt, mode="canvas")
    assert s.ids() == ["sketch", "op1", "op3", "op4", "two"]
    ph = s.get("op1")
    assert ph.locked and ph.op == ["std.let", "gen", ["get_capability", "diffusers.generate"]]
    assert s.get("op4").op[0] == "canvas.layer.put_image"  # failed: kept, with a warning
    assert any("statement 5" in w["message"] for w in warnings if w["type"] == "warn")
    assert s.active == "two"
    assert s.get("sketch").pixels[:, :, 3].any()
    out = decompile(s)
    assert ["std.let", "gen", ["get_capability", "diffusers.generate"]] in out
    assert ["std.log", "hello"] in out
    assert replay(script, Runtime(canvas_size=(16, 16)), mode="canvas").ids() == s.ids()  # stable ids


def test_replay_rejects_unknown_mode():
    with pytest.raises(ValueError):
        replay("(canvas.layers)", Runtime(), mode="dry")


def test_state_round_trip(tmp_path):
    s = LayerStack(20, 10)
    s.create("a", "A")
    s.draw_stroke("a", [[1, 1], [18, 8]], "rgba(255, 0, 0, 0.7)", 3)
    s.put_image("a", Image(np.full((2, 2, 4), 90, np.uint8)), 5, 5)
    s.create("m", "M", "mask")
    s.draw_stroke("m", [[4, 4]], None, 2, "eraser")
    s.update("m", {"maskFor": "a", "opacity": 0.3, "locked": True})
    s.create("empty")
    s.set_active(None)
    path = state.save(s, tmp_path / "pic.viwo-canvas")
    back = state.load(path)
    assert back.get("empty").is_blank  # no pixels stored for a layer never drawn on
    same_stack(s, back)
    same_stack(s, replay(decompile(back), Runtime()))  # history survives: strokes decompile as strokes
    assert [op[0] for op in decompile(back)].count("canvas.draw_stroke") == 2


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.update(format="other"), "not a canvas state file"),
    (lambda d: d.update(version=99), "unsupported canvas state version"),
    (lambda d: d.update(width=-1), "width must be a positive integer"),
    (lambda d: d["layers"][0].update(pixels=b"junk"), "corrupt"),
    (lambda d: d["layers"][0].update(opacity=3), "opacity"),
    (lambda d: d["layers"][0].update(type="vector"), "unknown layer type"),
    (lambda d: d["layers"][0]["history"][0].update(points=b"123"), "bad stroke points"),
    (lambda d: d["layers"][0].update(maskFor="ghost"), "does not exist"),
    (lambda d: d.update(active="ghost"), "active layer 'ghost' does not exist"),
])
def test_state_rejects_damaged_files(mutate, msg):
    import msgpack

    s = LayerStack(8, 8)
    s.create("a")
    s.draw_stroke("a", [[1, 1]], "red", 2)
    doc = msgpack.unpackb(state.dumps(s))
    mutate(doc)
    with pytest.raises(ScriptError, match=msg):
        state.loads(msgpack.packb(doc))
    with pytest.raises(ScriptError, match="not a canvas state file"):
        state.loads(b"\x00garbage")


def test_state_wrong_pixel_size():
    import zlib

    import msgpack

    s = LayerStack(8, 8)
    s.create("a")
    s.draw_stroke("a", [[1, 1]], "red", 2)
    doc = msgpack.unpackb(state.dumps(s))
    doc["layers"][0]["pixels"] = zlib.compress(b"\x00" * 10)
    with pytest.raises(ScriptError, match="wrong size"):
        state.loads(msgpack.packb(doc))


def test_png_export(tmp_path):
    from PIL import Image as PILImage

    s = LayerStack(6, 4)
    s.create("a")
    s.draw_stroke("a", [[0, 0], [6, 4]], "#00ff00", 2)
    state.save_png(s, tmp_path / "layer.png", "a")
    state.save_png(s, tmp_path / "comp.png", background="white")
    layer = np.asarray(PILImage.open(tmp_path / "layer.png"))
    comp = np.asarray(PILImage.open(tmp_path / "comp.png"))
    assert np.array_equal(layer, s.get("a").pixels)
    assert (comp[:, :, 3] == 255).all() and np.array_equal(comp, s.composite_array("white"))
