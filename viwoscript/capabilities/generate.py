"""The one declaration of ``diffusers.generate``: its methods, parameters, limits and result shape.

The real implementation (:mod:`viwoscript.capabilities.diffusion`) and the fake
(:mod:`viwoscript.capabilities.fake`) both subclass :class:`GenerateMethods` and override its method
bodies; neither declares a parameter of its own, so scripts, metadata, ``viwo caps`` and docs see one
set of options whichever implementation serves them (``tests/test_capabilities.py`` compares them).
"""

from __future__ import annotations

from .base import MODEL_LIMITS, Capability, ParamSpec, declared, image_workload, method
from .options import common_options, size_params

TYPE = "diffusers.generate"


class GenerateMethods(Capability):
    """``diffusers.generate``'s declaration (not registered itself)."""

    type = TYPE
    limits = MODEL_LIMITS

    @method("textToImage",
            ParamSpec("prompt", "string", description="What to draw"),
            *size_params(),
            *common_options(),
            positional=1, returns="object", label="Text to Image",
            workload=image_workload(batch="batch"))
    @declared
    def text_to_image(self, ctx, prompt, width, height, negative_prompt, steps, guidance_scale, seed, model,
                      batch, prompt_2, negative_prompt_2, scheduler, **options):
        """Generate an image from a prompt. Returns {image, width, height, format, seed, model_id, steps,
        scheduler, sampler} (plus images and seeds when batch > 1, notes when something was changed or
        ignored)."""
        raise NotImplementedError

    @method("imageToImage",
            ParamSpec("image", "image", description="The starting image (RGBA is flattened on white)"),
            ParamSpec("prompt", "string", description="What to turn it into"),
            ParamSpec("strength", "number", 0.75, "How much to change (0: keep, 1: replace)", min=0, max=1,
                      aliases=("denoise", "denoising_strength")),
            *common_options(),
            positional=2, returns="object", label="Image to Image",
            workload=image_workload(image="image", strength="strength", batch="batch"))
    @declared
    def image_to_image(self, ctx, image, prompt, strength, negative_prompt, steps, guidance_scale, seed, model,
                       batch, prompt_2, negative_prompt_2, scheduler, **options):
        """Transform an image guided by a prompt; only about strength × steps steps run. The size is the
        image's, rounded down to a multiple of 8. Returns {image, width, height, format, seed, ...}."""
        raise NotImplementedError
