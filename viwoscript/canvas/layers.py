"""The layer stack: an ordered list of RGBA layers (bottom first) with the fields of design §6.

Every method that a script reaches through an opcode raises a :class:`~viwoscript.errors.ViwoError`
whose message starts with that opcode's name. Strokes are validated at once but rasterized lazily, in
vectorized batches, when the pixels are next needed (reading a layer, compositing, saving) or when
enough are queued; the result is identical to drawing them one by one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, ScriptError, SizeLimitError
from ..pixels.colors import parse_color
from . import composite as comp
from . import raster

LAYER_TYPES = ("raster", "control", "mask")
TOOLS = ("brush", "eraser")
#: Properties ``canvas.layer.update`` accepts (``order`` is an alias of ``index``).
PROPS = ("name", "visible", "opacity", "locked", "controlType", "maskFor", "index", "order")

MAX_SIDE = 16384
MAX_PIXELS = 64 * 1024 * 1024
MAX_LAYERS = 256
MAX_BYTES = 2 * 1024 ** 3
MAX_POINTS = 1_000_000
MAX_BRUSH = 10_000.0
MAX_COORD = 1_000_000.0
#: Strokes queued on one layer before they are rasterized anyway (bounds the latency of one opcode).
FLUSH_EVERY = 256
#: Strokes rasterized between two calls of ``LayerStack.poll`` (the run's interrupt check).
POLL_EVERY = 64

#: Display-only tints (``composite(display=True)``): control layers lean towards blue, masks show red.
CONTROL_TINT = (40, 120, 255)
MASK_TINT = (255, 40, 40)


@dataclass(frozen=True)
class Stroke:
    points: np.ndarray  # (n, 2) float64, read-only
    color: tuple[int, int, int, float]
    color_text: Any  # the colour as the script wrote it (kept for decompile)
    size: float
    tool: str

    def to_script(self, layer_id: str) -> list:
        pts = [[_num(x), _num(y)] for x, y in self.points.tolist()]
        return ["canvas.draw_stroke", layer_id, pts, self.color_text, _num(self.size), self.tool]


@dataclass(frozen=True)
class Placed:
    """An image placed on a layer (``put_image``/``load_image``), kept for decompile."""

    pixels: np.ndarray  # RGBA uint8, read-only
    x: int
    y: int


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else float(v)


class Layer:
    """One layer. ``pixels`` is the (height, width, 4) uint8 array (allocated on first use)."""

    def __init__(self, stack: LayerStack, id: str, name: str, type: str):
        self.stack = stack
        self.id = id
        self.name = name
        self.type = type
        self.visible = True
        self.opacity = 1.0
        self.locked = False
        self.control_type: str | None = None
        self.mask_for: str | None = None
        #: For replay's placeholder layers: the script statement this layer stands for.
        self.op: Any = None
        #: Everything drawn since the layer was created or cleared, in order (strokes and images).
        self.history: list[Stroke | Placed] = []
        self._pixels: np.ndarray | None = None
        self._pending: list[Stroke] = []

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = np.zeros((self.stack.height, self.stack.width, 4), np.uint8)
        if self._pending:
            self._flush()
        return self._pixels

    @property
    def is_blank(self) -> bool:
        """True when nothing was ever drawn (cheap: no pixel scan)."""
        return self._pixels is None and not self._pending

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        px = self._pixels
        w, h = self.stack.width, self.stack.height
        poll = self.stack.poll
        batch: list[tuple[raster.Job, Stroke]] = []
        budget = 0
        scratch = raster.Scratch()
        for k, s in enumerate(pending):
            for job in raster.plan(s.points, s.size, w, h):
                batch.append((job, s))
                budget += job.pixels
                if budget >= raster.BATCH_PIXELS or len(batch) >= raster.BATCH_JOBS:
                    self._apply(px, batch, scratch)
                    batch, budget = [], 0
            if poll is not None and k % POLL_EVERY == POLL_EVERY - 1 and k + 1 < len(pending):
                if batch:
                    self._apply(px, batch, scratch)
                    batch, budget = [], 0
                try:
                    poll()
                except BaseException:
                    self._pending = pending[k + 1:]  # every stroke so far is drawn; the rest waits
                    raise
        if batch:
            self._apply(px, batch, scratch)

    @staticmethod
    def _apply(px: np.ndarray, batch: list, scratch: raster.Scratch) -> None:
        covs = raster.rasterize([job for job, _ in batch], scratch)
        for cov, (_, s) in zip(covs, batch, strict=True):
            comp.apply_stroke(px, cov, s.color, s.tool)

    def to_dict(self, index: int) -> dict:
        return {"id": self.id, "name": self.name, "type": self.type, "visible": self.visible,
                "opacity": self.opacity, "locked": self.locked, "controlType": self.control_type,
                "maskFor": self.mask_for, "index": index}

    def __repr__(self) -> str:
        return f"<layer {self.id!r} {self.type}>"


class LayerStack:
    """A canvas: size plus layers, bottom first. ``runtime.canvas`` is one of these.

    >>> s = LayerStack(8, 8)
    >>> _ = s.create("a", "A")
    >>> s.draw_stroke("a", [[4, 4]], "#ff0000", 4)
    >>> int(s.layer_image("a").pixels[4, 4, 0])
    255
    """

    def __init__(self, width: int = 1024, height: int = 1024, *, max_pixels: int = MAX_PIXELS,
                 max_layers: int = MAX_LAYERS, max_bytes: int = MAX_BYTES,
                 fetch_url: Callable[[str], bytes] | None = None):
        self.max_pixels = max_pixels
        self.max_layers = max_layers
        self.max_bytes = max_bytes
        #: Set by a host that lets scripts load remote URLs: ``fetch_url(url) -> bytes``.
        self.fetch_url = fetch_url
        #: Called between rasterization batches (the canvas opcodes install the run's interrupt check).
        self.poll: Callable[[], None] | None = None
        self.width, self.height = self._check_size(width, height, "canvas.size")
        self.layers: list[Layer] = []
        self.active: str | None = None

    # --- size ------------------------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def _check_size(self, w: Any, h: Any, op: str) -> tuple[int, int]:
        for name, v in (("width", w), ("height", h)):
            if type(v) not in (int, float) or not math.isfinite(v) or v != int(v):
                from ..values import to_display

                raise ArgumentError(f"{op}: {name} must be a whole number, got {to_display(v)}")
            if not 1 <= v <= MAX_SIDE:
                raise ArgumentError(f"{op}: {name} {int(v)} out of range 1–{MAX_SIDE}")
        w, h = int(w), int(h)
        if w * h > self.max_pixels:
            raise SizeLimitError(f"{op}: canvas of {w}×{h} exceeds the limit of {self.max_pixels} pixels",
                                 hint="use a smaller canvas")
        return w, h

    def set_size(self, width: Any, height: Any) -> None:
        """Resize an empty canvas (no layers)."""
        w, h = self._check_size(width, height, "canvas.size")
        if self.layers and (w, h) != self.size:
            raise ScriptError(f"canvas.size: the canvas already has {len(self.layers)} layer(s); "
                              "its size can only be set while it is empty",
                              hint="set the size first, or remove the layers")
        self.width, self.height = w, h

    def extend(self, left: Any = 0, top: Any = 0, right: Any = 0, bottom: Any = 0) -> None:
        """Grow the canvas by whole pixels on each side (outpainting): every layer keeps its picture, moved
        ``left`` right and ``top`` down; the new area is transparent. A layer's drawing history becomes
        that one picture, so decompiling gives the same pixels."""
        op = "canvas.extend"
        grow = []
        for name, v in (("left", left), ("top", top), ("right", right), ("bottom", bottom)):
            if type(v) not in (int, float) or not math.isfinite(v) or v != int(v) or v < 0:
                from ..values import to_display

                raise ArgumentError(f"{op}: {name} must be a whole number of pixels, 0 or more, got {to_display(v)}")
            grow.append(int(v))
        gl, gt, gr, gb = grow
        w, h = self._check_size(self.width + gl + gr, self.height + gt + gb, op)
        need = len(self.layers) * w * h * 4
        if need > self.max_bytes:
            raise SizeLimitError(f"{op}: {len(self.layers)} layers of {w}×{h} would need {need >> 20} MiB "
                                 f"(limit {self.max_bytes >> 20} MiB)", hint="remove layers or grow it less")
        for layer in self.layers:
            if layer.is_blank:
                continue
            old = layer.pixels
            new = np.zeros((h, w, 4), np.uint8)
            new[gt:gt + self.height, gl:gl + self.width] = old
            kept = old.copy()
            kept.flags.writeable = False
            layer._pixels = new
            layer.history = [Placed(kept, gl, gt)]
        self.width, self.height = w, h

    # --- layers ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __contains__(self, id: object) -> bool:
        return any(layer.id == id for layer in self.layers)

    def ids(self) -> list[str]:
        return [layer.id for layer in self.layers]

    def get(self, id: Any, op: str = "canvas.layer") -> Layer:
        if not isinstance(id, str):
            from ..values import to_display

            raise ArgumentError(f"{op}: expected a layer id (string), got {to_display(id)}")
        for layer in self.layers:
            if layer.id == id:
                return layer
        known = ", ".join(repr(x) for x in self.ids()[:20]) or "none"
        raise ScriptError(f"{op}: unknown layer {id!r}",
                          hint=f"create it first with canvas.layer.create; layers: {known}")

    def index(self, id: str) -> int:
        return self.ids().index(id)

    def create(self, id: Any, name: Any = None, type: Any = "raster") -> Layer:
        op = "canvas.layer.create"
        if not isinstance(id, str) or not id:
            raise ArgumentError(f"{op}: expected a non-empty string id")
        if len(id) > 200:
            raise ArgumentError(f"{op}: layer id is longer than 200 characters")
        if name is None:
            name = id
        if not isinstance(name, str):
            raise ArgumentError(f"{op}: expected string for name")
        if type is None:
            type = "raster"
        if type not in LAYER_TYPES:
            raise ArgumentError(f"{op}: unknown layer type {type!r}", hint="types: " + ", ".join(LAYER_TYPES))
        if id in self:
            raise ScriptError(f"{op}: layer {id!r} already exists",
                              hint="pick another id, or canvas.layer.clear / canvas.layer.remove it first")
        if len(self.layers) >= self.max_layers:
            raise SizeLimitError(f"{op}: the canvas already has {len(self.layers)} layers (limit {self.max_layers})",
                                 hint="remove layers you no longer need")
        need = (len(self.layers) + 1) * self.width * self.height * 4
        if need > self.max_bytes:
            raise SizeLimitError(f"{op}: {len(self.layers) + 1} layers of {self.width}×{self.height} would need "
                                 f"{need >> 20} MiB (limit {self.max_bytes >> 20} MiB)",
                                 hint="remove layers or use a smaller canvas")
        layer = Layer(self, id, name, type)
        self.layers.append(layer)
        self.active = id
        return layer

    def remove(self, id: Any) -> None:
        layer = self.get(id, "canvas.layer.remove")
        self.layers.remove(layer)
        if self.active == layer.id:
            self.active = None
        for other in self.layers:
            if other.mask_for == layer.id:
                other.mask_for = None

    def set_active(self, id: Any) -> None:
        self.active = None if id is None else self.get(id, "canvas.layer.set_active").id

    def _editable(self, id: Any, op: str) -> Layer:
        layer = self.get(id, op)
        if layer.locked:
            raise ScriptError(f"{op}: layer {layer.id!r} is locked",
                              hint=f'unlock it first: (canvas.layer.update "{layer.id}" {{"locked" false}})')
        return layer

    def clear(self, id: Any) -> None:
        layer = self._editable(id, "canvas.layer.clear")
        layer._pending = []
        layer._pixels = None
        layer.history = []

    def update(self, id: Any, props: Any) -> dict:
        """Change layer fields; every property is checked before any is applied. Returns the layer dict."""
        op = "canvas.layer.update"
        layer = self.get(id, op)
        if not isinstance(props, dict):
            raise ArgumentError(f"{op}: expected object for props")
        allowed = "allowed: name, visible, opacity, locked, controlType, maskFor, index (or order)"
        changes: dict[str, Any] = {}
        for key, value in props.items():
            if key not in PROPS:
                raise ArgumentError(f"{op}: unknown property {key!r}", hint=allowed)
            if key == "name":
                if not isinstance(value, str):
                    raise ArgumentError(f"{op}: name must be a string")
            elif key in ("visible", "locked"):
                if not isinstance(value, bool):
                    raise ArgumentError(f"{op}: {key} must be true or false")
            elif key == "opacity":
                if type(value) not in (int, float) or not 0 <= value <= 1:
                    raise ArgumentError(f"{op}: opacity must be a number from 0 to 1, got {value!r}")
                value = float(value)
            elif key == "controlType":
                if value is not None and not isinstance(value, str):
                    raise ArgumentError(f"{op}: controlType must be a string or null")
                if value is not None and layer.type != "control":
                    raise ArgumentError(f"{op}: controlType applies to control layers; {layer.id!r} is a {layer.type} layer")
            elif key == "maskFor":
                if value is not None:
                    if layer.type != "mask":
                        raise ArgumentError(f"{op}: maskFor applies to mask layers; {layer.id!r} is a {layer.type} layer")
                    target = self.get(value, op)
                    if target is layer:
                        raise ArgumentError(f"{op}: a mask layer cannot be its own maskFor")
            else:  # index / order
                key = "index"
                n = len(self.layers)
                if type(value) not in (int, float) or value != int(value) or not 0 <= value < n:
                    raise ArgumentError(f"{op}: index must be a whole number from 0 to {n - 1}, got {value!r}",
                                        hint="0 is the bottom layer")
                value = int(value)
                if "index" in changes and changes["index"] != value:
                    raise ArgumentError(f"{op}: index and order disagree")
            changes[key] = value
        for key, value in changes.items():
            if key == "index":
                self.layers.remove(layer)
                self.layers.insert(value, layer)
            elif key == "controlType":
                layer.control_type = value
            elif key == "maskFor":
                layer.mask_for = value
            else:
                setattr(layer, key, value)
        return layer.to_dict(self.index(layer.id))

    def to_list(self) -> list[dict]:
        """The layers as script objects (no pixels), bottom first."""
        return [layer.to_dict(i) for i, layer in enumerate(self.layers)]

    # --- drawing ---------------------------------------------------------------------------------
    def draw_stroke(self, layer_id: Any, points: Any, color: Any, size: Any, tool: Any = "brush") -> None:
        op = "canvas.draw_stroke"
        layer = self._editable(layer_id, op)
        if tool is None:
            tool = "brush"
        if tool not in TOOLS:
            raise ArgumentError(f"{op}: unknown tool {tool!r}", hint="tools: brush, eraser")
        pts = parse_points(points, op)
        if type(size) not in (int, float) or not math.isfinite(size) or not 0 < size <= MAX_BRUSH:
            raise ArgumentError(f"{op}: size must be a number above 0 and at most {MAX_BRUSH:g}, got {size!r}")
        if color is None and tool == "eraser":
            rgba = (0, 0, 0, 1.0)
        else:
            rgba = parse_color(color, op)
        stroke = Stroke(pts, rgba, color, float(size), tool)
        layer.history.append(stroke)
        if tool == "eraser" and layer.is_blank:
            return
        if layer._pixels is None:
            layer._pixels = np.zeros((self.height, self.width, 4), np.uint8)
        layer._pending.append(stroke)
        if len(layer._pending) >= FLUSH_EVERY:
            layer._flush()

    def put_image(self, layer_id: Any, image: Any, x: Any = 0, y: Any = 0, *, op: str = "canvas.layer.put_image",
                  record: bool = True) -> None:
        """Source-over an image (Image value or array) onto a layer with its top-left corner at (x, y)."""
        from ..pixels.channels import to_rgba
        from ..values import Image

        layer = self._editable(layer_id, op)
        xi, yi = _offset(x, op, "x"), _offset(y, op, "y")
        if isinstance(image, Image):
            rgba = to_rgba(image.pixels)
        elif isinstance(image, np.ndarray):
            rgba = to_rgba(image)
        else:
            raise ArgumentError(f"{op}: expected image for image")
        rgba.flags.writeable = False
        if record:
            layer.history.append(Placed(rgba, xi, yi))
        comp.paste(layer.pixels, rgba, xi, yi)

    def load_image(self, layer_id: Any, src: Any, x: Any = 0, y: Any = 0, *,
                   resolve_path: Callable | None = None) -> None:
        """``canvas.layer.load_image``: an Image value, a data URL, or a file path (through ``resolve_path``)."""
        from .sources import load_source

        op = "canvas.layer.load_image"
        self._editable(layer_id, op)
        _offset(x, op, "x")
        _offset(y, op, "y")
        rgba = load_source(src, op, max_pixels=self.max_pixels, resolve_path=resolve_path, fetch_url=self.fetch_url)
        self.put_image(layer_id, rgba, x, y, op=op)

    # --- reading ---------------------------------------------------------------------------------
    def layer_image(self, id: Any, op: str = "canvas.layer.image"):
        from ..values import Image

        layer = self.get(id, op)
        return Image(layer.pixels.copy(), {"layer": layer.id})

    def mask_image(self, id: Any):
        """The layer's alpha as an L image: painted = 255 = repaint, whatever the brush colour."""
        from ..values import Image

        layer = self.get(id, "canvas.layer.mask")
        return Image(layer.pixels[:, :, 3].copy(), {"layer": layer.id, "mask": True})

    def control_image(self, id: Any):
        """The layer composited over black, as an RGB image (draw scribbles in white)."""
        from ..values import Image

        layer = self.get(id, "canvas.layer.control_image")
        out = comp.composite([(layer.pixels, 1.0)], self.width, self.height, (0, 0, 0, 1.0))
        meta = {"layer": layer.id}
        if layer.control_type:
            meta["controlType"] = layer.control_type
        return Image(np.ascontiguousarray(out[:, :, :3]), meta)

    def composite_array(self, background: Any = None, *, display: bool = False,
                        types: Iterable[str] = ("raster",)) -> np.ndarray:
        """Visible layers of ``types`` composited bottom to top; ``display=True`` adds control and mask
        layers with their display tints (each tint applies to that layer's own pixels only)."""
        bg = None if background is None else parse_color(background, "canvas.composite")
        kinds = set(LAYER_TYPES) if display else set(types)
        layers = []
        for layer in self.layers:
            if not layer.visible or layer.type not in kinds or layer.is_blank or layer.opacity <= 0:
                continue
            px = layer.pixels
            if display and layer.type != "raster":
                px = tint(px, CONTROL_TINT if layer.type == "control" else MASK_TINT,
                          0.5 if layer.type == "control" else 1.0, 0.75 if layer.type == "control" else 0.5)
            layers.append((px, layer.opacity))
        return comp.composite(layers, self.width, self.height, bg)

    def composite(self, background: Any = None, *, display: bool = False):
        from ..values import Image

        return Image(self.composite_array(background, display=display), {"composite": True})


