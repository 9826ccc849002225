"""What the diffusers-backed capabilities share: configuration, model lookup, checks, running, results.

:class:`DiffusersCapability` is the base of ``diffusers.generate``, ``diffusers.inpaint`` and
``controlnet.generate``. It is unavailable until a model is configured (the fake stands in until then);
:meth:`DiffusersCapability.configured` makes a configured subclass for ``Runtime(capabilities=...)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..capabilities.base import MAX_SEED, MODEL_LIMITS, Capability, ParamSpec
from ..errors import CapabilityError
from .config import ModelConfig
from .manager import SCHEDULERS, quiet
from .resolve import ResolvedModel, resolve

NO_MODEL = ("no model configured: set a default model under [models] in viwo.toml (default = \"folder or "
            "org/name\"), or pass viwoscript.models.capabilities(...) to Runtime(capabilities=...)")


def sdxl_options() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("prompt_2", "string", None, "Prompt for the second text encoder (SDXL models; default: prompt)"),
        ParamSpec("negative_prompt_2", "string", None, "Negative prompt for the second text encoder (SDXL)"),
    )


def common_options(*, native_size: bool = False) -> tuple[ParamSpec, ...]:
    """The options every generating method takes (same names as the fake's, plus the real extras)."""
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
        ParamSpec("scheduler", "string", None, "Sampler (default: the model's own)", choices=tuple(SCHEDULERS),
                  aliases=("sampler",)),
    )


def size_params(default: int | None = None, what: str = "Image") -> tuple[ParamSpec, ...]:
    doc = "the model's native size: 512 for SD1.5, 1024 for SDXL" if default is None else str(default)
    return (ParamSpec("width", "integer", default, f"{what} width (rounded down to a multiple of 8; default: {doc})",
                      min=64, max=8192, multiple_of=8),
            ParamSpec("height", "integer", default, f"{what} height (rounded down to a multiple of 8; default: {doc})",
                      min=64, max=8192, multiple_of=8))


class DiffusersCapability(Capability):
    """Base of the capabilities that run diffusers pipelines (not registered itself)."""

    provider = "diffusers"
    requires = ("torch", "diffusers", "transformers")
    extra = "diffusion"
    limits = MODEL_LIMITS
    #: Host configuration (models, device, cache); set by :meth:`configured`.
    model_config: ClassVar[ModelConfig] = ModelConfig()

    @classmethod
    def availability(cls) -> str | None:
        reason = super().availability()
        if reason is None and not cls.model_config.configured:
            return NO_MODEL
        return reason

    @classmethod
    def configured(cls, config: ModelConfig | dict) -> type:
        """A subclass of this capability using ``config`` (a :class:`ModelConfig` or a ``[models]`` table)."""
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_table(config)
        return type(cls.__name__, (cls,), {"model_config": config, "__doc__": cls.__doc__,
                                           "__module__": cls.__module__, "__qualname__": cls.__qualname__})

    # --- models ---------------------------------------------------------------------------------
    def default_model_name(self) -> str | None:
        return self.model_config.default_model

    def model(self, ctx, name: str | None, op: str, *, kind: str = "pipeline") -> ResolvedModel:
        """Resolve a script-given model name (or the host's default when ``None``)."""
        trusted = name is None
        if name is None:
            name = self.default_model_name()
            if name is None:
                raise CapabilityError(f"{op}: {NO_MODEL}")
        return resolve(name, self.model_config, list(ctx.runtime.roots), op, kind=kind, trusted=trusted)

    def check_model_allowed(self, ctx, name: str, op: str) -> None:
        allowed = ctx.params.get("allowed_models")
        if allowed is not None and name not in allowed:
            raise CapabilityError(f"{op}: model {name!r} is not allowed by this grant's allowed_models",
                                  hint="allowed: " + (", ".join(map(str, allowed)) or "nothing")
                                  + "; the host sets allowed_models in the grant")

    def fill_size(self, ctx, args: dict, op: str) -> ResolvedModel:
        """Resolve the model (JSON files only, no weights), check it is allowed, fill in native sizes."""
        model = self.model(ctx, args.get("model"), op)
        self.check_model_allowed(ctx, model.name, op)
        if "width" in args and args["width"] is None:
            args["width"] = model.native_size
        if "height" in args and args["height"] is None:
            args["height"] = model.native_size
        return model

    def manager(self, ctx):
        return ctx.runtime.models


def note_sdxl(ctx, model: ResolvedModel, where: str, prompt_2, negative_prompt_2) -> dict:
    """Keyword arguments for the second text encoder, or a warning when the model has none."""
    if model.family == "sdxl":
        out = {}
        if prompt_2 is not None:
            out["prompt_2"] = prompt_2
        if negative_prompt_2 is not None:
            out["negative_prompt_2"] = negative_prompt_2
        return out
    if prompt_2 is not None or negative_prompt_2 is not None:
        ctx.warn(f"{where}: prompt_2/negative_prompt_2 ignored: {model.name} is not an SDXL model")
    return {}


def run_pipeline(ctx, pipe, task: str, *, seed: int, batch: int, **kwargs) -> list:
    """Call a pipeline with CPU-generator seeds (``seed + i`` per image), progress per step, interrupt
    between steps; returns H×W×3 uint8 arrays."""
    import torch

    from .images import to_uint8

    generators = [torch.Generator("cpu").manual_seed((seed + i) % (MAX_SEED + 1)) for i in range(batch)]

    def on_step(p, i, t, kw):
        total = getattr(p, "_num_timesteps", None) or kwargs.get("num_inference_steps") or (i + 1)
        ctx.progress(i + 1, total, task)  # raises when the run was interrupted
        return kw

    def call():
        with quiet():
            return pipe(generator=generators, num_images_per_prompt=batch, callback_on_step_end=on_step,
                        output_type="np", **kwargs)

    ctx.check_interrupt()
    out = ctx.runtime.models.call(call)  # on the manager's long-lived thread (per-thread cuDNN plans)
    return to_uint8(out.images)


def seeds_for(seed: int, batch: int) -> list[int]:
    return [(seed + i) % (MAX_SEED + 1) for i in range(batch)]


def build_result(cap: Capability, method: str, arrays: list, seed: int, meta: dict, notes: list[str]) -> dict:
    """``{image, width, height, format, seed, model_id, steps, ...}``; ``images``/``seeds`` for batches."""
    from ..values import Image

    seeds = seeds_for(seed, len(arrays))
    images = [Image(a, {"generator": f"viwoscript {cap.type}", "capability": cap.type, "method": method,
                        **meta, "seed": s}) for a, s in zip(arrays, seeds, strict=True)]
    h, w = arrays[0].shape[:2]
    result: dict[str, Any] = {"image": images[0], "width": int(w), "height": int(h), "format": "png", "seed": seed,
                              "model_id": meta.get("model"), "steps": meta.get("steps")}
    for k in ("scheduler", "family", "strength"):
        if meta.get(k) is not None:
            result[k] = meta[k]
    if len(images) > 1:
        result["images"] = images
        result["seeds"] = seeds
    if notes:
        result["notes"] = list(notes)
    return result
