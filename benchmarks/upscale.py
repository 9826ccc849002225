"""Upscale benchmarks: traditional 4× lanczos vs Pillow (same run), peak memory of a 16384² output, tiled
model upscale RSS for two image sizes with the same tile, and the same for upscaleImg2Img.

    python benchmarks/upscale.py            # traditional timing + tiled model RSS + tiled img2img RSS
    python benchmarks/upscale.py --large    # also 4096² → 16384² peak memory (pyvips vs Pillow)

Each memory measurement runs in its own (spawned) process: ``peak_extra_MiB`` is the growth of that
process's peak RSS during the operation, ``beyond_output_MiB`` the same less the output array itself.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time

import numpy as np


def _image(n: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    return np.asarray(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((n, n), Image.BICUBIC))


def _best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def traditional() -> dict:
    from PIL import Image

    from viwoscript.capabilities.upscale_traditional import resize_pixels

    a = _image(1024)
    out = {}
    for method, pil in (("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR),
                        ("nearest", Image.NEAREST)):
        tv = _best(lambda m=method: resize_pixels(a, 4, m))
        tp = _best(lambda p=pil: np.asarray(Image.fromarray(a).resize((4096, 4096), p)))
        out[method] = {"pyvips_s": round(tv, 3), "pillow_s": round(tp, 3), "ratio": round(tv / tp, 2)}
    return out


def _peak(kind: str, q) -> None:
    a = _image(4096)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind == "pyvips":
        from viwoscript.capabilities.upscale_traditional import resize_pixels

        res = resize_pixels(a, 4, "lanczos")
    else:
        from PIL import Image

        res = np.asarray(Image.fromarray(a).resize((16384, 16384), Image.LANCZOS))
    assert res.shape == (16384, 16384, 3)
    q.put((kind, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base))


def large() -> dict:
    ctx = mp.get_context("spawn")
    out = {}
    for kind in ("pyvips", "pillow"):
        q = ctx.Queue()
        p = ctx.Process(target=_peak, args=(kind, q))
        t = time.perf_counter()
        p.start()
        k, kb = q.get()
        p.join()
        out[k] = {"peak_extra_MiB": round(kb / 1024), "s": round(time.perf_counter() - t, 1)}
    out["output_MiB"] = 16384 * 16384 * 3 // 2**20
    return out


def _tiled_rss(n: int, tile: int, q) -> None:
    sys.path.insert(0, "tests")
    import tempfile
    from pathlib import Path

    from upscale_weights import compact_state, save

    from viwoscript.capabilities import upscale_models as um

    path = save(compact_state(4, num_feat=16, num_conv=4), Path(tempfile.mkdtemp()) / "c.pth")
    net = um.load_net(path, "auto", "bench")
    rgb = _image(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out, _ = um.tiled(net, rgb, tile, 16)
    dt = time.perf_counter() - t
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    q.put({"input": n, "output": out.shape[0], "tile": tile, "s": round(dt, 2),
           "peak_extra_MiB": round(extra / 1024), "output_MiB": round(out.nbytes / 2**20),
           "beyond_output_MiB": round(extra / 1024 - out.nbytes / 2**20), "device": str(net.device)})


def tiled_rss() -> list:
    ctx = mp.get_context("spawn")
    rows = []
    for n in (256, 512):
        q = ctx.Queue()
        p = ctx.Process(target=_tiled_rss, args=(n, 128, q))
        p.start()
        rows.append(q.get())
        p.join()
    return rows


def _hybrid_rss(n: int, tile: int, q) -> None:
    import tempfile
    from pathlib import Path

    import torch

    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.models import make_tiny
    from viwoscript.values import Image

    torch.set_num_threads(1)
    model = make_tiny(Path(tempfile.mkdtemp()) / "sd15", "sd15")
    rt = Runtime(capabilities=capabilities({"tiny": str(model), "default": "tiny"}),
                 grants=[{"type": "diffusers.upscale", "params": {"max_compute": 1e6}}])
    src = '(std.call_method (get_capability "diffusers.upscale") "upscaleImg2Img" (std.arg 0) "x" (std.arg 1))'
    opts = {"steps": 4, "strength": 0.25, "seed": 1, "tile": tile, "tile_overlap": 32}
    rt.run(src, args=[Image(_image(64)), opts])  # load the pipeline first: the weights are not the point
    img = Image(_image(n))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    r = rt.run(src, args=[img, opts])
    dt = time.perf_counter() - t
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    nbytes = r["image"].pixels.nbytes
    q.put({"input": n, "output": r["width"], "tile": tile, "tiles": r["tiles"], "s": round(dt, 1),
           "peak_extra_MiB": round(extra / 1024), "output_MiB": round(nbytes / 2**20),
           "beyond_output_MiB": round(extra / 1024 - nbytes / 2**20)})


def _in_processes(target, sizes, tile) -> list:
    ctx = mp.get_context("spawn")
    rows = []
    for n in sizes:
        q = ctx.Queue()
        p = ctx.Process(target=target, args=(n, tile, q))
        p.start()
        rows.append(q.get())
        p.join()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--no-hybrid", action="store_true")
    args = ap.parse_args()
    result = {"traditional_4x_1024": traditional()}
    if args.large:
        result["lanczos_4096_to_16384"] = large()
    if not args.no_model:
        try:
            import spandrel  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            result["tiled_model"] = "skipped: needs viwoscript[diffusion]"
        else:
            result["tiled_model"] = tiled_rss()
    if not args.no_hybrid:
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            result["tiled_img2img"] = "skipped: needs viwoscript[diffusion]"
        else:
            result["tiled_img2img"] = _in_processes(_hybrid_rss, (256, 512), 128)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