def tint(pixels: np.ndarray, color: tuple[int, int, int], amount: float, alpha: float) -> np.ndarray:
    """A display copy of a layer: colour moved ``amount`` of the way to ``color``, alpha scaled by ``alpha``."""
    out = pixels.astype(np.float32)
    out[:, :, :3] += (np.asarray(color, np.float32) - out[:, :, :3]) * np.float32(amount)
    out[:, :, 3] *= np.float32(alpha)
    out += 0.5
    res = out.astype(np.uint8)
    res[res[:, :, 3] == 0] = 0
    return res


def _offset(v: Any, op: str, name: str) -> int:
    if v is None:
        return 0
    if type(v) not in (int, float) or not math.isfinite(v) or v != int(v):
        raise ArgumentError(f"{op}: {name} must be a whole number of pixels, got {v!r}")
    if abs(v) > MAX_COORD:
        raise ArgumentError(f"{op}: {name} {v!r} is out of range ±{MAX_COORD:g}")
    return int(v)


def parse_points(value: Any, op: str = "canvas.draw_stroke") -> np.ndarray:
    """``[[x, y], ...]`` or ``[{"x": x, "y": y}, ...]`` → a read-only (n, 2) float64 array."""
    hint = 'points are a list of [x, y] pairs or {"x": x, "y": y} objects'
    if isinstance(value, np.ndarray):
        arr = np.array(value, dtype=np.float64).reshape(-1, 2)
    else:
        if not isinstance(value, list):
            raise ArgumentError(f"{op}: expected array for points", hint=hint)
        if len(value) > MAX_POINTS:
            raise SizeLimitError(f"{op}: {len(value)} points exceed the limit of {MAX_POINTS}")
        coords: list[tuple[Any, Any]] = []
        for i, p in enumerate(value):
            if type(p) is list and len(p) == 2:
                coords.append((p[0], p[1]))
            elif type(p) is dict and "x" in p and "y" in p:
                coords.append((p["x"], p["y"]))
            else:
                from ..values import to_display

                raise ArgumentError(f"{op}: point {i} is not [x, y] or {{x, y}}: {to_display(p)[:60]}", hint=hint)
        for i, (x, y) in enumerate(coords):
            if type(x) not in (int, float) or type(y) not in (int, float):
                raise ArgumentError(f"{op}: point {i} has non-numeric coordinates", hint=hint)
        arr = np.array(coords, dtype=np.float64).reshape(-1, 2)
    if not len(arr):
        raise ArgumentError(f"{op}: a stroke needs at least one point", hint=hint)
    if not np.isfinite(arr).all() or np.abs(arr).max() > MAX_COORD:
        raise ArgumentError(f"{op}: point coordinates must be finite numbers within ±{MAX_COORD:g}", hint=hint)
    arr.flags.writeable = False
    return arr
