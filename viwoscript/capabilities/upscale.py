"""``diffusers.upscale``: model upscaling (Real-ESRGAN, ESRGAN, compact), GFPGAN face restore, and
traditional resizing on pyvips.

- ``upscaleTraditional(image, params)`` needs only the core install (pyvips); see
  :mod:`viwoscript.capabilities.upscale_traditional` for the methods and how they match Pillow.
- ``upscale(image, model, factor, options)`` and ``faceRestore(image, strength, options)`` load the
  official ``.pth`` files with spandrel (the ``diffusion`` extra), from a models directory the host
  configures (:class:`~viwoscript.capabilities.upscale_models.UpscaleConfig`), never downloading.

Host configuration (never visible to scripts)::

    Runtime(capabilities=[Upscale(models_dir="~/models/upscale", device="auto")], grants=[...])

An entry-point instance (the CLI) reads the models directory from ``$VIWO_UPSCALE_MODELS``.
"""

from __future__ import annotations

from typing import Any

from ..errors import CapabilityError
from .base import ALLOWED_MODELS, Capability, Limit, ParamSpec, Workload, method
from .upscale_traditional import MAX_FACTOR, METHODS, MIN_FACTOR, output_size

#: Upscaled outputs are large: the size limits of this capability default higher than generation's.
UPSCALE_LIMITS = (
    ALLOWED_MODELS,
    Limit("max_width", "number", 8192, "Widest image a method may produce, in pixels"),
    Limit("max_height", "number", 8192, "Tallest image a method may produce, in pixels"),
    Limit("max_pixels", "number", 8192 * 8192, "Most pixels (width × height) in one output image"),
    Limit("max_compute", "number", 250, "Largest compute cost of one call: output width × height / 1e6"),
)
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32


def _factor_workload(args: dict) -> Workload:
    img = args.get("image")
    w, h = output_size(getattr(img, "width", 0), getattr(img, "height", 0), float(args.get("factor") or 1))
    return Workload(w, h, 1)


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
        from .upscale_models import UpscaleConfig

        self.config = UpscaleConfig(models_dir, dict(models or {}), device)
        #: A path to a YuNet ONNX file, or a function rgb -> [{"box", "landmarks", "score"}].
        self.face_detector = face_detector
        self.default_tile = int(tile)
        self._nets: dict[tuple, Any] = {}

    def unload(self) -> None:
        self._nets.clear()

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

        from ..values import Image
        from .upscale_faces import gfpgan_restorer, restore_faces, yunet_detector
        from .upscale_models import load_net, require_torch
        from .upscale_traditional import resize_pixels

        where = f"{self.type}.faceRestore"
        detector = self._detector(where, yunet_detector)
        require_torch(where)
        path, _ = self.config.weight_file(model, where)
        net = self._net(path, where, "FaceSR", load_net)
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

    # --- shared -------------------------------------------------------------------------------------
    def _net(self, path, where: str, purpose: str, load_net):
        key = (str(path), self.config.device, purpose)
        if key not in self._nets:
            self._nets[key] = load_net(path, self.config.device, where, purpose)
        return self._nets[key]

    def _detector(self, where: str, yunet_detector):
        if callable(self.face_detector):
            return self.face_detector
        path = self.face_detector or self.config.detector_file()
        if path is None:
            raise CapabilityError(f"{where}: no face detector is configured",
                                  hint="put OpenCV's face_detection_yunet_2023mar.onnx in the models directory "
                                       "(or Upscale(face_detector=...)); it is never downloaded")
        key = ("detector", str(path))
        if key not in self._nets:
            self._nets[key] = yunet_detector(path, where)
        return self._nets[key]

    def _model_upscale(self, ctx, where, px, model, factor, tile, overlap, task):
        """Run the named network tiled; alpha is resized separately (lanczos); returns (pixels, tile)."""
        from .upscale_models import load_net, require_torch, tiled
        from .upscale_traditional import resize_pixels

        require_torch(where)
        path, _ = self.config.weight_file(model, where, factor)
        net = self._net(path, where, "SR", load_net)
        rgb, alpha = _split(px)
        out, tile = tiled(net, rgb, tile, overlap, lambda i, n: ctx.progress(i, n, task), ctx.check_interrupt)
        if net.scale != factor:
            # a 4× net asked for 2×: a Lanczos reduce of its 4× output (sharper than a 2× bicubic)
            out = resize_pixels(out, factor / net.scale, "lanczos")
        if alpha is not None:
            alpha = resize_pixels(alpha, factor, "lanczos")
        return _join(out, alpha, px.shape[2]), tile


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
