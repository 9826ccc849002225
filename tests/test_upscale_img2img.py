"""upscaleImg2Img: upscale, then tiled img2img through the shared diffusers pipelines (tiny random-weight
SD1.5 built once per session, CPU, no download)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("spandrel")
torch = pytest.importorskip("torch")

from upscale_weights import rrdbnet_state, save  # noqa: E402

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.capabilities.upscale import Upscale, img2img_tiles  # noqa: E402
from viwoscript.capabilities.upscale_models import blend_tiles  # noqa: E402
from viwoscript.capabilities.upscale_traditional import resize_pixels  # noqa: E402
from viwoscript.errors import ArgumentError, CapabilityError, ViwoError  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402
from viwoscript.models.resolve import resolve  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402
from viwoscript.values import Image  # noqa: E402

UP = ('(std.call_method (get_capability "diffusers.upscale") "upscaleImg2Img" (std.arg 0) "a castle" '
      '(std.arg 1))')
GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a castle" (std.arg 0))'
FAST = {"steps": 4, "strength": 0.25}  # one denoising step per tile


@pytest.fixture(scope="session")
def tiny_sd15(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-upscale")
    make_tiny(root / "sd15", "sd15")
    sr = root / "sr"
    sr.mkdir()
    save(rrdbnet_state(2, seed=1), sr / "RealESRGAN_x2plus.pth")
    return root


@pytest.fixture(scope="session")
def config(tiny_sd15):
    return ModelConfig(aliases={"tiny": str(tiny_sd15 / "sd15")}, default="tiny")


@pytest.fixture(scope="session")
def manager():
    return ModelManager()


def make_rt(config, manager=None, grants="default", events=None, tiny_sd15=None):
    caps = capabilities(config)
    if tiny_sd15 is not None:
        caps = [*caps, Upscale(models_dir=tiny_sd15 / "sr")]
    rt = Runtime(capabilities=caps, grants=grants, on_event=events.append if events is not None else None)
    if manager is not None:
        rt.models = manager
    return rt


def picture(w=40, h=24, c=3, seed=0):
    return Image(np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8))


def test_output_size_seed_and_result(config, manager):
    rt = make_rt(config, manager)
    r = rt.run(UP, args=[picture(), {**FAST, "seed": 5}])
    assert (r["width"], r["height"], r["format"], r["seed"], r["model_id"]) == (80, 48, "png", 5, "tiny")
    assert r["image"].pixels.shape == (48, 80, 3) and r["image"].pixels.dtype == np.uint8
    assert (r["strength"], r["steps"], r["tiles"], r["tile"]) == (0.25, 4, 2, 64)  # native 32 → min tile 64
    meta = r["image"].metadata
    assert meta["prompt"] == "a castle" and meta["seed"] == 5 and meta["upscale"]["factor"] == 2
    # factor 3 with another filter, odd sizes (padded to multiples of 8 inside, cropped back)
    r3 = rt.run(UP, args=[picture(21, 13), {**FAST, "factor": 3, "method": "bicubic", "seed": 1}])
    assert (r3["width"], r3["height"]) == (63, 39)


def test_same_seed_same_pixels_and_drawn_seed_is_returned(config, manager):
    rt = make_rt(config, manager)
    img = picture(seed=3)
    a = rt.run(UP, args=[img, {**FAST, "seed": 11}])
    b = rt.run(UP, args=[img, {**FAST, "seed": 11}])
    c = rt.run(UP, args=[img, {**FAST, "seed": 12}])
    assert np.array_equal(a["image"].pixels, b["image"].pixels)
    assert not np.array_equal(a["image"].pixels, c["image"].pixels)
    drawn = rt.run(UP, args=[img, FAST])
    again = rt.run(UP, args=[img, {**FAST, "seed": drawn["seed"]}])
    assert np.array_equal(drawn["image"].pixels, again["image"].pixels)
    # the img2img pass changed the plain upscale, but only a little (strength 0.25)
    plain = resize_pixels(img.pixels, 2, "lanczos")
    assert not np.array_equal(a["image"].pixels, plain)


def test_tiling_runs_each_tile_with_progress_per_tile(config, manager):
    events = []
    rt = make_rt(config, manager, events=events)
    r = rt.run(UP, args=[picture(48, 40), {**FAST, "seed": 2, "tile": 64, "tile_overlap": 16}])
    assert (r["width"], r["height"], r["tiles"]) == (96, 80, 4)
    prog = [(e["task"], e["step"], e["total"]) for e in events if e["type"] == "progress"]
    assert prog == [("upscaleImg2Img", i, 4) for i in (1, 2, 3, 4)]
    assert r["image"].metadata["upscale"]["tiles"] == 4
    # one big tile gives a different picture than four small ones (each tile really ran)
    whole = rt.run(UP, args=[picture(48, 40), {**FAST, "seed": 2, "tile": 128}])
    assert whole["tiles"] == 1 and not np.array_equal(whole["image"].pixels, r["image"].pixels)


def test_tile_layout_and_feathered_blend():
    tile, overlap, tiles = img2img_tiles(96, 80, 64, 16)
    assert (tile, overlap) == (64, 16)
    assert tiles == [(0, 0, 64, 64), (32, 0, 64, 64), (0, 16, 64, 64), (32, 16, 64, 64)]
    rgb = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    # identical results per tile blend back to exactly the input (weights sum to one everywhere)
    same = blend_tiles(rgb, 64, 16, lambda p: p.astype(np.float32) / 255, multiple_of=8, min_tile=64)
    assert np.array_equal(same, rgb)
    # a constant per tile: untouched interiors keep it, the overlap is a linear ramp between neighbours
    values = iter([0.0, 1.0, 0.0, 1.0])
    out = blend_tiles(rgb, 64, 16, lambda p: np.full(p.shape, next(values), np.float32), multiple_of=8, min_tile=64)
    assert (out[:, :32] == 0).all() and (out[:, 64:] == 255).all()
    ramp = out[0, 32:64, 0].astype(int)
    assert (np.diff(ramp) >= 0).all() and ramp[0] > 0 and ramp[-1] < 255 and (ramp == ramp[0]).sum() < 4


def test_pipeline_components_are_shared_with_generate(config):
    mgr = ModelManager()
    rt = make_rt(config, mgr)
    rt.run(UP, args=[picture(), {**FAST, "seed": 1}])
    rt.run(GEN, args=[{"steps": 2, "width": 64, "height": 64, "seed": 1}])
    assert mgr.loads == 1 and len(mgr.loaded()) == 1
    assert set(mgr.loaded()[0]["tasks"]) >= {"img2img", "txt2img"}
    m = resolve("tiny", config, [], "t")
    i2i, t2i = mgr.pipeline(m, "img2img", config), mgr.pipeline(m, "txt2img", config)
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        assert getattr(i2i, name) is getattr(t2i, name), name
    # a second Runtime sharing the manager loads nothing new
    rt2 = make_rt(config, mgr)
    rt2.run(UP, args=[picture(), {**FAST, "seed": 1}])
    assert mgr.loads == 1


def test_limits_and_arguments_rejected_before_work(config):
    mgr = ModelManager()
    events = []
    grant = [{"type": "diffusers.upscale", "params": {"max_compute": 0.005, "max_steps": 30,
                                                      "allowed_models": ["tiny", "realesrgan"]}}]
    rt = make_rt(config, mgr, grants=grant, events=events)
    # 80×48 output in two 64×48 tiles (6144 px) × 1 step = 0.006144 > 0.005
    with pytest.raises(CapabilityError, match=r"compute cost 0\.006144 \(6144 tiled pixels.*max_compute"):
        rt.run(UP, args=[picture(), FAST])
    with pytest.raises(CapabilityError, match="max_steps"):
        rt.run(UP, args=[picture(8, 8), {"steps": 40}])
    with pytest.raises(CapabilityError, match="allowed_models"):
        rt.run(UP, args=[picture(8, 8), {**FAST, "model": "other"}])
    with pytest.raises(ArgumentError, match="strength"):
        rt.run(UP, args=[picture(8, 8), {"strength": 0.6}])
    with pytest.raises(ArgumentError, match="strength × steps"):
        rt.run(UP, args=[picture(8, 8), {"steps": 2, "strength": 0.3}])
    with pytest.raises(ArgumentError, match="factor must be 2 or 4"):
        rt.run(UP, args=[picture(8, 8), {**FAST, "factor": 3, "upscale_model": "realesrgan"}])
    big = make_rt(config, mgr, grants=[{"type": "diffusers.upscale", "params": {"max_pixels": 1000}}])
    with pytest.raises(CapabilityError, match="max_pixels"):
        big.run(UP, args=[picture(), FAST])
    assert mgr.loads == 0 and not [e for e in events if e["type"] == "progress"]


def test_alpha_and_grey_are_kept(config, manager):
    rt = make_rt(config, manager)
    rgba = picture(c=4, seed=4)
    r = rt.run(UP, args=[rgba, {**FAST, "seed": 1}])
    assert r["image"].pixels.shape == (48, 80, 4)
    assert np.array_equal(r["image"].pixels[:, :, 3:], resize_pixels(rgba.pixels[:, :, 3:], 2, "lanczos"))
    grey = rt.run(UP, args=[picture(c=1), {**FAST, "seed": 1}])
    assert grey["image"].pixels.shape == (48, 80, 1)


def test_network_first_upscale(config, manager, tiny_sd15):
    events = []
    rt = make_rt(config, manager, events=events, tiny_sd15=tiny_sd15)
    r = rt.run(UP, args=[picture(), {**FAST, "seed": 1, "upscale_model": "realesrgan"}])
    assert (r["width"], r["height"]) == (80, 48)
    assert r["image"].metadata["upscale"]["method"] == "realesrgan"
    with pytest.raises(CapabilityError, match="no weight file"):
        rt.run(UP, args=[picture(), {**FAST, "upscale_model": "realesrgan-anime"}])


def test_without_a_configured_diffusion_model_the_error_says_so():
    rt = Runtime(grants="default")
    with pytest.raises(ViwoError, match="upscaleImg2Img: needs a configured diffusion model") as e:
        rt.run(UP, args=[picture(), FAST])
    assert "[models]" in (e.value.hint or "")


def test_interrupt_stops_between_tiles(config, manager):
    seen = []

    def stop(e):
        if e["type"] == "progress":
            seen.append(e["step"])
            rt.interrupt()

    rt = make_rt(config, manager)
    rt.on_event = stop
    with pytest.raises(ViwoError, match="nterrupt"):
        rt.run(UP, args=[picture(48, 40), {**FAST, "seed": 2, "tile": 64, "tile_overlap": 16}])
    assert seen == [1]


def test_a_prompt_note_comes_once_and_the_sampler_named(config, manager):
    events = []
    rt = make_rt(config, manager, events=events)
    long = '(std.call_method (get_capability "diffusers.upscale") "upscaleImg2Img" (std.arg 0) (std.arg 1) (std.arg 2))'
    prompt = "a castle on a hill above the sea at dawn, [towers:banners:0.5]"  # 2 chunks; prompt editing
    r = rt.run(long, args=[picture(), prompt, {**FAST, "seed": 1, "scheduler": "euler"}])
    (note,) = r["notes"]
    assert note.startswith("prompt: prompt editing [towers:banners:0.5]") and r["tiles"] == 2  # once, not per tile
    assert [e["message"] for e in events if e["type"] == "warn"] == [f"diffusers.upscale.upscaleImg2Img: {note}"]
    assert (r["scheduler"], r["sampler"], r["image"].metadata["sampler"]) == ("euler", "Euler", "Euler")


def test_a_lora_tag_is_not_applied_here_and_a_note_says_so(config, manager):
    rt = make_rt(config, manager)
    long = '(std.call_method (get_capability "diffusers.upscale") "upscaleImg2Img" (std.arg 0) (std.arg 1) (std.arg 2))'
    r = rt.run(long, args=[picture(), "a castle <lora:detail:0.8>", {**FAST, "seed": 1}])
    assert r["notes"] == ["prompt: <lora:detail:0.8> removed: lora tags are not supported here"]
