"""diffusers capabilities: warm call overhead, reloads, and peak memory when tasks share one base.

1. **Overhead.** Builds a tiny random-weight SD1.5 pipeline (viwoscript.models.tiny) in a temp folder,
   then times, on the same loaded pipeline, ``textToImage`` run through ``Runtime.run`` against the plain
   ``pipe(...)`` call with the same settings (CPU generator, output_type="np"). Prints medians and the
   ratio (target ≤ 1.05).
2. **Zero reloads.** After the first call, a second round of textToImage, imageToImage, inpaint and
   ControlNet apply on the same base must load nothing (weight loads stay put, the ControlNet object and
   the shared UNet are the same objects).
3. **Peak RSS.** Two fresh subprocesses on the same model: txt2img alone, and txt2img + img2img +
   inpaint + ControlNet. Reports ``peak(all) / (peak(txt2img) + ControlNet weights)`` (target ≤ 1.1) and
   the same ratio above the post-import baseline (what the weights and activations add). The tiny base
   is built at ``--scale 16`` (~30 MB of weights) so that weights, not the interpreter, dominate.

    python benchmarks/diffusion.py [--steps 8] [--size 128] [--repeat 15] [--device cpu|cuda]
                                   [--skip-rss] [--scale 16] [--rss-size 64] [--rss-steps 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))'
I2I = '(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 1) "a dog" (std.arg 0))'
INPAINT = ('(std.call_method (get_capability "diffusers.inpaint") "inpaint" (std.arg 1) (std.arg 2) "a cat" '
           '(std.arg 0))')
APPLY = ('(std.call_method (get_capability "controlnet.generate") "apply" (std.arg 1) "a cat" '
         '(obj.merge (std.arg 0) {"controlType" "canny"}))')


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ≥ 4.0: ``5 > /proc/self/clear_refs``), so that the import
    spike of torch is not what gets measured."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    """Peak RSS in bytes since the last reset (VmHWM), else since start (ru_maxrss; KiB on Linux)."""
    hwm = _status("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _rss_now() -> int:
    return _status("VmRSS") or _peak()


def _inputs(size: int):
    import numpy as np

    from viwoscript.values import Image

    rng = np.random.default_rng(0)
    img = Image(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4:size // 2, size // 4:size // 2] = 255
    return img, Image(mask)


def _round(rt, opts: dict, tasks: tuple[str, ...], size: int) -> None:
    img, mask = _inputs(size)
    sized = {k: v for k, v in opts.items() if k not in ("width", "height")}  # these take the image's size
    scripts = {"txt2img": (GEN, [opts]), "img2img": (I2I, [sized, img]), "inpaint": (INPAINT, [sized, img, mask]),
               "controlnet": (APPLY, [opts, img])}
    for t in tasks:
        src, args = scripts[t]
        rt.run(src, args=args)


def rss_child(a) -> None:
    """One measurement in a fresh process: print a JSON line with peak RSS before and after the work."""
    import torch

    torch.set_num_threads(a.threads)
    import diffusers  # noqa: F401 - imported before the baseline, like the pipelines need
    import transformers  # noqa: F401

    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.models import ModelConfig
    from viwoscript.models.manager import module_bytes

    config = ModelConfig(aliases={"m": a.model}, default="m", device=a.device,
                         controlnets={"canny": a.controlnet} if a.controlnet else {})
    rt = Runtime(capabilities=capabilities(config), grants="default")
    baseline = _rss_now()
    reset = _reset_peak()
    tasks = ("txt2img",) if a.rss_child == "txt2img" else ("txt2img", "img2img", "inpaint", "controlnet")
    opts = {"steps": a.steps, "width": a.size, "height": a.size, "seed": 1}
    _round(rt, opts, tasks, a.size)
    _round(rt, opts, tasks, a.size)
    nets = [e for e in rt.models._entries.values() if e.kind == "controlnet"]
    print(json.dumps({"tasks": list(tasks), "baseline": baseline, "peak": _peak(), "reset": reset,
                      "loads": rt.models.loads,
                      "weights": rt.models.nbytes, "controlnet_bytes": sum(module_bytes([e.obj]) for e in nets)}))


def rss_compare(a, model: str, controlnet: str) -> None:
    res = {}
    for mode in ("txt2img", "all"):
        cmd = [sys.executable, __file__, "--rss-child", mode, "--model", model, "--controlnet", controlnet,
               "--size", str(a.rss_size), "--steps", str(a.rss_steps), "--device", a.device, "--threads",
               str(a.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
    one, every = res["txt2img"], res["all"]
    cn = every["controlnet_bytes"]
    mib = 2**20
    total = every["peak"] / (one["peak"] + cn)
    above = (every["peak"] - every["baseline"]) / (one["peak"] - one["baseline"] + cn)
    print(f"\npeak RSS, fresh processes, {a.rss_size}×{a.rss_size}, {a.rss_steps} steps, two rounds each")
    print(f"base weights          : {one['weights'] / mib:8.1f} MiB   ControlNet weights {cn / mib:.1f} MiB")
    print(f"txt2img alone         : {one['peak'] / mib:8.1f} MiB   (after imports {one['baseline'] / mib:.1f} MiB)")
    print(f"txt2img+img2img+inpaint+ControlNet: {every['peak'] / mib:8.1f} MiB   "
          f"(after imports {every['baseline'] / mib:.1f} MiB)")
    print(f"ratio, whole process  : {total:8.3f}  (target ≤ 1.1 × (txt2img + ControlNet weights))")
    print(f"ratio, above imports  : {above:8.3f}  (weights and activations only)")
    print(f"weight loads          : {one['loads']} and {every['loads']}  (target 1 and 2: the base, the ControlNet)")
    if not (one["reset"] and every["reset"]):
        print("(peak RSS could not be reset after imports here: the peaks include the import spike)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="a diffusers folder (default: a tiny random model)")
    ap.add_argument("--controlnet", default=None, help="a ControlNet folder for --model (default: a tiny one)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny tensors: 1 is fastest)")
    ap.add_argument("--scale", type=int, default=16, help="channel scale of the tiny model for the RSS part")
    ap.add_argument("--rss-size", type=int, default=64, help="image size for the RSS part")
    ap.add_argument("--rss-steps", type=int, default=2, help="steps for the RSS part")
    ap.add_argument("--skip-rss", action="store_true", help="only the overhead and reload checks")
    ap.add_argument("--rss-child", choices=("txt2img", "all"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rss_child:
        return rss_child(a)

    import torch

    torch.set_num_threads(a.threads)
    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.models import ModelConfig
    from viwoscript.models.resolve import resolve
    from viwoscript.models.tiny import make_tiny

    tmp = tempfile.TemporaryDirectory()
    folder = a.model or str(make_tiny(Path(tmp.name) / "sd15", "sd15"))
    cn_folder = a.controlnet or str(make_tiny(Path(tmp.name) / "cn", "sd15-controlnet"))
    config = ModelConfig(aliases={"m": folder}, default="m", device=a.device, controlnets={"canny": cn_folder})
    rt = Runtime(capabilities=capabilities(config), grants="default")
    opts = {"steps": a.steps, "width": a.size, "height": a.size, "seed": 1, "guidance_scale": 7.5}
    script = GEN
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

    # second call with the same model: nothing reloads, whichever task asks
    everything = ("txt2img", "img2img", "inpaint", "controlnet")
    small = {**opts, "steps": 2}
    _round(rt, small, everything, a.size)
    loads, unet = rt.models.loads, rt.models.pipeline(resolve("m", config, [], "bench"), "txt2img", config).unet
    nets = {id(e.obj) for e in rt.models._entries.values() if e.kind == "controlnet"}
    _round(rt, small, everything, a.size)
    again = {id(e.obj) for e in rt.models._entries.values() if e.kind == "controlnet"}
    base = next(e for e in rt.models._entries.values() if e.kind == "pipeline")
    pipes = [base.obj, *(p for p in base.tasks.values() if hasattr(p, "unet"))]
    same = len(pipes) == 5 and all(p.unet is unet for p in pipes)
    reloads = rt.models.loads - loads + len(again - nets)
    print(f"second round of 4 tasks  : {reloads} reloads (target 0); one UNet for all 5 pipelines: {same}")
    if not a.skip_rss:
        if a.model and not a.controlnet:
            print("\npeak RSS: skipped (give --controlnet with --model)")
        else:
            rss_folder = a.model or str(make_tiny(Path(tmp.name) / "sd15-big", "sd15", scale=a.scale))
            rss_cn = a.controlnet or str(make_tiny(Path(tmp.name) / "cn-big", "sd15-controlnet", scale=a.scale))
            rss_compare(a, rss_folder, rss_cn)
    tmp.cleanup()


if __name__ == "__main__":
    main()
