"""What the diffusers-backed capabilities share: model lookup, checks, running pipelines, results.

:class:`DiffusersCapability` is the base of the real ``diffusers.generate``, ``diffusers.inpaint`` and
``controlnet.generate``. It is unavailable until a model is configured (the fake stands in until then,
for scripts that name no model); :meth:`DiffusersCapability.configured` makes a configured subclass for
``Runtime(capabilities=...)``. Weights come from ``runtime.models`` (:mod:`viwoscript.models.manager`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import CapabilityError, ViwoError
from ..models.config import ModelConfig
from ..models.resolve import ResolvedModel, resolve
from ..models.samplers import a1111_of
from .base import MAX_SEED, MODEL_LIMITS, Capability
from .options import common_options, sdxl_options, size_params

__all__ = ["NO_MODEL", "DiffusersCapability", "build_result", "common_options", "note_sdxl", "run_pipeline",
           "sdxl_options", "size_params"]

NO_MODEL = ("no model configured: set a default model under [models] in viwo.toml (default = \"folder or "
            "org/name\"), or pass viwoscript.capabilities.capabilities(...) to Runtime(capabilities=...)")


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
        if reason is None:
            reason = cls.default_model_problem()
        return reason

    @classmethod
    def default_model_name_of(cls) -> str | None:
        return cls.model_config.default_model

    @classmethod
    def default_model_problem(cls) -> str | None:
        """Why the configured default model cannot load (not on disk, not in the cache), or None; reads
        JSON files only and never downloads."""
        name = cls.default_model_name_of()
        if name is None:
            return None
        try:
            resolve(name, cls.model_config, [], "models", trusted=True, fetch=False)
        except ViwoError as e:
            looked = (e.hint or "").split("; configure it")[0]
            return (f"the default model {name!r} cannot load: {e.message.removeprefix('models: ')}"
                    + (f" ({looked})" if looked else ""))
        return None

    @classmethod
    def available_for(cls, args: dict) -> str | None:
        """A call that names its model needs no default model: only the installed packages."""
        if args.get("model") is not None:
            return Capability.availability.__func__(cls)
        return cls.availability()

    @classmethod
    def configured(cls, config: ModelConfig | dict) -> type:
        """A subclass of this capability using ``config`` (a :class:`ModelConfig` or a ``[models]`` table)."""
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_table(config)
        return type(cls.__name__, (cls,), {"model_config": config, "__doc__": cls.__doc__,
                                           "__module__": cls.__module__, "__qualname__": cls.__qualname__})

    # --- models ---------------------------------------------------------------------------------
    def default_model_name(self) -> str | None:
        return self.default_model_name_of()

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


def run_pipeline(ctx, cap: DiffusersCapability, model: ResolvedModel, task: str, *, scheduler: str | None,
                 seed: int, batch: int, controlnets: list | None = None, label: str | None = None,
                 options: dict | None = None, **kwargs) -> tuple[list, dict, list[str]]:
    """Run ``model``'s ``task`` pipeline with CPU-generator seeds (``seed + i`` per image), progress per
    step, interrupt between steps. Returns ``(H×W×3 uint8 arrays, sampler metadata, notes)``.

    Everything that touches the shared pipeline (fetching it, a fresh scheduler for this call, the call
    itself) runs inside one call on the manager's worker thread, so Runtimes sharing a manager never see
    each other's settings. Prompts are read as A1111 reads them (:func:`prompt_kwargs`); whatever is
    dropped or read differently is a ``warn`` event and a note. ``options`` are the method's
    :func:`~.options.model_options` (``clip_skip``, ``schedule_type``, ``timestep_spacing``, ``loras``, ...)."""
    import torch

    from ..models.images import to_uint8

    mgr = cap.manager(ctx)
    config = cap.model_config
    where = f"{cap.type}.{ctx.method}"
    opts = options or {}
    loras, kwargs = lora_files(ctx, cap, kwargs, opts, where)
    vae, refiner, switch = model_extras(ctx, cap, model, task, opts, where)  # files only: nothing loads yet
    generators = [torch.Generator("cpu").manual_seed((seed + i) % (MAX_SEED + 1)) for i in range(batch)]

    def on_step(p, i, t, kw):
        total = getattr(p, "_num_timesteps", None) or kwargs.get("num_inference_steps") or (i + 1)
        ctx.progress(i + 1, total, label or task)  # raises when the run was interrupted
        return kw

    def call():
        from ..models.refiner import refiner_kwargs, run_refined
        from ..models.vae import hold_vae, swapped_vae

        pipe = mgr.pipeline(model, task, config, controlnets=controlnets, loras=loras)
        pipe.scheduler = mgr.scheduler(pipe, scheduler, mgr.base_scheduler_config(model, config),
                                       schedule_type=opts.get("schedule_type"),
                                       timestep_spacing=opts.get("timestep_spacing"), seed=seed)
        if opts.get("prediction_type"):
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config,
                                                              prediction_type=opts["prediction_type"])
        used = sampler_metadata(scheduler, pipe.scheduler)
        if opts.get("timestep_spacing"):
            used["timestep_spacing"] = opts["timestep_spacing"]
        if loras:
            used["loras"] = [f.to_metadata() for f in loras]
        args, prompt_meta, cut = prompt_kwargs(pipe, config, kwargs, opts)
        with swapped_vae(pipe, hold_vae(mgr, model, config, *vae, where) if vae else None):
            if refiner is None:
                out = pipe(generator=generators, num_images_per_prompt=batch, callback_on_step_end=on_step,
                           output_type="np", **args)
            else:
                rpipe = mgr.pipeline(refiner, "img2img", config)
                rargs, _, _ = prompt_kwargs(rpipe, config, refiner_kwargs(kwargs), opts)
                out = run_refined(pipe, rpipe, switch=switch, kwargs=args, refiner_args=rargs,
                                  generators=generators, batch=batch, on_step=on_step)
        return out.images, {**used, **prompt_meta}, cut

    ctx.check_interrupt()
    images, used, notes = mgr.call(call)  # on the manager's long-lived thread (per-thread cuDNN plans)
    used.update(model_hashes(cap, model, used))
    if vae:
        from ..models.vae import vae_metadata

        used.update(vae_metadata(*vae, config))
    if refiner is not None:
        used.update(refiner=refiner.name, refiner_switch=switch)
        if "model_hash" in (refined := model_hashes(cap, refiner)):
            used["refiner_hash"] = refined["model_hash"]
    if opts.get("prediction_type"):
        used["prediction_type"] = opts["prediction_type"]
    for note in notes:
        ctx.warn(f"{where}: {note}")
    return to_uint8(images), used, notes


def lora_files(ctx, cap: DiffusersCapability, kwargs: dict, options: dict, where: str) -> tuple[list, dict]:
    """The LoRA files a call asks for (``loras`` option, ``<lora:...>`` prompt tags), checked against the
    grant's ``allowed_loras``, and the pipeline arguments with the tags taken out of the prompts."""
    from ..models import lora

    cleaned, requests = lora.requests_for(options, kwargs, where)
    files = lora.resolve(requests, cap.model_config, ctx.params.get("allowed_loras"), where)
    return files, {**kwargs, **cleaned}


