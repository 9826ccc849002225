"""A1111 metadata written exactly as A1111 writes it (golden), its parameters read robustly, and A1111 images
replayed: `viwo run a1111.png` builds the equivalent script, prints it with --show-script, runs it with the
same seed, size, steps and sampler, and names what to configure when a model or LoRA is missing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from viwoscript import __version__
from viwoscript.cli import cli
from viwoscript.io.metadata import a1111_parameters, parse_a1111

GOLDEN = (
    "a (red:1.2) fox <lora:ink:0.8>\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, "
    "Model hash: 6ce0161689, Model: dreamshaper_8, Clip skip: 2, Lora hashes: \"ink: 0123456789ab\", "
    "TI hashes: \"easynegative: c74b4e810b03\", Capability: diffusers.generate, Method: textToImage, "
    f"Version: viwoscript {__version__}")


def test_the_parameters_text_is_a1111_s_golden():
    meta = {"prompt": "a (red:1.2) fox <lora:ink:0.8>", "negative_prompt": "blurry, lowres", "steps": 24,
            "scheduler": "dpm++_2m_karras", "sampler": "DPM++ 2M", "schedule_type": "Karras",
            "guidance_scale": 6.5, "seed": 1234, "width": 512, "height": 768, "model_hash": "6ce0161689",
            "model": "dreamshaper_8", "clip_skip": 2, "loras": [{"name": "ink", "weight": 0.8, "hash": "0123456789ab"}],
            "ti_hashes": {"easynegative": "c74b4e810b03"}, "capability": "diffusers.generate",
            "method": "textToImage"}
    assert a1111_parameters(meta) == GOLDEN
    # and it reads back
    back = parse_a1111(GOLDEN)
    assert (back["prompt"], back["negative_prompt"], back["steps"], back["sampler"], back["cfg_scale"],
            back["seed"], back["size"], back["model_hash"]) == (
        "a (red:1.2) fox <lora:ink:0.8>", "blurry, lowres", 24, "DPM++ 2M", 6.5, 1234, [512, 768], "6ce0161689")
    assert back["fields"]["Lora hashes"] == "ink: 0123456789ab" and back["fields"]["Clip skip"] == "2"
    # Clip skip 1 (the last layer) is A1111's default and not written
    assert "Clip skip" not in a1111_parameters({**meta, "clip_skip": 1})
    # a LoRA from the `loras` option becomes a tag (A1111 reads LoRAs from the prompt's tags only)
    two = [*meta["loras"], {"name": "detail", "weight": 0.5, "unet_weight": 0.25, "hash": "ba9876543210"}]
    text = a1111_parameters({**meta, "loras": two})
    assert text.splitlines()[0] == "a (red:1.2) fox <lora:ink:0.8> <lora:detail:0.5:0.25>"
    assert a1111_parameters({**meta, "prompt": "", "loras": two[:1]}).splitlines()[0] == "<lora:ink:0.8>"


def test_a1111_parameters_read_robustly():
    text = ('masterpiece, a castle\non a hill, "quoted", key: value\n'
            "Negative prompt: ugly,\nbad hands\n"
            'Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 640x448, Lora hashes: "a: 1a2b3c4d5e6f, '
            'b: 0a0b0c0d0e0f", Hires prompt: "x, \\"y\\"", Version: v1.10.1')
    p = parse_a1111(text)
    assert p["prompt"] == 'masterpiece, a castle\non a hill, "quoted", key: value'
    assert p["negative_prompt"] == "ugly,\nbad hands"
    assert (p["steps"], p["sampler"], p["cfg_scale"], p["seed"], p["size"]) == (30, "Euler a", 7, 42, [640, 448])
    assert p["fields"]["Lora hashes"] == "a: 1a2b3c4d5e6f, b: 0a0b0c0d0e0f"
    assert p["fields"]["Hires prompt"] == 'x, "y"'
    # missing fields, no negative prompt
    p = parse_a1111("just a prompt\nSteps: 5, Seed: 3")
    assert (p["prompt"], p["negative_prompt"], p["steps"], p["seed"]) == ("just a prompt", "", 5, 3)
    assert "sampler" not in p and "size" not in p


# --- replay -------------------------------------------------------------------------------------------

def a1111_png(path, parameters: str):
    """A PNG carrying only A1111's ``parameters`` text chunk, as A1111 saves it."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (8, 8), (40, 90, 160)).save(path, pnginfo=info)
    return str(path)


