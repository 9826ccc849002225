"""Single-file checkpoints (viwoscript.models.checkpoints): detection, names, shipped configs, loading.

Tiny random-weight models are written in the original (LDM) key layout by tests/single_file_helpers.py
and load through the real path (resolve → manager → diffusers' single-file loader) with no network."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from viwoscript.errors import ScriptError
from viwoscript.models import ModelConfig
from viwoscript.models.checkpoints import (
    CONFIGS,
    VARIANTS,
    detect,
    find_in_dir,
    inspect_checkpoint,
    sidecar_prediction,
)

SD1_TE = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


def shapes(*keys, unet_in=(320, 4, 3, 3), cross=None):
    out = {k: (1,) for k in keys}
    out[UNET_IN] = unet_in
    if cross:
        out["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] = (320, cross)
    return out


@pytest.mark.parametrize("keys, cross, want", [
    ([SD1_TE], None, "sd15"),
    (["cond_stage_model.model.token_embedding.weight"], None, "sd2"),
    (["conditioner.embedders.0.transformer.text_model.x", "conditioner.embedders.1.model.positional_embedding"],
     None, "sdxl_base"),
    (["conditioner.embedders.0.model.text_projection"], None, "sdxl_refiner"),
    ([], 768, "sd15"),
    ([], 1024, "sd2"),
    (["model.diffusion_model.label_emb.0.0.weight"], 2048, "sdxl_base"),
    (["model.diffusion_model.label_emb.0.0.weight"], 1280, "sdxl_refiner"),
])
def test_detection_by_key_prefixes_and_shapes(keys, cross, want):
    assert detect(shapes(*keys, cross=cross)) == (want, False)


def test_detection_of_inpainting_and_of_what_is_no_checkpoint():
    assert detect(shapes(SD1_TE, unet_in=(320, 9, 3, 3))) == ("sd15", True)
    assert detect({"lora_unet_down_blocks_0.lora_down.weight": (4, 320)}) == (None, False)
    assert detect(shapes(cross=4096)) == (None, False)


def write_header(path, keys: dict):
    header = json.dumps({k: {"dtype": "F32", "shape": list(v), "data_offsets": [0, 0]} for k, v in keys.items()})
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode())
    return path


def test_inspect_reads_the_header_picks_configs_and_v_prediction(tmp_path):
    sd2 = write_header(tmp_path / "v2.safetensors", shapes("cond_stage_model.model.token_embedding.weight"))
    info = inspect_checkpoint(sd2)
    assert (info.variant, info.native_size, info.config_dir, info.prediction_type) == ("sd2", 512, CONFIGS / "sd2", None)
    (tmp_path / "v2.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert sidecar_prediction(sd2) == "v_prediction"
    info = inspect_checkpoint(sd2)
    assert (info.variant, info.native_size, info.config_dir.name, info.prediction_type) == ("sd2_v", 768, "sd2_v",
                                                                                          "v_prediction")
    xl = write_header(tmp_path / "xl.safetensors", {**shapes("conditioner.embedders.1.model.x"), "v_pred": ()})
    assert inspect_checkpoint(xl).prediction_type == "v_prediction"  # SDXL v-prediction models carry a v_pred key
    assert inspect_checkpoint(xl, prediction_type="epsilon").prediction_type == "epsilon"
    (tmp_path / "xl.config").mkdir()
    (tmp_path / "xl.config" / "model_index.json").write_text("{}")
    assert inspect_checkpoint(xl).config_dir == tmp_path / "xl.config"  # a config folder beside it wins


def test_inpainting_checkpoints_use_the_inpainting_configs(tmp_path):
    for keys, want in (([SD1_TE], "sd15_inpaint"), (["cond_stage_model.model.token_embedding.weight"], "sd2_inpaint"),
                       (["conditioner.embedders.1.model.x"], "sdxl_inpaint")):
        path = write_header(tmp_path / f"{want}.safetensors", shapes(*keys, unet_in=(320, 9, 3, 3)))
        info = inspect_checkpoint(path)
        assert (info.variant, info.inpaint, info.config_dir) == (want, True, CONFIGS / want)
    refiner = write_header(tmp_path / "r.safetensors", shapes("conditioner.embedders.0.model.x", unet_in=(384, 9, 3, 3)))
    with pytest.raises(ScriptError, match="inpainting SDXL refiner"):
        inspect_checkpoint(refiner)


def test_pickles_need_allow_pickle_and_bad_files_say_so(tmp_path):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 whatever")
    with pytest.raises(ScriptError, match=r"pickle.*allow_pickle = true under \[models\]"):
        inspect_checkpoint(ckpt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 4)
    with pytest.raises(ScriptError, match="cannot read junk.safetensors"):
        inspect_checkpoint(junk)
    lora = write_header(tmp_path / "lora.safetensors", {"lora_unet_x.lora_down.weight": (4, 8)})
    with pytest.raises(ScriptError, match="not a Stable Diffusion 1.x/2.x/SDXL checkpoint"):
        inspect_checkpoint(lora)


def test_names_in_a_checkpoints_folder(tmp_path):
    for rel in ("dreamshaper_8.safetensors", "sdxl/juggernaut.safetensors", "sdxl/Other.ckpt", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    sfx = (".safetensors", ".ckpt")
    assert find_in_dir("dreamshaper_8", tmp_path, sfx) == tmp_path / "dreamshaper_8.safetensors"
    assert find_in_dir("dreamshaper_8.safetensors", tmp_path, sfx) == tmp_path / "dreamshaper_8.safetensors"
    assert find_in_dir("dreamshaper_8.safetensors [879db523c3]", tmp_path, sfx) == tmp_path / "dreamshaper_8.safetensors"
    assert find_in_dir("sdxl/juggernaut", tmp_path, sfx) == tmp_path / "sdxl/juggernaut.safetensors"
    assert find_in_dir("sdxl\\juggernaut.safetensors", tmp_path, sfx) == tmp_path / "sdxl/juggernaut.safetensors"
    assert find_in_dir("juggernaut", tmp_path, sfx) == tmp_path / "sdxl/juggernaut.safetensors"  # unique base name
    assert find_in_dir("other", tmp_path, sfx) == tmp_path / "sdxl/Other.ckpt"
    assert find_in_dir("notes", tmp_path, sfx) is None
    assert find_in_dir("../x", tmp_path, sfx) is None
    assert find_in_dir("/etc/passwd", tmp_path, sfx) is None


# --- shipped configs --------------------------------------------------------------------------------

def test_shipped_config_folders_are_complete_and_small():
    total = 0
    for variant, (_family, cls, _size, _label) in VARIANTS.items():
        folder = CONFIGS / variant
        index = json.loads((folder / "model_index.json").read_text())
        assert index["_class_name"] == cls
        for comp, (_lib, _) in ((k, v) for k, v in index.items() if isinstance(v, list) and v[0]):
            names = {"scheduler": "scheduler_config.json"}.get(comp, "tokenizer_config.json" if comp.startswith(
                "tokenizer") else "config.json")
            assert (folder / comp / names).is_file(), (variant, comp)
        assert not [f for f in folder.rglob("*") if f.suffix in (".safetensors", ".bin", ".ckpt")]
        total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total < 600_000


def test_the_shipped_clip_tokenizer_is_clips():
    pytest.importorskip("transformers")
    from viwoscript.models.checkpoints import tokenizer_for

    tok = tokenizer_for(CONFIGS / "sd15" / "tokenizer")
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.pad_token == "<|endoftext|>"
    assert tokenizer_for(CONFIGS / "sd2" / "tokenizer").pad_token == "!"  # OpenCLIP pads with "!"
    assert tokenizer_for(CONFIGS / "sdxl_base" / "tokenizer_2").pad_token_id == 0


def test_shipped_configs_build_the_real_architectures():
    pytest.importorskip("accelerate")
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def count(m):
        return sum(p.numel() for p in m.parameters())

    # parameter counts of the published models (SD 1.5, SD 2.1, SDXL 1.0 base and refiner)
    want = {"sd15": (859520964, 123060480, None), "sd2": (865910724, 340387840, None),
            "sd2_v": (865910724, 340387840, None), "sdxl_base": (2567463684, 123060480, 694659840),
            "sdxl_refiner": (2259526660, None, 694659840)}
    extra = 5 * 320 * 3 * 3  # an inpainting UNet's conv_in reads 9 channels instead of 4
    want.update(sd15_inpaint=(want["sd15"][0] + extra, *want["sd15"][1:]),
                sd2_inpaint=(want["sd2"][0] + extra, *want["sd2"][1:]),
                sdxl_inpaint=(want["sdxl_base"][0] + extra, *want["sdxl_base"][1:]))
    assert set(want) == set(VARIANTS)
    for variant, (unet_n, te_n, te2_n) in want.items():
        folder = CONFIGS / variant
        with init_empty_weights():
            assert count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))) == unet_n
            assert count(AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))) == 83653863
            if te_n:
                assert count(CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))) == te_n
            if te2_n:
                assert count(CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))) == te2_n


# --- loading through the real path ------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("diffusers")
    torch = pytest.importorskip("torch")
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
    from single_file_helpers import single_file_model, tiny_sd2, tiny_sdxl

    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("single-file")
    ckdir = root / "Stable-diffusion"
    make_tiny(root / "sd15", "sd15")
    sd15 = StableDiffusionPipeline.from_pretrained(root / "sd15")
    single_file_model(sd15, ckdir, "tiny15", pipe_dir=root / "sd15")
    tiny_sdxl(root / "sdxl")
    xl = StableDiffusionXLPipeline.from_pretrained(root / "sdxl")
    single_file_model(xl, ckdir / "xl", "tinyxl", "sdxl", pipe_dir=root / "sdxl")
    make_tiny(root / "sd15-inpaint", "sd15-inpaint")
    inp = StableDiffusionInpaintPipeline.from_pretrained(root / "sd15-inpaint")
    single_file_model(inp, ckdir, "tinyinpaint", pipe_dir=root / "sd15-inpaint")
    tiny_sd2(root / "sd2")
    sd2 = StableDiffusionPipeline.from_pretrained(root / "sd2")
    single_file_model(sd2, ckdir, "tiny2", "sd2", pipe_dir=root / "sd2")
    return {"root": root, "ckdir": ckdir}


@pytest.fixture()
def offline(monkeypatch):
    """No network: HF offline mode, and any socket connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*a, **k):
        raise AssertionError(f"network access attempted: {a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def generate(config, script_opts, model=None):
    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities

    rt = Runtime(capabilities=capabilities(config), grants="default")
    opts = {"steps": 2, "width": 64, "height": 64, "seed": 5, **script_opts}
    if model:
        opts["model"] = model
    out = rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))',
                 args=[opts])
    return out, rt