def model_hashes(cap: DiffusersCapability, model: ResolvedModel, used: dict | None = None) -> dict:
    """``{model_hash?, ti_hashes?}``: A1111's hash of a single-file checkpoint (a diffusers folder has
    none) and of the embeddings a call used (``used["embeddings"]``), as A1111 writes them (cached)."""
    from ..models.hashes import HashCache

    out: dict = {}
    cache = HashCache.for_config(cap.model_config)
    path = getattr(model, "path", None)
    try:
        if path is not None and path.is_file():
            out["model_hash"] = cache.hashes(path).model
        names = (used or {}).get("embeddings") or ()
        if names:
            from ..models.embeddings import embedding_files

            files = embedding_files(cap.model_config.embeddings_dir, cap.model_config.allow_pickle)
            out["ti_hashes"] = {n: cache.hashes(files[n]).short for n in names if n in files}
    except OSError:
        pass
    return out


def model_extras(ctx, cap: DiffusersCapability, model: ResolvedModel, task: str, opts: dict,
                 where: str) -> tuple[tuple | None, ResolvedModel | None, float]:
    """The call's VAE override ``(path, name)`` and refiner model (resolved, allowed by the grant) with its
    switch fraction; reads files and configs only, so a wrong name fails before any weights load."""
    from ..models.refiner import check_switch, is_refiner
    from ..models.vae import pick_vae

    if task != "img2img" and is_refiner(model):
        raise CapabilityError(f"{where}: {model.name!r} is an SDXL refiner: it only finishes other pictures",
                              hint="give it as the refiner option of an SDXL model, or use imageToImage")
    vae = pick_vae(model, cap.model_config, opts.get("vae"), list(ctx.runtime.roots), where)
    name = opts.get("refiner")
    if name is None:
        if opts.get("refiner_switch") is not None:
            ctx.warn(f"{where}: refiner_switch ignored: no refiner given")
        return vae, None, 0.0
    if task not in ("txt2img", "img2img") or model.family != "sdxl":
        raise CapabilityError(f"{where}: the refiner works with SDXL models' textToImage and imageToImage "
                              f"({model.name!r} is {model.family}, task {task})",
                              hint="leave out refiner, or use an SDXL model")
    refiner = cap.model(ctx, name, where)
    cap.check_model_allowed(ctx, refiner.name, where)
    if refiner.family != "sdxl":
        raise CapabilityError(f"{where}: refiner {name!r} is not an SDXL model", hint="use the SDXL refiner or "
                              "another SDXL model")
    return vae, refiner, check_switch(opts.get("refiner_switch"), where)


