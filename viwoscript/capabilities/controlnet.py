"""``controlnet.generate``: preprocess control images and generate with one or several ControlNets.

Control images come from images or canvas control layers (their ``controlType`` travels with them).
Canny and scribble preprocessors need no weights; depth, openpose, hed and lineart use controlnet-aux
with the ``lllyasviel/Annotators`` weights the host configured (``[models] annotators = "folder"``).
ControlNet models are configured per control type (``[models] controlnets = {canny = [...]}``), one
per base family; the pipeline shares the base model's weights (``from_pipe``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError, CapabilityError, ScriptError
from ..models.images import resize, round8, to_rgb
from ..models.resolve import ResolvedModel, resolve
from .base import ParamSpec, Workload, method
from .diffusers_base import DiffusersCapability, build_result, note_sdxl, run_pipeline
from .options import common_options

#: Preprocessors: name → controlnet-aux class (None: built in, no weights).
PREPROCESSORS: dict[str, str | None] = {
    "canny": None, "scribble": None, "depth": "MidasDetector", "openpose": "OpenposeDetector",
    "hed": "HEDdetector", "lineart": "LineartDetector",
}
CONTROL_FIELDS = ("image", "control_type", "model", "weight", "start", "end", "preprocess")


def canny(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    import cv2

    edges = cv2.Canny(np.ascontiguousarray(rgb), int(low), int(high))
    return np.repeat(edges[:, :, None], 3, axis=2)


def scribble(rgb: np.ndarray, threshold: int = 48) -> np.ndarray:
    """White lines on black: every pixel that differs from the image's dominant (background) colour."""
    flat = rgb.reshape(-1, 3)
    background = np.median(flat, axis=0)
    ink = np.abs(rgb.astype(np.int16) - background.astype(np.int16)).max(axis=2) > threshold
    return np.repeat((ink * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _workload(args: dict) -> Workload:
    w, h = args.get("width"), args.get("height")
    images = args.get("control_images")
    first = images[0] if isinstance(images, list) and images else images
    if isinstance(first, dict):
        first = first.get("image")
    if w is None:
        w = getattr(first, "width", 0)
    if h is None:
        h = getattr(first, "height", 0)
    return Workload(int(w) // 8 * 8, int(h) // 8 * 8, int(args.get("steps") or 0), None, int(args.get("batch") or 1))


class ControlNetGenerate(DiffusersCapability):
    type = "controlnet.generate"
    label = "ControlNet"
    description = ("Guide generation with control images (edges, scribbles, depth, pose) through one or several "
                   "ControlNets, for Stable Diffusion 1.x/2.x and SDXL models (diffusers).")

    def __init__(self) -> None:
        self._detectors: dict[str, Any] = {}

    def check_inputs(self, ctx, spec, args):
        if spec.name == "apply":
            where = f"{self.type}.apply"
            model = self.fill_size(ctx, {"model": args.get("model")}, where)
            if model.inpaint_unet:
                raise CapabilityError(f"{where}: {model.name!r} is an inpainting model",
                                      hint="name a text-to-image model")
            self._controls(ctx, args["control_images"], args.get("control_type"), where, resolve_models=False)
        super().check_inputs(ctx, spec, args)

    @method("getAvailableTypes", returns="array", label="Available Control Types")
    def get_available_types(self, ctx):
        """Control types with a ControlNet configured by the host (for apply)."""
        return sorted(self.model_config.controlnets)

    @method("preprocess",
            ParamSpec("image", "image", description="The picture to turn into a control image"),
            ParamSpec("control_type", "string", description="canny, scribble, depth, openpose, hed or lineart",
                      choices=tuple(PREPROCESSORS), aliases=("type",)),
            ParamSpec("low_threshold", "integer", 100, "Canny: lower hysteresis threshold", min=0, max=255),
            ParamSpec("high_threshold", "integer", 200, "Canny: upper hysteresis threshold", min=0, max=255),
            ParamSpec("threshold", "integer", 48, "Scribble: how far from the background a pixel is ink",
                      min=0, max=255),
            positional=2, returns="image", label="Preprocess")
    def preprocess(self, ctx, image, control_type, low_threshold, high_threshold, threshold):
        """Make a control image (white features on black) from a picture."""
        from ..values import Image

        rgb = to_rgb(image)
        if control_type == "canny":
            out = canny(rgb, low_threshold, high_threshold)
        elif control_type == "scribble":
            out = scribble(rgb, threshold)
        else:
            out = self._annotate(control_type, rgb)
        return Image(out, {"controlType": control_type, "preprocessor": control_type})

    @method("apply",
            ParamSpec("control_images", "any", description="A control image, a canvas control layer id, or a "
                      "list of them or of {image, controlType, model, weight, start, end, preprocess}",
                      aliases=("control_image", "images")),
            ParamSpec("prompt", "string", description="What to draw"),
            ParamSpec("control_type", "string", None, "Control type for images that do not say (the original's "
                      "third argument)", aliases=("type",)),
            ParamSpec("width", "integer", None, "Image width (default: the first control image's)", min=64,
                      max=8192, multiple_of=8),
            ParamSpec("height", "integer", None, "Image height (default: the first control image's)", min=64,
                      max=8192, multiple_of=8),
            *common_options(),
            positional=3, returns="object", label="Apply ControlNet", workload=_workload)
    def apply(self, ctx, control_images, prompt, control_type, width, height, negative_prompt, steps,
              guidance_scale, seed, model, batch, prompt_2, negative_prompt_2, scheduler):
        """Generate an image guided by one or several control images, each with its ControlNet, weight
        (controlnet_conditioning_scale) and start/end fraction. Returns {image, width, height, seed, ...}."""
        from PIL import Image as PILImage

        where = f"{self.type}.apply"
        m = self.model(ctx, model, where)
        controls = self._controls(ctx, control_images, control_type, where, resolve_models=True, base=m)
        first = controls[0]["image"]
        w, h = round8(width or first.shape[1], height or first.shape[0])
        pics = [PILImage.fromarray(resize(c["image"], w, h)) for c in controls]
        one = len(controls) == 1
        seed = ctx.seed(seed)
        arrays, used, notes = run_pipeline(
            ctx, self, m, "controlnet", scheduler=scheduler, seed=seed, batch=batch, label="apply",
            controlnets=[c["net"] for c in controls], prompt=prompt, image=pics[0] if one else pics,
            width=w, height=h, negative_prompt=negative_prompt or None, num_inference_steps=steps,
            guidance_scale=guidance_scale,
            controlnet_conditioning_scale=controls[0]["weight"] if one else [c["weight"] for c in controls],
            control_guidance_start=controls[0]["start"] if one else [c["start"] for c in controls],
            control_guidance_end=controls[0]["end"] if one else [c["end"] for c in controls],
            **note_sdxl(ctx, m, where, prompt_2, negative_prompt_2))
        meta = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
                "guidance_scale": guidance_scale, "width": w, "height": h, "model": m.name, "family": m.family,
                **used,
                "controls": [{"controlType": c["type"], "model": c["net"].name, "weight": c["weight"],
                              "start": c["start"], "end": c["end"]} for c in controls]}
        return build_result(self, "apply", arrays, seed, meta, notes)

    # --- helpers --------------------------------------------------------------------------------
    def _controls(self, ctx, value, default_type, where, *, resolve_models, base: ResolvedModel | None = None):
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ArgumentError(f"{where}: no control image given")
        if len(items) > 8:
            raise ArgumentError(f"{where}: at most 8 control images, got {len(items)}")
        out = []
        for i, item in enumerate(items):
            spec = dict(item) if isinstance(item, dict) else {"image": item}
            unknown = set(spec) - set(CONTROL_FIELDS) - {"controlType", "type", "scale", "conditioning_scale"}
            if unknown:
                raise ArgumentError(f"{where}: control #{i + 1} has unknown field(s) {', '.join(sorted(unknown))}",
                                    hint="fields: " + ", ".join(CONTROL_FIELDS))
            img = spec.get("image")
            if isinstance(img, str):
                img = ctx.runtime.canvas.control_image(img)
            if getattr(img, "type_name", None) != "image":
                raise ArgumentError(f"{where}: control #{i + 1} needs an image (or a canvas control layer id)")
            ctype = (spec.get("control_type") or spec.get("controlType") or spec.get("type")
                     or img.metadata.get("controlType") or default_type)
            if not isinstance(ctype, str):
                raise ArgumentError(f"{where}: control #{i + 1} has no control type",
                                    hint="give controlType in the control, or as apply's third argument")
            weight = spec.get("weight", spec.get("scale", spec.get("conditioning_scale", 1.0)))
            start, end = spec.get("start", 0.0), spec.get("end", 1.0)
            for name, v, lo, hi in (("weight", weight, 0, 5), ("start", start, 0, 1), ("end", end, 0, 1)):
                if type(v) not in (int, float) or not lo <= v <= hi:
                    raise ArgumentError(f"{where}: control #{i + 1}: {name} must be a number between {lo} and {hi}")
            if start >= end:
                raise ArgumentError(f"{where}: control #{i + 1}: start must be below end")
            rgb = to_rgb(img)
            if spec.get("preprocess") and resolve_models:
                rgb = canny(rgb) if ctype == "canny" else scribble(rgb) if ctype == "scribble" \
                    else self._annotate(ctype, rgb)
            entry = {"image": rgb, "type": ctype, "weight": float(weight), "start": float(start), "end": float(end)}
            if resolve_models:
                entry["net"] = self._net(ctx, spec.get("model"), ctype, base, where)
            out.append(entry)
        return out

    def _net(self, ctx, name, ctype, base: ResolvedModel, where) -> ResolvedModel:
        if name is not None:
            net = resolve(name, self.model_config, list(ctx.runtime.roots), where, kind="controlnet")
            if net.family != base.family:
                raise ScriptError(f"{where}: ControlNet {name!r} is for {net.family}, the model {base.name!r} is "
                                  f"{base.family}", hint="use a ControlNet made for the base model's family")
            return net
        configured = self.model_config.controlnets.get(ctype)
        if configured is None:
            raise CapabilityError(f"{where}: no ControlNet configured for {ctype!r}",
                                  hint="configured: " + (", ".join(sorted(self.model_config.controlnets)) or "none")
                                  + "; the host adds [models] controlnets = { " + ctype + " = \"folder or id\" }")
        for cand in configured if isinstance(configured, list) else [configured]:
            net = resolve(cand, self.model_config, [], where, kind="controlnet", trusted=True)
            if net.family == base.family:
                return net
        raise CapabilityError(f"{where}: no {ctype!r} ControlNet for {base.family} models is configured",
                              hint="add one for this family to [models] controlnets")

    def _annotate(self, ctype: str, rgb: np.ndarray) -> np.ndarray:
        where = f"{self.type}.preprocess"
        cls_name = PREPROCESSORS.get(ctype)
        if cls_name is None:
            raise ArgumentError(f"{where}: no preprocessor for {ctype!r}", hint="one of " + ", ".join(PREPROCESSORS))
        folder = self.model_config.annotators
        if not folder:
            raise CapabilityError(f"{where}: the {ctype} preprocessor needs the Annotators weights",
                                  hint="the host sets [models] annotators = \"folder with lllyasviel/Annotators\"; "
                                       "canny and scribble need no weights")
        det = self._detectors.get(ctype)
        if det is None:
            try:
                import controlnet_aux
            except ImportError:
                raise CapabilityError(f"{where}: {ctype} needs controlnet-aux",
                                      hint="pip install 'viwoscript[diffusion]'") from None
            try:
                det = getattr(controlnet_aux, cls_name).from_pretrained(folder)
            except Exception as e:  # noqa: BLE001 - third-party loaders raise anything
                raise ScriptError(f"{where}: cannot load the {ctype} preprocessor from {folder}: {e}") from None
            self._detectors[ctype] = det
        from PIL import Image as PILImage

        out = det(PILImage.fromarray(rgb))
        return to_rgb(np.asarray(out.convert("RGB")))
