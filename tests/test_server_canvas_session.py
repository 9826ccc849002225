"""viwoscript/server/canvas_session.py: incremental application, undo/redo from snapshots, changed tiles.

Every check is pixel-exact against a full replay of the session's script in a fresh Runtime, and against
a "client" that only ever paints the reported tiles (what the browser does).
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

from viwoscript.errors import ViwoError
from viwoscript.runtime import Runtime
from viwoscript.server.canvas_session import CanvasSession

W, H = 96, 80


def make(**kw):
    kw.setdefault("snapshot_every", 3)
    kw.setdefault("tile", 16)
    return CanvasSession(Runtime(canvas_size=(W, H)), **kw)


class Client:
    """Layers as a browser holds them: painted only from reported tiles."""

    def __init__(self):
        self.layers: dict[str, np.ndarray] = {}

    def take(self, update):
        ids = [la["id"] for la in update.layers]
        self.layers = {k: v for k, v in self.layers.items() if k in ids}
        for lid in update.reset:
            self.layers[lid] = np.zeros((update.height, update.width, 4), np.uint8)
        for t in update.tiles:
            px = self.layers.setdefault(t.layer, np.zeros((update.height, update.width, 4), np.uint8))
            px[t.y:t.y + t.h, t.x:t.x + t.w] = np.frombuffer(t.data, np.uint8).reshape(t.h, t.w, 4)
        for lid in ids:
            self.layers.setdefault(lid, np.zeros((update.height, update.width, 4), np.uint8))


def pixels(stack):
    return {la.id: la.pixels.copy() for la in stack.layers}


def replayed(session):
    rt = Runtime(canvas_size=(W, H))
    rt.run(session.script())
    return rt.canvas


def assert_same(session, client=None):
    want = replayed(session)
    got = session.stack
    assert [la.to_dict(i) for i, la in enumerate(got.layers)] == [la.to_dict(i) for i, la in enumerate(want.layers)]
    assert got.active == want.active
    for a, b in zip(got.layers, want.layers, strict=True):
        assert np.array_equal(a.pixels, b.pixels), a.id
        assert [type(x) for x in a.history] == [type(x) for x in b.history]
    if client is not None:
        for la in got.layers:
            assert np.array_equal(client.layers[la.id], la.pixels), f"client copy of {la.id}"


def stroke(layer, rnd, tool="brush"):
    pts = [[rnd.uniform(-5, W + 5), rnd.uniform(-5, H + 5)] for _ in range(rnd.randint(1, 5))]
    color = rnd.choice(["#ff000080", "#00ff00", "rgba(0,0,255,0.5)", "white"]) if tool == "brush" else None
    return ["canvas.draw_stroke", layer, pts, color, rnd.choice([1, 3.5, 8, 17]), tool]


def test_a_stroke_reports_only_the_tiles_it_changed():
    s = make()
    c = Client()
    c.take(s.apply([["canvas.layer.create", "a", "A"]]))
    u = s.apply([["canvas.draw_stroke", "a", [[20, 20], [26, 22]], "#f00", 6]])
    c.take(u)
    assert {(t.x, t.y) for t in u.tiles} == {(16, 16)}
    assert all(t.layer == "a" and t.w == 16 and t.h == 16 for t in u.tiles)
    assert u.reset == [] and u.version == 2 and u.can_undo and not u.can_redo
    assert_same(s, c)


def test_stroke_crossing_tiles_and_edge_tiles_are_clipped_to_the_canvas():
    s = make()
    c = Client()
    c.take(s.apply([["canvas.layer.create", "a"], ["canvas.draw_stroke", "a", [[0, 0], [W, H]], "blue", 4]]))
    assert max(t.x + t.w for t in s.state().tiles) == W
    assert_same(s, c)


def test_random_sessions_match_a_full_replay_after_every_call():
    rnd = random.Random(1234)
    for _round in range(6):
        s = make(snapshot_every=rnd.choice([1, 2, 5]), max_snapshots=rnd.choice([3, 6, 48]))
        c = Client()
        c.take(s.state())
        ids = []
        for _step in range(40):
            r = rnd.random()
            if not ids or r < 0.1:
                lid = f"l{_step}"
                u = s.apply([["canvas.layer.create", lid, lid.upper(), rnd.choice(["raster", "mask", "control"])]])
            elif r < 0.55:
                u = s.apply([stroke(rnd.choice(ids), rnd, rnd.choice(["brush", "brush", "eraser"]))
                             for _ in range(rnd.randint(1, 3))])
            elif r < 0.62:
                u = s.apply([["canvas.layer.update", rnd.choice(ids),
                              {"opacity": 0.5, "visible": rnd.random() < 0.5, "index": 0}]])
            elif r < 0.67:
                u = s.apply([["canvas.layer.clear", rnd.choice(ids)]])
            elif r < 0.85:
                u = s.undo(rnd.randint(1, 4))
            else:
                u = s.redo(rnd.randint(1, 3))
            ids = [la.id for la in s.stack.layers]
            c.take(u)
            assert u.version == len(s.statements)
            assert_same(s, c)


def test_undo_after_many_strokes_replays_only_from_the_nearest_snapshot(monkeypatch):
    s = make(snapshot_every=8)
    rnd = random.Random(5)
    s.apply([["canvas.layer.create", "a"]])
    s.apply([stroke("a", rnd) for _ in range(100)])
    runs = []
    real = s._apply_one
    monkeypatch.setattr(s, "_apply_one", lambda *a, **k: (runs.append(a[0]), real(*a, **k))[1])
    c = Client()
    c.take(s.state())
    c.take(s.undo())
    assert len(runs) <= 8
    assert_same(s, c)
    c.take(s.redo())
    assert_same(s, c)
    assert s.version == 101


def test_undo_redo_and_new_statements_clear_redo():
    s = make()
    c = Client()
    c.take(s.apply([["canvas.layer.create", "a"], ["canvas.draw_stroke", "a", [[10, 10]], "red", 9]]))
    c.take(s.undo())
    assert not s.stack.get("a").pixels.any()
    assert s.redo_stack and s.state().can_redo
    c.take(s.undo())
    assert s.stack.layers == [] and s.version == 0
    c.take(s.redo(2))
    assert_same(s, c)
    c.take(s.undo())
    c.take(s.apply([["canvas.draw_stroke", "a", [[40, 40]], "lime", 5]]))
    assert not s.redo_stack
    assert_same(s, c)
    assert s.undo(0).tiles == [] and make().undo().version == 0 and make().redo().version == 0


def test_a_failing_statement_is_refused_and_leaves_no_trace():
    s = make()
    s.apply([["canvas.layer.create", "a"], ["canvas.draw_stroke", "a", [[10, 10]], "red", 9],
             ["canvas.layer.update", "a", {"locked": True}]])
    before = pixels(s.stack)
    with pytest.raises(ViwoError, match="locked"):
        s.apply([["canvas.draw_stroke", "a", [[30, 30]], "red", 9]])
    with pytest.raises(ViwoError, match="locked"):
        s.apply([["std.seq", ["canvas.layer.create", "b"], ["canvas.layer.clear", "a"]]])
    with pytest.raises(ViwoError, match="unknown layer"):
        s.apply([["canvas.draw_stroke", "nope", [[30, 30]], "red", 9]])
    assert s.version == 3 and s.stack.ids() == ["a"]
    assert all(np.array_equal(before[k], v) for k, v in pixels(s.stack).items())
    assert_same(s)


def test_non_canvas_statements_become_locked_placeholders():
    s = make()
    u = s.apply([["canvas.layer.create", "a"], ["std.log", "hi"], ["canvas.draw_stroke", "a", [[5, 5]], "red", 3]])
    assert [la["id"] for la in u.layers] == ["a", "op1"]
    assert u.layers[1]["locked"] and s.stack.get("op1").op == ["std.log", "hi"]
    assert s.stack.active == "a"


def test_replace_rebuilds_from_the_shared_prefix_and_turns_failures_into_placeholders():
    s = make(snapshot_every=2)
    c = Client()
    script = [["canvas.layer.create", "a"]] + [["canvas.draw_stroke", "a", [[i * 9, 10]], "red", 5] for i in range(8)]
    c.take(s.apply(script))
    edited = script[:5] + [["canvas.draw_stroke", "a", [[50, 50]], "blue", 20], ["canvas.layer.clear", "zzz"]]
    u = s.replace(edited)
    c.take(u)
    assert s.statements == edited
    assert u.layers[-1]["locked"] and u.layers[-1]["id"] == "op6"
    assert {(t.x, t.y) for t in u.tiles} <= {(x, y) for x in range(0, W, 16) for y in range(0, H, 16)}
    assert_same_layers = [la.id for la in s.stack.layers]
    assert assert_same_layers == ["a", "op6"]
    for la in s.stack.layers:
        assert np.array_equal(c.layers[la.id], la.pixels)


def test_blob_images_load_through_the_hook():
    from PIL import Image

    img = Image.new("RGBA", (10, 6), (0, 128, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    sha = "ab" * 32
    s = make(load_blob=lambda h: buf.getvalue() if h == sha else None)
    c = Client()
    c.take(s.apply([["canvas.layer.create", "g", "generated"], ["canvas.layer.load_image", "g", f"blob:{sha}", 4, 2],
                    ["canvas.layer.update", "g", {"locked": True}]]))
    px = s.stack.get("g").pixels
    assert px[2, 4].tolist() == [0, 128, 255, 255] and px[8, 4, 3] == 0
    assert "g" in c.layers and np.array_equal(c.layers["g"], px)
    c.take(s.apply([["canvas.layer.create", "x"]]))
    c.take(s.undo(2))
    assert np.array_equal(c.layers["g"], s.stack.get("g").pixels) and not s.stack.get("g").locked
    with pytest.raises(ViwoError, match="malformed blob"):
        s.apply([["canvas.layer.load_image", "g", "blob:xyz"]])
    with pytest.raises(ViwoError, match="only available"):
        make().apply([["canvas.layer.create", "g"], ["canvas.layer.load_image", "g", f"blob:{sha}"]])


def test_snapshots_share_pixels_until_a_layer_changes_and_stay_bounded():
    s = make(snapshot_every=1, max_snapshots=5)
    s.apply([["canvas.layer.create", "a"], ["canvas.layer.create", "b"]])
    s.apply([["canvas.draw_stroke", "a", [[i, i]], "red", 3] for i in range(30)])
    assert len(s._snapshots) <= 5
    assert s._snapshots[0].count == 0
    # b never changed after its creation: every snapshot holds no pixels for it (blank)
    assert all(ls.pixels is None for snap in s._snapshots for ls in snap.layers if ls.id == "b")
    s.undo(3)
    assert_same(s)
    small = make(snapshot_every=1, max_snapshot_bytes=W * H * 4 * 3)
    small.apply([["canvas.layer.create", "a"]])
    small.apply([["canvas.draw_stroke", "a", [[i, i]], "red", 3] for i in range(20)])
    assert small._snapshot_bytes() <= W * H * 4 * 3
    small.undo(5)
    assert_same(small)


def test_state_reports_every_non_empty_tile_and_the_json_shape():
    s = make()
    s.apply([["canvas.layer.create", "a"], ["canvas.draw_stroke", "a", [[1, 1], [90, 70]], "red", 2]])
    st = s.state()
    c = Client()
    c.take(st)
    assert_same(s, c)
    j = st.to_json()
    assert j["tiles"] == len(st.tiles) and j["width"] == W and j["layers"][0]["id"] == "a"
    head = st.tiles[0].header("sess", 7)
    assert head["kind"] == "tile" and head["session"] == "sess" and head["seq"] == 7
    assert s.script()[0] == "std.seq" and len(s.script()) == 3
    assert len(s.state(tiles=False).tiles) == 0


def test_undoing_recent_strokes_puts_back_their_pixels_without_a_replay(monkeypatch):
    s = make(snapshot_every=4)
    rnd = random.Random(9)
    c = Client()
    c.take(s.apply([["canvas.layer.create", "a"], ["canvas.draw_stroke", "a", [[5, 5]], None, 9, "eraser"]]))
    c.take(s.apply([stroke("a", rnd) for _ in range(10)]))
    runs = []
    real = s._apply_one
    monkeypatch.setattr(s, "_apply_one", lambda *a, **k: (runs.append(a[0]), real(*a, **k))[1])
    u = s.undo(3)
    c.take(u)
    assert runs == [] and u.version == 9 and u.tiles
    assert_same(s, c)
    c.take(s.undo(8))  # down to before the eraser on a blank layer: blank again
    assert s.version == 1 and s.stack.ids() == ["a"] and s.stack.get("a").is_blank
    assert_same(s, c)
    c.take(s.redo(11))
    assert_same(s, c)


def test_undo_falls_back_to_a_replay_when_patches_were_dropped():
    s = make(snapshot_every=50, max_patch_bytes=1)
    rnd = random.Random(3)
    c = Client()
    c.take(s.apply([["canvas.layer.create", "a"]] + [stroke("a", rnd) for _ in range(6)]))
    assert s._patch_bytes <= 1
    c.take(s.undo(2))
    assert_same(s, c)


def test_cheap_work_is_small_literal_strokes_and_patch_undos():
    s = make()
    small = ["canvas.draw_stroke", "a", [[1, 1], [5, 5]], "red", 8]
    assert s.cheap([small]) and not s.cheap([small] * 5)
    assert not s.cheap([["canvas.draw_stroke", "a", [[1, 1]], "red", 300]])
    assert not s.cheap([["canvas.layer.create", "a"]])
    s.apply([["canvas.layer.create", "a"], small])
    assert s.cheap(undo=1) and not s.cheap(undo=2) and not s.cheap(undo=0)


def test_the_engine_imports_no_transport():
    import subprocess
    import sys

    code = "import sys, viwoscript.server.canvas_session; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
