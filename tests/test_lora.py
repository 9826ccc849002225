"""LoRA (viwoscript/models/lora.py) on a tiny random-weight SD1.x model: tiny LoRAs made here in the peft
layout and in kohya's (diffusers and LDM block names) give the image of the plain diffusers + peft call;
the ``<lora:name:weight>`` tag; shared pipelines never leak an adapter; grants and clear errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.errors import ArgumentError, CapabilityError  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.lora import from_prompt, parse_option  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0) (std.arg 1))'
I2I = '(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a cat" (std.arg 1))'
SMALL = {"steps": 2, "seed": 11, "width": 64, "height": 64}


def make_peft_lora(pipe, seed: int) -> dict:
    """A random LoRA on the UNet's attention and the text encoder, in the peft/diffusers layout
    (``unet.…lora_A.weight``, ``text_encoder.…lora_B.weight``)."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    torch.manual_seed(seed)
    unet, te = pipe.unet, pipe.text_encoder
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]), unet, adapter_name="mk")
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]), te,
                            adapter_name="mk")
    out = {f"unet.{k}": v.clone() for k, v in get_peft_model_state_dict(unet, adapter_name="mk").items()}
    out |= {f"text_encoder.{k}": v.clone() for k, v in get_peft_model_state_dict(te, adapter_name="mk").items()}
    return out


