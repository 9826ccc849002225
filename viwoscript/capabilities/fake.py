"""A fake ``diffusers.generate``: deterministic test patterns on the CPU, no model, no extra.

It implements the same declaration as the real capability (:mod:`viwoscript.capabilities.generate`):
every option, the same limits and result shape (``{image, width, height, format, seed, model_id, steps,
...}``), progress per step and interrupt between steps, so examples, docs and tests run anywhere. It
records every option in its images' metadata as the real one does (A1111 sampler names included) and
says in ``notes`` which options it cannot honour. It stands in for ``diffusers.generate`` only when the
script names no model and the real implementation is unavailable (or a grant pins ``provider =
"fake"``), and says so everywhere a user looks: its label, ``viwo caps``, a warning on first use when a
real implementation exists, and ``{"fake": true}`` in every image's metadata.

Its models are names with a native size (``{"fake": 512}`` by default; a host may pass
``FakeGenerate(models={"fake-xl": 1024})``): the default width and height are the model's native size,
and any other model name is refused.

The picture is a smooth gradient plus soft blobs and fine grain, all drawn from a SHA-256 of
(prompt, seed, width, height): the same call always gives the same pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from ..errors import ArgumentError, CapabilityError
from ..models.samplers import a1111_names
from .base import MAX_SEED
from .diffusers_base import build_result
from .generate import GenerateMethods

FAKE_MODEL = "fake"
#: The fake's models by default: name → native size.
FAKE_MODELS = {FAKE_MODEL: 512}
#: Options the fake records but cannot honour (its picture depends on prompt, seed and size only).
UNHONOURED = ("negative_prompt", "guidance_scale", "scheduler", "prompt_2", "negative_prompt_2", "clip_skip",
              "schedule_type", "timestep_spacing", "loras",
              "vae", "refiner", "refiner_switch", "prediction_type")


class FakeGenerate(GenerateMethods):
    provider = "fake"
    fake = True
    label = "Generate images (FAKE: deterministic test pattern, no model)"
    description = ("Fake stand-in for diffusers.generate: renders a deterministic pattern from a hash of "
                   "prompt, seed and size on the CPU, so scripts run without model weights. Install "
                   "viwoscript[diffusion] and configure a model for real images.")

    def __init__(self, models: Mapping[str, int] | None = None) -> None:
        self.models = dict(FAKE_MODELS if models is None else models)
        for name, size in self.models.items():
            if not isinstance(name, str) or type(size) is not int or not 64 <= size <= 8192 or size % 8:
                raise ArgumentError(f"FakeGenerate: model {name!r} needs a native size, a multiple of 8 "
                                    f"from 64 to 8192 (got {size!r})")

    def check_inputs(self, ctx, spec, args):
        where = f"{self.type}.{spec.name}"
        name, allowed = args.get("model"), ctx.params.get("allowed_models")
        if name is None or allowed is None or name in allowed:  # a disallowed name: the grant's error first
            name = self.model_name(name, where)
        size = self.models.get(name, 512)
        if args.get("width", 0) is None:
            args["width"] = size
        if args.get("height", 0) is None:
            args["height"] = size
        super().check_inputs(ctx, spec, args)

    def model_name(self, name: str | None, where: str) -> str:
        """The fake model a call uses: ``name`` when it is one of the fake's models, the first one when
        ``None``; any other name is refused (the fake never pretends to run a real model)."""
        if name is None:
            return next(iter(self.models), FAKE_MODEL) if self.models else FAKE_MODEL
        if name not in self.models:
            raise CapabilityError(f"{where}: model {name!r} cannot run here: the fake diffusers.generate (a "
                                  "test pattern) is standing in, and it only knows " + ", ".join(map(repr, self.models)),
                                  hint="configure the model under [models] in viwo.toml (and pip install "
                                       "'viwoscript[diffusion]'), or leave \"model\" out to get the test pattern")
        return name

    def text_to_image(self, ctx, prompt, width, height, negative_prompt, steps, guidance_scale, seed, model,
                      batch, prompt_2, negative_prompt_2, scheduler, **options):
        return self._run(ctx, "textToImage", prompt, width, height, steps, steps, seed, batch, None, 1.0,
                         self._options(ctx, negative_prompt, guidance_scale, model, prompt_2, negative_prompt_2,
                                       scheduler, options))

    def image_to_image(self, ctx, image, prompt, strength, negative_prompt, steps, guidance_scale, seed, model,
                       batch, prompt_2, negative_prompt_2, scheduler, **options):
        effective = min(int(steps * strength), steps)
        if effective < 1:
            raise ArgumentError(f"{self.type}.imageToImage: strength × steps must be at least 1 "
                                f"(got {strength:g} × {steps})", hint="raise strength or steps")
        width, height = max(8, image.width // 8 * 8), max(8, image.height // 8 * 8)
        meta, notes = self._options(ctx, negative_prompt, guidance_scale, model, prompt_2, negative_prompt_2,
                                    scheduler, options)
        meta["strength"] = strength
        if (width, height) != (image.width, image.height):
            notes.insert(0, f"image cropped from {image.width}×{image.height} to {width}×{height} (multiples of 8)")
        return self._run(ctx, "imageToImage", prompt, width, height, steps, effective, seed, batch, image,
                         strength, (meta, notes))

    # --- options --------------------------------------------------------------------------------
    def _options(self, ctx, negative_prompt, guidance_scale, model, prompt_2, negative_prompt_2,
                 scheduler, options: dict) -> tuple[dict, list[str]]:
        """The metadata the real one would record, and a note naming the options given that the fake's
        picture ignores."""
        meta = {"negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
                "model": self.model_name(model, f"{self.type}.{ctx.method}")}
        if scheduler is not None or options.get("schedule_type") is not None:
            meta.update(scheduler=scheduler, **a1111_names(scheduler, schedule_type=options.get("schedule_type")))
        meta.update({k: v for k, v in options.items() if v is not None})
        if prompt_2 is not None:
            meta["prompt_2"] = prompt_2
        if negative_prompt_2 is not None:
            meta["negative_prompt_2"] = negative_prompt_2
        given = {"negative_prompt": negative_prompt or None, "guidance_scale": guidance_scale,
                 "scheduler": scheduler, "prompt_2": prompt_2, "negative_prompt_2": negative_prompt_2, **options}
        ignored = [k for k in UNHONOURED if k not in ctx.defaulted and given.get(k) is not None]
        notes = []
        if ignored:
            notes.append("fake: recorded but not rendered (the test pattern depends on prompt, seed and size "
                         "only): " + ", ".join(ignored))
        return meta, notes

    # --- rendering ------------------------------------------------------------------------------
    def _run(self, ctx, task, prompt, width, height, steps, effective, seed, batch, init, strength, options):
        meta, notes = options
        seed = ctx.seed(seed)
        base = _init_pixels(init, width, height) if init is not None else None
        arrays = []
        total = effective * batch
        done = 0
        for i in range(batch):
            pixels = render(prompt, (seed + i) % (MAX_SEED + 1), width, height)
            if base is not None:
                pixels = (base * (1.0 - strength) + pixels * strength + 0.5).astype("uint8")
            for _ in range(effective):
                done += 1
                ctx.progress(done, total, task)
            arrays.append(pixels)
        meta = {"fake": True, "prompt": prompt, "steps": steps, "width": width, "height": height, **meta}
        return build_result(self, task, arrays, seed, meta, notes, generator="viwoscript fake diffusers.generate")


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
