"""viwoscript/server/canvas_methods.py over a real loopback WebSocket: canvas_open/apply/undo/redo/replace,
the canvas.update notification and tile frames before each answer, per-user sessions, exports."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest

pytest.importorskip("aiohttp")

from viwoscript.runtime import Runtime  # noqa: E402

TOKEN_A, TOKEN_B = "alice-token-123", "bob-token-4567"


def config(tmp_path, **kw):
    from viwoscript.limits import Limits
    from viwoscript.server.config import ServerConfig

    base = dict(tokens={TOKEN_A: "alice", TOKEN_B: "bob"}, explicit_token=True, data=tmp_path / "data",
                roots=[tmp_path], limits=Limits(gas=10**9, timeout=600), canvas_size=(128, 96))
    base.update(kw)
    return ServerConfig(**base)


class Client:
    """Collects, in order, everything the socket receives; paints tiles like the page does."""

    def __init__(self, ws):
        self.ws = ws
        self.log: list = []
        self.next = 0
        self.layers: dict[str, np.ndarray] = {}
        self.size = None

    async def call(self, method, **params):
        from aiohttp import WSMsgType

        from viwoscript.server.notify import parse_binary_frame

        self.next += 1
        await self.ws.send_str(json.dumps({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 60)
            if msg.type == WSMsgType.BINARY:
                header, data = parse_binary_frame(msg.data)
                self.log.append(("frame", header))
                px = self.layers.setdefault(header["layer"], np.zeros((self.size[1], self.size[0], 4), np.uint8))
                px[header["y"]:header["y"] + header["h"], header["x"]:header["x"] + header["w"]] = \
                    np.frombuffer(data, np.uint8).reshape(header["h"], header["w"], 4)
                continue
            item = json.loads(msg.data)
            if item.get("method") == "canvas.update":
                p = item["params"]
                self.size = (p["width"], p["height"])
                self.log.append(("update", p))
                ids = [la["id"] for la in p["layers"]]
                self.layers = {k: v for k, v in self.layers.items() if k in ids}
                for lid in p["reset"]:
                    self.layers[lid] = np.zeros((p["height"], p["width"], 4), np.uint8)
                continue
            if item.get("id") == self.next:
                self.log.append(("answer", item))
                if "error" in item:
                    raise RuntimeError(json.dumps(item["error"]))
                return item["result"]
            self.log.append(("other", item))


def run(tmp_path, body, **kw):
    async def main():
        from aiohttp.test_utils import TestClient, TestServer

        from viwoscript.server.app import SERVER_KEY, make_app

        app = make_app(config(tmp_path, **kw))
        async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
            async def connect(token=TOKEN_A):
                return Client(await client.ws_connect(f"/rpc?token={token}"))

            await body(connect, client, app[SERVER_KEY])

    asyncio.run(main())


def expected(script, size=(128, 96)):
    rt = Runtime(canvas_size=size)
    rt.run(script)
    return rt.canvas


def test_open_apply_undo_redo_with_tiles_before_each_answer(tmp_path):
    async def body(connect, client, server):
        c = await connect()
        r = await c.call("canvas_open")
        sid = r["session"]
        assert r["script"] == ["std.seq"] and r["width"] == 128 and r["layers"] == []
        st = [["canvas.layer.create", "a", "A"], ["canvas.draw_stroke", "a", [[10, 10], [60, 40]], "#ff000080", 12]]
        c.log.clear()
        u = await c.call("canvas_apply", session=sid, statements=st)
        kinds = [k for k, _ in c.log]
        assert kinds[0] == "update" and kinds[-1] == "answer" and "frame" in kinds
        assert u["version"] == 2 and u["tiles"] == kinds.count("frame")
        frame = next(h for k, h in c.log if k == "frame")
        assert frame["kind"] == "tile" and frame["session"] == sid and frame["mime"] == "application/x-viwo-rgba"
        want = expected(["std.seq", *st])
        assert np.array_equal(c.layers["a"], want.get("a").pixels)
        await c.call("canvas_apply", session=sid, statements=[["canvas.draw_stroke", "a", [[100, 80]], "blue", 30]])
        u = await c.call("canvas_undo", session=sid)
        assert u["version"] == 2 and u["can_redo"]
        assert np.array_equal(c.layers["a"], want.get("a").pixels)
        u = await c.call("canvas_redo", session=sid)
        assert u["version"] == 3
        script = await c.call("canvas_script", session=sid)
        assert script["version"] == 3 and script["text"].startswith('(canvas.layer.create "a" "A")')
        assert np.array_equal(c.layers["a"], expected(script["script"]).get("a").pixels)

    run(tmp_path, body)


def test_refused_statements_are_script_errors(tmp_path):
    async def body(connect, client, server):
        c = await connect()
        sid = (await c.call("canvas_open"))["session"]
        with pytest.raises(RuntimeError) as e:
            await c.call("canvas_apply", session=sid, statements=[["canvas.draw_stroke", "nope", [[1, 1]], "red", 3]])
        err = json.loads(str(e.value))
        assert err["code"] == -32000 and "unknown layer" in err["message"] and err["data"]["hint"]
        with pytest.raises(RuntimeError, match="-32003"):
            await c.call("canvas_apply", session="nope", statements=[])
        with pytest.raises(RuntimeError, match="-32602"):
            await c.call("canvas_open", width=100000)

    run(tmp_path, body)


def test_sessions_are_per_user_and_reattach_or_restore(tmp_path):
    async def body(connect, client, server):
        a = await connect()
        sid = (await a.call("canvas_open"))["session"]
        await a.call("canvas_apply", session=sid, statements=[["canvas.layer.create", "a"],
                                                              ["canvas.draw_stroke", "a", [[5, 5]], "red", 6]])
        b = await connect(TOKEN_B)
        with pytest.raises(RuntimeError, match="-32003"):
            await b.call("canvas_apply", session=sid, statements=[])
        other = await b.call("canvas_open", session=sid)  # not bob's: a new session
        assert other["session"] != sid and other["layers"] == []
        a2 = await connect()
        again = await a2.call("canvas_open", session=sid)  # reattach: same script, every tile
        assert again["session"] == sid and len(again["script"]) == 3
        assert np.array_equal(a2.layers["a"], expected(again["script"]).get("a").pixels)
        text = '(canvas.layer.create "a")\n(canvas.draw_stroke "a" [[9 9]] "lime" 8)\n(std.log "hi")'
        fresh = await a2.call("canvas_open", session="gone", script=text)  # after a restart: the page's script
        assert fresh["session"] not in (sid, "gone")
        assert [la["id"] for la in fresh["layers"]] == ["a", "op2"]
        assert np.array_equal(a2.layers["a"], expected(text).get("a").pixels)

    run(tmp_path, body)


def test_replace_export_and_image_info(tmp_path):
    async def body(connect, client, server):
        from PIL import Image

        from viwoscript.io.metadata import read_metadata

        c = await connect()
        sid = (await c.call("canvas_open"))["session"]
        r = await c.call("canvas_replace", session=sid,
                         script='(canvas.layer.create "s" "Sketch")\n(canvas.draw_stroke "s" [[20 20] [90 60]] "#00f" 10)')
        assert r["version"] == 2 and r["script"][1] == ["canvas.layer.create", "s", "Sketch"]
        with pytest.raises(RuntimeError, match="-32000"):
            await c.call("canvas_replace", session=sid, script="(canvas.layer.create")
        out = await c.call("canvas_export", session=sid)
        resp = await client.get(out["url"], headers={"Authorization": f"Bearer {TOKEN_A}"})
        assert resp.status == 200
        data = await resp.read()
        im = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
        assert np.array_equal(im, expected(r["script"]).composite_array())
        path = server.blobs.find("alice", out["sha256"])[0]
        assert read_metadata(path)["script"] == r["script"]
        info = await c.call("canvas_image_info", sha256=out["sha256"])
        assert info["source"] == "viwo" and info["script"] == r["script"]
        # the exported image goes back onto a layer as blob:
        u = await c.call("canvas_apply", session=sid, statements=[
            ["canvas.layer.create", "g", "generated"], ["canvas.layer.load_image", "g", f"blob:{out['sha256']}"]])
        assert u["version"] == 4
        assert np.array_equal(c.layers["g"], im)

    run(tmp_path, body)


def test_sessions_are_bounded_per_user_and_idle_ones_close(tmp_path, monkeypatch):
    from viwoscript.server import canvas_methods

    monkeypatch.setattr(canvas_methods, "MAX_SESSIONS_PER_USER", 2)

    async def body(connect, client, server):
        c = await connect()
        ids = [(await c.call("canvas_open"))["session"] for _ in range(3)]
        assert list(server.canvas_sessions.entries) == ids[1:]
        server.canvas_sessions.entries[ids[1]].used -= canvas_methods.IDLE_S + 1
        await c.call("canvas_open")
        assert ids[1] not in server.canvas_sessions.entries
        s = server.canvas_sessions.entries[ids[2]].session
        assert s.stack.max_bytes <= canvas_methods.MAX_SESSION_BYTES
        await c.call("canvas_close", session=ids[2])
        assert ids[2] not in server.canvas_sessions.entries

    run(tmp_path, body)


def test_canvas_preprocessors_says_what_preprocess_can_do_here(tmp_path):
    pytest.importorskip("cv2")

    async def body(connect, client, server):
        c = await connect()
        r = await c.call("canvas_preprocessors")
        rows = {t["type"]: t for t in r["types"]}
        assert r["granted"] and {"canny", "invert", "depth", "openpose", "scribble"} <= set(rows)
        assert rows["canny"]["available"] and rows["invert"]["available"] and not rows["canny"]["weights"]
        assert not rows["depth"]["available"] and "annotators" in rows["depth"]["reason"]
        # no diffusion model is configured: preprocessing with canny still runs as a job
        job = await c.call("execute_script", script='(std.call_method (get_capability "controlnet.generate") '
                                                     '"preprocess" (image.new 32 32 "white") "canny")')
        assert job["status"] == "done" and job["images"][0]["width"] == 32

    run(tmp_path, body, grants=["controlnet.generate"])

    async def not_granted(connect, client, server):
        r = await (await connect()).call("canvas_preprocessors")
        assert not r["granted"] and r["types"] and not any(t["available"] for t in r["types"])
        assert "grants" in r["types"][0]["reason"]

    run(tmp_path / "b", not_granted, grants=["diffusers.upscale"])


def test_extend_grows_the_session_canvas_and_undo_shrinks_it(tmp_path):
    async def body(connect, client, server):
        c = await connect()
        sid = (await c.call("canvas_open"))["session"]
        st = [["canvas.layer.create", "a", "A"], ["canvas.draw_stroke", "a", [[10, 10], [120, 90]], "#ff0000", 12]]
        await c.call("canvas_apply", session=sid, statements=st)
        u = await c.call("canvas_apply", session=sid, statements=[["canvas.extend", 16, 0, 32, 8]])
        assert (u["width"], u["height"]) == (128 + 48, 96 + 8) and "a" in u["reset"]
        grown = ["std.seq", *st, ["canvas.extend", 16, 0, 32, 8]]
        assert np.array_equal(c.layers["a"], expected(grown).get("a").pixels)
        stroke = ["canvas.draw_stroke", "a", [[170, 100], [0, 0]], "#0000ff", 6]
        await c.call("canvas_apply", session=sid, statements=[stroke])
        assert np.array_equal(c.layers["a"], expected([*grown, stroke]).get("a").pixels)
        await c.call("canvas_undo", session=sid)
        u = await c.call("canvas_undo", session=sid)
        assert (u["width"], u["height"]) == (128, 96)
        assert np.array_equal(c.layers["a"], expected(["std.seq", *st]).get("a").pixels)

    run(tmp_path, body)
