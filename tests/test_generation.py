"""Generation fixes of issue 13 (items 12-21) on tiny random-weight models: named models never get the
fake, Runtimes sharing a manager, long prompts, only_masked at the native size, annotators, the fake's
options, A1111 sampler names, downloads of only the needed files, `viwo caps` reasons."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.capabilities.fake import FakeGenerate  # noqa: E402
from viwoscript.capabilities.inpaint import native_target  # noqa: E402
from viwoscript.errors import CapabilityError, ScriptError  # noqa: E402
from viwoscript.io.metadata import a1111_parameters  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402
from viwoscript.models.resolve import needed_files, resolve  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402
from viwoscript.values import Image  # noqa: E402

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0) (std.arg 1))'
INPAINT = '(std.call_method (get_capability "diffusers.inpaint") "inpaint" (std.arg 0) (std.arg 1) "a cat" (std.arg 2))'
PRE = '(std.call_method (get_capability "controlnet.generate") "preprocess" (std.arg 0) (std.arg 1) (std.arg 2))'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("gen-models")
    make_tiny(root / "sd15", "sd15")
    make_tiny(root / "inp", "sd15-inpaint")
    return root


@pytest.fixture(scope="module")
def config(tiny):
    return ModelConfig(aliases={"tiny": str(tiny / "sd15"), "inp": str(tiny / "inp")}, default="tiny")


def make_rt(config, manager=None, events=None, **kw):
    rt = Runtime(capabilities=capabilities(config), grants="default",
                 on_event=events.append if events is not None else None, **kw)
    rt.models = manager or ModelManager()
    return rt


# --- item 12: a named model never gets the fake ---------------------------------------------------

def test_a_named_model_folder_runs_the_real_model_when_no_default_is_configured(tiny):
    events = []
    rt = Runtime(roots=[tiny], grants="default", on_event=events.append)  # no [models] at all
    r = rt.run(GEN, args=["a red comet", {"model": "sd15", "steps": 1, "seed": 3}])
    assert "fake" not in r["image"].metadata and r["model_id"] == "sd15" and r["family"] == "sd15"
    assert not [e for e in events if e["type"] == "warn" and "fake" in e["message"]]
    # the same script without a model: nothing real is configured, so the fake stands in (and says so)
    r = rt.run(GEN, args=["a red comet", {"steps": 1, "seed": 3, "width": 64, "height": 64}])
    assert r["image"].metadata["fake"] is True
    assert [e for e in events if e["type"] == "warn" and "fake" in e["message"]]


def test_capabilities_without_a_fake_serve_a_named_model_folder_too(tiny):
    # no [models]: inpaint has no default model (so "default" grants leave it out; the host grants it)
    rt = Runtime(roots=[tiny], grants=["diffusers.inpaint"])
    img = Image(np.zeros((32, 32, 3), np.uint8))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    r = rt.run(INPAINT, args=[img, Image(mask), {"model": "inp", "steps": 1, "seed": 1}])
    assert r["model_id"] == "inp"
    with pytest.raises(CapabilityError, match="diffusers.inpaint.inpaint: not available here: no model configured"):
        rt.run(INPAINT, args=[img, Image(mask), {"steps": 1, "seed": 1}])


def test_an_unknown_model_name_is_an_error_never_the_fake(tiny):
    rt = Runtime(roots=[tiny], grants="default")
    with pytest.raises(ScriptError, match="model 'no/such-model' not found"):
        rt.run(GEN, args=["x", {"model": "no/such-model", "steps": 1}])
    pinned = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake"}])
    with pytest.raises(CapabilityError, match="model 'no/such-model' cannot run here") as info:
        pinned.run(GEN, args=["x", {"model": "no/such-model", "steps": 1}])
    assert "[models]" in info.value.hint
    assert pinned.run(GEN, args=["x", {"model": "fake", "steps": 1, "width": 64, "height": 64}])["model_id"] == "fake"


# --- item 13: two Runtimes sharing one manager ----------------------------------------------------

def test_two_runtimes_in_threads_share_a_manager_with_their_own_schedulers(config):
    shared = ModelManager()
    jobs = [("euler", 5), ("dpm++_2m_karras", 6), ("ddim", 7)]
    solo = {}
    for sched, seed in jobs:
        rt = make_rt(config, ModelManager())
        solo[sched] = rt.run(GEN, args=["a boat", {"steps": 3, "seed": seed, "scheduler": sched}])["image"].pixels
    results: dict = {}
    errors: list = []

    def work(sched, seed):
        try:
            rt = make_rt(config, shared)
            for _ in range(3):
                r = rt.run(GEN, args=["a boat", {"steps": 3, "seed": seed, "scheduler": sched}])
                results.setdefault(sched, []).append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for sched, runs in results.items():
        assert len(runs) == 3
        for r in runs:
            assert r["scheduler"] == sched and np.array_equal(r["image"].pixels, solo[sched])
    assert shared.loads == 1


# --- item 14: long prompts ------------------------------------------------------------------------

def test_a_long_prompt_is_read_in_chunks_and_never_cut(config):
    events = []
    rt = make_rt(config, events=events)
    prompt = "a lighthouse on a cliff at dusk, oil painting, dramatic sky, seagulls"  # tiny reads 30 characters
    r = rt.run(GEN, args=[prompt, {"steps": 1, "seed": 1, "negative_prompt": "blurry"}])
    cut = rt.run(GEN, args=[prompt[:30], {"steps": 1, "seed": 1, "negative_prompt": "blurry"}])
    assert "notes" not in r and not [e for e in events if e["type"] == "warn"]
    assert not np.array_equal(r["image"].pixels, cut["image"].pixels)  # the words after 30 tokens count
    r = rt.run(GEN, args=["a cat <hypernet:x:1>", {"steps": 1, "seed": 1}])
    (note,) = r["notes"]
    assert note == "prompt: <hypernet:x:1> removed: hypernet tags are not supported here"
    assert [e["message"] for e in events if e["type"] == "warn"] == [f"diffusers.generate.textToImage: {note}"]


# --- item 15: only_masked at the model's native size ----------------------------------------------

def test_native_target_keeps_the_aspect_and_the_native_area():
    assert native_target(62, 62, 512) == (512, 512)
    w, h = native_target(200, 100, 512)
    assert (w % 8, h % 8) == (0, 0) and abs(w / h - 2) < 0.05 and abs(w * h - 512 * 512) / 512**2 < 0.05
    assert native_target(10, 1000, 64) == (64, 640)


def test_only_masked_generates_the_crop_at_the_native_size_and_scales_it_back(config):
    rt = make_rt(config)
    img = Image(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    mask = np.zeros((96, 96), np.uint8)
    mask[40:50, 30:60] = 255
    seen = []
    from viwoscript.capabilities import diffusers_base

    real = diffusers_base.run_pipeline

    def spy(ctx, cap, model, task, **kw):
        seen.append((kw["width"], kw["height"], kw["image"].size))
        return real(ctx, cap, model, task, **kw)

    diffusers_base.run_pipeline, orig = spy, real
    import viwoscript.capabilities.inpaint as inpaint_mod

    inpaint_mod.run_pipeline = spy
    try:
        r = rt.run(INPAINT, args=[img, Image(mask), {"steps": 2, "seed": 1, "only_masked": True, "padding": 4,
                                                      "model": "inp"}])
    finally:
        inpaint_mod.run_pipeline = orig
    crop = (38, 18)  # 30+8 × 10+8 around the mask
    target = native_target(*crop, 32)  # tiny's native size is 32
    assert seen == [(*target, target)]
    assert any(n.startswith(f"only_masked: the {crop[0]}×{crop[1]} crop") for n in r["notes"])
    out = r["image"].pixels
    assert np.array_equal(out[mask == 0], img.pixels[mask == 0])


def test_only_masked_budget_counts_the_native_size(config):
    rt = Runtime(capabilities=capabilities(config), grants=[{"type": "diffusers.inpaint",
                                                             "params": {"max_compute": 0.01}}])
    rt.models = ModelManager()
    img = Image(np.zeros((512, 512, 3), np.uint8))
    mask = np.zeros((512, 512), np.uint8)
    mask[0:8, 0:8] = 255
    # the whole image would cost 512×512×2/1e6 = 0.52; only_masked runs at tiny's 32×32 size: 0.002
    r = rt.run(INPAINT, args=[img, Image(mask), {"steps": 2, "seed": 1, "only_masked": True, "padding": 0,
                                                  "model": "inp"}])
    assert r["width"] == 512
    with pytest.raises(CapabilityError, match="compute cost"):
        rt.run(INPAINT, args=[img, Image(mask), {"steps": 2, "seed": 1, "model": "inp"}])


# --- item 16: annotators --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def annotators(tmp_path_factory):
    pytest.importorskip("controlnet_aux")
    from controlnet_aux.hed import ControlNetHED_Apache2

    folder = tmp_path_factory.mktemp("Annotators")
    torch.manual_seed(0)
    torch.save(ControlNetHED_Apache2().state_dict(), folder / "ControlNetHED.pth")
    return folder


def test_scribble_and_hed_run_the_annotator_and_return_the_inputs_size(config, annotators):
    rt = make_rt(config.replace(annotators=str(annotators), device="cpu"))
    pic = Image(np.random.default_rng(1).integers(0, 256, (50, 75, 3), dtype=np.uint8))
    s = rt.run(PRE, args=[pic, "scribble", {"resolution": 64}])
    h = rt.run(PRE, args=[pic, "hed", {"resolution": 64}])
    assert (s.width, s.height) == (75, 50) == (h.width, h.height)
    assert set(np.unique(s.pixels)) <= {0, 255}  # a scribble: thresholded lines
    assert s.metadata["controlType"] == "scribble" and h.metadata["controlType"] == "hed"
    (entry,) = rt.models.loaded()  # one HED net for both, held by the model manager on the configured device
    assert entry["kind"] == "annotator" and entry["device"] == "cpu" and entry["bytes"] > 50_000_000


def test_annotators_that_are_not_a_folder_never_reach_the_hub_without_download(config, annotators, monkeypatch):
    import controlnet_aux.hed as hed

    calls = []

    def hub(repo, filename, **kw):
        calls.append((repo, filename))
        return str(annotators / filename)

    monkeypatch.setattr(hed, "hf_hub_download", hub)
    pic = Image(np.zeros((40, 40, 3), np.uint8))
    rt = make_rt(config.replace(annotators="lllyasviel/Annotators", download=False))
    with pytest.raises(CapabilityError, match="not a local folder, and downloads are off"):
        rt.run(PRE, args=[pic, "hed", {"resolution": 64}])
    assert calls == []
    rt = make_rt(config.replace(annotators="lllyasviel/Annotators", download=True))
    assert rt.run(PRE, args=[pic, "hed", {"resolution": 64}]).width == 40
    assert calls == [("lllyasviel/Annotators", "ControlNetHED.pth")]


# --- item 18: the fake implements the whole declaration --------------------------------------------

def test_the_fake_accepts_every_option_records_them_and_notes_what_it_ignores():
    rt = Runtime(capabilities=[FakeGenerate(models={"fake": 512, "fake-xl": 1024})],
                 grants=[{"type": "diffusers.generate", "provider": "fake"}])
    r = rt.run(GEN, args=["x", {"steps": 1, "seed": 2, "scheduler": "dpm++_2m_karras", "prompt_2": "y",
                               "negative_prompt": "z", "width": 64, "height": 64}])
    meta = r["image"].metadata
    assert (meta["scheduler"], meta["sampler"], meta["schedule_type"]) == ("dpm++_2m_karras", "DPM++ 2M", "Karras")
    assert meta["prompt_2"] == "y" and meta["negative_prompt"] == "z" and meta["fake"] is True
    (note,) = r["notes"]
    assert "negative_prompt, scheduler, prompt_2" in note
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in a1111_parameters(meta)
    # default size: the model's native size
    assert rt.run(GEN, args=["x", {"steps": 1}])["width"] == 512
    r = rt.run(GEN, args=["x", {"steps": 1, "model": "fake-xl"}])
    assert (r["width"], r["height"], r["model_id"]) == (1024, 1024, "fake-xl") and "notes" not in r


# --- item 19: A1111 sampler names -----------------------------------------------------------------

def test_real_images_carry_a1111_sampler_names(config):
    rt = make_rt(config)
    r = rt.run(GEN, args=["x", {"steps": 1, "seed": 1, "scheduler": "dpm++_2m_karras"}])
    text = a1111_parameters(r["image"].metadata)
    assert "Sampler: DPM++ 2M, Schedule type: Karras," in text and "dpm++" not in text
    # the model's own scheduler (tiny: DDIM), also right after a call that chose another one
    r = rt.run(GEN, args=["x", {"steps": 1, "seed": 1}])
    assert (r["scheduler"], r["sampler"]) == ("DDIMScheduler", "DDIM")
    assert "Sampler: DDIM," in a1111_parameters(r["image"].metadata)
    assert "Scheduler" not in a1111_parameters(r["image"].metadata)


# --- item 20: downloads fetch only what diffusers loads ----------------------------------------------

SD15_FILES = [
    ".gitattributes", "README.md", "v1-5-pruned.ckpt", "v1-5-pruned-emaonly.ckpt", "v1-5-pruned.safetensors",
    "model_index.json", "feature_extractor/preprocessor_config.json",
    "safety_checker/config.json", "safety_checker/model.safetensors", "safety_checker/pytorch_model.bin",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
    "text_encoder/pytorch_model.bin", "text_encoder/flax_model.msgpack",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.non_ema.bin",
    "vae/config.json", "vae/diffusion_pytorch_model.bin",
    "onnx/unet/model.onnx",
]


def test_needed_files_of_a_pipeline_and_a_controlnet():
    assert needed_files(SD15_FILES) == [
        "model_index.json", "feature_extractor/preprocessor_config.json", "safety_checker/config.json",
        "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.bin"]
    assert "safety_checker/model.safetensors" in needed_files(SD15_FILES, safety_checker=True)
    cn = ["config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
          "diffusion_pytorch_model.fp16.safetensors", "images/input.png"]
    assert needed_files(cn, "controlnet") == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_download_fetches_only_the_needed_files_from_a_stubbed_hub(tiny, tmp_path, monkeypatch):
    import huggingface_hub as hub

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "try_to_load_from_cache", lambda repo, name: None)
    calls = []
    monkeypatch.setattr(hub, "list_repo_files", lambda repo: calls.append(("list", repo)) or SD15_FILES)

    def snapshot(repo, allow_patterns=None, **kw):
        calls.append(("snapshot", repo, tuple(allow_patterns)))
        return str(tiny / "sd15")

    monkeypatch.setattr(hub, "snapshot_download", snapshot)
    with pytest.raises(ScriptError, match="not found"):
        resolve("org/sd15", ModelConfig(download=False), [], "t")
    assert calls == []
    m = resolve("org/sd15", ModelConfig(download=True), [], "t")
    assert m.family == "sd15" and m.source == "huggingface"
    assert calls == [("list", "org/sd15"), ("snapshot", "org/sd15", tuple(needed_files(SD15_FILES)))]
    assert not [f for f in calls[1][2] if f.endswith(".ckpt") or ".fp16." in f]


# --- item 21: viwo caps says why a configured model is not available --------------------------------

def test_caps_reports_a_configured_model_that_is_not_on_disk(tmp_path, tiny):
    missing = ModelConfig(aliases={"sd": str(tmp_path / "nowhere")}, default="sd")
    rt = Runtime(capabilities=capabilities(missing), grants="default")
    rows = {(r["type"], r["provider"]): r for r in rt.caps.status()}
    row = rows[("diffusers.generate", "diffusers")]
    assert not row["available"] and "the default model 'sd' cannot load" in row["reason"]
    assert "nowhere" in row["reason"]
    not_cached = ModelConfig(aliases={"sd": "org/not-cached"}, default="sd")
    rt = Runtime(capabilities=capabilities(not_cached), grants="default")
    row = {(r["type"], r["provider"]): r for r in rt.caps.status()}[("diffusers.inpaint", "diffusers")]
    assert not row["available"] and "Hugging Face cache" in row["reason"]
    ok = ModelConfig(aliases={"sd": str(tiny / "sd15")}, default="sd")
    rt = Runtime(capabilities=capabilities(ok), grants="default")
    assert {(r["type"], r["provider"]): r for r in rt.caps.status()}[("diffusers.generate", "diffusers")]["available"]


def test_configured_models_says_what_loads_and_why_not(tiny, tmp_path):
    from viwoscript.models.resolve import configured_models

    config = ModelConfig.from_table({"default": "sd", "sd": str(tiny / "sd15"), "xl": "org/not-cached",
                                     "inpaint": str(tmp_path / "nowhere"), "annotators": str(tmp_path)})
    rows = {r["name"]: r for r in configured_models(config)}
    assert rows["sd"]["available"] and rows["sd"]["role"] == "alias, default" and rows["sd"]["native_size"] == 32
    assert not rows["xl"]["available"] and "Hugging Face cache" in rows["xl"]["reason"]
    assert rows[str(tmp_path / "nowhere")]["role"] == "inpaint" and "not found" in rows[str(tmp_path / "nowhere")]["reason"]
    assert rows[str(tmp_path)]["kind"] == "annotators" and rows[str(tmp_path)]["available"]


def test_viwo_models_list(tiny, tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "viwo.toml").write_text(f'[models]\ndefault = "sd"\nsd = "{tiny / "sd15"}"\nxl = "org/not-cached"\n',
                                        encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "viwoscript", "models", "list"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("sd  (alias, default): Stable Diffusion 1.x/2.x, native 32 px")
    assert lines[1].startswith("xl  (alias): cannot load: model 'xl' not found")
