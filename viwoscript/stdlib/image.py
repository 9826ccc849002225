"""``image.*``: load, save, inspect and edit Image values (docs/images.md).

Files are read and written only under the Runtime's allowed roots (``runtime.resolve_path``). Every image
saved embeds the script that is running and its arguments (see :mod:`viwoscript.io`). Decoding, colours,
channel conversions and resizing are the pixels floor's (:mod:`viwoscript.pixels`); rotation and blurs go
through pyvips (imported on first use); per-pixel maths is numpy. Images are immutable: every opcode
returns a new one.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ArgumentError, ScriptError, SizeLimitError
from ..lazy import lazy_module
from ..limits import images_made_by
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import Image, to_json_value

np = lazy_module("numpy")

OPCODES: list = []

#: Largest image an opcode makes (width × height), like the canvas limit.
MAX_PIXELS = 64 * 1024 * 1024
MAX_SIDE = 65_535
KERNELS = ("nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3", "area")
BLEND_MODES = ("normal", "multiply", "screen", "overlay", "darken", "lighten", "add", "difference")
FILTERS = ("blur", "sharpen", "grayscale", "invert", "levels")
CONVERSIONS = ("png", "jpeg", "jpg", "webp", "L", "RGB", "RGBA")
_TRANSFORM_STEPS = ("crop", "resize", "scale", "rotate", "flip")
_TRANSFORM_OPTIONS = ("background", "kernel")


def opcode(name, *params, **kw):
    kw.setdefault("category", "image")
    register = _opcode(name, *params, into=OPCODES, **kw)
    if kw.get("returns") not in ("image",):
        return register
    return lambda fn: register(images_made_by(fn, name))  # images count against Limits.max_memory


# --- helpers ---------------------------------------------------------------------------------------

def _vips(op: str):
    try:
        import pyvips
    except (ImportError, OSError) as e:  # pragma: no cover - pyvips is a core dependency
        raise ScriptError(f"{op}: pyvips is not available ({e})",
                          hint="pip install pyvips pyvips-binary (or reinstall viwoscript)") from None
    return pyvips


def _to_vips(pixels: np.ndarray, op: str):
    pyvips = _vips(op)
    h, w, c = pixels.shape
    return pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).tobytes(), w, h, c, "uchar")


def _from_vips(v) -> np.ndarray:
    if v.format != "uchar":
        v = v.rint().cast("uchar")  # cast clips to 0–255
    return np.ndarray(buffer=v.write_to_memory(), dtype=np.uint8, shape=(v.height, v.width, v.bands)).copy()


def _via_vips(pixels: np.ndarray, op: str, fn) -> np.ndarray:
    """Run ``fn`` on a float vips image; alpha is premultiplied around it so edges do not darken."""
    v = _to_vips(pixels, op).cast("float")
    if pixels.shape[2] == 4:
        out = fn(v.premultiply()).unpremultiply()
    else:
        out = fn(v)
    return _from_vips(out)


def _number(v: Any, op: str, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if type(v) not in (int, float) or not math.isfinite(v):
        raise ArgumentError(f"{op}: {name} must be a number, got {_show(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"from {lo:g} to {hi:g}" if lo is not None and hi is not None else (
            f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
        raise ArgumentError(f"{op}: {name} must be a number {rng}, got {_show(v)}")
    return float(v)


def _int(v: Any, op: str, name: str, lo: int | None = None, hi: int | None = None) -> int:
    n = _number(v, op, name, lo, hi)
    if n != int(n):
        raise ArgumentError(f"{op}: {name} must be a whole number, got {_show(v)}")
    return int(n)


def _show(v: Any) -> str:
    from ..values import to_display

    return to_display(v)


def _options(options: Any, op: str, allowed: tuple[str, ...]) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ArgumentError(f"{op}: options must be an object, got {_show(options)}")
    for key in options:
        if key not in allowed:
            raise ArgumentError(f"{op}: unknown option '{key}'", hint="options: " + ", ".join(allowed))
    return options


def _check_size(w: int, h: int, op: str) -> None:
    if w < 1 or h < 1 or w > MAX_SIDE or h > MAX_SIDE:
        raise ArgumentError(f"{op}: result size {w}×{h} is out of range 1–{MAX_SIDE}")
    if w * h > MAX_PIXELS:
        raise SizeLimitError(f"{op}: result of {w}×{h} exceeds the limit of {MAX_PIXELS} pixels",
                             hint="make the image smaller first")


def _color(value: Any, op: str) -> tuple[int, int, int, int]:
    from ..pixels.colors import parse_color

    r, g, b, a = parse_color(value, op)
    return int(r), int(g), int(b), int(round(a * 255))


def _new(pixels: np.ndarray, src: Image, **changes) -> Image:
    return Image(pixels, {**src.metadata, **changes} if changes else src.metadata)


# --- files -----------------------------------------------------------------------------------------

@opcode("image.load", P("src", "string", description="a file path under the allowed folders, or a data: URL"),
        returns="image", label="Load Image", pure=False)
def load(ev, src=None, *_):
    """Read an image file (PNG, JPEG, WebP, GIF, BMP, TIFF, ... — the first frame of animations). Its
    metadata is what made it: the metadata viwoscript saved, or the prompt, seed, model of A1111, ComfyUI
    or InvokeAI. Images over 64 megapixels are refused."""
    from ..io import decode_bytes, read_image
    from ..pixels.decode import data_url_bytes, is_data_url

    op = "image.load"
    if is_data_url(src):
        return decode_bytes(data_url_bytes(src, op), op=op, name="the data URL")
    if src[:10].lower().startswith(("http://", "https://", "ftp://", "file:")):
        raise ScriptError(f"{op}: remote URLs are not allowed ({src[:80]})",
                          hint="download the file into an allowed folder, or pass a data: URL")
    path = ev.runtime.resolve_path(src, op, must_exist=True)
    if not path.is_file():
        raise ScriptError(f"{op}: not a file: {src}")
    return read_image(path, op=op)


def _running_script(ev) -> Any:
    recorded = getattr(ev, "record", None)  # Runtime.run(record=...): e.g. the REPL's whole session
    if recorded is not None:
        return recorded
    tree = getattr(ev, "program", None)
    if tree is not None:
        return tree
    return ev.source


@opcode("image.save", P("image", "image"),
        P("path", "string", description="file name under the allowed folders; .png, .jpg or .webp"),
        P("options", "object", None, "{format, quality (1–100), lossless, background, metadata}"),
        returns="string", label="Save Image", pure=False)
def save(ev, image=None, path=None, options=None, *_):
    """Write an image file under the allowed folders (format from the suffix unless options.format says)
    and return its path. The file embeds the running script, its arguments and the image's metadata
    (prompt, seed, model...) so `viwo run` can re-run it and other tools show the prompt; options.metadata
    false leaves it out. JPEG has no alpha: transparent parts are put on options.background (white)."""
    from ..io.codec import encode_image, format_for_path

    op = "image.save"
    opts = _options(options, op, ("format", "quality", "lossless", "background", "metadata"))
    fmt = format_for_path(path, op, opts.get("format"))
    target = ev.runtime.resolve_path(path, op, must_exist=False)
    if target.is_dir():
        raise ScriptError(f"{op}: {path} is a folder")
    if not target.parent.is_dir():
        raise ScriptError(f"{op}: folder of {path} does not exist", hint="save into an existing folder")
    quality = opts.get("quality")
    if quality is not None:
        _int(quality, op, "quality", 1, 100)
    with_meta = opts.get("metadata", True)
    data = encode_image(image, fmt, script=_running_script(ev) if with_meta else None,
                        args=ev.args if with_meta else None, quality=quality,
                        lossless=bool(opts.get("lossless", False)), background=opts.get("background", "white"),
                        op=op, metadata=bool(with_meta), budget=ev)
    _atomic_write(target, data)
    return path


def _atomic_write(target, data: bytes) -> None:
    from ..io.files import atomic_write

    atomic_write(target, data, fsync=False)


# --- values ----------------------------------------------------------------------------------------

@opcode("image.new", P("width", "number"), P("height", "number"),
        P("color", "any", "transparent", "fill colour (CSS colour or [r, g, b, a])"), returns="image",
        label="New Image")
def new(ev, width=None, height=None, color="transparent", *_):
    """A new RGBA image filled with one colour (transparent by default)."""
    op = "image.new"
    w, h = _int(width, op, "width", 1, MAX_SIDE), _int(height, op, "height", 1, MAX_SIDE)
    _check_size(w, h, op)
    px = np.empty((h, w, 4), np.uint8)
    px[...] = _color(color, op)
    return Image(px)


@opcode("image.size", P("image", "image"), returns="array", label="Image Size")
def size(ev, image=None, *_):
    """[width, height] of an image."""
    return [image.width, image.height]


@opcode("image.pixel", P("image", "image"), P("x", "number"), P("y", "number"), returns="array", label="Pixel")
def pixel(ev, image=None, x=None, y=None, *_):
    """The pixel at column x, row y as [r, g, b, a] (0–255); outside the image is an error."""
    from ..pixels.channels import with_alpha

    op = "image.pixel"
    xi, yi = _int(x, op, "x"), _int(y, op, "y")
    if not (0 <= xi < image.width and 0 <= yi < image.height):
        raise ArgumentError(f"{op}: ({xi}, {yi}) is outside the {image.width}×{image.height} image")
    return [int(v) for v in with_alpha(image.pixels[yi:yi + 1, xi:xi + 1])[0, 0]]


@opcode("image.metadata", P("image", "image"), returns="object", label="Image Metadata")
def metadata(ev, image=None, *_):
    """The image's metadata as an object: what made it (prompt, seed, model, capability, method...) for
    generated or loaded images."""
    return to_json_value(image.metadata, ev, "image.metadata")


@opcode("image.with_metadata", P("image", "image"), P("changes", "object", description="keys to set; null removes"),
        returns="image", label="With Metadata")
def with_metadata(ev, image=None, changes=None, *_):
    """The same pixels with metadata keys set (a null value removes the key)."""
    meta = dict(image.metadata)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            try:
                meta[key] = to_json_value(value, ev, "image.with_metadata")
            except ValueError:
                raise ScriptError(f"image.with_metadata: the value of {key} contains itself",
                                  hint="metadata is JSON data: build it without the self-reference") from None
    return Image(image.pixels, meta)


# --- conversion ------------------------------------------------------------------------------------

@opcode("image.convert", P("image", "image"),
        P("to", "string", description="png, jpeg, webp (encode with that format's losses) or L, RGB, RGBA (mode)",
          choices=CONVERSIONS),
        P("options", "object", None, "{quality (1–100), background (for JPEG and RGB), lossless (WebP)}"),
        returns="image", label="Convert Image")
def convert(ev, image=None, to=None, options=None, *_):
    """Convert to a mode (L, RGB, RGBA) or pass the image through a file format (png, jpeg, webp) to get
    exactly what that file would hold: JPEG drops alpha onto the background colour (white) and is lossy at
    the quality given (95). Metadata is kept; format conversions record the format."""
    from ..io.codec import decode_bytes, encode_image
    from ..pixels.channels import gray, to_rgb, with_alpha

    op = "image.convert"
    opts = _options(options, op, ("quality", "background", "lossless"))
    if to not in CONVERSIONS:
        raise ArgumentError(f"{op}: unknown target '{to}'", hint="one of " + ", ".join(CONVERSIONS))
    background = opts.get("background", "white")
    px = image.pixels
    if to == "L":
        return _new(gray(px)[:, :, :1], image)
    if to == "RGB":
        return _new(to_rgb(px, _color(background, op)[:3]), image)
    if to == "RGBA":
        return _new(with_alpha(px), image)
    quality = opts.get("quality")
    if quality is not None:
        _int(quality, op, "quality", 1, 100)
    fmt = {"jpg": "JPEG"}.get(to, to.upper())
    data = encode_image(image, fmt, quality=quality, lossless=bool(opts.get("lossless", False)),
                        background=background, op=op, metadata=False)
    out = decode_bytes(data, op=op)
    return Image(out.pixels, {**image.metadata, "format": "jpeg" if fmt == "JPEG" else to})


# --- geometry ----------------------------------------------------------------------------------------

@opcode("image.transform", P("image", "image"),
        P("steps", "object", description="{crop: [x, y, w, h], resize: [w, h], scale: s, rotate: degrees, "
          "flip: horizontal|vertical|both, background, kernel}; steps run in the order written"),
        returns="image", label="Transform Image")
def transform(ev, image=None, steps=None, *_):
    """Crop, resize, scale, rotate and flip, in the order the keys are written. rotate is clockwise in
    degrees, any angle: the image grows to hold the turned picture, corners filled with background
    (transparent; a colour). resize/scale resample with kernel (lanczos3; nearest, linear, cubic, mitchell,
    lanczos2, area), enlarging and shrinking alike (docs/images.md). A crop may reach outside the image; that part is background."""
    op = "image.transform"
    _options(steps, op, _TRANSFORM_STEPS + _TRANSFORM_OPTIONS)
    kernel = steps.get("kernel", "lanczos3")
    if kernel not in KERNELS:
        raise ArgumentError(f"{op}: unknown kernel {_show(kernel)}", hint="one of " + ", ".join(KERNELS))
    bg = _color(steps.get("background", "transparent"), op)
    px = image.pixels
    for key, value in steps.items():
        ev.check_interrupt()
        if key == "crop":
            px = _crop(px, value, bg, op)
        elif key == "resize":
            if not isinstance(value, list) or len(value) != 2:
                raise ArgumentError(f"{op}: resize must be [width, height], got {_show(value)}")
            w, h = _int(value[0], op, "resize width", 1, MAX_SIDE), _int(value[1], op, "resize height", 1, MAX_SIDE)
            px = _resize(px, w, h, kernel, op, ev)
        elif key == "scale":
            s = _number(value, op, "scale", 1e-4, 1e4)
            w, h = max(1, round(px.shape[1] * s)), max(1, round(px.shape[0] * s))
            px = _resize(px, w, h, kernel, op, ev)
        elif key == "rotate":
            px = _rotate(px, _number(value, op, "rotate", -1e6, 1e6), bg, op)
        elif key == "flip":
            if value not in ("horizontal", "vertical", "both"):
                raise ArgumentError(f"{op}: flip must be \"horizontal\", \"vertical\" or \"both\", got {_show(value)}")
            if value in ("horizontal", "both"):
                px = px[:, ::-1]
            if value in ("vertical", "both"):
                px = px[::-1]
    return _new(np.ascontiguousarray(px), image)


def _crop(px: np.ndarray, box: Any, bg: tuple, op: str) -> np.ndarray:
    from ..pixels.channels import with_alpha

    if not isinstance(box, list) or len(box) != 4:
        raise ArgumentError(f"{op}: crop must be [x, y, width, height], got {_show(box)}")
    x, y = _int(box[0], op, "crop x"), _int(box[1], op, "crop y")
    w, h = _int(box[2], op, "crop width", 1, MAX_SIDE), _int(box[3], op, "crop height", 1, MAX_SIDE)
    _check_size(w, h, op)
    H, W = px.shape[:2]
    if x >= 0 and y >= 0 and x + w <= W and y + h <= H:
        return px[y:y + h, x:x + w]
    src = px if bg[3] == 255 and px.shape[2] != 4 and px.shape[2] == 3 else with_alpha(px)
    if src.shape[2] == 3:
        fill = bg[:3]
    elif px.shape[2] == 1 and bg[3] == 255 and bg[0] == bg[1] == bg[2]:
        src, fill = px, bg[:1]
    else:
        fill = bg
    out = np.empty((h, w, src.shape[2]), np.uint8)
    out[...] = fill
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 < x1 and y0 < y1:
        out[y0 - y:y1 - y, x0 - x:x1 - x] = src[y0:y1, x0:x1]
    return out


def _resize(px: np.ndarray, w: int, h: int, kernel: str, op: str, ev) -> np.ndarray:
    from ..pixels.resize import resize

    _check_size(w, h, op)
    if (w, h) == (px.shape[1], px.shape[0]):
        return px
    return resize(px, w, h, kernel, progress=lambda _i, _n: ev.check_interrupt())


def _rotate(px: np.ndarray, degrees: float, bg: tuple, op: str) -> np.ndarray:
    from ..pixels.channels import with_alpha

    turns = degrees / 90.0
    if turns == int(turns):
        return np.rot90(px, k=-int(turns) % 4)  # clockwise, exact
    rad = math.radians(degrees)
    H, W = px.shape[:2]
    nw = int(math.ceil(abs(W * math.cos(rad)) + abs(H * math.sin(rad)) - 1e-9))
    nh = int(math.ceil(abs(W * math.sin(rad)) + abs(H * math.cos(rad)) - 1e-9))
    _check_size(nw, nh, op)
    opaque = bg[3] == 255
    src = px if (px.shape[2] == 3 and opaque) else with_alpha(px)
    if px.shape[2] == 1 and opaque and bg[0] == bg[1] == bg[2]:
        src = px
        background = [bg[0]]
    elif src.shape[2] == 3:
        background = list(bg[:3])
    else:
        a = bg[3] / 255.0
        background = [bg[0] * a, bg[1] * a, bg[2] * a, bg[3]]  # premultiplied, as the image is
    pyvips = _vips(op)
    interp = pyvips.Interpolate.new("bicubic")

    def fn(v):
        # vips_rotate turns clockwise about the centre and sizes the output to hold the whole image.
        out = v.rotate(degrees, interpolate=interp, background=background)
        if out.width != nw or out.height != nh:
            out = out.gravity("centre", nw, nh, extend="background", background=background)
        return out

    return _via_vips(src, op, fn)


# --- filters ----------------------------------------------------------------------------------------

@opcode("image.filter", P("image", "image"), P("filter", "string", description=", ".join(FILTERS), choices=FILTERS),
        P("options", "object", None, "blur: {sigma}; sharpen: {amount, sigma}; levels: {black, white, gamma}"),
        returns="image", label="Filter Image")
def filter_(ev, image=None, filter=None, options=None, *_):
    """blur (Gaussian, sigma in pixels, default 2), sharpen (unsharp mask: amount default 1, sigma 1),
    grayscale (ITU-R 601 luma; alpha kept), invert (colours, not alpha), levels (input black and white
    points 0–255 and gamma: out = ((v − black) / (white − black))^(1/gamma))."""
    from ..pixels.channels import gray

    op = "image.filter"
    px = image.pixels
    if filter == "blur":
        opts = _options(options, op, ("sigma",))
        sigma = _number(opts.get("sigma", 2), op, "sigma", 0, 500)
        if sigma == 0:
            return _new(px, image)
        out = _via_vips(px, op, lambda v: v.gaussblur(sigma, precision="float"))
    elif filter == "sharpen":
        opts = _options(options, op, ("amount", "sigma"))
        amount = _number(opts.get("amount", 1), op, "amount", 0, 20)
        sigma = _number(opts.get("sigma", 1), op, "sigma", 0.1, 500)

        def fn(v):
            return v + (v - v.gaussblur(sigma, precision="float")) * amount

        if px.shape[2] == 4:  # sharpen colour only; alpha stays as it is
            rgb = _via_vips(np.ascontiguousarray(px[:, :, :3]), op, fn)
            out = np.concatenate([rgb, px[:, :, 3:]], axis=2)
        else:
            out = _via_vips(px, op, fn)
    elif filter == "grayscale":
        _options(options, op, ())
        out = gray(px)
    elif filter == "invert":
        _options(options, op, ())
        out = px.copy()
        n = 3 if px.shape[2] >= 3 else 1
        out[:, :, :n] = 255 - px[:, :, :n]
    elif filter == "levels":
        opts = _options(options, op, ("black", "white", "gamma"))
        black = _number(opts.get("black", 0), op, "black", 0, 255)
        white = _number(opts.get("white", 255), op, "white", 0, 255)
        gamma = _number(opts.get("gamma", 1), op, "gamma", 0.01, 100)
        if white <= black:
            raise ArgumentError(f"{op}: white ({white:g}) must be above black ({black:g})")
        t = np.clip((np.arange(256, dtype=np.float64) - black) / (white - black), 0, 1) ** (1.0 / gamma)
        lut = np.floor(t * 255 + 0.5).astype(np.uint8)
        out = px.copy()
        n = 3 if px.shape[2] >= 3 else 1
        out[:, :, :n] = lut[px[:, :, :n]]
    else:
        raise ArgumentError(f"{op}: unknown filter {_show(filter)}", hint="one of " + ", ".join(FILTERS))
    return _new(out, image)


# --- compositing -------------------------------------------------------------------------------------

def _blend(mode: str, cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    if mode == "normal":
        return cs
    if mode == "multiply":
        return cb * cs
    if mode == "screen":
        return cb + cs - cb * cs
    if mode == "overlay":
        return np.where(cb <= 0.5, 2 * cb * cs, 1 - 2 * (1 - cb) * (1 - cs))
    if mode == "darken":
        return np.minimum(cb, cs)
    if mode == "lighten":
        return np.maximum(cb, cs)
    if mode == "add":
        return np.minimum(cb + cs, 1.0)
    return np.abs(cb - cs)  # difference


def composite_pixels(base: np.ndarray, over: np.ndarray, x: int, y: int, opacity: float, mode: str) -> np.ndarray:
    """``over`` placed at (x, y) on ``base`` (W3C compositing: blend mode, then source-over with the
    overlay's alpha × opacity). The overlay is clipped to the base; the result has the base's size."""
    from ..pixels.channels import as_rgb

    colour = base.shape[2] >= 3 or over.shape[2] >= 3
    b = base if not colour else (as_rgb(base) if base.shape[2] != 4 else base)
    has_alpha = b.shape[2] == 4 or b.shape[2] == 2
    out = b.copy()
    H, W = b.shape[:2]
    h, w = over.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1 or opacity <= 0:
        return out
    o = over[y0 - y:y1 - y, x0 - x:x1 - x]
    n = 3 if colour else 1
    cs = (as_rgb(o) if colour else o)[:, :, :n].astype(np.float32) / 255
    a_s = (o[:, :, 3:4].astype(np.float32) / 255 if o.shape[2] == 4 else np.ones(o.shape[:2] + (1,), np.float32))
    a_s = a_s * np.float32(opacity)
    region = b[y0:y1, x0:x1]
    cb = region[:, :, :n].astype(np.float32) / 255
    a_b = region[:, :, 3:4].astype(np.float32) / 255 if has_alpha else np.ones_like(a_s)
    mixed = (1 - a_b) * cs + a_b * _blend(mode, cb, cs)
    a_o = a_s + a_b * (1 - a_s)
    co = a_s * mixed + a_b * cb * (1 - a_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(a_o > 0, co / np.maximum(a_o, 1e-12), cb)  # nothing visible: base kept
    res = out[y0:y1, x0:x1]
    res[:, :, :n] = np.floor(np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8)
    if has_alpha:
        res[:, :, 3] = np.floor(a_o[:, :, 0] * 255 + 0.5).astype(np.uint8)
    return out


@opcode("image.composite", P("base", "image"), P("overlay", "image"),
        P("options", "object", None, "{x, y (top-left of the overlay, default 0), opacity (0–1, 1), mode}"),
        returns="image", label="Composite Images")
def composite(ev, base=None, overlay=None, options=None, *_):
    """Place overlay on base at (x, y) with opacity and a blend mode (normal, multiply, screen, overlay,
    darken, lighten, add, difference). The result has the base's size: parts of the overlay outside it
    are clipped, not an error. A base without alpha stays opaque."""
    op = "image.composite"
    opts = _options(options, op, ("x", "y", "opacity", "mode"))
    x, y = _int(opts.get("x", 0), op, "x"), _int(opts.get("y", 0), op, "y")
    opacity = _number(opts.get("opacity", 1), op, "opacity", 0, 1)
    mode = opts.get("mode", "normal")
    if mode not in BLEND_MODES:
        raise ArgumentError(f"{op}: unknown blend mode {_show(mode)}", hint="one of " + ", ".join(BLEND_MODES))
    return _new(composite_pixels(base.pixels, overlay.pixels, x, y, opacity, mode), base)
