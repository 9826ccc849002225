"""A fake ``diffusers.generate``: deterministic test patterns on the CPU, no model, no extra.

Same method signatures, limits and result shape as the real capability (``{image, width, height,
format, seed}``), progress per step and interrupt between steps, so examples, docs and tests run
anywhere. It stands in for ``diffusers.generate`` only when the real implementation is unavailable (or
a grant pins ``provider = "fake"``), and says so everywhere a user looks: its label, ``viwo caps``, a
warning on first use when a real implementation exists, and ``{"fake": true}`` in every image's metadata.

The picture is a smooth gradient plus soft blobs and fine grain, all drawn from a SHA-256 of
(prompt, seed, width, height): the same call always gives the same pixels.
"""

from __future__ import annotations

import hashlib
import json

from .base import MAX_SEED, MODEL_LIMITS, Capability, ParamSpec, image_workload, method

FAKE_MODEL = "fake"

_SIZE = dict(min=64, max=8192, multiple_of=8)


def _common_options() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("negative_prompt", "string", "", "What the image should not show"),
        ParamSpec("steps", "integer", 25, "Denoising steps", min=1, max=1000,
                  aliases=("num_inference_steps",), limit="max_steps"),
        ParamSpec("guidance_scale", "number", 7.5, "How closely to follow the prompt", min=0, max=50,
                  aliases=("cfg_scale", "cfg")),
        ParamSpec("seed", "integer", None, "Random seed (a fresh one is chosen and returned when absent)",
                  min=0, max=MAX_SEED),
        ParamSpec("model", "string", None, "Model id or alias (the fake ignores it, but checks allowed_models)",
                  aliases=("model_id",), limit="allowed_models"),
        ParamSpec("batch", "integer", 1, "Number of images (seeds seed, seed+1, ...)", min=1, max=64,
                  aliases=("num_images", "num_images_per_prompt", "batch_size"), limit="max_batch"),
    )


class FakeGenerate(Capability):
    type = "diffusers.generate"
    provider = "fake"
    fake = True
    label = "Generate images (FAKE: deterministic test pattern, no model)"
    description = ("Fake stand-in for diffusers.generate: renders a deterministic pattern from a hash of "
                   "prompt, seed and size on the CPU, so scripts run without model weights. Install "
                   "viwoscript[diffusion] and configure a model for real images.")
    limits = MODEL_LIMITS

    @method("textToImage",
            ParamSpec("prompt", "string", description="What to draw"),
            ParamSpec("width", "integer", 512, "Image width (rounded down to a multiple of 8)", **_SIZE),
            ParamSpec("height", "integer", 512, "Image height (rounded down to a multiple of 8)", **_SIZE),
            *_common_options(),
            positional=1, returns="object", label="Text to Image",
            workload=image_workload(batch="batch"))
    def text_to_image(self, ctx, prompt, width, height, negative_prompt, steps, guidance_scale, seed, model,
                      batch):
        """Generate an image from a prompt. Returns {image, width, height, format, seed} (plus images and
        seeds when batch > 1)."""
        return self._run(ctx, "textToImage", prompt, width, height, steps, steps, seed, batch,
                         {"negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
                          "model": model or FAKE_MODEL}, None, 1.0)

    @method("imageToImage",
            ParamSpec("image", "image", description="The starting image"),
            ParamSpec("prompt", "string", description="What to turn it into"),
            ParamSpec("strength", "number", 0.75, "How much to change (0: keep, 1: replace)", min=0, max=1,
                      aliases=("denoise", "denoising_strength")),
            *_common_options(),
            positional=2, returns="object", label="Image to Image",
            workload=image_workload(image="image", strength="strength", batch="batch"))
    def image_to_image(self, ctx, image, prompt, strength, negative_prompt, steps, guidance_scale, seed, model,
                       batch):
        """Transform an image guided by a prompt; only strength × steps steps run. Returns {image, width,
        height, format, seed}."""
        from ..errors import ArgumentError

        effective = min(int(steps * strength), steps)
        if effective < 1:
            raise ArgumentError(f"{self.type}.imageToImage: strength × steps must be at least 1 "
                                f"(got {strength:g} × {steps})", hint="raise strength or steps")
        width, height = max(8, image.width // 8 * 8), max(8, image.height // 8 * 8)
        return self._run(ctx, "imageToImage", prompt, width, height, steps, effective, seed, batch,
                         {"negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
                          "model": model or FAKE_MODEL, "strength": strength}, image, strength)

    # --- rendering ------------------------------------------------------------------------------
    def _run(self, ctx, task, prompt, width, height, steps, effective, seed, batch, extra, init, strength):
        from ..values import Image

        seed = ctx.seed(seed)
        base = _init_pixels(init, width, height) if init is not None else None
        images, seeds = [], []
        total = effective * batch
        done = 0
        for i in range(batch):
            s = (seed + i) % (MAX_SEED + 1)
            pixels = render(prompt, s, width, height)
            if base is not None:
                pixels = (base * (1.0 - strength) + pixels * strength + 0.5).astype("uint8")
            for _ in range(effective):
                done += 1
                ctx.progress(done, total, task)
            meta = {"fake": True, "generator": "viwoscript fake diffusers.generate", "capability": self.type,
                    "method": task, "prompt": prompt, "seed": s, "steps": steps, "width": width,
                    "height": height, **extra}
            images.append(Image(pixels, meta))
            seeds.append(s)
        result = {"image": images[0], "width": width, "height": height, "format": "png", "seed": seed}
        if batch > 1:
            result["images"] = images
            result["seeds"] = seeds
        return result


def _init_pixels(image, width: int, height: int):
    import numpy as np

    pil = image.to_pil().convert("RGB")
    if pil.size != (width, height):
        pil = pil.crop((0, 0, width, height))
    return np.asarray(pil, dtype=np.float32)


def render(prompt: str, seed: int, width: int, height: int):
    """The fake's picture: H×W×3 uint8, a pure function of (prompt, seed, width, height)."""
    import numpy as np

    key = json.dumps([prompt, int(seed), int(width), int(height)], ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(key).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest, "little")))
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    t = xs[None, :] * np.cos(angle) + ys[:, None] * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c0, c1 = c0.astype(np.float32), c1.astype(np.float32)
    img = c0 + t[..., None] * (c1 - c0)
    img += _upsample(rng.normal(0, 48, (5, 5, 3)).astype(np.float32), height, width)
    img += rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    img += 0.5
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def _upsample(grid, height: int, width: int):
    """Bilinear upsampling of a small H'×W'×C grid to height×width (separable, pure numpy)."""
    import numpy as np

    gh, gw = grid.shape[:2]
    yi = np.linspace(0, gh - 1, height, dtype=np.float32)
    xi = np.linspace(0, gw - 1, width, dtype=np.float32)
    y0 = np.minimum(yi.astype(int), gh - 2)
    x0 = np.minimum(xi.astype(int), gw - 2)
    fy = (yi - y0)[:, None, None]
    fx = (xi - x0)[None, :, None]
    rows = grid[y0] * (1 - fy) + grid[y0 + 1] * fy  # height × gw × C
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx
