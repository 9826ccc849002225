"""Canvas benchmarks: ratios against baselines measured in the same run.

    python benchmarks/canvas.py [--quick]

1. Strokes: 1,000 polylines of 20 points (random walks), brush size 24, opaque random colours, on a
   1024×1024 layer. Baseline: Pillow ``ImageDraw.line(..., width=24, joint="curve")`` drawing the same
   polylines without anti-aliasing. Measured through the Python API (``LayerStack.draw_stroke``) and as a
   replayed script (``Runtime.run`` of the parsed JSON script: the interpreter included, parsing reported
   on its own line). Goal: ≤ 1.5× Pillow.
2. Compositing 16 RGBA layers of 2048×2048 (every pixel semi-transparent: the worst case). Reported as
   effective GB/s of layer data read. Goal: ≥ 0.5 GB/s.
3. Peak memory (tracemalloc) of building and compositing a 16-layer 2048×2048 stack.
Times are the best of several repeats (CPU time is noisy on shared machines).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viwoscript.canvas.layers import LayerStack  # noqa: E402


def make_strokes(n: int = 1000, points: int = 20, size: int = 1024, seed: int = 0):
    rng = np.random.default_rng(seed)
    strokes = []
    for _ in range(n):
        p = rng.uniform(0, size, 2)
        pts = [p.copy()]
        for _ in range(points - 1):
            p = np.clip(p + rng.normal(0, 15, 2), 0, size)
            pts.append(p.copy())
        r, g, b = (int(c) for c in rng.integers(0, 256, 3))
        color = f"#{r:02x}{g:02x}{b:02x}"
        strokes.append((np.round(np.array(pts), 2), color))
    return strokes


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_strokes(repeats: int, n: int) -> dict:
    from PIL import Image, ImageDraw

    from viwoscript.runtime import Runtime

    strokes = make_strokes(n)
    pil_lines = [([tuple(p) for p in pts.tolist()], tuple(int(color[i:i + 2], 16) for i in (1, 3, 5)) + (255,))
                 for pts, color in strokes]
    as_lists = [(pts.tolist(), color) for pts, color in strokes]

    def pillow():
        img = Image.new("RGBA", (1024, 1024), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        for pts, fill in pil_lines:
            d.line(pts, fill=fill, width=24, joint="curve")

    def api(alpha: str = ""):
        s = LayerStack(1024, 1024)
        s.create("l")
        for pts, color in as_lists:
            s.draw_stroke("l", pts, color + alpha, 24)
        s.get("l").pixels  # noqa: B018 - rasterizes what is queued

    script = ["std.seq", ["canvas.layer.create", "l"]] + [
        ["canvas.draw_stroke", "l", pts, color, 24, "brush"] for pts, color in as_lists
    ] + [["canvas.layer.image", "l"]]

    tree = Runtime(plugins=False).parse(script)

    def replay():
        Runtime(canvas_size=(1024, 1024), plugins=False).run(tree)

    def parse():
        Runtime(plugins=False).parse(script)

    t_pil = best(pillow, repeats)
    t_api = best(api, repeats)
    t_replay = best(replay, repeats)
    t_alpha = best(lambda: api("80"), repeats)
    t_parse = best(parse, repeats)
    return {"pillow": t_pil, "api": t_api, "replay": t_replay, "semi": t_alpha, "parse": t_parse}


def make_layers(count: int, side: int, seed: int = 1) -> LayerStack:
    rng = np.random.default_rng(seed)
    s = LayerStack(side, side, max_bytes=1 << 40)
    for i in range(count):
        layer = s.create(f"l{i}")
        px = layer.pixels
        px[:, :, :3] = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        px[:, :, 3] = rng.integers(1, 255, (side, side), dtype=np.uint8)
    return s


def bench_composite(repeats: int, side: int, count: int = 16) -> dict:
    s = make_layers(count, side)
    t = best(lambda: s.composite_array(), repeats)
    nbytes = count * side * side * 4
    return {"time": t, "gbps": nbytes / t / 1e9, "bytes": nbytes}


def bench_memory(side: int, count: int = 16) -> int:
    tracemalloc.start()
    s = make_layers(count, side)
    s.draw_stroke("l0", [[10, 10], [side - 10, side - 10]], "#ff0000", 40)
    s.composite_array()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and strokes (a smoke test)")
    args = ap.parse_args(argv)
    repeats = 1 if args.quick else 5
    n = 200 if args.quick else 1000
    side = 512 if args.quick else 2048

    r = bench_strokes(repeats, n)
    print(f"strokes: {n} × 20 points, size 24, 1024×1024 (best of {repeats})")
    print(f"  Pillow ImageDraw.line (no AA)   {r['pillow'] * 1e3:8.1f} ms   1.00×")
    for key, label in (("api", "LayerStack.draw_stroke"), ("replay", "script replay (Runtime.run)"),
                       ("semi", "API, semi-transparent colour"), ("parse", "(parsing the JSON script)")):
        print(f"  {label:<32}{r[key] * 1e3:8.1f} ms   {r[key] / r['pillow']:.2f}×")
    goal = r["replay"] / r["pillow"]
    print(f"  goal ≤ 1.5× Pillow for replay: {'met' if goal <= 1.5 else 'NOT met'} ({goal:.2f}×)")

    c = bench_composite(repeats, side)
    print(f"composite: 16 layers of {side}×{side} RGBA ({c['bytes'] / 1e6:.0f} MB), best of {repeats}")
    print(f"  {c['time'] * 1e3:.1f} ms = {c['gbps']:.2f} GB/s (goal ≥ 0.5 GB/s: {'met' if c['gbps'] >= 0.5 else 'NOT met'})")

    peak = bench_memory(side)
    layers = 16 * side * side * 4
    print(f"memory: 16-layer {side}×{side} stack peak {peak / 2**20:.0f} MiB "
          f"(layer pixels {layers / 2**20:.0f} MiB, overhead {(peak - layers) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