def pixels(result):
    return np.asarray(result["image"].pixels).astype(int)


@pytest.mark.parametrize("name, folder", [("tiny15", "sd15"), ("xl/tinyxl", "sdxl")])
def test_a_single_file_checkpoint_gives_the_folder_models_image(files, offline, name, folder):
    cfg = ModelConfig(aliases={"folder": str(files["root"] / folder)}, checkpoints_dir=str(files["ckdir"]),
                      default="folder")
    want, _ = generate(cfg, {})
    got, rt = generate(cfg, {}, model=name)
    assert got["model_id"] == name
    assert np.abs(pixels(got) - pixels(want)).max() <= 1
    assert rt.models.loaded()[-1]["path"].endswith(".safetensors")


def test_sd2_is_detected_and_v_prediction_from_the_sidecar_yaml_changes_the_image(files, offline):
    import torch
    from diffusers import StableDiffusionPipeline

    cfg = ModelConfig(checkpoints_dir=str(files["ckdir"]))
    eps, _ = generate(cfg, {}, model="tiny2")
    (files["ckdir"] / "tiny2.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    try:
        v, rt = generate(cfg, {}, model="tiny2")
    finally:
        (files["ckdir"] / "tiny2.yaml").unlink()
    pipe = StableDiffusionPipeline.from_pretrained(files["root"] / "sd2")
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type="v_prediction")
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a red comet", num_inference_steps=2, width=64, height=64, guidance_scale=7.5,
               generator=[torch.Generator("cpu").manual_seed(5)], output_type="np").images[0]
    ref = np.round(ref * 255).astype(int)
    assert np.abs(pixels(v) - ref).max() <= 1
    assert np.abs(pixels(v) - pixels(eps)).max() > 1  # v-prediction really changed the sampling
    from viwoscript.models.resolve import resolve

    (files["ckdir"] / "tiny2.yaml").write_text("parameterization: v\n")
    try:
        assert resolve("tiny2", cfg, [], "t").checkpoint.variant == "sd2_v"
    finally:
        (files["ckdir"] / "tiny2.yaml").unlink()
    assert resolve("tiny2", cfg, [], "t").checkpoint.variant == "sd2"


