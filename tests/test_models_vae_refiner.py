"""VAE override (per model, per call) and the SDXL refiner, through the real capability path on tiny models.

Each test fails when the feature does nothing: the image must equal a plain diffusers run that really uses
the other VAE / the refiner, and differ from the run without it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.errors import ViwoError  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a red comet" (std.arg 0))'
I2I = '(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a dog" (std.arg 1))'
BASE = {"steps": 4, "width": 64, "height": 64, "seed": 5}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file
    from single_file_helpers import tiny_sdxl, vae_to_ldm

    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vae-refiner")
    make_tiny(root / "sd15", "sd15")
    make_tiny(root / "other", "sd15", seed=1)  # its VAE is the override
    other = AutoencoderKL.from_pretrained(root / "other" / "vae")
    vae_dir = root / "VAE"
    vae_dir.mkdir()
    save_file({k: v.contiguous() for k, v in vae_to_ldm(other.state_dict(), dict(other.config), prefix="").items()},
              str(vae_dir / "mse.safetensors"))  # an A1111-style single-file VAE (original key layout)
    tiny_sdxl(root / "xl")
    tiny_sdxl(root / "refiner", refiner=True, seed=1)
    return root


def run(config, script=GEN, args=None, manager=None):
    rt = Runtime(capabilities=capabilities(config), grants="default")
    if manager is not None:
        rt.models = manager
    return rt.run(script, args=args or [dict(BASE)])


def px(result):
    return result["image"].pixels.astype(int)


def reference_sd15(models, vae_folder=None):
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(models / "sd15", safety_checker=None, requires_safety_checker=False)
    if vae_folder is not None:
        pipe.vae = AutoencoderKL.from_pretrained(vae_folder)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a red comet", num_inference_steps=4, width=64, height=64, guidance_scale=7.5,
               generator=[torch.Generator("cpu").manual_seed(5)], output_type="np").images[0]
    return np.round(out * 255).astype(int)


def test_vae_per_call_per_model_and_none(models):
    mgr = ModelManager()
    config = ModelConfig(aliases={"tiny": str(models / "sd15")}, default="tiny", vae_dir=str(models / "VAE"))
    own = run(config, manager=mgr)
    called = run(config, args=[{**BASE, "vae": "mse"}], manager=mgr)
    want = reference_sd15(models, models / "other" / "vae")
    assert np.abs(px(called) - want).max() <= 1
    assert np.abs(px(own) - reference_sd15(models)).max() <= 1
    assert np.abs(px(called) - px(own)).max() > 1  # the override really decoded the picture
    assert called["image"].metadata["vae"] == "mse" and len(called["image"].metadata["vae_hash"]) == 10
    from viwoscript.io.a1111 import a1111_parameters

    assert f"VAE hash: {called['image'].metadata['vae_hash']}, VAE: mse" in a1111_parameters(called["image"].metadata)
    again = run(config, manager=mgr)  # the shared pipeline kept its own VAE
    assert np.array_equal(px(again), px(own))
    per_model = config.replace(vaes={"tiny": "mse.safetensors"})
    assert np.array_equal(px(run(per_model, manager=mgr)), px(called))
    assert np.array_equal(px(run(per_model, args=[{**BASE, "vae": "none"}], manager=mgr)), px(own))
    folder = config.replace(vaes={"tiny": str(models / "other" / "vae")})  # a diffusers AutoencoderKL folder
    assert np.abs(px(run(folder, manager=mgr)) - want).max() <= 1
    assert sum(1 for e in mgr.loaded() if e["kind"] == "vae") == 2  # each VAE loaded once, held by the manager


def test_vae_errors(models):
    config = ModelConfig(aliases={"tiny": str(models / "sd15")}, default="tiny", vae_dir=str(models / "VAE"))
    with pytest.raises(ViwoError, match="VAE 'nope' not found") as info:
        run(config, args=[{**BASE, "vae": "nope"}])
    assert "vae_dir" in info.value.hint
    with pytest.raises(ViwoError, match="not found"):
        run(config, args=[{**BASE, "vae": str(models / "other" / "vae")}])  # a script's path outside its roots


def reference_refined(models, switch=0.8):
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    base = StableDiffusionXLPipeline.from_pretrained(models / "xl")
    ref = StableDiffusionXLImg2ImgPipeline.from_pretrained(models / "refiner", vae=base.vae)  # the base's VAE
    for p in (base, ref):
        p.set_progress_bar_config(disable=True)
    gens = [torch.Generator("cpu").manual_seed(5)]
    latents = base("a red comet", num_inference_steps=4, width=64, height=64, guidance_scale=7.5, generator=gens,
                   denoising_end=switch, output_type="latent").images
    out = ref("a red comet", image=latents, num_inference_steps=4, guidance_scale=7.5, denoising_start=switch,
              generator=gens, output_type="np").images[0]
    return np.round(out * 255).astype(int)


def test_the_refiner_finishes_the_base_picture(models):
    config = ModelConfig(aliases={"xl": str(models / "xl"), "refiner": str(models / "refiner")}, default="xl")
    mgr = ModelManager()
    plain = run(config, manager=mgr)
    refined = run(config, args=[{**BASE, "refiner": "refiner", "refiner_switch": 0.5}], manager=mgr)
    assert np.abs(px(refined) - reference_refined(models, 0.5)).max() <= 1
    assert np.abs(px(refined) - px(plain)).max() > 1
    meta = refined["image"].metadata
    assert meta["refiner"] == "refiner" and meta["refiner_switch"] == 0.5
    from viwoscript.io.a1111 import a1111_parameters

    text = a1111_parameters(meta)
    assert "Refiner: refiner, Refiner switch at: 0.5" in text, text  # as A1111 writes it
    default_switch = run(config, args=[{**BASE, "refiner": "refiner"}], manager=mgr)
    assert np.abs(px(default_switch) - reference_refined(models, 0.8)).max() <= 1
    assert np.array_equal(px(run(config, manager=mgr)), px(plain))  # nothing leaked into the next call


def test_refiner_errors(models):
    config = ModelConfig(aliases={"tiny": str(models / "sd15"), "xl": str(models / "xl"),
                                  "refiner": str(models / "refiner")}, default="tiny")
    with pytest.raises(ViwoError, match="refiner.*SDXL"):
        run(config, args=[{**BASE, "refiner": "refiner"}])
    with pytest.raises(ViwoError, match="is an SDXL refiner: it only finishes"):
        run(config, args=[{**BASE, "model": "refiner"}])
    with pytest.raises(ViwoError, match="refiner_switch"):
        run(config, args=[{**BASE, "model": "xl", "refiner": "refiner", "refiner_switch": 1.5}])
