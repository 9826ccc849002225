"""Model resolution and configuration: no torch needed (config files only)."""

from __future__ import annotations

import json

import pytest

from viwoscript.errors import ScriptError
from viwoscript.models.config import ModelConfig
from viwoscript.models.resolve import describe, resolve


def _pipeline_dir(path, cls="StableDiffusionPipeline", in_channels=4, sample=64, vae_blocks=4):
    path.mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    (path / "unet").mkdir()
    (path / "unet" / "config.json").write_text(json.dumps({"in_channels": in_channels, "sample_size": sample}))
    (path / "vae").mkdir()
    (path / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [1] * vae_blocks}))
    return path


def test_family_comes_from_model_index_not_the_name(tmp_path):
    # named like an SDXL model, but its config says SD1.5 (and the other way round)
    sd = _pipeline_dir(tmp_path / "my-sdxl-turbo")
    xl = _pipeline_dir(tmp_path / "sd15-ish", "StableDiffusionXLPipeline", sample=128)
    cfg = ModelConfig(aliases={"a": str(sd), "b": str(xl)})
    a = resolve("a", cfg, [], "op")
    b = resolve("b", cfg, [], "op")
    assert (a.family, a.native_size, a.inpaint_unet) == ("sd15", 512, False)
    assert (b.family, b.native_size) == ("sdxl", 1024)
    inp = describe("i", _pipeline_dir(tmp_path / "inp", "StableDiffusionInpaintPipeline", in_channels=9), "pipeline",
                   "op")
    assert inp.inpaint_unet and inp.family == "sd15"


def test_unsupported_pipeline_class_is_refused(tmp_path):
    d = _pipeline_dir(tmp_path / "flux", "FluxPipeline")
    with pytest.raises(ScriptError, match="FluxPipeline"):
        resolve("x", ModelConfig(aliases={"x": str(d)}), [], "op")


def test_missing_model_names_the_id_where_it_looked_and_how_to_configure(tmp_path):
    with pytest.raises(ScriptError) as e:
        resolve("someorg/missing-model", ModelConfig(aliases={"other": str(tmp_path)}), [tmp_path], "gen.op")
    msg, hint = e.value.message if hasattr(e.value, "message") else str(e.value), e.value.hint
    assert "someorg/missing-model" in str(msg)
    assert "Hugging Face cache" in hint and str(tmp_path) in hint and "[models]" in hint


def test_script_paths_only_under_roots(tmp_path):
    root = tmp_path / "root"
    _pipeline_dir(root / "models" / "m1")
    outside = _pipeline_dir(tmp_path / "elsewhere")
    found = resolve("models/m1", ModelConfig(), [root], "op")
    assert found.path == (root / "models" / "m1").resolve()
    with pytest.raises(ScriptError, match="outside the allowed folders"):
        resolve(str(outside), ModelConfig(), [root], "op")
    with pytest.raises(ScriptError, match=r"'\.\.'"):
        resolve("../elsewhere", ModelConfig(), [root], "op")
    # the host's aliases may point anywhere
    assert resolve("e", ModelConfig(aliases={"e": str(outside)}), [root], "op").path == outside.resolve()


def test_controlnet_family_from_its_config(tmp_path):
    for name, extra, fam in (("c1", {}, "sd15"), ("c2", {"addition_embed_type": "text_time"}, "sdxl")):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", **extra}))
        assert resolve(str(d), ModelConfig(), [], "op", kind="controlnet", trusted=True).family == fam
    d = tmp_path / "notcn"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(ScriptError, match="not a ControlNetModel"):
        resolve(str(d), ModelConfig(), [], "op", kind="controlnet", trusted=True)


def test_config_table_and_default_model():
    cfg = ModelConfig.from_table({"sd15": "/m/sd15", "xl": "/m/xl", "device": "cpu", "vae_tiling": True})
    assert cfg.aliases == {"sd15": "/m/sd15", "xl": "/m/xl"} and cfg.device == "cpu" and cfg.vae_tiling
    assert cfg.default_model == "sd15"
    assert ModelConfig.from_table({"a": "/x", "default": "/y"}).default_model == "/y"
    assert not ModelConfig().configured
    with pytest.raises(Exception, match="unknown device"):
        ModelConfig(device="tpu")