def sampler_metadata(name: str | None, scheduler: Any) -> dict:
    """``{scheduler, sampler, schedule_type?}``: the script's choice (or the model's scheduler class) and
    A1111's names for the scheduler that runs (read from its class and config)."""
    cls_name = type(scheduler).__name__
    return {"scheduler": name or cls_name, **a1111_of(cls_name, getattr(scheduler, "config", None))}


def prompt_kwargs(pipe: Any, config: ModelConfig, kwargs: dict, options: dict, *,
                  handled_tags: tuple[str, ...] = ("lora",)) -> tuple[dict, dict, list[str]]:
    """The pipeline's arguments with the prompts replaced by A1111 conditioning (weights, ``BREAK``,
    75-token chunks, embeddings from ``embeddings_dir``, ``clip_skip``: :mod:`viwoscript.models.prompts`),
    the metadata it adds and notes. Call it on the manager's thread, with the pipeline that will run.
    ``handled_tags``: the extra-network tags the caller applies (LoRAs); others are removed with a note."""
    from ..models.prompts import condition

    return condition(pipe, kwargs, config=config, clip_skip=options.get("clip_skip"), handled_tags=handled_tags)


def seeds_for(seed: int, batch: int) -> list[int]:
    return [(seed + i) % (MAX_SEED + 1) for i in range(batch)]


def build_result(cap: Capability, method: str, arrays: list, seed: int, meta: dict, notes: list[str], *,
                 generator: str | None = None) -> dict:
    """``{image, width, height, format, seed, model_id, steps, ...}``; ``images``/``seeds`` for batches.
    The fake and the real implementations both build their results here (one shape, one metadata)."""
    from ..values import Image

    seeds = seeds_for(seed, len(arrays))
    images = [Image(a, {"generator": generator or f"viwoscript {cap.type}", "capability": cap.type,
                        "method": method, **meta, "seed": s}) for a, s in zip(arrays, seeds, strict=True)]
    h, w = arrays[0].shape[:2]
    result: dict[str, Any] = {"image": images[0], "width": int(w), "height": int(h), "format": "png", "seed": seed,
                              "model_id": meta.get("model"), "steps": meta.get("steps")}
    for k in ("scheduler", "sampler", "family", "strength"):
        if meta.get(k) is not None:
            result[k] = meta[k]
    if len(images) > 1:
        result["images"] = images
        result["seeds"] = seeds
    if notes:
        result["notes"] = list(notes)
    return result
