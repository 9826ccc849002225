"""The real diffusers capabilities on tiny random-weight models built in code (no download, CPU).

The models are saved with ``save_pretrained`` into a temp folder once per session and loaded through the
real resolution and loading path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.capabilities.inpaint import DIRECTIONS, generation_size, outpaint_geometry  # noqa: E402
from viwoscript.errors import ArgumentError, CapabilityError, ViwoError  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402
from viwoscript.models.resolve import resolve  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402
from viwoscript.values import Image  # noqa: E402

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))'
I2I = '(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a dog" (std.arg 1))'
INPAINT = '(std.call_method (get_capability "diffusers.inpaint") "inpaint" (std.arg 0) (std.arg 1) "a cat" (std.arg 2))'
APPLY = '(std.call_method (get_capability "controlnet.generate") "apply" (std.arg 0) "a cat" (std.arg 1))'
SMALL = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a 2-core machine
    root = tmp_path_factory.mktemp("tiny-models")
    dirs = {f: make_tiny(root / f, f) for f in ("sd15", "sdxl", "sd15-inpaint", "sd15-controlnet",
                                                  "sdxl-controlnet")}
    make_tiny(root / "sd15-controlnet-b", "sd15-controlnet", seed=1)
    dirs["sd15-controlnet-b"] = root / "sd15-controlnet-b"
    dirs["root"] = root
    return dirs


@pytest.fixture(scope="session")
def config(tiny):
    return ModelConfig(aliases={"tiny": str(tiny["sd15"]), "xl": str(tiny["sdxl"]), "inp": str(tiny["sd15-inpaint"])},
                       default="tiny",
                       controlnets={"canny": [str(tiny["sd15-controlnet"]), str(tiny["sdxl-controlnet"])],
                                    "scribble": str(tiny["sd15-controlnet-b"])})


@pytest.fixture(scope="session")
def shared_manager():
    return ModelManager()


def make_rt(config, manager=None, grants="default", events=None, **kw):
    rt = Runtime(capabilities=capabilities(config), grants=grants,
                 on_event=(events.append if events is not None else None), **kw)
    if manager is not None:
        rt.models = manager
    return rt


@pytest.fixture()
def rt(config, shared_manager):
    return make_rt(config, shared_manager)


def picture(w=64, h=64, seed=0):
    return Image(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# --- availability and registration ---------------------------------------------------------------

def test_unconfigured_real_capability_is_unavailable_and_the_fake_stands_in():
    from viwoscript.capabilities.diffusion import DiffusersGenerate

    rt = Runtime(capabilities=[DiffusersGenerate], grants="default")
    rows = {(r["type"], r["provider"]): r for r in rt.caps.status()}
    real = rows[("diffusers.generate", "diffusers")]
    assert not real["available"] and "no model configured" in real["reason"]
    assert rows[("diffusers.generate", "fake")]["selected"]


def test_configured_capabilities_are_selected(config):
    rt = make_rt(config)
    rows = {(r["type"], r["provider"]): r for r in rt.caps.status()}
    for t in ("diffusers.generate", "diffusers.inpaint", "controlnet.generate"):
        assert rows[(t, "diffusers")]["available"] and rows[(t, "diffusers")]["selected"]
    names = {m["name"] for c in rt.capability_metadata() for m in c["methods"]}
    assert {"textToImage", "imageToImage", "inpaint", "outpaint", "apply", "preprocess", "getAvailableTypes"} <= names


# --- seeds, results, sharing ---------------------------------------------------------------------

def test_same_seed_same_pixels_different_seeds_differ_and_returned_seed_reproduces(rt):
    a = rt.run(GEN, args=[{**SMALL, "seed": 7}])
    b = rt.run(GEN, args=[{**SMALL, "seed": 7}])
    c = rt.run(GEN, args=[{**SMALL, "seed": 8}])
    assert np.array_equal(a["image"].pixels, b["image"].pixels)
    assert not np.array_equal(a["image"].pixels, c["image"].pixels)
    assert (a["width"], a["height"], a["format"], a["seed"], a["model_id"], a["steps"]) == (64, 64, "png", 7, "tiny", 2)
    meta = a["image"].metadata
    assert meta["seed"] == 7 and meta["prompt"] == "a red comet" and meta["model"] == "tiny"
    drawn = rt.run(GEN, args=[SMALL])
    again = rt.run(GEN, args=[{**SMALL, "seed": drawn["seed"]}])
    assert np.array_equal(drawn["image"].pixels, again["image"].pixels)


def test_components_are_shared_between_tasks_and_nothing_reloads(config):
    rt = make_rt(config, ModelManager())
    img = picture()
    rt.run(GEN, args=[{**SMALL, "seed": 1}])
    rt.run(I2I, args=[img, {"steps": 4, "seed": 1}])
    mask = np.zeros((64, 64), np.uint8)
    mask[8:40, 8:40] = 255
    rt.run(INPAINT, args=[img, Image(mask), {"steps": 2, "seed": 1}])
    rt.run(APPLY, args=[img, {"steps": 2, "seed": 1, "controlType": "canny"}])
    rt.run(GEN, args=[{**SMALL, "seed": 2}])
    mgr = rt.models
    assert mgr.loads == 2  # the base model once, its canny ControlNet once
    m = resolve("tiny", config, [], "t")
    pipes = [mgr.pipeline(m, t, config, controlnets=[resolve(config.controlnets["canny"][0], config, [], "t",
                                                             kind="controlnet", trusted=True)] if t == "controlnet" else None)
             for t in ("txt2img", "img2img", "inpaint", "controlnet")]
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        objs = {id(getattr(p, name)) for p in pipes}
        assert len(objs) == 1, name
    assert {type(p).__name__ for p in pipes} == {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                                                 "StableDiffusionInpaintPipeline", "StableDiffusionControlNetPipeline"}
    assert mgr.loads == 2


def test_pipelines_run_on_one_long_lived_thread_per_manager(config):
    """Each Runtime.run evaluates on a fresh thread; the pipeline calls go to the manager's own thread,
    the same every call (PyTorch keeps cuDNN plans per thread: a new thread per call rebuilt them)."""
    import threading

    rt = make_rt(config, ModelManager())
    rt.run(GEN, args=[{**SMALL, "seed": 1}])
    pipe = rt.models.pipeline(resolve("tiny", config, [], "t"), "txt2img", config)
    threads = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a: threads.append(threading.current_thread()))
    try:
        rt.run(GEN, args=[{**SMALL, "seed": 1}])
        rt.run(I2I, args=[picture(), {"steps": 2, "seed": 1, "strength": 1.0}])
    finally:
        handle.remove()
    assert len(threads) == 4 and len(set(threads)) == 1 and threads[0].name.startswith("viwo-models")
    assert rt.models.call(lambda: threading.current_thread()) is threads[0]


def test_cache_evicts_lru_under_its_byte_budget_and_unloads(config):
    mgr = ModelManager()
    rt = make_rt(config, mgr)
    rt.run(GEN, args=[{**SMALL, "seed": 1}])
    one = mgr.nbytes
    mgr.max_bytes = int(one * 1.5)
    rt.run(GEN, args=[{**SMALL, "seed": 1, "model": "xl"}])
    assert [e["name"] for e in mgr.loaded()] == ["xl"] and mgr.evictions == 1
    assert mgr.nbytes <= mgr.max_bytes
    rt.run(GEN, args=[{**SMALL, "seed": 1}])
    assert [e["name"] for e in mgr.loaded()] == ["tiny"] and mgr.loads == 3
    assert mgr.unload() == 1 and mgr.nbytes == 0


def test_batch_returns_consecutive_seeds(rt):
    r = rt.run(GEN, args=[{**SMALL, "seed": 10, "batch": 2}])
    assert r["seeds"] == [10, 11] and len(r["images"]) == 2
    single = rt.run(GEN, args=[{**SMALL, "seed": 11}])
    diff = np.abs(r["images"][1].pixels.astype(int) - single["image"].pixels.astype(int))
    assert diff.max() <= 2  # same noise; batched arithmetic may differ in the last bit


def test_img2img_rgba_input_and_size_rounding(rt):
    px = np.random.default_rng(1).integers(0, 256, (61, 75, 4), dtype=np.uint8)
    r = rt.run(I2I, args=[Image(px), {"steps": 4, "seed": 3, "strength": 0.5}])
    assert (r["width"], r["height"]) == (72, 56) and "notes" in r


def test_scheduler_choice_changes_the_result(rt):
    a = rt.run(GEN, args=[{**SMALL, "seed": 4}])
    b = rt.run(GEN, args=[{**SMALL, "seed": 4, "scheduler": "euler"}])
    assert b["scheduler"] == "euler" and not np.array_equal(a["image"].pixels, b["image"].pixels)
    with pytest.raises(ArgumentError, match="scheduler must be one of"):
        rt.run(GEN, args=[{**SMALL, "scheduler": "nope"}])


def test_sdxl_prompt_2_reaches_the_second_encoder(rt, config):
    rt.run(GEN, args=[{**SMALL, "seed": 1, "model": "xl"}])  # loads it
    pipe = rt.models.pipeline(resolve("xl", config, [], "t"), "txt2img", config)
    seen = []

    def hook(module, args, kwargs):
        ids = args[0] if args else kwargs["input_ids"]
        seen.append(pipe.tokenizer_2.decode(ids[0], skip_special_tokens=True).replace(" ", ""))

    handle = pipe.text_encoder_2.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        a = rt.run(GEN, args=[{**SMALL, "seed": 1, "model": "xl", "prompt_2": "zebra stripes"}])
    finally:
        handle.remove()
    assert any("zebrastripes" in s for s in seen)
    b = rt.run(GEN, args=[{**SMALL, "seed": 1, "model": "xl", "prompt_2": "a red comet"}])
    c = rt.run(GEN, args=[{**SMALL, "seed": 1, "model": "xl"}])
    assert np.array_equal(b["image"].pixels, c["image"].pixels)  # prompt_2 defaults to prompt
    assert not np.array_equal(a["image"].pixels, c["image"].pixels)
    assert a["family"] == "sdxl"


# --- inpaint and outpaint ------------------------------------------------------------------------

def test_inpaint_pastes_unmasked_pixels_back_exactly(rt):
    img = picture(70, 60, seed=2)
    mask = np.zeros((60, 70), np.uint8)
    mask[10:30, 20:50] = 255
    r = rt.run(INPAINT, args=[img, Image(mask), {"steps": 2, "seed": 5, "maskBlur": 3}])
    out = r["image"].pixels
    assert out.shape == img.pixels.shape
    assert np.array_equal(out[mask == 0], img.pixels[mask == 0])
    assert (out[mask > 0] != img.pixels[mask > 0]).any(axis=1).mean() > 0.5
    assert any("multiples of 8" in n for n in r["notes"])


def test_inpaint_with_canvas_mask_layer_only_masked_and_9_channel_model(config, shared_manager):
    rt = make_rt(config, shared_manager, canvas_size=(64, 64))
    img = picture(64, 64, seed=3)
    script = '''(std.seq (canvas.layer.create "m" "Mask" "mask")
      (canvas.draw_stroke "m" [[20 20] [40 30]] "#00ff00" 10 "brush")
      (std.call_method (get_capability "diffusers.inpaint") "inpaint" (std.arg 0) "m" "a cat"
         {"steps" 2 "seed" 1 "model" "inp" "onlyMasked" true "padding" 4}))'''
    r = rt.run(script, args=[img])
    mask = np.asarray(rt.canvas.mask_image("m"))
    out = r["image"].pixels
    assert np.array_equal(out[mask == 0], img.pixels[mask == 0])
    assert r["model_id"] == "inp" and (out != img.pixels).any()


def test_inpaint_model_is_refused_for_text_to_image(rt):
    with pytest.raises(CapabilityError, match="inpainting model"):
        rt.run(GEN, args=[{**SMALL, "model": "inp"}])


def test_outpaint_extends_pastes_back_and_fills_from_edges(rt):
    img = picture(60, 64, seed=4)
    r = rt.run('(std.call_method (get_capability "diffusers.inpaint") "outpaint" (std.arg 0) "left,top" 20 "sea" '
               '{"steps" 2 "seed" 1 "overlap" 8})', args=[img])
    out = r["image"].pixels
    left, top = r["offset"]
    assert out.shape[1] % 8 == 0 and out.shape[0] % 8 == 0 and out.shape[1] >= 80 and out.shape[0] >= 84
    assert (left, top) == (out.shape[1] - 60, out.shape[0] - 64)
    # beyond the overlap band the original comes back exactly
    assert np.array_equal(out[top + 8:, left + 8:], img.pixels[8:, 8:])
    assert out[:top, :].std() > 1.0  # the new area is not flat


@settings(max_examples=300, deadline=None)
@given(w=st.integers(1, 300), h=st.integers(1, 300), pixels=st.integers(8, 300),
       sides=st.sets(st.sampled_from(DIRECTIONS), min_size=1))
def test_outpaint_geometry_grows_only_the_requested_sides(w, h, pixels, sides):
    sides = tuple(d for d in DIRECTIONS if d in sides)
    left, top, nw, nh = outpaint_geometry(w, h, sides, pixels)
    grown = {"left": left, "right": nw - w - left, "top": top, "bottom": nh - h - top}
    for side, by in grown.items():
        if side not in sides:
            assert by == 0
        else:
            assert pixels <= by < pixels + 8
    for a, b, old, new in (("left", "right", w, nw), ("top", "bottom", h, nh)):
        if a in sides or b in sides:
            assert new % 8 == 0
        else:
            assert new == old
        if a in sides and b in sides:
            assert grown[a] == pixels  # the rounding goes to one side only: right or bottom
    gw, gh = generation_size(nw, nh)
    assert gw % 8 == gh % 8 == 0 and 0 <= gw - nw < 8 and 0 <= gh - nh < 8


def test_outpaint_one_side_keeps_the_other_dimension_exactly(rt):
    img = picture(60, 61, seed=8)  # neither side a multiple of 8
    script = ('(std.call_method (get_capability "diffusers.inpaint") "outpaint" (std.arg 0) "right" 20 "sea" '
              '{"steps" 2 "seed" 3 "overlap" 8})')
    r = rt.run(script, args=[img])
    out = r["image"].pixels
    assert out.shape == (61, 80, 3) and (r["width"], r["height"]) == (80, 61)
    assert r["offset"] == [0, 0] and r["extended"] == {"right": 20}
    assert np.array_equal(out[:, :52], img.pixels[:, :52])  # every row, the bottom one included
    assert any("cropped to 80×61" in n for n in r["notes"])
    r = rt.run(script.replace('"right" 20', '"left" 18'), args=[img])
    assert r["image"].pixels.shape == (61, 80, 3) and r["offset"] == [20, 0] and r["extended"] == {"left": 20}
    assert any("extended left by 20 px instead of 18" in n for n in r["notes"])
    assert np.array_equal(r["image"].pixels[:, 28:], img.pixels[:, 8:])
    assert r["image"].metadata["extended"] == {"left": 20}


def test_outpaint_rejects_unknown_direction(rt):
    with pytest.raises(ArgumentError, match="unknown direction"):
        rt.run('(std.call_method (get_capability "diffusers.inpaint") "outpaint" (std.arg 0) "up" 16 "x")',
               args=[picture()])


# --- ControlNet ----------------------------------------------------------------------------------

def test_preprocess_canny_invert_and_types(rt):
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = 255
    canny = rt.run('(std.call_method (get_capability "controlnet.generate") "preprocess" (std.arg 0) "canny")',
                   args=[Image(img)])
    edges = canny.pixels[:, :, 0]
    assert edges[15:17, 30].max() == 255 and edges[32, 32] == 0 and edges[2, 2] == 0
    assert canny.metadata["controlType"] == "canny"
    sketch = np.full((32, 32, 3), 250, np.uint8)
    sketch[10, 5:25] = (10, 10, 200)
    s = rt.run('(std.call_method (get_capability "controlnet.generate") "preprocess" (std.arg 0) "invert")',
               args=[Image(sketch)])
    expected = np.zeros((32, 32), np.uint8)
    expected[10, 5:25] = 255
    assert np.array_equal(s.pixels[:, :, 0], expected)
    assert (s.metadata["controlType"], s.metadata["preprocessor"]) == ("scribble", "invert")
    with pytest.raises(CapabilityError, match="scribble preprocessor needs the Annotators") as info:
        rt.run('(std.call_method (get_capability "controlnet.generate") "preprocess" (std.arg 0) "scribble")',
               args=[Image(sketch)])
    assert '"invert"' in info.value.hint
    assert rt.run('(std.call_method (get_capability "controlnet.generate") "getAvailableTypes")') == ["canny",
                                                                                                     "scribble"]
    with pytest.raises(CapabilityError, match="Annotators"):
        rt.run('(std.call_method (get_capability "controlnet.generate") "preprocess" (std.arg 0) "depth")',
               args=[Image(img)])


def test_multi_controlnet_with_two_nets_runs_and_weights_matter(rt):
    img = picture(64, 64, seed=6)
    two = [{"image": img, "controlType": "canny", "weight": 1.0},
           {"image": img, "controlType": "scribble", "weight": 0.5, "start": 0.0, "end": 0.5}]
    r = rt.run(APPLY, args=[two, {"steps": 2, "seed": 9}])
    assert [c["controlType"] for c in r["image"].metadata["controls"]] == ["canny", "scribble"]
    other = rt.run(APPLY, args=[[two[0], {**two[1], "weight": 2.0}], {"steps": 2, "seed": 9}])
    assert not np.array_equal(r["image"].pixels, other["image"].pixels)
    # the original's calling convention: apply(controlImage, prompt, controlType)
    orig = rt.run('(std.call_method (get_capability "controlnet.generate") "apply" (std.arg 0) "a cat" "canny" '
                  '{"steps" 2 "seed" 9})', args=[img])
    assert orig["width"] == 64


def test_sdxl_controlnet_and_canvas_control_layer(config, shared_manager):
    rt = make_rt(config, shared_manager, canvas_size=(64, 64))
    r = rt.run('''(std.seq (canvas.layer.create "c" "Control" "control")
        (canvas.layer.update "c" {"controlType" "canny"})
        (canvas.draw_stroke "c" [[10 10] [50 50]] "#ffffff" 6 "brush")
        (std.call_method (get_capability "controlnet.generate") "apply" "c" "a cat" {"steps" 2 "seed" 1 "model" "xl"}))''')
    assert r["family"] == "sdxl" and r["image"].metadata["controls"][0]["controlType"] == "canny"


def test_missing_controlnet_for_a_type_is_explained(rt):
    with pytest.raises(CapabilityError, match="no ControlNet configured for 'depth'"):
        rt.run(APPLY, args=[picture(), {"steps": 2, "controlType": "depth"}])


# --- limits, progress, interrupt -----------------------------------------------------------------

def test_limits_reject_before_anything_loads(config):
    rt = make_rt(config, ModelManager(), grants=[{"type": "diffusers.generate",
                                                 "params": {"max_steps": 5, "allowed_models": ["tiny"]}}])
    with pytest.raises(CapabilityError, match="max_steps"):
        rt.run(GEN, args=[{**SMALL, "steps": 10}])
    with pytest.raises(CapabilityError, match="allowed_models"):
        rt.run(GEN, args=[{**SMALL, "model": "xl"}])
    with pytest.raises(CapabilityError, match="compute cost"):
        rt.run(GEN, args=[{**SMALL, "max_compute": 0.001}])
    with pytest.raises(ViwoError, match="not found"):
        rt2 = make_rt(config, ModelManager(), grants=["diffusers.generate"])
        rt2.run(GEN, args=[{**SMALL, "model": "no/such-model"}])
    assert rt.models.loads == 0 and rt.models.nbytes == 0


def test_native_size_default_is_checked_against_limits(config):
    rt = make_rt(config, ModelManager(), grants=[{"type": "diffusers.generate", "params": {"max_width": 16}}])
    # no width given: the model's native size (tiny: 16 × 2 = 32) is what the limit sees
    with pytest.raises(CapabilityError, match="width 32 exceeds"):
        rt.run(GEN, args=[{"steps": 2}])


def test_progress_per_step_and_interrupt_between_steps(config, shared_manager):
    events = []
    rt = make_rt(config, shared_manager, events=events)
    rt.run(GEN, args=[{**SMALL, "steps": 3, "seed": 1}])
    prog = [(e["step"], e["total"]) for e in events if e["type"] == "progress"]
    assert prog == [(1, 3), (2, 3), (3, 3)]

    seen = []

    def stop(e):
        if e["type"] == "progress":
            seen.append(e["step"])
            if e["step"] == 2:
                rt2.interrupt()

    rt2 = make_rt(config, shared_manager)
    rt2.on_event = stop
    with pytest.raises(ViwoError, match="nterrupt"):
        rt2.run(GEN, args=[{**SMALL, "steps": 6, "seed": 1}])
    assert seen == [1, 2]


def test_make_tiny_rejects_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="unknown family"):
        make_tiny(tmp_path, "sd3")
    with pytest.raises(ValueError, match="scale"):
        make_tiny(tmp_path, "sd15", scale=0)
