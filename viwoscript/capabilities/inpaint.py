"""``diffusers.inpaint``: repaint a masked region, or extend an image outwards, on diffusers pipelines.

The pipeline class follows the model's family (SD1.5 or SDXL inpaint, sharing the base model's weights
through ``from_pipe``; a dedicated 9-channel inpainting model is used as it is). The mask is an image or
the id of a canvas mask layer: painted = repaint. Pixels outside the mask come back *exactly* (the
feather lies inside the mask). Outpaint fills the new area from the image's edges, blurred, masks it
with a feather that overlaps the seam, and pastes the original back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..models.images import blur_mask, mask_bbox, paste_back, resize, round8, to_mask, to_rgb
from .base import ParamSpec, Workload, image_workload, method
from .diffusers_base import DiffusersCapability, build_result, note_sdxl, run_pipeline
from .options import common_options

DIRECTIONS = ("left", "right", "top", "bottom")
#: Where check_inputs leaves only_masked's generation size for the workload (never a parameter name).
_TARGET = "_only_masked_size"


def native_target(width: int, height: int, native: int) -> tuple[int, int]:
    """The size a ``width``×``height`` crop is generated at with ``only_masked``: its aspect ratio, about
    ``native``² pixels (the model's native area), each side a multiple of 8 (at least 64)."""
    scale = native / (width * height) ** 0.5
    return (max(64, int(round(width * scale / 8)) * 8), max(64, int(round(height * scale / 8)) * 8))


def _crop_box(ctx, args: dict, where: str):
    mask = to_mask(_mask_from(ctx, args["mask"], where))
    image = args["image"]
    if mask.shape != (image.height, image.width):
        return None  # the method reports the mismatch
    return mask_bbox(mask, int(args.get("padding") or 0), image.width, image.height)


_plain_workload = image_workload(image="image", strength="strength", batch="batch")


def _inpaint_workload(args: dict) -> Workload:
    work = _plain_workload(args)
    if args.get(_TARGET):
        w, h = args[_TARGET]
        return Workload(w, h, work.steps, work.effective_steps, work.batch)
    return work


def _strength(default: float) -> ParamSpec:
    return ParamSpec("strength", "number", default, "How much of the masked region to change (1: all)",
                     min=0, max=1, aliases=("denoise", "denoising_strength"))


def parse_directions(value: Any, where: str) -> tuple[str, ...]:
    """``"right"``, ``"left,right"``, ``"all"`` or a list of sides → sides in a fixed order."""
    items = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    sides: set[str] = set()
    for item in items:
        if item == "all":
            sides.update(DIRECTIONS)
        elif item in DIRECTIONS:
            sides.add(item)
        else:
            raise ArgumentError(f"{where}: unknown direction {item!r}",
                                hint="use left, right, top, bottom, all, or several: \"left,right\"")
    if not sides:
        raise ArgumentError(f"{where}: no direction given", hint="e.g. \"right\"")
    return tuple(d for d in DIRECTIONS if d in sides)


def outpaint_geometry(width: int, height: int, sides: tuple[str, ...], pixels: int) -> tuple[int, int, int, int]:
    """``(left, top, new_width, new_height)``: the original's offset in the extended image.

    Only the requested sides grow: by ``pixels``, plus what brings that dimension to the next multiple
    of 8 (on the right or bottom when both sides of it grow). A dimension with no requested side keeps
    its size exactly, even when it is not a multiple of 8 (see :func:`generation_size`)."""
    grow = {d: (pixels if d in sides else 0) for d in DIRECTIONS}
    for first, second, size in (("left", "right", width), ("top", "bottom", height)):
        extra = -(size + grow[first] + grow[second]) % 8
        if extra and (first in sides or second in sides):
            grow[second if second in sides else first] += extra
    return (grow["left"], grow["top"], width + grow["left"] + grow["right"],
            height + grow["top"] + grow["bottom"])


def generation_size(width: int, height: int) -> tuple[int, int]:
    """The size the pipeline runs at: each side rounded *up* to a multiple of 8. The extra rows or
    columns (a side that was not extended) are filled from the image's edge and cropped off after."""
    return width + -width % 8, height + -height % 8


def _outpaint_workload(args: dict) -> Workload:
    img = args.get("image")
    w, h = getattr(img, "width", 0), getattr(img, "height", 0)
    try:
        sides = parse_directions(args.get("direction"), "outpaint")
    except ArgumentError:
        sides = DIRECTIONS
    _, _, nw, nh = outpaint_geometry(w, h, sides, int(args.get("pixels") or 0))
    nw, nh = generation_size(nw, nh)
    steps = int(args.get("steps") or 0)
    eff = min(int(steps * float(args.get("strength") or 1.0)), steps)
    return Workload(nw, nh, steps, eff, int(args.get("batch") or 1))


def _mask_from(ctx, mask: Any, where: str):
    if isinstance(mask, str):
        return ctx.runtime.canvas.mask_image(mask)
    if getattr(mask, "type_name", None) != "image":
        raise ArgumentError(f"{where}: mask must be an image or the id of a canvas mask layer",
                            hint="e.g. (canvas.layer.mask \"mask\") or the layer id \"mask\"")
    return mask


class DiffusersInpaint(DiffusersCapability):
    type = "diffusers.inpaint"
    label = "Inpaint and outpaint"
    description = ("Repaint the masked part of an image, or extend an image outwards, with Stable Diffusion "
                   "1.x/2.x or SDXL inpainting (diffusers); the rest of the image is kept exactly.")

    @classmethod
    def default_model_name_of(cls) -> str | None:
        return cls.model_config.inpaint or cls.model_config.default_model

    def check_inputs(self, ctx, spec, args):
        where = f"{self.type}.{spec.name}"
        m = self.model(ctx, args.get("model"), where)
        self.check_model_allowed(ctx, m.name, where)
        if spec.name == "outpaint":
            parse_directions(args["direction"], where)
        if spec.name == "inpaint" and args.get("only_masked"):
            # the crop runs at the model's native size: that is what the limits and the budget count
            box = _crop_box(ctx, args, where)
            if box is not None:
                args[_TARGET] = native_target(box[2] - box[0], box[3] - box[1], m.native_size)
        super().check_inputs(ctx, spec, args)

    @method("inpaint",
            ParamSpec("image", "image", description="The image to change (RGBA is flattened on white)"),
            ParamSpec("mask", "any", description="Where to repaint: an image (alpha if it has transparency, else "
                      "white = repaint) or a canvas mask layer id (painted = repaint)"),
            ParamSpec("prompt", "string", description="What to paint in the masked region"),
            _strength(1.0),
            ParamSpec("mask_blur", "number", 4, "Feather radius in pixels, inside the mask", min=0, max=256,
                      aliases=("feather", "mask_feather")),
            ParamSpec("only_masked", "boolean", False, "Generate only a crop around the mask (at the model's "
                      "size), then paste it back", aliases=("inpaint_only_masked",)),
            ParamSpec("padding", "integer", 32, "Context around the mask for only_masked, in pixels", min=0,
                      max=2048, aliases=("only_masked_padding",)),
            *common_options(),
            positional=3, returns="object", label="Inpaint", options_name="params",
            workload=_inpaint_workload)
    def inpaint(self, ctx, image, mask, prompt, strength, mask_blur, only_masked, padding, negative_prompt, steps,
                guidance_scale, seed, model, batch, prompt_2, negative_prompt_2, scheduler, **options):
        """Repaint the masked region of an image; unmasked pixels are returned unchanged. Returns {image,
        width, height, format, seed, model_id, steps, ...}."""
        where = f"{self.type}.inpaint"
        mask_img = _mask_from(ctx, mask, where)
        rgb = to_rgb(image)
        m = to_mask(mask_img)
        if m.shape != rgb.shape[:2]:
            raise ArgumentError(f"{where}: mask is {m.shape[1]}×{m.shape[0]} but the image is "
                                f"{image.width}×{image.height}", hint="give a mask of the image's size")
        if not m.any():
            ctx.warn(f"{where}: the mask is empty; the image is returned unchanged")
        soft = blur_mask(m, mask_blur)
        soft = np.where(m > 0, soft, 0).astype(np.uint8)  # feather inside the mask only
        seed = ctx.seed(seed)
        box = mask_bbox(m, padding, image.width, image.height) if only_masked else None
        x0, y0, x1, y1 = box or (0, 0, image.width, image.height)
        target = None
        if box is not None:  # A1111's "only masked": the crop scaled to the model's native size and back
            target = native_target(x1 - x0, y1 - y0, self.model(ctx, model, where).native_size)
        arrays, used, notes = self._generate(ctx, where, "inpaint", rgb[y0:y1, x0:x1], m[y0:y1, x0:x1], prompt,
                                             model, seed, batch, strength=strength, negative_prompt=negative_prompt,
                                             steps=steps, guidance_scale=guidance_scale, prompt_2=prompt_2,
                                             negative_prompt_2=negative_prompt_2, scheduler=scheduler, target=target,
                                             options=options)
        out = []
        for gen in arrays:
            full = rgb.copy()
            full[y0:y1, x0:x1] = gen
            out.append(paste_back(rgb, full, soft))
        meta = self._meta(prompt, negative_prompt, steps, strength, guidance_scale, image.width, image.height,
                          scheduler) | {"mask_blur": mask_blur, "only_masked": only_masked}
        return build_result(self, "inpaint", out, seed, meta | used, notes)

    @method("outpaint",
            ParamSpec("image", "image", description="The image to extend"),
            ParamSpec("direction", "any", description="left, right, top, bottom, all, or several "
                      "(\"left,right\" or a list)"),
            ParamSpec("pixels", "integer", description="How far to extend each side, in pixels", min=8, max=4096),
            ParamSpec("prompt", "string", description="What the new area shows"),
            _strength(1.0),
            ParamSpec("overlap", "integer", 16, "How far the repainted band reaches into the original, in pixels",
                      min=0, max=512),
            ParamSpec("mask_blur", "number", 8, "Feather radius of the seam, in pixels", min=0, max=256,
                      aliases=("feather", "mask_feather")),
            *common_options(),
            positional=4, returns="object", label="Outpaint", options_name="params",
            workload=_outpaint_workload)
    def outpaint(self, ctx, image, direction, pixels, prompt, strength, overlap, mask_blur, negative_prompt, steps,
                 guidance_scale, seed, model, batch, prompt_2, negative_prompt_2, scheduler, **options):
        """Extend an image outwards; the new area starts from the image's blurred edges, the seam is
        feathered, the original is pasted back. Only the requested sides grow, each to the next multiple
        of 8 (noted in the result); ``extended`` says by how much."""
        where = f"{self.type}.outpaint"
        sides = parse_directions(direction, where)
        rgb = to_rgb(image)
        h, w = rgb.shape[:2]
        left, top, nw, nh = outpaint_geometry(w, h, sides, pixels)
        grown = {"left": left, "right": nw - w - left, "top": top, "bottom": nh - h - top}
        # the pipeline runs at gw×gh; rows/columns past nw×nh continue a side that was not extended
        # (the original's own edge, kept) and are cropped off afterwards
        gw, gh = generation_size(nw, nh)
        kw, kh = w + gw - nw, h + gh - nh
        kept = np.pad(rgb, ((0, kh - h), (0, kw - w), (0, 0)), mode="edge")
        init = extend_edges(kept, left, top, gw, gh)
        new_area = np.full((gh, gw), 255, np.uint8)
        new_area[top:top + kh, left:left + kw] = 0
        # the band overlapping the seam, on the original's side, is repainted too (feathered)
        keep = 255 - new_area
        inner = _shrink(keep, overlap, sides, left, top, kw, kh)
        gen_mask = np.where(inner > 0, 0, 255).astype(np.uint8)
        soft = blur_mask(gen_mask, mask_blur)
        soft = np.maximum(soft, new_area)  # the new area is all generated
        soft = np.where(gen_mask > 0, soft, 0).astype(np.uint8)  # never touch the original's interior
        seed = ctx.seed(seed)
        arrays, used, notes = self._generate(ctx, where, "outpaint", init, gen_mask, prompt, model, seed, batch,
                                             strength=strength, negative_prompt=negative_prompt, steps=steps,
                                             guidance_scale=guidance_scale, prompt_2=prompt_2,
                                             negative_prompt_2=negative_prompt_2, scheduler=scheduler,
                                             options=options)
        out = []
        for gen in arrays:
            o = paste_back(init, gen, soft)
            o[inner > 0] = init[inner > 0]  # the original's interior, exactly
            out.append(np.ascontiguousarray(o[:nh, :nw]))
        for side in sides:
            if grown[side] != pixels:
                dim = "width" if side in ("left", "right") else "height"
                notes.append(f"extended {side} by {grown[side]} px instead of {pixels} so the {dim} is "
                             f"{nw if dim == 'width' else nh}, a multiple of 8")
        if (gw, gh) != (nw, nh):
            notes.append(f"generated at {gw}×{gh} (multiples of 8) and cropped to {nw}×{nh}; the sides not "
                         "extended keep their size")
        extended = {side: grown[side] for side in sides}
        meta = self._meta(prompt, negative_prompt, steps, strength, guidance_scale, nw, nh, scheduler) | {
            "direction": list(sides), "pixels": pixels, "offset": [left, top], "extended": extended}
        result = build_result(self, "outpaint", out, seed, meta | used, notes)
        result["offset"] = [left, top]
        result["extended"] = extended
        return result

    # --- shared ---------------------------------------------------------------------------------
    def _meta(self, prompt, negative_prompt, steps, strength, guidance_scale, w, h, scheduler) -> dict:
        return {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps, "strength": strength,
                "guidance_scale": guidance_scale, "width": w, "height": h, "scheduler": scheduler}

    def _generate(self, ctx, where, task, rgb, mask, prompt, model, seed, batch, *, strength, negative_prompt,
                  steps, guidance_scale, prompt_2, negative_prompt_2, scheduler,
                  target: tuple[int, int] | None = None, options: dict | None = None) -> tuple[list, dict, list[str]]:
        """Run the inpaint pipeline on ``rgb``/``mask`` at ``target`` (else at rgb's size rounded to a
        multiple of 8); returns the results at rgb's size, the model used (metadata) and notes."""
        from PIL import Image as PILImage

        notes: list[str] = []
        m = self.model(ctx, model, where)
        h, w = rgb.shape[:2]
        gw, gh = target or round8(w, h)
        if target is not None:
            notes.append(f"only_masked: the {w}×{h} crop around the mask was generated at {gw}×{gh} (the "
                         f"model's native size, {m.native_size}² pixels) and scaled back")
        elif (gw, gh) != (w, h):
            notes.append(f"generated at {gw}×{gh} (multiples of 8) and resized back to {w}×{h}")
        if (gw, gh) != (w, h):
            rgb_in, mask_in = resize(rgb, gw, gh), resize(mask, gw, gh, resample="nearest")
        else:
            rgb_in, mask_in = rgb, mask
        if min(int(steps * strength), steps) < 1:
            raise ArgumentError(f"{where}: strength × steps must be at least 1", hint="raise strength or steps")
        arrays, used, cut = run_pipeline(
            ctx, self, m, "inpaint", scheduler=scheduler, options=options, seed=seed, batch=batch, label=task, prompt=prompt,
            image=PILImage.fromarray(rgb_in), mask_image=PILImage.fromarray(mask_in, "L"), width=gw, height=gh,
            strength=strength, negative_prompt=negative_prompt or None, num_inference_steps=steps,
            guidance_scale=guidance_scale, **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        notes += cut
        return [resize(a, w, h) for a in arrays], {"model": m.name, "family": m.family, **used}, notes


def extend_edges(rgb: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
    """The image placed at (left, top) on a width×height canvas, the new area filled by extending its
    edge pixels outwards and blurring them (a sensible start for outpainting, never flat gray)."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((top, height - h - top), (left, width - w - left), (0, 0)), mode="edge")
    radius = max(4.0, max(width - w, height - h) / 8)
    blurred = np.asarray(PILImage.fromarray(padded).filter(ImageFilter.GaussianBlur(radius)))
    out = blurred.copy()
    out[top:top + h, left:left + w] = rgb
    return out


def _shrink(keep: np.ndarray, overlap: int, sides, left, top, w, h) -> np.ndarray:
    """The original's region minus an ``overlap`` band along the extended sides."""
    inner = keep.copy()
    if overlap <= 0:
        return inner
    o = overlap
    if "left" in sides:
        inner[:, left:left + min(o, w)] = 0
    if "right" in sides:
        inner[:, max(left, left + w - o):left + w] = 0
    if "top" in sides:
        inner[top:top + min(o, h), :] = 0
    if "bottom" in sides:
        inner[max(top, top + h - o):top + h, :] = 0
    return inner
