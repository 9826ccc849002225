"""The SDXL refiner: the base model denoises the first part of the steps, a refiner model the rest.

As A1111's "Refiner" (model, "Switch at"): the base pipeline runs with ``denoising_end = switch`` and
returns latents; the refiner's img2img pipeline continues from them with ``denoising_start = switch``,
the same seeds' generators, the same sampler and step count, and decodes with the *base's* VAE (the
refiner's own VAE is not used, as in A1111 and diffusers' ensemble-of-experts recipe). Any SDXL model can
refine (the SDXL refiner checkpoint, or another SDXL base). Cheap to import.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArgumentError
from .vae import swapped_vae

DEFAULT_SWITCH = 0.8
#: Prompt arguments the refiner reads as text (it has its own text encoder).
TEXT_KEYS = ("prompt", "negative_prompt", "prompt_2", "negative_prompt_2")
#: Arguments of the base call the refiner call repeats.
SHARED_KEYS = ("num_inference_steps", "guidance_scale")


def check_switch(switch: Any, where: str) -> float:
    """A switch fraction strictly between 0 and 1."""
    if switch is None:
        return DEFAULT_SWITCH
    if isinstance(switch, bool) or not isinstance(switch, int | float) or not 0 < switch < 1:
        raise ArgumentError(f"{where}: refiner_switch must be a number between 0 and 1 (exclusive), got {switch!r}",
                            hint="0.8: the base runs the first 80% of the steps, the refiner the rest")
    return float(switch)


def is_refiner(model: Any) -> bool:
    """Whether ``model`` is an SDXL refiner (one text encoder, OpenCLIP bigG): it can only continue other
    models' work (img2img, or as the ``refiner`` of an SDXL base)."""
    import json

    if model.checkpoint is not None:
        return model.checkpoint.variant == "sdxl_refiner"
    if model.family != "sdxl" or not model.path.is_dir():
        return False
    try:
        index = json.loads((model.path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    te = index.get("text_encoder")
    return isinstance(te, list) and bool(te) and te[0] is None


def supports_refiner(pipe: Any) -> bool:
    import inspect

    return "denoising_end" in inspect.signature(type(pipe).__call__).parameters


def refiner_kwargs(kwargs: dict) -> dict:
    """The refiner call's text and shared arguments, from the base call's (before prompt encoding)."""
    return {k: kwargs[k] for k in (*TEXT_KEYS, *SHARED_KEYS) if kwargs.get(k) is not None}


def run_refined(pipe: Any, refiner_pipe: Any, *, switch: float, kwargs: dict, refiner_args: dict, generators: list,
                batch: int, on_step: Any) -> Any:
    """Run the base ``pipe`` up to ``switch`` with ``kwargs``, then ``refiner_pipe`` from there with
    ``refiner_args`` (its prompts, encoded for its own text encoder); returns the refiner's output
    (``output_type="np"``) decoded by the base's VAE."""
    base = pipe(generator=generators, num_images_per_prompt=batch, callback_on_step_end=on_step,
                output_type="latent", denoising_end=switch, **kwargs)
    refiner_pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    rkw = dict(refiner_args)
    with swapped_vae(refiner_pipe, pipe.vae):
        return refiner_pipe(image=base.images, denoising_start=switch, generator=generators,
                            num_images_per_prompt=batch,
                            callback_on_step_end=on_step, output_type="np", **rkw)


__all__ = ["DEFAULT_SWITCH", "check_switch", "is_refiner", "refiner_kwargs", "run_refined", "supports_refiner"]
