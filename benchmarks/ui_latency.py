"""Layer Mode latency a painter feels: stroke sent → server raster done → tiles received (no browser).

Starts ``viwo serve`` on 127.0.0.1 (a subprocess, temporary data folder), connects one WebSocket client, opens
a 1024×1024 canvas session and measures, after 0, 100 and 1,000 earlier strokes on the layer:

- ``stroke``: ``canvas_apply`` of one 20-point, 24 px stroke until its answer (the tiles come before it),
  ``--samples`` strokes in a row from each depth;
- ``undo``: after the 1,000 strokes, ``canvas_undo`` of one stroke until its answer (each undo is redone,
  untimed, so every sample undoes from the same depth).

Baselines measured in the same run: ``rpc``, a round trip of ``canvas_script``-free trivial method
(``list_jobs``) on the same socket, and ``engine``, the same stroke applied in-process by
:class:`viwoscript.server.canvas_session.CanvasSession` (raster + tile diff, no transport). Goal (issue 16):
p95 ≤ 30 ms at every depth, flat as the script grows. Prints a table (``--json`` for machine output).

    .venv/bin/python benchmarks/ui_latency.py [--samples 60] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from web_server import serve_process  # noqa: E402  (a real `viwo serve` of this checkout)

GOAL_MS = 30.0
TOKEN = "bench-token-0123456789"
SIZE = 1024


def stroke(rnd: random.Random, layer: str = "a") -> list:
    x, y = rnd.uniform(80, SIZE - 200), rnd.uniform(80, SIZE - 200)
    pts = []
    for _ in range(20):
        pts.append([round(x, 2), round(y, 2)])
        x += rnd.uniform(-2, 8)
        y += rnd.uniform(-2, 8)
    return ["canvas.draw_stroke", layer, pts, "#ff000080", 24, "brush"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.next = 0
        self.tiles = 0

    async def call(self, method: str, **params):
        from aiohttp import WSMsgType

        self.next += 1
        await self.ws.send_str(json.dumps({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}))
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                self.tiles += 1
                continue
            if msg.type != WSMsgType.TEXT:
                raise RuntimeError(f"socket closed: {msg.type}")
            item = json.loads(msg.data)
            if item.get("id") == self.next:
                if "error" in item:
                    raise RuntimeError(item["error"])
                return item["result"]


async def measure(port: int, samples: int) -> dict:
    import aiohttp

    rnd = random.Random(16)
    out: dict = {}
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{port}/rpc?token={TOKEN}", max_msg_size=64 << 20)
        c = Client(ws)
        sid = (await c.call("canvas_open", width=SIZE, height=SIZE))["session"]
        await c.call("canvas_apply", session=sid, statements=[["canvas.layer.create", "a", "Sketch"]])
        rpc = []
        for _ in range(samples):
            t = time.perf_counter()
            await c.call("list_jobs")
            rpc.append((time.perf_counter() - t) * 1000)
        out["rpc"] = rpc
        depth = 0
        for target in (0, 100, 1000):
            while depth < target:
                n = min(100, target - depth)
                await c.call("canvas_apply", session=sid, statements=[stroke(rnd) for _ in range(n)])
                depth += n
            times, tiles = [], []
            for _ in range(samples):
                before = c.tiles
                t = time.perf_counter()
                await c.call("canvas_apply", session=sid, statements=[stroke(rnd)])
                times.append((time.perf_counter() - t) * 1000)
                tiles.append(c.tiles - before)
            depth += samples
            out[f"stroke@{target}"] = times
            out[f"tiles@{target}"] = tiles
        undo = []
        for _ in range(samples):
            t = time.perf_counter()
            await c.call("canvas_undo", session=sid)
            undo.append((time.perf_counter() - t) * 1000)
            await c.call("canvas_redo", session=sid)
        out["undo@1000"] = undo
        await ws.close()
    return out


def engine(samples: int) -> list[float]:
    from viwoscript.runtime import Runtime
    from viwoscript.server.canvas_session import CanvasSession

    rnd = random.Random(61)
    s = CanvasSession(Runtime(canvas_size=(SIZE, SIZE), plugins=False))
    s.apply([["canvas.layer.create", "a"]])
    times = []
    for _ in range(samples):
        st = stroke(rnd)
        t = time.perf_counter()
        s.apply([st])
        times.append((time.perf_counter() - t) * 1000)
        s.undo()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data, serve_process(TOKEN, data) as port:
        results = asyncio.run(measure(port, args.samples))
    results["engine"] = engine(args.samples)
    rows = []
    base95 = pct(results["stroke@0"], 95)
    for key in ("rpc", "engine", "stroke@0", "stroke@100", "stroke@1000", "undo@1000"):
        xs = results[key]
        rows.append({"case": key, "p50_ms": round(pct(xs, 50), 2), "p95_ms": round(pct(xs, 95), 2),
                     "max_ms": round(max(xs), 2), "p95_vs_stroke@0": round(pct(xs, 95) / base95, 2),
                     "goal": "" if key in ("rpc", "engine") else ("ok" if pct(xs, 95) <= GOAL_MS else "MISSED")})
    if args.json:
        print(json.dumps({"rows": rows, "tiles_per_stroke": {k: sum(v) / len(v) for k, v in results.items()
                                                            if k.startswith("tiles@")}}, indent=1))
        return 0
    print(f"{'case':<12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95/stroke@0':>13}  goal p95 ≤ {GOAL_MS:g} ms")
    for r in rows:
        print(f"{r['case']:<12} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8} {r['p95_vs_stroke@0']:>13}  {r['goal']}")
    tiles = {k: round(sum(v) / len(v), 1) for k, v in results.items() if k.startswith("tiles@")}
    print(f"tiles (64×64) per stroke: {tiles}; samples per case: {args.samples}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