class Callback:
    """Stands for the objects a Lightning checkpoint pickles beside its weights (weights_only refuses them)."""

    def __init__(self):
        self.monitor = "val/loss"


def test_ckpt_needs_allow_pickle(files, offline, tmp_path):
    import torch
    from safetensors.torch import load_file

    sd = load_file(str(files["ckdir"] / "tiny15.safetensors"))
    torch.save({"state_dict": sd, "global_step": 7}, tmp_path / "old.ckpt")
    import shutil

    shutil.copytree(files["ckdir"] / "tiny15.config", tmp_path / "old.config")
    cfg = ModelConfig(checkpoints_dir=str(tmp_path))
    with pytest.raises(ScriptError, match="allow_pickle = true"):
        generate(cfg, {}, model="old")
    got, _ = generate(cfg.replace(allow_pickle=True), {}, model="old")
    want, _ = generate(ModelConfig(checkpoints_dir=str(files["ckdir"])), {}, model="tiny15")
    assert np.abs(pixels(got) - pixels(want)).max() <= 1
    torch.save({"state_dict": sd, "callbacks": {"ckpt": Callback()}}, tmp_path / "old.ckpt")  # a Lightning-style file
    got, _ = generate(cfg.replace(allow_pickle=True), {}, model="old")
    assert np.abs(pixels(got) - pixels(want)).max() <= 1
    assert not list(tmp_path.glob(".viwo-ckpt-*"))  # the temporary copy is gone


