"""Warm call overhead of diffusers.generate through a script vs the plain diffusers call.

Builds a tiny random-weight SD1.5 pipeline (viwoscript.models.tiny) in a temp folder, then times, on the
same loaded pipeline, ``textToImage`` run through ``Runtime.run`` against the plain ``pipe(...)`` call
with the same settings (CPU generator, output_type="np"). Prints medians, the ratio (target ≤ 1.05) and
the number of weight loads (target: 1 for every call after the first).

    python benchmarks/diffusion.py [--steps 8] [--size 128] [--repeat 15] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="a diffusers folder (default: a tiny random model)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny tensors: 1 is fastest)")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from viwoscript import Runtime
    from viwoscript.models import ModelConfig, capabilities
    from viwoscript.models.resolve import resolve
    from viwoscript.models.tiny import make_tiny

    tmp = tempfile.TemporaryDirectory()
    folder = a.model or str(make_tiny(Path(tmp.name) / "sd15", "sd15"))
    config = ModelConfig(aliases={"m": folder}, default="m", device=a.device)
    rt = Runtime(capabilities=capabilities(config), grants="default")
    opts = {"steps": a.steps, "width": a.size, "height": a.size, "seed": 1, "guidance_scale": 7.5}
    script = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))'
    rt.run(script, args=[opts])  # load and warm up
    pipe = rt.models.pipeline(resolve("m", config, [], "bench"), "txt2img", config)

    def plain():
        g = [torch.Generator("cpu").manual_seed(1)]
        pipe(prompt="a red comet", num_inference_steps=a.steps, width=a.size, height=a.size, guidance_scale=7.5,
             generator=g, num_images_per_prompt=1, output_type="np")

    def scripted():
        rt.run(script, args=[opts])

    plain()
    times = {"plain": [], "script": []}
    for _ in range(a.repeat):  # interleaved, so drift hits both alike
        for name, fn in (("plain", plain), ("script", scripted)):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    p, s = statistics.median(times["plain"]), statistics.median(times["script"])
    print(f"device {a.device}, {a.size}×{a.size}, {a.steps} steps, {a.repeat} runs each (median)")
    print(f"plain diffusers call : {p * 1000:8.2f} ms")
    print(f"through a script     : {s * 1000:8.2f} ms")
    print(f"ratio                : {s / p:8.3f}  (target ≤ 1.05)")
    print(f"weight loads         : {rt.models.loads}  (target 1)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