@pytest.fixture
def models(tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    import torch

    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    make_tiny(tmp_path / "models" / "tiny_sd", "sd15")
    (tmp_path / "Lora").mkdir()
    return tmp_path


def write_config(tmp_path, lora_dir=True):
    lines = ["[models]", f'tiny_sd = "{tmp_path / "models" / "tiny_sd"}"', f'cache_dir = "{tmp_path / "cache"}"']
    if lora_dir:
        lines.append(f'lora_dir = "{tmp_path / "Lora"}"')
    lines.append(f'[paths]\nout = "{tmp_path / "out"}"')
    (tmp_path / "viwo.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(tmp_path / "viwo.toml")


def test_viwo_run_replays_an_a1111_image(models, monkeypatch):
    import diffusers

    calls = []
    original = diffusers.StableDiffusionPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append({"steps": kwargs["num_inference_steps"], "width": kwargs["width"], "height": kwargs["height"],
                      "seed": kwargs["generator"][0].initial_seed(), "cfg": kwargs["guidance_scale"],
                      "scheduler": type(self.scheduler).__name__, "karras": self.scheduler.config.use_karras_sigmas})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "__call__", spy)
    png = a1111_png(models / "a1111.png", "a lighthouse, at dusk\nNegative prompt: fog\n"
                    "Steps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 987, Size: 72x64, "
                    "Model hash: 0000000000, Model: tiny_sd, Hires upscale: 2, Version: v1.10.1")
    conf = write_config(models)
    r = CliRunner().invoke(cli, ["run", png, "--show-script", "--config", conf, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert '"textToImage"' in r.stdout and '"seed": 987' in r.stdout and '"scheduler": "DPM++ 2M"' in r.stdout
    assert "not replayed: Hires upscale" in r.stderr
    (call,) = calls
    assert call == {"steps": 3, "width": 72, "height": 64, "seed": 987, "cfg": 5,
                    "scheduler": "DPMSolverMultistepScheduler", "karras": True}
    # the prompts reach it as A1111 conditioning (embeddings); the saved image records them as text
    (saved,) = (models / "out").glob("*.png")
    from viwoscript.io.metadata import read_metadata

    info = read_metadata(saved)
    assert (info["prompt"], info["negative_prompt"], info["seed"], info["steps"]) == (
        "a lighthouse, at dusk", "fog", 987, 3)


def test_replay_names_what_to_configure(models):
    from viwoscript.errors import ScriptError
    from viwoscript.io.metadata import read_metadata
    from viwoscript.models import ModelConfig
    from viwoscript.models.a1111 import replay_script

    config = ModelConfig(aliases={"tiny_sd": str(models / "models" / "tiny_sd")}, lora_dir=str(models / "Lora"),
                         cache_dir=str(models / "cache"))
    png = a1111_png(models / "m.png", "x\nSteps: 3, Seed: 1, Model hash: abcdef0123, Model: realvis_v5")
    with pytest.raises(ScriptError, match=r"'realvis_v5' \(hash abcdef0123\) is not among the configured") as e:
        replay_script(read_metadata(png), config, "m.png")
    assert "checkpoints_dir" in e.value.hint and "realvis_v5" in e.value.hint
    png = a1111_png(models / "l.png", 'x <lora:detail:0.5>\nSteps: 3, Seed: 1, Lora hashes: "detail: 1234567890ab"')
    with pytest.raises(ScriptError, match=r"LoRA 'detail' \(hash 1234567890ab\), which is not in") as e:
        replay_script(read_metadata(png), config, "l.png")
    assert "lora_dir" in e.value.hint
    with pytest.raises(ScriptError, match="no LoRA folder is configured"):
        replay_script(read_metadata(png), config.replace(lora_dir=None), "l.png")


def test_replay_finds_a_renamed_lora_by_its_hash(models):
    from safetensors.torch import save_file

    from viwoscript.io.metadata import read_metadata
    from viwoscript.models import ModelConfig
    from viwoscript.models.a1111 import replay_script
    from viwoscript.models.hashes import HashCache

    torch = pytest.importorskip("torch")
    save_file({"lora_unet_x.lora_down.weight": torch.ones(2, 2)}, models / "Lora" / "renamed.safetensors")
    h = HashCache(models / "cache" / "h.json").hashes(models / "Lora" / "renamed.safetensors").addnet_short
    config = ModelConfig(aliases={"tiny_sd": str(models / "models" / "tiny_sd")}, lora_dir=str(models / "Lora"),
                         cache_dir=str(models / "cache"))
    png = a1111_png(models / "l.png", f'x <lora:original:0.5>, y\nSteps: 3, Sampler: DPM++ 2M Karras, Seed: 1, '
                    f'Model: tiny_sd, Lora hashes: "original: {h}"')
    script, notes = replay_script(read_metadata(png), config, "l.png")
    assert script[3] == "x <lora:renamed:0.5>, y"
    assert script[4] == {"steps": 3, "seed": 1, "scheduler": "DPM++ 2M Karras", "model": "tiny_sd"}
    assert notes == []


def test_the_model_is_found_by_its_hash_among_checkpoints_and_aliases(tmp_path):
    from viwoscript.errors import ScriptError
    from viwoscript.models import ModelConfig
    from viwoscript.models.a1111 import find_model
    from viwoscript.models.hashes import HashCache

    ckpts = tmp_path / "Stable-diffusion"
    ckpts.mkdir()
    (ckpts / "dreamshaper_8.safetensors").write_bytes(b"\x02" * 4096)
    (ckpts / "other.safetensors").write_bytes(b"\x01" * 4096)
    (tmp_path / "aliased.safetensors").write_bytes(b"\x03" * 4096)
    config = ModelConfig(checkpoints_dir=str(ckpts), aliases={"mine": str(tmp_path / "aliased.safetensors")},
                         cache_dir=str(tmp_path / "cache"))
    cache = HashCache.for_config(config)
    h = cache.hashes(ckpts / "dreamshaper_8.safetensors").model
    # the hash wins over a name from another install; the name alone finds the file
    assert find_model("dreamshaper_8_renamed", h, config, "t") == "dreamshaper_8"
    assert find_model("other", None, config, "t") == "other"
    assert find_model("x", cache.hashes(tmp_path / "aliased.safetensors").model, config, "t") == "mine"
    assert find_model("aliased", None, config, "t") == "mine"  # an alias whose file has that name
    assert find_model(None, None, config, "t") is None  # the image names no model: the default
    (ckpts / "sdxl").mkdir()
    (ckpts / "sdxl" / "juggernautXL_v9.safetensors").write_bytes(b"\x04" * 4096)
    # A1111 writes the name without its subfolder; another version of the file (hash differs) still runs
    assert find_model("juggernautXL_v9", "ffffffffff", config, "t") == "sdxl/juggernautXL_v9"
    assert find_model("JuggernautXL_v9", None, config, "t") == "sdxl/juggernautXL_v9"
    # a .ckpt is found (by hash too): running it without allow_pickle is then the loader's clear error
    (ckpts / "old_model.ckpt").write_bytes(b"\x05" * 4096)
    assert find_model("old_model", None, config, "t") == "old_model"
    assert find_model("x", cache.hashes(ckpts / "old_model.ckpt").model, config, "t") == "old_model"
    with pytest.raises(ScriptError, match="not among the configured models"):
        find_model("missing", "ffffffffff", config, "t")


def test_a_real_image_records_lora_and_ti_hashes_and_clip_skip(models):
    import torch
    from safetensors.torch import save_file

    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.models import ModelConfig
    from viwoscript.models.hashes import HashCache

    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.lora_down.weight": torch.ones(2, 16) * 0.1, f"{key}.lora_up.weight": torch.ones(16, 2) * 0.1,
               f"{key}.alpha": torch.tensor(2.0)}, models / "Lora" / "ink.safetensors")
    (models / "emb").mkdir()
    save_file({"emb_params": torch.randn(2, 8)}, models / "emb" / "zqx.safetensors")
    config = ModelConfig(aliases={"tiny_sd": str(models / "models" / "tiny_sd")}, lora_dir=str(models / "Lora"),
                         embeddings_dir=str(models / "emb"), cache_dir=str(models / "cache"))
    rt = Runtime(capabilities=capabilities(config), grants="default")
    gen = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a zqx fox <lora:ink:0.7>" (std.arg 0))'
    r = rt.run(gen, args=[{"steps": 1, "seed": 4, "width": 64, "height": 64, "clip_skip": 2,
                           "scheduler": "DPM++ 2M Karras"}])
    cache = HashCache.for_config(config)
    lora_hash = cache.hashes(models / "Lora" / "ink.safetensors").addnet_short
    ti_hash = cache.hashes(models / "emb" / "zqx.safetensors").short
    text = a1111_parameters(r["image"].metadata)
    assert text.startswith("a zqx fox <lora:ink:0.7>\nSteps: 1, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: "
                           "7.5, Seed: 4, Size: 64x64, Model: tiny_sd, Clip skip: 2, "
                           f'Lora hashes: "ink: {lora_hash}", TI hashes: "zqx: {ti_hash}", ')


def test_replay_picks_the_vae_by_name_or_hash_and_notes_a_missing_one(tmp_path):
    from viwoscript.io.metadata import read_metadata
    from viwoscript.models import ModelConfig
    from viwoscript.models.a1111 import replay_script
    from viwoscript.models.hashes import HashCache

    (tmp_path / "VAE").mkdir()
    (tmp_path / "VAE" / "mse.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}vae")
    h = HashCache(tmp_path / "cache" / "model-hashes.json").hashes(tmp_path / "VAE" / "mse.safetensors").model
    config = ModelConfig(vae_dir=str(tmp_path / "VAE"), cache_dir=str(tmp_path / "cache"))
    for text, want in (("VAE: mse.safetensors", "mse.safetensors"), (f"VAE hash: {h}, VAE: old-name", "mse")):
        png = a1111_png(tmp_path / "v.png", f"x\nSteps: 3, Seed: 1, {text}")
        script, notes = replay_script(read_metadata(png), config, "v.png")
        assert script[4]["vae"] == want and notes == []
    png = a1111_png(tmp_path / "v.png", "x\nSteps: 3, Seed: 1, VAE hash: 0123456789, VAE: gone")
    script, notes = replay_script(read_metadata(png), config, "v.png")
    assert "vae" not in script[4] and notes and "VAE 'gone' is not in [models] vae_dir" in notes[0]
