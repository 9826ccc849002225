"""The real ``diffusers.generate``: text-to-image and image-to-image on diffusers pipelines.

Same methods, argument order, limits and result shape as the fake (:mod:`viwoscript.capabilities.fake`),
plus the real extras (``scheduler``, ``prompt_2``/``negative_prompt_2`` for SDXL). Models come from the
host's configuration through the Runtime's model manager (``runtime.models``): text-to-image and img2img
of one model share one set of weights. Unavailable until a model is configured, so the fake stands in.
"""

from __future__ import annotations

from ..errors import ArgumentError, CapabilityError
from ..models.capability import (
    DiffusersCapability,
    build_result,
    common_options,
    note_sdxl,
    run_pipeline,
    size_params,
)
from ..models.images import resize, round8, to_rgb
from .base import ParamSpec, image_workload, method


class DiffusersGenerate(DiffusersCapability):
    type = "diffusers.generate"
    label = "Generate images"
    description = ("Text-to-image and image-to-image with Stable Diffusion 1.x/2.x and SDXL models (diffusers, "
                   "in-process). Models are configured by the host; scripts name them by alias.")

    def check_inputs(self, ctx, spec, args):
        where = f"{self.type}.{spec.name}"
        model = self.fill_size(ctx, args, where)
        if model.inpaint_unet:
            raise CapabilityError(f"{where}: {model.name!r} is an inpainting model (9-channel UNet)",
                                  hint="use it with diffusers.inpaint, or name a text-to-image model")
        super().check_inputs(ctx, spec, args)

    @method("textToImage",
            ParamSpec("prompt", "string", description="What to draw"),
            *size_params(),
            *common_options(),
            positional=1, returns="object", label="Text to Image",
            workload=image_workload(batch="batch"))
    def text_to_image(self, ctx, prompt, width, height, negative_prompt, steps, guidance_scale, seed, model,
                      batch, prompt_2, negative_prompt_2, scheduler):
        """Generate an image from a prompt. Returns {image, width, height, format, seed, model_id, steps}
        (plus images and seeds when batch > 1)."""
        where = f"{self.type}.textToImage"
        m = self.model(ctx, model, where)
        seed = ctx.seed(seed)
        pipe = self.manager(ctx).pipeline(m, "txt2img", self.model_config)
        pipe.scheduler = self.manager(ctx).scheduler(pipe, scheduler, self.manager(ctx).base_scheduler_config(
            m, self.model_config))
        arrays = run_pipeline(ctx, pipe, "textToImage", seed=seed, batch=batch, prompt=prompt,
                              negative_prompt=negative_prompt or None, num_inference_steps=steps,
                              guidance_scale=guidance_scale, width=width, height=height,
                              **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
                "guidance_scale": guidance_scale, "width": width, "height": height, "model": m.name,
                "family": m.family, "scheduler": scheduler or type(pipe.scheduler).__name__}
        if prompt_2 is not None:
            meta["prompt_2"] = prompt_2
        return build_result(self, "textToImage", arrays, seed, meta, [])

    @method("imageToImage",
            ParamSpec("image", "image", description="The starting image (RGBA is flattened on white)"),
            ParamSpec("prompt", "string", description="What to turn it into"),
            ParamSpec("strength", "number", 0.75, "How much to change (0: keep, 1: replace)", min=0, max=1,
                      aliases=("denoise", "denoising_strength")),
            *common_options(),
            positional=2, returns="object", label="Image to Image",
            workload=image_workload(image="image", strength="strength", batch="batch"))
    def image_to_image(self, ctx, image, prompt, strength, negative_prompt, steps, guidance_scale, seed, model,
                       batch, prompt_2, negative_prompt_2, scheduler):
        """Transform an image guided by a prompt; only about strength × steps steps run. The size is the
        image's, rounded down to a multiple of 8. Returns {image, width, height, format, seed, ...}."""
        from PIL import Image as PILImage

        where = f"{self.type}.imageToImage"
        if min(int(steps * strength), steps) < 1:
            raise ArgumentError(f"{where}: strength × steps must be at least 1 (got {strength:g} × {steps})",
                                hint="raise strength or steps")
        m = self.model(ctx, model, where)
        notes = []
        w, h = round8(image.width, image.height)
        rgb = to_rgb(image)
        if (w, h) != (image.width, image.height):
            notes.append(f"image resized from {image.width}×{image.height} to {w}×{h} (multiples of 8)")
            ctx.warn(f"{where}: {notes[-1]}")
            rgb = resize(rgb, w, h)
        seed = ctx.seed(seed)
        mgr = self.manager(ctx)
        pipe = mgr.pipeline(m, "img2img", self.model_config)
        pipe.scheduler = mgr.scheduler(pipe, scheduler, mgr.base_scheduler_config(m, self.model_config))
        arrays = run_pipeline(ctx, pipe, "imageToImage", seed=seed, batch=batch, prompt=prompt,
                              image=PILImage.fromarray(rgb), strength=strength,
                              negative_prompt=negative_prompt or None, num_inference_steps=steps,
                              guidance_scale=guidance_scale, **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps, "strength": strength,
                "guidance_scale": guidance_scale, "width": w, "height": h, "model": m.name, "family": m.family,
                "scheduler": scheduler or type(pipe.scheduler).__name__}
        return build_result(self, "imageToImage", arrays, seed, meta, notes)
