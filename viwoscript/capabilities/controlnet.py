"""``controlnet.generate``: preprocess control images and generate with one or several ControlNets.

Control images come from images or canvas control layers (their ``controlType`` travels with them).
The ``canny`` and ``invert`` preprocessors need no weights; ``scribble`` (HED scribble), ``hed``,
``depth``, ``openpose`` and ``lineart`` use controlnet-aux with the ``lllyasviel/Annotators`` weights the
host configured (``[models] annotators = "folder"``), run on the configured device, held by the model
manager, and return a control image of the input's size. An ``annotators`` value that is not a local
folder is a Hugging Face id, fetched only with ``download = true``. ``preprocess`` needs no diffusion
model: it runs where the capability is granted even when no model is configured
(:meth:`ControlNetGenerate.available_for`); :meth:`ControlNetGenerate.preprocessors` says which
preprocessors can run here.
ControlNet models are configured per control type (``[models] controlnets = {canny = [...]}``), one
per base family; the pipeline shares the base model's weights (``from_pipe``).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from ..errors import ArgumentError, CapabilityError, ScriptError
from ..models.images import resize, round8, to_rgb
from ..models.resolve import ResolvedModel, offline, resolve
from .base import Capability, ParamSpec, Workload, method
from .diffusers_base import DiffusersCapability, build_result, note_sdxl, run_pipeline
from .options import common_options

#: Preprocessors: name → (controlnet-aux class, call options) (None: built in, no weights).
PREPROCESSORS: dict[str, tuple[str, dict] | None] = {
    "canny": None, "invert": None, "scribble": ("HEDdetector", {"scribble": True}),
    "hed": ("HEDdetector", {}), "depth": ("MidasDetector", {}), "openpose": ("OpenposeDetector", {}),
    "lineart": ("LineartDetector", {}),
}
#: Which preprocessors need the Annotators weights.
ANNOTATED = tuple(k for k, v in PREPROCESSORS.items() if v is not None)
CONTROL_FIELDS = ("image", "control_type", "model", "weight", "start", "end", "preprocess")


def canny(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    import cv2

    edges = cv2.Canny(np.ascontiguousarray(rgb), int(low), int(high))
    return np.repeat(edges[:, :, None], 3, axis=2)


def invert(rgb: np.ndarray, threshold: int = 48) -> np.ndarray:
    """A1111's "invert" preprocessor for drawn lines: white lines on black, every pixel that differs
    from the image's dominant (background) colour (dark pencil on white paper, or any ink on any paper)."""
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

    @classmethod
    def available_for(cls, args: dict) -> str | None:
        """``preprocess`` (bound arguments ``image`` and ``control_type``, no ``control_images``) needs no
        diffusion model: only the installed packages; annotator weights are checked when it runs."""
        if "control_type" in args and "image" in args and "control_images" not in args:
            return Capability.availability.__func__(cls)
        return super().available_for(args)

    @classmethod
    def preprocessors(cls) -> list[dict]:
        """Every preprocessor with whether it can run here: ``{type, available, reason, weights}``
        (``weights``: it needs the Annotators weights). Reads configuration only, loads nothing."""
        base = Capability.availability.__func__(cls)
        config = cls.model_config
        folder = config.annotators
        if not folder:
            missing = "needs the Annotators weights: the host sets [models] annotators = \"folder\""
        elif not os.path.isdir(os.path.expanduser(folder)) and (not config.download or offline()):
            missing = f"annotators {folder!r} is not a local folder, and downloads are off"
        else:
            missing = None
        rows = []
        for name, found in PREPROCESSORS.items():
            if base:
                reason = base
            elif found is None:
                reason = None if importlib.util.find_spec("cv2") else "needs OpenCV: pip install 'viwoscript[diffusion]'"
            elif importlib.util.find_spec("controlnet_aux") is None:
                reason = "needs controlnet-aux: pip install 'viwoscript[diffusion]'"
            else:
                reason = missing
            rows.append({"type": name, "available": reason is None, "reason": reason, "weights": found is not None})
        return rows

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
            ParamSpec("control_type", "string", description="canny, invert (drawn lines), scribble (HED "
                      "scribble), hed, depth, openpose or lineart", choices=tuple(PREPROCESSORS), aliases=("type",)),
            ParamSpec("low_threshold", "integer", 100, "Canny: lower hysteresis threshold", min=0, max=255),
            ParamSpec("high_threshold", "integer", 200, "Canny: upper hysteresis threshold", min=0, max=255),
            ParamSpec("threshold", "integer", 48, "Invert: how far from the background a pixel is ink",
                      min=0, max=255),
            ParamSpec("resolution", "integer", 512, "Annotators: the short side they run at (the result is "
                      "the input's size)", min=64, max=2048, aliases=("detect_resolution",)),
            positional=2, returns="image", label="Preprocess")
    def preprocess(self, ctx, image, control_type, low_threshold, high_threshold, threshold, resolution):
        """Make a control image (white features on black) of the picture's size."""
        from ..values import Image

        rgb = to_rgb(image)
        out = self._preprocess(ctx, control_type, rgb, low=low_threshold, high=high_threshold,
                               threshold=threshold, resolution=resolution)
        ctype = "scribble" if control_type == "invert" else control_type  # the ControlNet an invert feeds
        return Image(out, {"controlType": ctype, "preprocessor": control_type})

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
              guidance_scale, seed, model, batch, prompt_2, negative_prompt_2, scheduler, **options):
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
            ctx, self, m, "controlnet", scheduler=scheduler, options=options, seed=seed, batch=batch, label="apply",
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
                rgb = self._preprocess(ctx, spec["preprocess"] if isinstance(spec["preprocess"], str) else ctype,
                                       rgb)
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

    def _preprocess(self, ctx, name: str, rgb: np.ndarray, *, low: int = 100, high: int = 200, threshold: int = 48,
                    resolution: int = 512) -> np.ndarray:
        if name == "canny":
            return canny(rgb, low, high)
        if name == "invert":
            return invert(rgb, threshold)
        return self._annotate(ctx, name, rgb, resolution)

    def _annotate(self, ctx, ctype: str, rgb: np.ndarray, resolution: int = 512) -> np.ndarray:
        """Run a controlnet-aux annotator at ``resolution`` (short side) and return the input's size."""
        where = f"{self.type}.preprocess"
        found = PREPROCESSORS.get(ctype)
        if found is None:
            raise ArgumentError(f"{where}: no preprocessor for {ctype!r}", hint="one of " + ", ".join(PREPROCESSORS))
        cls_name, options = found
        det = self._detector(ctx, ctype, cls_name, where)
        from PIL import Image as PILImage

        h, w = rgb.shape[:2]

        def run():
            out = det(PILImage.fromarray(rgb), detect_resolution=resolution, image_resolution=resolution, **options)
            return to_rgb(np.asarray(out.convert("RGB") if hasattr(out, "convert") else out))

        out = self.manager(ctx).call(run)  # the annotator's weights sit on the manager's device and thread
        if out.shape[:2] != (h, w):
            out = resize(out, w, h)
            if options.get("scribble"):  # a scribble stays black and white
                out = np.where(out >= 64, 255, 0).astype(np.uint8)
        return out

    def _detector(self, ctx, ctype: str, cls_name: str, where: str) -> Any:
        """The annotator, loaded once per (weights, device) and held by the Runtime's model manager."""
        config = self.model_config
        folder = config.annotators
        if not folder:
            hint = "the host sets [models] annotators = \"folder with lllyasviel/Annotators\"; canny and " \
                   "invert need no weights"
            if ctype == "scribble":
                hint += "; for lines drawn on paper use \"invert\""
            raise CapabilityError(f"{where}: the {ctype} preprocessor needs the Annotators weights", hint=hint)
        local = os.path.isdir(os.path.expanduser(folder))
        if not local and (not config.download or offline()):
            raise CapabilityError(f"{where}: annotators {folder!r} is not a local folder, and downloads are off",
                                  hint="point [models] annotators at a folder holding the lllyasviel/Annotators "
                                       "files, or set download = true to fetch them from the Hugging Face Hub")
        source = os.path.expanduser(folder) if local else folder
        from ..models.device import device_policy
        from ..models.manager import module_bytes

        device, _ = device_policy(config)

        def load():
            try:
                import controlnet_aux
            except ImportError:
                raise CapabilityError(f"{where}: {ctype} needs controlnet-aux",
                                      hint="pip install 'viwoscript[diffusion]'") from None
            try:
                det = getattr(controlnet_aux, cls_name).from_pretrained(source)
            except Exception as e:  # noqa: BLE001 - third-party loaders raise anything
                raise ScriptError(f"{where}: cannot load the {ctype} preprocessor from {folder}: {e}",
                                  hint="the folder needs the lllyasviel/Annotators file for it (e.g. "
                                       "ControlNetHED.pth for scribble and hed)") from None
            if hasattr(det, "to"):
                det = det.to(device) or det
            modules = [v for v in vars(det).values() if hasattr(v, "parameters")]
            return det, module_bytes(modules)

        return self.manager(ctx).call(lambda: self.manager(ctx).hold(
            ("annotator", cls_name, source, device), load, name=f"annotator {cls_name}", path=source,
            kind="annotator", device=device))
