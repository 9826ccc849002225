"""``diffusers.upscale``: model upscaling (Real-ESRGAN, ESRGAN, compact), GFPGAN face restore, and
traditional resizing on pyvips.

- ``upscaleTraditional(image, params)`` needs only the core install (pyvips); see
  :mod:`viwoscript.capabilities.upscale_traditional` for the methods and how they match Pillow.
- ``upscale(image, model, factor, options)`` and ``faceRestore(image, strength, options)`` load the
  official ``.pth`` files with spandrel (the ``diffusion`` extra), from a models directory the host
  configures (:class:`~viwoscript.models.upscalers.UpscaleConfig`), never downloading.
- ``upscaleImg2Img(image, prompt, params)`` upscales (traditionally or with a network), then refines
  the result tile by tile with img2img through the *shared* pipelines of the Runtime's
  ``diffusers.generate`` (its model configuration, ``runtime.models``): no second copy of the weights.

Host configuration (never visible to scripts)::

    Runtime(capabilities=[Upscale(models_dir="~/models/upscale", device="auto")], grants=[...])

An entry-point instance reads the models directory from ``$VIWO_UPSCALE_MODELS``; the CLI's
``[models]`` table sets it with ``upscale_dir`` (and ``face_detector``), see
:func:`viwoscript.capabilities.capabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, CapabilityError
from ..models.samplers import SAMPLER_NAMES
from .base import ALLOWED_MODELS, MAX_SEED, MAX_STEPS, Capability, Limit, ParamSpec, Workload, method
from .upscale_traditional import MAX_FACTOR, METHODS, MIN_FACTOR, output_size

#: Upscaled outputs are large: the size limits of this capability default higher than generation's.
UPSCALE_LIMITS = (
    ALLOWED_MODELS,
    Limit("max_width", "number", 8192, "Widest image a method may produce, in pixels"),
    Limit("max_height", "number", 8192, "Tallest image a method may produce, in pixels"),
    Limit("max_pixels", "number", 8192 * 8192, "Most pixels (width × height) in one output image"),
    Limit("max_compute", "number", 250, "Largest compute cost of one call: output width × height / 1e6 "
          "(upscaleImg2Img: × the denoising steps that run, counted over its overlapping tiles)"),
    MAX_STEPS,
)
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
#: upscaleImg2Img: the denoising strength range (low: refine detail, keep the composition) and its overlap.
DENOISE_MIN, DENOISE_MAX, DENOISE_DEFAULT = 0.2, 0.4, 0.3
IMG2IMG_OVERLAP = 64
IMG2IMG_MIN_TILE = 64
NO_DIFFUSION = ("set a default model under [models] in viwo.toml, or pass viwoscript.capabilities.capabilities(...) "
                "to Runtime(capabilities=...)")


@dataclass(frozen=True)
class TiledWorkload(Workload):
    """The compute of a tiled img2img: every tile's pixels × the steps that run (overlaps counted)."""

    tiled_pixels: int = 0

    @property
    def compute(self) -> float:
        return self.tiled_pixels * (self.effective_steps or 0) / 1e6

    def explain(self) -> str:
        return f"{self.tiled_pixels} tiled pixels × {self.effective_steps} steps / 1e6"


def _factor_workload(args: dict) -> Workload:
    img = args.get("image")
    w, h = output_size(getattr(img, "width", 0), getattr(img, "height", 0), float(args.get("factor") or 1))
    return Workload(w, h, 1)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    from .upscale_models import _starts

    return _starts(size, tile, overlap)