def to_kohya(state: dict, *, ldm: bool = False) -> dict:
    """The same LoRA in kohya's layout (``lora_unet_…lora_down.weight`` + ``.alpha``), optionally with the
    original LDM block names of SD1.x (``input_blocks_3_1_…``) for the tiny UNet (one layer per block)."""
    out = {}
    for key, value in state.items():
        module, ab = key.rsplit(".lora_", 1)
        part, rest = module.split(".", 1)
        if part == "unet":
            if ldm:
                rest = re.sub(r"^down_blocks\.(\d+)\.attentions\.(\d+)\.",
                              lambda m: f"input_blocks.{1 + int(m[1]) * 2 + int(m[2])}.1.", rest)
                rest = re.sub(r"^up_blocks\.(\d+)\.attentions\.(\d+)\.",
                              lambda m: f"output_blocks.{int(m[1]) * 3 + int(m[2])}.1.", rest)
                rest = re.sub(r"^mid_block\.attentions\.0\.", "middle_block.1.", rest)
            name = "lora_unet_" + rest.replace(".", "_")
        else:
            name = "lora_te_" + ("" if rest.startswith("text_model.") else "text_model_") + rest.replace(".", "_")
        down = ab.startswith("A")
        out[f"{name}.lora_{'down' if down else 'up'}.weight"] = value.contiguous()
        if down:
            out[f"{name}.alpha"] = torch.tensor(float(value.shape[0]))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny SD1.x model and a LoRA folder: ``style`` (peft), ``style_kohya`` and ``style_ldm`` (the same
    weights in kohya layouts), ``other`` (another peft LoRA, in a sub-folder)."""
    import diffusers
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lora")
    make_tiny(root / "sd15", "sd15")
    lora_dir = root / "Lora"
    (lora_dir / "sub").mkdir(parents=True)
    scratch = diffusers.StableDiffusionPipeline.from_pretrained(root / "sd15")
    style = make_peft_lora(scratch, 1)
    scratch = diffusers.StableDiffusionPipeline.from_pretrained(root / "sd15")
    other = make_peft_lora(scratch, 2)
    save_file(style, lora_dir / "style.safetensors")
    save_file(to_kohya(style), lora_dir / "style_kohya.safetensors")
    save_file(to_kohya(style, ldm=True), lora_dir / "style_ldm.safetensors")
    save_file(other, lora_dir / "sub" / "other.safetensors")
    config = ModelConfig(aliases={"tiny": str(root / "sd15")}, lora_dir=str(lora_dir), cache_dir=str(root / "cache"))
    return root, config


def make_rt(config, manager=None, grants="default"):
    rt = Runtime(capabilities=capabilities(config), grants=grants)
    rt.models = manager or ModelManager()
    return rt


def reference(root, loras: list[tuple[str, float]], prompt="a cat") -> np.ndarray:
    """The plain diffusers + peft call: a fresh pipeline, load_lora_weights, set_adapters, the same seed."""
    import diffusers

    from viwoscript.models.images import to_uint8

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(root / "sd15", safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    for i, (name, _) in enumerate(loras):
        pipe.load_lora_weights(root / "Lora", weight_name=f"{name}.safetensors", adapter_name=f"a{i}")
    if loras:
        pipe.set_adapters([f"a{i}" for i in range(len(loras))], [w for _, w in loras])
    out = pipe(prompt, num_inference_steps=SMALL["steps"], width=64, height=64, guidance_scale=7.5,
               generator=[torch.Generator("cpu").manual_seed(SMALL["seed"])], output_type="np")
    return to_uint8(out.images)[0]


def test_peft_and_kohya_loras_give_the_image_of_diffusers_with_peft(world):
    root, config = world
    rt = make_rt(config)
    base = rt.run(GEN, args=["a cat", SMALL])["image"].pixels
    want = reference(root, [("style", 0.8)])
    assert np.abs(want.astype(int) - base.astype(int)).max() > 8  # the LoRA changes the image
    for name in ("style", "style_kohya", "style_ldm"):
        r = rt.run(GEN, args=["a cat", {**SMALL, "loras": [[name, 0.8]]}])
        got = r["image"].pixels
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name
        (meta,) = r["image"].metadata["loras"]
        assert (meta["name"], meta["weight"], len(meta["hash"])) == (name, 0.8, 12)
    # one file, one adapter per base, whatever the layout's name
    (entry,) = rt.models._entries.values()
    assert len(entry.adapters) == 3


def test_the_prompt_tag_two_loras_and_the_base_after_them(world):
    root, config = world
    rt = make_rt(config)
    base = rt.run(GEN, args=["a cat", SMALL])["image"].pixels
    r = rt.run(GEN, args=["a cat <lora:style:0.8>", SMALL])
    assert np.abs(r["image"].pixels.astype(int) - reference(root, [("style", 0.8)]).astype(int)).max() <= 1
    assert r["image"].metadata["prompt"] == "a cat <lora:style:0.8>"  # recorded as written, as A1111 does
    both = rt.run(GEN, args=["a cat <lora:other:0.5>", {**SMALL, "loras": [{"name": "style", "weight": 0.8}]}])
    assert [m["name"] for m in both["image"].metadata["loras"]] == ["style", "other"]
    want = reference(root, [("style", 0.8), ("sub/other", 0.5)])
    assert np.abs(both["image"].pixels.astype(int) - want.astype(int)).max() <= 1
    # a call without LoRA after calls with them: the base image to the bit, also on the img2img sibling
    assert np.array_equal(rt.run(GEN, args=["a cat", SMALL])["image"].pixels, base)
    from viwoscript.values import Image

    init = Image(np.full((64, 64, 3), 120, np.uint8))
    plain = rt.run(I2I, args=[init, {"steps": 2, "seed": 3}])["image"].pixels
    rt.run(I2I, args=[init, {"steps": 2, "seed": 3, "loras": [["style", 1]]}])
    assert np.array_equal(rt.run(I2I, args=[init, {"steps": 2, "seed": 3}])["image"].pixels, plain)
    assert np.array_equal(rt.run(GEN, args=["a cat", SMALL])["image"].pixels, base)


def test_grants_missing_files_and_unconfigured_folders_are_clear_errors(world, tmp_path):
    root, config = world
    rt = make_rt(config, grants=[{"type": "diffusers.generate", "params": {"allowed_loras": ["other"]}}])
    with pytest.raises(CapabilityError, match="LoRA 'style' is not allowed by this grant's allowed_loras"):
        rt.run(GEN, args=["a cat <lora:style:1>", SMALL])
    rt = make_rt(config)
    with pytest.raises(CapabilityError, match="LoRA 'nope' not found in") as e:
        rt.run(GEN, args=["a cat", {**SMALL, "loras": [["nope", 1]]}])
    assert "lora_dir" in e.value.hint and "style" in e.value.hint
    # a LoRA for another family (its shapes do not fit): a clear error, and the model stays clean
    from safetensors.torch import save_file

    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    save_file({f"{key}.lora_A.weight": torch.ones(4, 2048), f"{key}.lora_B.weight": torch.ones(16, 4)},
              root / "Lora" / "xl_only.safetensors")
    base = rt.run(GEN, args=["a cat", SMALL])["image"].pixels
    with pytest.raises(CapabilityError, match="LoRA 'xl_only' .* cannot be applied to a Stable Diffusion 1.x/2.x") as e:
        rt.run(GEN, args=["a cat <lora:xl_only:1>", SMALL])
    assert "model family" in e.value.hint
    assert np.array_equal(rt.run(GEN, args=["a cat", SMALL])["image"].pixels, base)
    rt = make_rt(config.replace(lora_dir=None))
    with pytest.raises(CapabilityError, match="no LoRA folder is configured") as e:
        rt.run(GEN, args=["a cat <lora:style>", SMALL])
    assert "[models] lora_dir" in e.value.hint


def test_the_option_and_tag_forms():
    assert [(r.name, r.weight, r.unet) for r in parse_option([["a", 0.5], {"name": "b"}, "c", ["d", 1, 0.2]], "t")] \
        == [("a", 0.5, 0.5), ("b", 1.0, 1.0), ("c", 1.0, 1.0), ("d", 1.0, 0.2)]
    text, found = from_prompt("a <lora:x:0.7> cat, <lora:y> <lora:z:1:unet=0.3> <hypernet:h:1>", "t")
    assert text == "a  cat,   <hypernet:h:1>"
    assert [(r.name, r.weight, r.unet, r.source) for r in found] == [("x", 0.7, 0.7, "prompt"),
                                                                      ("y", 1.0, 1.0, "prompt"),
                                                                      ("z", 1.0, 0.3, "prompt")]
    with pytest.raises(ArgumentError, match="loras must be a list"):
        parse_option("a", "t")
    with pytest.raises(ArgumentError, match="LoRA name"):
        parse_option([["../x", 1]], "t")
    with pytest.raises(ArgumentError, match="must be a number"):
        from_prompt("<lora:x:lots>", "t")


def test_adapters_switch_per_call_and_the_least_recently_used_go(monkeypatch, tmp_path):
    from viwoscript.models import lora

    class Pipe:
        _lora_loadable_modules = ("unet", "text_encoder")
        unet = text_encoder = object()

        def __init__(self):
            self.calls = []

        def load_lora_weights(self, state, adapter_name):
            self.calls.append(("load", adapter_name))

        def set_adapters(self, names, weights):
            self.calls.append(("set", names, weights))

        def disable_lora(self):
            self.calls.append(("disable",))

        def delete_adapters(self, name):
            self.calls.append(("delete", name))

    monkeypatch.setattr(lora, "_state_dict", lambda f: {})
    monkeypatch.setattr(lora, "MAX_ADAPTERS", 2)

    def file(name, w=1.0, uw=None):
        return lora.LoraFile(name, tmp_path / f"{name}.safetensors", w, w if uw is None else uw, "h", name * 8)

    pipe, loaded = Pipe(), {}
    lora.activate(pipe, loaded, [])
    assert pipe.calls == []  # nothing ever loaded: nothing to switch off
    lora.activate(pipe, loaded, [file("a", 0.5), file("b", 1.0, 0.25)])
    assert pipe.calls == [("load", "lora_aaaaaaaa"), ("load", "lora_bbbbbbbb"),
                          ("set", ["lora_aaaaaaaa", "lora_bbbbbbbb"], [0.5, {"unet": 0.25, "text_encoder": 1.0}])]
    pipe.calls.clear()
    lora.activate(pipe, loaded, [])
    assert pipe.calls == [("disable",)]
    pipe.calls.clear()
    lora.activate(pipe, loaded, [file("c")])  # a third adapter: the least recently used one goes
    assert pipe.calls == [("load", "lora_cccccccc"), ("delete", "lora_aaaaaaaa"), ("set", ["lora_cccccccc"], [1.0])]
    assert list(loaded) == ["lora_bbbbbbbb", "lora_cccccccc"]


@pytest.mark.slow
def test_an_sdxl_lora_on_both_text_encoders_and_the_unet(tmp_path):
    import diffusers
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    make_tiny(tmp_path / "xl", "sdxl")
    (tmp_path / "Lora").mkdir()
    scratch = diffusers.StableDiffusionXLPipeline.from_pretrained(tmp_path / "xl")
    torch.manual_seed(0)
    state = {}
    for comp, targets in (("unet", ["to_q", "to_k", "to_v", "to_out.0"]), ("text_encoder", ["q_proj", "v_proj"]),
                          ("text_encoder_2", ["q_proj", "v_proj"])):
        module = getattr(scratch, comp)
        inject_adapter_in_model(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False, target_modules=targets),
                                module, adapter_name="x")
        state |= {f"{comp}.{k}": v.clone() for k, v in get_peft_model_state_dict(module, adapter_name="x").items()}
    save_file(state, tmp_path / "Lora" / "xl.safetensors")
    config = ModelConfig(aliases={"xl": str(tmp_path / "xl")}, lora_dir=str(tmp_path / "Lora"),
                         cache_dir=str(tmp_path / "cache"))
    rt = make_rt(config)
    base = rt.run(GEN, args=["a cat", SMALL])["image"].pixels
    got = rt.run(GEN, args=["a cat <lora:xl:0.9>", SMALL])["image"].pixels

    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(tmp_path / "xl")
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(tmp_path / "Lora", weight_name="xl.safetensors", adapter_name="a")
    ref.set_adapters(["a"], [0.9])
    from viwoscript.models.images import to_uint8

    want = to_uint8(ref("a cat", num_inference_steps=2, width=64, height=64, guidance_scale=7.5, output_type="np",
                        generator=[torch.Generator("cpu").manual_seed(SMALL["seed"])]).images)[0]
    assert np.abs(want.astype(int) - base.astype(int)).max() > 8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(rt.run(GEN, args=["a cat", SMALL])["image"].pixels, base)


def test_lora_names_as_models_list_shows_them_find_the_file(tmp_path):
    """`viwo models list` shows LoRAs with their suffix; that name, the bare name and the file name of one in a
    sub-folder all find the same file (a .pt only with allow_pickle)."""
    from viwoscript.models.lora import _candidates

    (tmp_path / "styles").mkdir()
    for rel in ("ink.safetensors", "styles/oil.safetensors", "old.pt"):
        (tmp_path / rel).write_bytes(b"x")
    safe = _candidates(tmp_path, False)
    assert safe["ink"] == safe["ink.safetensors"] == tmp_path / "ink.safetensors"
    assert safe["styles/oil"] == safe["oil"] == safe["styles/oil.safetensors"] == safe["oil.safetensors"]
    assert "old" not in safe and "old.pt" not in safe
    assert _candidates(tmp_path, True)["old.pt"] == tmp_path / "old.pt"