def test_a_checkpoint_shares_the_model_manager(files, offline):
    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities

    rt = Runtime(capabilities=capabilities(ModelConfig(checkpoints_dir=str(files["ckdir"]), default="tiny15")),
                 grants="default")
    first = rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "a comet" (std.arg 0))',
                   args=[{"steps": 2, "width": 64, "height": 64, "seed": 1}])
    rt.run('(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a dog" (std.arg 1))',
           args=[first["image"], {"steps": 2, "seed": 1}])
    (entry,) = rt.models.loaded()
    assert rt.models.loads == 1 and entry["tasks"] == ["img2img", "txt2img"] and entry["bytes"] > 0
    assert first["image"].metadata["model"] == "tiny15" and first["width"] == 64


def test_a_single_file_inpainting_checkpoint_inpaints_as_its_folder(files, offline):
    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.values import Image

    rng = np.random.default_rng(0)
    picture = Image(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    script = '(std.call_method (get_capability "diffusers.inpaint") "inpaint" (std.arg 0) (std.arg 1) "a cat" (std.arg 2))'
    out = {}
    for model in ("folder", "tinyinpaint"):
        cfg = ModelConfig(aliases={"folder": str(files["root"] / "sd15-inpaint")}, checkpoints_dir=str(files["ckdir"]))
        rt = Runtime(capabilities=capabilities(cfg), grants="default")
        out[model] = rt.run(script, args=[picture, Image(mask), {"steps": 2, "seed": 3, "model": model}])
    assert np.abs(pixels(out["folder"]) - pixels(out["tinyinpaint"])).max() <= 1
    assert rt.models.loaded()[-1]["path"].endswith("tinyinpaint.safetensors")