def img2img_tiles(width: int, height: int, tile: int, overlap: int) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """The tile size and overlap really used (tile a multiple of 8, overlap at most half of it) and the
    tiles ``(x, y, w, h)`` covering a width × height image."""
    tile = max(IMG2IMG_MIN_TILE, int(tile) // 8 * 8)
    overlap = max(0, min(int(overlap), tile // 2))
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    return tile, overlap, [(x, y, min(tile, width - x), min(tile, height - y)) for y in ys for x in xs]


def _img2img_workload(args: dict) -> Workload:
    img = args.get("image")
    w, h = output_size(getattr(img, "width", 0), getattr(img, "height", 0), float(args.get("factor") or 1))
    steps = int(args.get("steps") or 0)
    eff = min(int(steps * float(args.get("strength") or 0)), steps)
    _, _, tiles = img2img_tiles(w, h, int(args.get("tile") or DEFAULT_TILE), int(args.get("tile_overlap") or 0))
    area = sum((tw + (-tw) % 8) * (th + (-th) % 8) for _, _, tw, th in tiles)
    return TiledWorkload(w, h, steps, eff, 1, area)


def _face_workload(args: dict) -> Workload:
    img = args.get("image")
    f = float(args.get("upscale") or 1)
    w, h = output_size(getattr(img, "width", 0), getattr(img, "height", 0), f)
    return Workload(w, h, 1)


class Upscale(Capability):
    """Upscale images with super-resolution networks or classic filters, and restore faces."""

    type = "diffusers.upscale"
    provider = "viwoscript"
    label = "Upscale and restore"
    description = ("Upscale images 2× or 4× with Real-ESRGAN/ESRGAN networks (tiled, any size), restore faces "
                   "with GFPGAN, or resize with lanczos/bicubic/bilinear/nearest/area filters.")
    limits = UPSCALE_LIMITS
    requires = ()  # the traditional method needs only the core install; model methods check torch

    def __init__(self, models_dir=None, models: dict | None = None, device: str = "auto",
                 face_detector: Any = None, tile: int = DEFAULT_TILE):
        from ..models.upscalers import UpscaleConfig

        self.config = UpscaleConfig(models_dir, dict(models or {}), device)
        #: A path to a YuNet ONNX file, or a function rgb -> [{"box", "landmarks", "score"}].
        self.face_detector = face_detector if callable(face_detector) or face_detector is None else \
            Path(face_detector).expanduser()
        self.default_tile = int(tile)

    # --- traditional ------------------------------------------------------------------------------
    @method("upscaleTraditional",
            ParamSpec("image", "image", description="The image to resize"),
            ParamSpec("method", "string", "lanczos", "Resampling filter", choices=METHODS,
                      aliases=("mode", "filter")),
            ParamSpec("factor", "number", 2, "Scale factor (2 or 4; any factor from 0.125 to 8 works)",
                      min=MIN_FACTOR, max=MAX_FACTOR, aliases=("scale",)),
            positional=1, returns="object", label="Upscale (traditional)", workload=_factor_workload,
            options_name="params")
    def upscale_traditional(self, ctx, image, method, factor):
        """Resize with a classic filter on pyvips (lanczos by default). Returns {image, width, height,
        format, method, factor}."""
        from ..values import Image
        from .upscale_traditional import resize_pixels

        pixels = resize_pixels(image.pixels, float(factor), method,
                               progress=lambda i, n: ctx.progress(i, n, "upscaleTraditional"))
        meta = {**image.metadata, "upscale": {"method": method, "factor": factor}}
        out = Image(pixels, meta)
        return {"image": out, "width": out.width, "height": out.height, "format": "png", "method": method,
                "factor": factor}

    # --- model upscale -----------------------------------------------------------------------------
    @method("upscale",
            ParamSpec("image", "image", description="The image to upscale"),
            ParamSpec("model", "string", "realesrgan", "realesrgan, realesrgan-anime, realesrgan-general, "
                      "esrgan, or a name the host configured", aliases=("model_id",), limit="allowed_models"),
            ParamSpec("factor", "integer", 2, "Output scale: 2 or 4", choices=(2, 4), aliases=("scale",)),
            ParamSpec("tile", "integer", None, "Tile size in pixels (halved automatically when memory runs "
                      "out)", min=32, max=4096, aliases=("tile_size",)),
            ParamSpec("tile_overlap", "integer", DEFAULT_OVERLAP, "Overlap between tiles, blended",
                      min=0, max=256, aliases=("overlap", "tile_pad")),
            positional=3, returns="object", label="Upscale (model)", workload=_factor_workload)
    def upscale(self, ctx, image, model, factor, tile, tile_overlap):
        """Upscale with a super-resolution network, tiled. Returns {image, width, height, format, model,
        factor, tile}."""
        from ..values import Image

        where = f"{self.type}.upscale"
        tile = int(tile or self.default_tile)
        pixels, used_tile = self._model_upscale(ctx, where, image.pixels, model, int(factor), tile, tile_overlap,
                                                "upscale")
        out = Image(pixels, {**image.metadata, "upscale": {"model": model, "factor": factor}})
        return {"image": out, "width": out.width, "height": out.height, "format": "png", "model": model,
                "factor": factor, "tile": used_tile}

    # --- face restore ------------------------------------------------------------------------------
    @method("faceRestore",
            ParamSpec("image", "image", description="The picture with faces"),
            ParamSpec("strength", "number", 1, "Blend between original (0) and restored (1) faces", min=0, max=1,
                      aliases=("weight", "fidelity")),
            ParamSpec("model", "string", "gfpgan", "Face-restoration model", aliases=("model_id",),
                      limit="allowed_models"),
            ParamSpec("upscale", "integer", 1, "Also upscale the whole picture by this factor first",
                      choices=(1, 2, 4)),
            ParamSpec("background_model", "string", None, "Network for that upscale (default: lanczos)",
                      aliases=("bg_upsampler",), limit="allowed_models"),
            ParamSpec("max_faces", "integer", 16, "Restore at most this many faces (largest scores first)",
                      min=1, max=64),
            positional=2, returns="object", label="Restore faces", workload=_face_workload)
    def face_restore(self, ctx, image, strength, model, upscale, background_model, max_faces):
        """Detect faces, restore them with GFPGAN and blend them back by strength. Returns {image, width,
        height, format, faces}."""
        import numpy as np

        from ..models.upscalers import load_net, require_torch
        from ..values import Image
        from .upscale_faces import gfpgan_restorer, restore_faces, yunet_detector
        from .upscale_traditional import resize_pixels

        where = f"{self.type}.faceRestore"
        detector = self._detector(ctx, where, yunet_detector)
        require_torch(where)
        path, _ = self.config.weight_file(model, where)
        net = self._net(ctx, path, where, "FaceSR", load_net)
        px = image.pixels
        rgb, alpha = _split(px)
        if upscale > 1:
            if background_model:
                rgb, _ = self._model_upscale(ctx, where, rgb, background_model, upscale, self.default_tile,
                                             DEFAULT_OVERLAP, "faceRestore")
            else:
                rgb = resize_pixels(rgb, upscale, "lanczos")
            if alpha is not None:
                alpha = resize_pixels(alpha, upscale, "lanczos")
        ctx.check_interrupt()
        faces = detector(rgb)
        restored, n = restore_faces(rgb, faces, gfpgan_restorer(net), strength, where,
                                    lambda i, t: ctx.progress(i, t, "faceRestore"), max_faces)
        out_px = _join(restored, alpha, px.shape[2])
        if strength == 0 and upscale == 1:
            out_px = np.array(px)  # exactly the input
        out = Image(out_px, {**image.metadata, "face_restore": {"model": model, "strength": strength,
                                                                "faces": n}})
        return {"image": out, "width": out.width, "height": out.height, "format": "png", "faces": n}

    # --- hybrid: upscale, then img2img ---------------------------------------------------------------
    @method("upscaleImg2Img",
            ParamSpec("image", "image", description="The image to upscale"),
            ParamSpec("prompt", "string", description="What the picture shows (guides the added detail)"),
            ParamSpec("factor", "number", 2, "Scale factor (any from 1 to 8; 2 or 4 with upscale_model)",
                      min=1, max=8, aliases=("scale",)),
            ParamSpec("strength", "number", DENOISE_DEFAULT, "Denoising strength of the img2img pass",
                      min=DENOISE_MIN, max=DENOISE_MAX, aliases=("denoise", "denoising_strength")),
            ParamSpec("steps", "integer", 20, "Denoising steps (about strength × steps run)", min=1, max=1000,
                      aliases=("num_inference_steps",), limit="max_steps"),
            ParamSpec("method", "string", "lanczos", "Filter of the first upscale", choices=METHODS,
                      aliases=("mode", "filter")),
            ParamSpec("upscale_model", "string", None, "A super-resolution network for the first upscale "
                      "instead of the filter (realesrgan, ...)", aliases=("upscaler", "sr_model"),
                      limit="allowed_models"),
            ParamSpec("model", "string", None, "Diffusion model (default: the host's default model)",
                      aliases=("model_id",), limit="allowed_models"),
            ParamSpec("negative_prompt", "string", "", "What the image should not show"),
            ParamSpec("guidance_scale", "number", 7.5, "Classifier-free guidance", min=0, max=50,
                      aliases=("cfg_scale", "cfg")),
            ParamSpec("seed", "integer", None, "Random seed (tile i uses seed + i; drawn and returned when "
                      "absent)", min=0, max=MAX_SEED),
            ParamSpec("scheduler", "string", None, "Sampler (default: the model's own): ours or A1111's name",
                      choices=SAMPLER_NAMES, aliases=("sampler", "sampler_name")),
            ParamSpec("tile", "integer", None, "Tile size in output pixels (default: the model's native size)",
                      min=IMG2IMG_MIN_TILE, max=4096, aliases=("tile_size",)),
            ParamSpec("tile_overlap", "integer", IMG2IMG_OVERLAP, "Overlap between tiles, feathered",
                      min=0, max=512, aliases=("overlap",)),
            positional=2, returns="object", label="Upscale + img2img", workload=_img2img_workload,
            options_name="params")
    def upscale_img2img(self, ctx, image, prompt, factor, strength, steps, method, upscale_model, model,
                        negative_prompt, guidance_scale, seed, scheduler, tile, tile_overlap):
        """Upscale (filter or network), then add detail with img2img at low strength, tile by tile, through
        the diffusion capability's shared pipelines. Returns {image, width, height, format, seed, model_id,
        steps, strength, tiles}."""
        import numpy as np
        from PIL import Image as PILImage

        from ..values import Image
        from .diffusers_base import prompt_kwargs, sampler_metadata
        from .upscale_models import blend_tiles, pad_to_multiple
        from .upscale_traditional import resize_pixels

        where = f"{self.type}.upscaleImg2Img"
        gen = self._diffusion(ctx, where, model)
        m = gen.model(ctx, model, where)
        mgr = gen.manager(ctx)
        rgb, alpha = _split(image.pixels)
        if upscale_model:
            big, _ = self._model_upscale(ctx, where, rgb, upscale_model, int(factor), self.default_tile,
                                         DEFAULT_OVERLAP, "upscaleImg2Img")
        else:
            big = resize_pixels(rgb, float(factor), method)
        if alpha is not None:
            alpha = resize_pixels(alpha, float(factor), "lanczos")
        ctx.check_interrupt()
        seed = ctx.seed(seed)
        tile, overlap, tiles = img2img_tiles(big.shape[1], big.shape[0], tile, tile_overlap)
        index = iter(range(len(tiles)))
        used: dict = {}
        notes: list[str] = []
        prompts: dict = {}

        def on_step(p, i, t, kw):
            ctx.check_interrupt()
            return kw

        def run(patch):
            import torch

            ph, pw = patch.shape[:2]
            padded = pad_to_multiple(patch, 8)
            g = torch.Generator("cpu").manual_seed((seed + next(index)) % (MAX_SEED + 1))

            def call():
                # the shared pipeline and a fresh scheduler, only inside the manager's serialized call
                pipe = mgr.pipeline(m, "img2img", gen.model_config)
                pipe.scheduler = mgr.scheduler(pipe, scheduler, mgr.base_scheduler_config(m, gen.model_config),
                                               seed=seed)
                if not used:  # first tile: the sampler's names and the prompts' conditioning, for every tile
                    used.update(sampler_metadata(scheduler, pipe.scheduler))
                    args, meta, cut = prompt_kwargs(pipe, gen.model_config, {  # LoRAs are not applied here
                        "prompt": prompt, "negative_prompt": negative_prompt or None}, {}, handled_tags=())
                    prompts.update(args)
                    used.update(meta)
                    notes.extend(cut)
                return pipe(**prompts, image=PILImage.fromarray(np.ascontiguousarray(padded)),
                            strength=strength, num_inference_steps=steps, guidance_scale=guidance_scale, generator=g,
                            output_type="np", callback_on_step_end=on_step)

            out = mgr.call(call)  # on the manager's long-lived pipeline thread, like every diffusion call
            return np.asarray(out.images[0], np.float32)[:ph, :pw].clip(0, 1)

        px = blend_tiles(big, tile, overlap, run, multiple_of=8, min_tile=IMG2IMG_MIN_TILE,
                         progress=lambda i, n: ctx.progress(i, n, "upscaleImg2Img"), check=ctx.check_interrupt)
        out_px = _join(px, alpha, image.pixels.shape[2])
        sched = used.get("scheduler", scheduler)
        meta = {**image.metadata, "generator": f"viwoscript {self.type}", "capability": self.type,
                "method": "upscaleImg2Img", "prompt": prompt, "negative_prompt": negative_prompt, "seed": seed,
                "steps": steps, "strength": strength, "guidance_scale": guidance_scale, "model": m.name,
                "family": m.family, **used,
                "upscale": {"factor": factor, "method": upscale_model or method, "tile": tile,
                            "tile_overlap": overlap, "tiles": len(tiles)}}
        out = Image(out_px, meta)
        for note in notes:
            ctx.warn(f"{where}: {note}")
        result = {"image": out, "width": out.width, "height": out.height, "format": "png", "seed": seed,
                  "model_id": m.name, "family": m.family, "steps": steps, "strength": strength, "scheduler": sched,
                  "tiles": len(tiles), "tile": tile}
        if used.get("sampler"):
            result["sampler"] = used["sampler"]
        if notes:
            result["notes"] = notes
        return result

    def check_inputs(self, ctx, spec, args):
        if spec.name == "upscaleImg2Img":
            where = f"{self.type}.upscaleImg2Img"
            if min(int(args["steps"] * args["strength"]), args["steps"]) < 1:
                raise ArgumentError(f"{where}: strength × steps must be at least 1 (got {args['strength']:g} × "
                                    f"{args['steps']})", hint="raise steps")
            if args.get("upscale_model") and args["factor"] not in (2, 4):
                raise ArgumentError(f"{where}: factor must be 2 or 4 with upscale_model (got {args['factor']:g})",
                                    hint="drop upscale_model to use a filter, which takes any factor 1–8")
            gen = self._diffusion(ctx, where, args.get("model"))
            if args.get("model") is not None:  # a disallowed name is refused before anything looks it up
                gen.check_model_allowed(ctx, args["model"], where)
            m = gen.model(ctx, args.get("model"), where)  # reads JSON configs only, loads no weights
            gen.check_model_allowed(ctx, m.name, where)
            if m.inpaint_unet:
                raise CapabilityError(f"{where}: {m.name!r} is an inpainting model (9-channel UNet)",
                                      hint="name a text-to-image model")
            if args.get("tile") is None:
                args["tile"] = m.native_size
            if args.get("upscale_model"):
                self.config.weight_file(args["upscale_model"], where, int(args["factor"]))
        super().check_inputs(ctx, spec, args)

    def _diffusion(self, ctx, where: str, model: str | None = None):
        """The Runtime's configured ``diffusers.generate`` instance: its model configuration and manager
        (one that has no default model serves a call that names its model)."""
        from .diffusers_base import DiffusersCapability

        registry = getattr(ctx.manager, "registry", None)
        entry = registry.real.get("diffusers.generate") if registry is not None else None
        if entry is None or not issubclass(entry.cls, DiffusersCapability):
            raise CapabilityError(f"{where}: needs the diffusers.generate capability (diffusers)",
                                  hint=NO_DIFFUSION)
        if entry.reason is not None and entry.cls.available_for({"model": model}) is not None:
            raise CapabilityError(f"{where}: needs a configured diffusion model: diffusers.generate is "
                                  f"unavailable ({entry.reason})", hint=NO_DIFFUSION)
        return entry.get_instance()

    # --- shared -------------------------------------------------------------------------------------
    def _net(self, ctx, path, where: str, purpose: str, load_net):
        """A loaded network, held by the Runtime's model manager (one byte budget for every weight)."""
        from ..models.device import resolve_device

        device = resolve_device(self.config.device)

        def load():
            net = load_net(path, device, where, purpose)
            return net, net.nbytes

        return ctx.runtime.models.hold(("spandrel", str(path), device, purpose), load, name=Path(path).stem,
                                       path=path, kind="upscaler" if purpose == "SR" else "face-restorer",
                                       estimate=_file_bytes(path), device=device)

    def _detector(self, ctx, where: str, yunet_detector):
        if callable(self.face_detector):
            return self.face_detector
        path = self.face_detector or self.config.detector_file()
        if path is None:
            raise CapabilityError(f"{where}: no face detector is configured",
                                  hint="put OpenCV's face_detection_yunet_2023mar.onnx in the models directory "
                                       "(or Upscale(face_detector=...)); it is never downloaded")
        size = _file_bytes(path)
        return ctx.runtime.models.hold(("detector", str(path)), lambda: (yunet_detector(path, where), size),
                                       name=Path(path).stem, path=path, kind="face-detector", estimate=size)

    def _model_upscale(self, ctx, where, px, model, factor, tile, overlap, task):
        """Run the named network tiled; alpha is resized separately (lanczos); returns (pixels, tile)."""
        from ..models.upscalers import load_net, require_torch
        from .upscale_models import tiled
        from .upscale_traditional import resize_pixels

        require_torch(where)
        path, _ = self.config.weight_file(model, where, factor)
        net = self._net(ctx, path, where, "SR", load_net)
        rgb, alpha = _split(px)
        out, tile = tiled(net, rgb, tile, overlap, lambda i, n: ctx.progress(i, n, task), ctx.check_interrupt)
        if net.scale != factor:
            # a 4× net asked for 2×: a Lanczos reduce of its 4× output (sharper than a 2× bicubic)
            out = resize_pixels(out, factor / net.scale, "lanczos")
        if alpha is not None:
            alpha = resize_pixels(alpha, factor, "lanczos")
        return _join(out, alpha, px.shape[2]), tile


def _file_bytes(path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _split(px):
    """RGB (grey replicated) and the alpha plane (or None) of H×W×{1,3,4} pixels."""
    import numpy as np

    c = px.shape[2]
    rgb = np.repeat(px, 3, axis=2) if c == 1 else np.ascontiguousarray(px[:, :, :3])
    alpha = np.ascontiguousarray(px[:, :, 3:4]) if c == 4 else None
    return rgb, alpha


def _join(rgb, alpha, channels: int):
    import numpy as np

    if channels == 1:
        grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return (grey + 0.5).clip(0, 255).astype(np.uint8)[:, :, None]
    if alpha is not None:
        return np.concatenate([rgb, alpha], axis=2)
    return rgb
