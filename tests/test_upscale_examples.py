"""The upscale examples give their documented results: examples/upscale_canvas.viwo (no model) and
examples/models/upscale_hybrid.viwo (tiny random-weight SD1.5 and a random-weight 2× Real-ESRGAN file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viwoscript import Runtime
from viwoscript.capabilities.upscale_traditional import resize_pixels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(path: Path, args=None, events=None, **kw):
    rt = Runtime(grants="default", roots=[EXAMPLES], canvas_size=(256, 256),
                 on_event=events.append if events is not None else None, **kw)
    return rt, rt.run(path.read_text(encoding="utf-8"), filename=str(path), args=args)


def test_canvas_composite_upscaled_4x_and_nearest_replicates_pixels():
    events = []
    _, r = run(EXAMPLES / "upscale_canvas.viwo", events=events)
    small = r["small"].pixels
    assert small.shape == (256, 256, 4)
    assert (r["width"], r["height"]) == (1024, 1024) and r["image"].pixels.shape == (1024, 1024, 4)
    assert np.array_equal(r["nearest"].pixels, np.repeat(np.repeat(small, 4, axis=0), 4, axis=1))
    assert np.array_equal(r["image"].pixels, resize_pixels(small, 4, "lanczos"))
    # the sun's yellow is in the middle of its disc, in both
    assert tuple(r["image"].pixels[240, 760, :3]) == tuple(small[60, 190, :3])
    assert any(e["type"] == "log" and e["message"] == "upscaled 256x256 to 1024x1024 with lanczos" for e in events)
    _, r2 = run(EXAMPLES / "upscale_canvas.viwo", [2, "bicubic"])
    assert r2["image"].pixels.shape == (512, 512, 4)
    assert np.array_equal(r2["image"].pixels, resize_pixels(small, 2, "bicubic"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pytest.importorskip("diffusers")
    pytest.importorskip("spandrel")
    torch = pytest.importorskip("torch")
    from upscale_weights import rrdbnet_state, save

    from viwoscript.capabilities import capabilities
    from viwoscript.models import ModelConfig
    from viwoscript.models.manager import ModelManager
    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("upscale-example")
    base = make_tiny(root / "sd15", "sd15")
    (root / "sr").mkdir()
    save(rrdbnet_state(2, seed=3), root / "sr" / "RealESRGAN_x2plus.pth")
    config = ModelConfig.from_table({"tiny": str(base), "default": "tiny", "upscale_dir": str(root / "sr")})
    return capabilities(config), ModelManager()


class TestHybrid:
    def run_hybrid(self, setup, args, events=None):
        caps, manager = setup
        path = EXAMPLES / "models" / "upscale_hybrid.viwo"
        rt = Runtime(capabilities=caps, grants="default", roots=[EXAMPLES],
                     on_event=events.append if events is not None else None)
        rt.models = manager
        return rt, rt.run(path.read_text(encoding="utf-8"), filename=str(path), args=args)

    def test_generate_then_hybrid_upscale_on_one_loaded_model(self, setup):
        events = []
        rt, r = self.run_hybrid(setup, [64, 2, 4, 9, 64], events)
        assert r["base"].pixels.shape == (64, 64, 3)
        assert r["image"].pixels.shape == (128, 128, 3)
        assert r["seed"] == 9 and r["tiles"] == 9  # tile 64, overlap 32: starts 0, 32, 64 on each side
        assert rt.models.loads == 1 and set(rt.models.loaded()[0]["tasks"]) >= {"txt2img", "img2img"}
        tiles = [e for e in events if e["type"] == "progress" and e["task"] == "upscaleImg2Img"]
        assert [(e["step"], e["total"]) for e in tiles] == [(i, 9) for i in range(1, 10)]
        assert any(e["type"] == "log" and e["message"] == "upscaled 64x64 to 128x128 in 9 tiles of 64, seed 9"
                   for e in events)
        _, again = self.run_hybrid(setup, [64, 2, 4, 9, 64])
        assert np.array_equal(again["image"].pixels, r["image"].pixels)

    def test_network_first_upscale_from_the_configured_upscale_dir(self, setup):
        _, r = self.run_hybrid(setup, [64, 2, 4, 9, 128, "realesrgan"])
        assert r["image"].pixels.shape == (128, 128, 3) and r["tiles"] == 1
        assert r["image"].metadata["upscale"]["method"] == "realesrgan"
