"""GPU smoke tests for the diffusers capabilities (opt-in: ``pytest -m gpu tests/gpu``).

Deselected by default (``addopts`` has ``-m 'not slow and not gpu'``); they skip where there is no CUDA
device. They check the device/dtype policy (float16 on CUDA), that a seed's noise comes from a CPU
generator (the same initial latents on the CPU and on CUDA), and run text-to-image on a tiny model.
With ``VIWO_GPU_MODEL`` naming a real model (a diffusers folder or a Hugging Face id in the local cache)
they also run it at its native size:

    VIWO_GPU_MODEL=/models/stable-diffusion-v1-5 pytest -m gpu tests/gpu -s
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager, device_policy  # noqa: E402
from viwoscript.models.resolve import resolve  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))'


@pytest.fixture(scope="module", autouse=True)
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny(tmp_path_factory.mktemp("gpu-tiny") / "sd15", "sd15"))


def runtime(folder: str, **config) -> tuple[Runtime, ModelConfig]:
    cfg = ModelConfig(aliases={"m": folder}, default="m", **config)
    rt = Runtime(capabilities=capabilities(cfg), grants="default")
    rt.models = ModelManager()
    return rt, cfg


def txt2img_pipe(rt: Runtime, cfg: ModelConfig):
    return rt.models.pipeline(resolve("m", cfg, [], "t"), "txt2img", cfg)


def first_unet_input(folder: str, opts: dict, **config) -> torch.Tensor:
    """The latents the UNet sees at the first step (the seeded noise), as float32 on the CPU."""
    rt, cfg = runtime(folder, **config)
    pipe = txt2img_pipe(rt, cfg)
    seen = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().float().cpu()))
    try:
        rt.run(GEN, args=[opts])
    finally:
        handle.remove()
    return seen[0]


def test_device_and_dtype_policy():
    assert device_policy(ModelConfig()) == ("cuda", torch.float16)
    assert device_policy(ModelConfig(dtype="bfloat16")) == ("cuda", torch.bfloat16)
    assert device_policy(ModelConfig(dtype="float32")) == ("cuda", torch.float32)
    assert device_policy(ModelConfig(device="cpu", dtype="float16")) == ("cpu", torch.float32)  # never fp16 on CPU


def test_tiny_text_to_image_on_cuda_in_float16(tiny):
    rt, cfg = runtime(tiny)
    opts = {"steps": 4, "width": 64, "height": 64, "seed": 7}
    a = rt.run(GEN, args=[opts])
    (entry,) = rt.models.loaded()
    assert entry["device"] == "cuda" and entry["dtype"] == "float16"
    pipe = txt2img_pipe(rt, cfg)
    assert pipe.unet.device.type == "cuda" and pipe.unet.dtype == torch.float16
    b = rt.run(GEN, args=[opts])
    c = rt.run(GEN, args=[{**opts, "seed": 8}])
    assert a["image"].pixels.shape == (64, 64, 3) and a["image"].pixels.std() > 0
    assert np.abs(a["image"].pixels.astype(int) - b["image"].pixels.astype(int)).max() <= 1
    assert not np.array_equal(a["image"].pixels, c["image"].pixels)
    assert rt.models.loads == 1


def test_seed_noise_comes_from_a_cpu_generator(tiny):
    opts = {"steps": 2, "width": 64, "height": 64, "seed": 1234, "guidance_scale": 1.0}
    on_cpu = first_unet_input(tiny, opts, device="cpu")
    on_cuda16 = first_unet_input(tiny, opts)
    on_cuda32 = first_unet_input(tiny, opts, dtype="float32")
    assert on_cpu.ndim == 4 and on_cpu.shape == on_cuda16.shape == on_cuda32.shape

    def cpu_noise(dtype):
        return torch.randn(on_cpu.shape, generator=torch.Generator("cpu").manual_seed(1234), dtype=dtype).float()

    assert torch.equal(on_cpu, cpu_noise(torch.float32)) and torch.equal(on_cpu, on_cuda32)  # the very same noise
    # float16: a CPU generator's float16 noise (torch builds may draw it differently from float32's)
    assert torch.equal(on_cuda16, cpu_noise(torch.float16))
    # and the whole run agrees closely between devices at float32
    a = runtime(tiny, device="cpu")[0].run(GEN, args=[opts])["image"].pixels.astype(int)
    b = runtime(tiny, dtype="float32")[0].run(GEN, args=[opts])["image"].pixels.astype(int)
    assert np.abs(a - b).mean() < 1.0


@pytest.mark.skipif(not os.environ.get("VIWO_GPU_MODEL"), reason="set VIWO_GPU_MODEL to a real model")
def test_real_model_text_to_image():
    rt, _ = runtime(os.environ["VIWO_GPU_MODEL"])
    opts = {"steps": 20, "seed": 42}
    t = time.perf_counter()
    a = rt.run(GEN, args=[opts])
    first = time.perf_counter() - t
    t = time.perf_counter()
    b = rt.run(GEN, args=[opts])
    warm = time.perf_counter() - t
    native = 1024 if a["family"] == "sdxl" else 512
    assert (a["width"], a["height"]) == (native, native) and a["image"].pixels.std() > 5
    assert np.abs(a["image"].pixels.astype(int) - b["image"].pixels.astype(int)).mean() < 1.0
    assert rt.models.loads == 1 and rt.models.loaded()[0]["dtype"] == "float16"
    print(f"\n{os.environ['VIWO_GPU_MODEL']}: first call {first:.1f} s (load included), warm {warm:.2f} s, "
          f"{opts['steps'] / warm:.1f} it/s")
