"""The options every image-generating method declares (one copy, used by the fake and the real ones).

Cheap to import: no torch, no diffusers.
"""

from __future__ import annotations

from ..models.samplers import SAMPLER_NAMES, SCHEDULE_NAMES, TIMESTEP_SPACINGS
from .base import MAX_SEED, ParamSpec


def sdxl_options() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("prompt_2", "string", None, "Prompt for the second text encoder (SDXL models; default: prompt)"),
        ParamSpec("negative_prompt_2", "string", None, "Negative prompt for the second text encoder (SDXL)"),
    )


def common_options() -> tuple[ParamSpec, ...]:
    """The options every generating method takes."""
    return (
        ParamSpec("negative_prompt", "string", "", "What the image should not show"),
        ParamSpec("steps", "integer", 25, "Denoising steps", min=1, max=1000,
                  aliases=("num_inference_steps",), limit="max_steps"),
        ParamSpec("guidance_scale", "number", 7.5, "How closely to follow the prompt (classifier-free guidance)",
                  min=0, max=50, aliases=("cfg_scale", "cfg")),
        ParamSpec("seed", "integer", None, "Random seed (a fresh one is chosen and returned when absent)",
                  min=0, max=MAX_SEED),
        ParamSpec("model", "string", None, "Model id, alias or folder under the allowed roots (default: the "
                  "host's default model)", aliases=("model_id",), limit="allowed_models"),
        ParamSpec("batch", "integer", 1, "Number of images (seeds seed, seed+1, ...)", min=1, max=64,
                  aliases=("num_images", "num_images_per_prompt", "batch_size"), limit="max_batch"),
        *sdxl_options(),
        ParamSpec("scheduler", "string", None, "Sampler (default: the model's own): ours (dpm++_2m_karras, euler_a, "
                  "...) or A1111's name (\"DPM++ 2M Karras\", \"Euler a\", ...); recorded under A1111's name",
                  choices=SAMPLER_NAMES, aliases=("sampler", "sampler_name")),
        *model_options(),
    )


def model_options() -> tuple[ParamSpec, ...]:
    """Options that change how the model runs (clip skip, sampler schedule, LoRAs, ...). Implementations
    take them as ``**options`` and hand them to ``run_pipeline(..., options=options)``, so adding one here
    needs no change to any method's signature."""
    return (
        ParamSpec("clip_skip", "integer", None, "A1111's clip skip: 1 reads the text encoder's last layer, 2 the "
                  "one before (A1111 \"Clip skip: 2\" = diffusers clip_skip=1); SDXL already reads its "
                  "penultimate layer (default: the model's own)", min=1, max=12),
        ParamSpec("schedule_type", "string", None, "A1111's schedule type: Karras, Exponential, Beta, SGM Uniform "
                  "(default: the sampler's own)", choices=tuple(SCHEDULE_NAMES)),
        ParamSpec("timestep_spacing", "string", None, "How the steps are spread over the noise levels: leading, "
                  "trailing or linspace (default: the model's own)", choices=TIMESTEP_SPACINGS),
        ParamSpec("loras", "array", None, "LoRAs to apply: [[\"name\", weight], ...] or [{\"name\": ..., \"weight\": ...}, ...] (files in "
                  "the host's lora_dir; also <lora:name:weight> in the prompt; a grant's allowed_loras limits them)"),
        ParamSpec("vae", "string", None, "VAE to decode with instead of the model's own: a name in the host's "
                  "vae_dir, a VAE file or AutoencoderKL folder under the allowed roots; \"none\": the model's own "
                  "(default: the host's vaes setting for the model, else its own)"),
        ParamSpec("refiner", "string", None, "SDXL refiner model (alias, checkpoint name, folder): it finishes "
                  "the last part of the steps, decoding with the base's VAE"),
        ParamSpec("refiner_switch", "number", None, "Fraction of the steps the base runs before the refiner "
                  "takes over (A1111's \"Switch at\"; default 0.8)", min=0.01, max=0.99),
        ParamSpec("prediction_type", "string", None, "What the model predicts: epsilon or v_prediction (default: "
                  "the model's own, from its config or the YAML beside a checkpoint)",
                  choices=("epsilon", "v_prediction")),
    )


def size_params(default: int | None = None, what: str = "Image") -> tuple[ParamSpec, ...]:
    doc = "the model's native size: 512 for SD1.5, 1024 for SDXL" if default is None else str(default)
    return (ParamSpec("width", "integer", default, f"{what} width (rounded down to a multiple of 8; default: {doc})",
                      min=64, max=8192, multiple_of=8),
            ParamSpec("height", "integer", default, f"{what} height (rounded down to a multiple of 8; default: {doc})",
                      min=64, max=8192, multiple_of=8))
