"""The real ``diffusers.generate``: text-to-image and image-to-image on diffusers pipelines.

It implements the one declaration of :mod:`viwoscript.capabilities.generate` (so does the fake).
Models come from the host's configuration through the Runtime's model manager (``runtime.models``):
text-to-image and img2img of one model share one set of weights. Unavailable until a model is
configured, so the fake stands in for scripts that name no model.
"""

from __future__ import annotations

from ..errors import ArgumentError, CapabilityError
from ..models.images import resize, round8, to_rgb
from .diffusers_base import DiffusersCapability, build_result, note_sdxl, run_pipeline
from .generate import GenerateMethods


class DiffusersGenerate(DiffusersCapability, GenerateMethods):
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

    def text_to_image(self, ctx, prompt, width, height, negative_prompt, steps, guidance_scale, seed, model,
                      batch, prompt_2, negative_prompt_2, scheduler, **options):
        where = f"{self.type}.textToImage"
        m = self.model(ctx, model, where)
        seed = ctx.seed(seed)
        arrays, used, notes = run_pipeline(
            ctx, self, m, "txt2img", scheduler=scheduler, options=options, seed=seed, batch=batch, label="textToImage",
            prompt=prompt, negative_prompt=negative_prompt or None, num_inference_steps=steps,
            guidance_scale=guidance_scale, width=width, height=height,
            **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
                "guidance_scale": guidance_scale, "width": width, "height": height, "model": m.name,
                "family": m.family, **used}
        if prompt_2 is not None:
            meta["prompt_2"] = prompt_2
        return build_result(self, "textToImage", arrays, seed, meta, notes)

    def image_to_image(self, ctx, image, prompt, strength, negative_prompt, steps, guidance_scale, seed, model,
                       batch, prompt_2, negative_prompt_2, scheduler, **options):
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
        arrays, used, cut = run_pipeline(
            ctx, self, m, "img2img", scheduler=scheduler, options=options, seed=seed, batch=batch, label="imageToImage",
            prompt=prompt, image=PILImage.fromarray(rgb), strength=strength,
            negative_prompt=negative_prompt or None, num_inference_steps=steps, guidance_scale=guidance_scale,
            **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps, "strength": strength,
                "guidance_scale": guidance_scale, "width": w, "height": h, "model": m.name, "family": m.family,
                **used}
        if prompt_2 is not None:
            meta["prompt_2"] = prompt_2
        return build_result(self, "imageToImage", arrays, seed, meta, notes + cut)
