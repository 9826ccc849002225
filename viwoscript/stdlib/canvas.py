"""``canvas.*``: layers, strokes and images on the Runtime's canvas (design §6, docs/canvas.md).

Every opcode acts on ``runtime.canvas`` (a :class:`viwoscript.canvas.layers.LayerStack`); the geometry and
blending live in :mod:`viwoscript.canvas`. The original's argument orders are kept.
"""

from __future__ import annotations

from ..errors import ArgumentError
from ..limits import images_made_by
from ..nodes import Array, Atom, to_data
from ..opcodes import P
from ..opcodes import opcode as _opcode

OPCODES: list = []

_ID = 'the layer id, e.g. "sketch"'


def opcode(name, *params, **kw):
    kw.setdefault("category", "canvas")
    register = _opcode(name, *params, into=OPCODES, **kw)
    if kw.get("returns") not in ("image",):
        return register
    return lambda fn: register(images_made_by(fn, name))  # images count against Limits.max_memory


class _canvas:  # noqa: N801 - used like a function: ``with _canvas(ev) as c``
    """The Runtime's canvas, with the run's interrupt check installed while an opcode works on it (long
    rasterizations then stop on a timeout or Ctrl-C); removed afterwards so a later read by the host is
    not tied to a finished run."""

    def __init__(self, ev):
        self.canvas = ev.runtime.canvas
        self.poll = ev.check_interrupt

    def __enter__(self):
        self.canvas.poll = self.poll
        return self.canvas

    def __exit__(self, *exc):
        self.canvas.poll = None
        return False


# --- canvas ----------------------------------------------------------------------------------------

@opcode("canvas.size", P("width", "number", description="pixels, 1–16384"),
        P("height", "number", description="pixels, 1–16384"), returns="null", label="Canvas Size")
def size(ev, width=None, height=None, *_):
    """Set the size of the canvas while it has no layers (default 1024×1024, or the host's size)."""
    with _canvas(ev) as c:
        c.set_size(width, height)
    return None


@opcode("canvas.get_size", returns="array", label="Get Canvas Size")
def get_size(ev, *_):
    """The canvas size as [width, height]."""
    c = ev.runtime.canvas
    return [c.width, c.height]


@opcode("canvas.extend", P("left", "number", 0, "pixels added on the left"),
        P("top", "number", 0, "pixels added at the top"), P("right", "number", 0, "pixels added on the right"),
        P("bottom", "number", 0, "pixels added at the bottom"), returns="null", label="Extend Canvas")
def extend(ev, left=0, top=0, right=0, bottom=0, *_):
    """Grow the canvas on its sides (outpainting): the layers keep their pictures, moved by left and top;
    the new area is transparent."""
    with _canvas(ev) as c:
        c.extend(left, top, right, bottom)
    return None


@opcode("canvas.layers", returns="array", label="Layers")
def layers(ev, *_):
    """The layers, bottom first, as objects {id, name, type, visible, opacity, locked, controlType, maskFor,
    index} (no pixels)."""
    with _canvas(ev) as c:
        return c.to_list()


@opcode("canvas.composite", P("background", "string", None, "a colour under the layers; transparent when null"),
        returns="image", label="Composite")
def composite(ev, background=None, *_):
    """The visible raster layers composited bottom to top with their opacities, as an RGBA image. Control
    and mask layers are inputs to generation, not picture content: they are left out."""
    with _canvas(ev) as c:
        return c.composite(background)


# --- layers ----------------------------------------------------------------------------------------

@opcode("canvas.layer.create", P("id", "string", description=_ID), P("name", "string", None, "shown in the UI"),
        P("type", "string", "raster", "raster, control or mask", choices=("raster", "control", "mask")),
        returns="object", label="Create Layer")
def layer_create(ev, id=None, name=None, type="raster", *_):
    """Add an empty layer on top of the stack and make it the active one; returns its layer object. A
    duplicate id is an error."""
    c = ev.runtime.canvas
    layer = c.create(id, name, type)
    return layer.to_dict(c.index(layer.id))


@opcode("canvas.layer.remove", P("id", "string", description=_ID), returns="null", label="Remove Layer")
def layer_remove(ev, id=None, *_):
    """Remove a layer (mask layers that pointed at it lose their maskFor)."""
    with _canvas(ev) as c:
        c.remove(id)
    return None


@opcode("canvas.layer.clear", P("id", "string", description=_ID), returns="null", label="Clear Layer")
def layer_clear(ev, id=None, *_):
    """Make every pixel of a layer transparent (a locked layer refuses)."""
    with _canvas(ev) as c:
        c.clear(id)
    return None


@opcode("canvas.layer.set_active", P("id", "string", None, _ID + "; null for none"), returns="null",
        label="Set Active Layer")
def layer_set_active(ev, id=None, *_):
    """Mark a layer as the active one (what a UI draws on); null leaves no layer active."""
    with _canvas(ev) as c:
        c.set_active(id)
    return None


@opcode("canvas.layer.update", P("id", "string", description=_ID),
        P("props", "object", description="name, visible, opacity (0–1), locked, controlType, maskFor, index/order"),
        returns="object", label="Update Layer")
def layer_update(ev, id=None, props=None, *_):
    """Change layer fields: name, visible, opacity (0–1), locked, controlType (control layers), maskFor (mask
    layers), index or order (position from the bottom, 0 = bottom). Returns the updated layer object."""
    with _canvas(ev) as c:
        return c.update(id, props)


@opcode("canvas.layer.image", P("id", "string", description=_ID), returns="image", label="Layer Image")
def layer_image(ev, id=None, *_):
    """The layer's pixels as an RGBA image."""
    with _canvas(ev) as c:
        return c.layer_image(id)


@opcode("canvas.layer.mask", P("id", "string", description=_ID), returns="image", label="Layer Mask")
def layer_mask(ev, id=None, *_):
    """A mask layer as an L image: painted (alpha) = 255 = repaint, whatever colour was used."""
    with _canvas(ev) as c:
        return c.mask_image(id)


@opcode("canvas.layer.control_image", P("id", "string", description=_ID), returns="image",
        label="Control Image")
def layer_control_image(ev, id=None, *_):
    """A control layer as the RGB control image (its pixels over black: draw scribbles in white)."""
    with _canvas(ev) as c:
        return c.control_image(id)


@opcode("canvas.layer.put_image", P("id", "string", description=_ID), P("image", "image"),
        P("x", "number", 0, "left edge, whole pixels"), P("y", "number", 0, "top edge, whole pixels"),
        returns="null", label="Put Image")
def layer_put_image(ev, id=None, image=None, x=0, y=0, *_):
    """Place an image (e.g. a generation result) on a layer with its top-left corner at (x, y), source-over."""
    with _canvas(ev) as c:
        c.put_image(id, image, x, y)
    return None


@opcode("canvas.layer.load_image", P("layerId", "string", description=_ID),
        P("src", description="an image, a data: URL, or a file path under the allowed folders"),
        P("x", "number", 0, "left edge, whole pixels"), P("y", "number", 0, "top edge, whole pixels"),
        returns="null", label="Load Image", pure=False)
def layer_load_image(ev, layer_id=None, src=None, x=0, y=0, *_):
    """Load an image onto a layer at (x, y): an image value, a data: URL, or a file path inside the
    Runtime's allowed folders. Remote URLs only when the host allows them; oversized images are refused."""
    op = "canvas.layer.load_image"
    with _canvas(ev) as c:
        c.load_image(layer_id, src, x, y, resolve_path=lambda path, _op: ev.runtime.resolve_path(path, op))
    return None


# --- strokes ---------------------------------------------------------------------------------------

@opcode("canvas.draw_stroke", P("layerId", "string", description=_ID),
        P("points", "array", kind="raw", description='[[x, y], ...] or [{"x": x, "y": y}, ...]'),
        P("color", description='"#rrggbb", "#rrggbbaa", "rgb()", "rgba()", a CSS name; null for the eraser'),
        P("size", "number", description="brush diameter in pixels"),
        P("tool", "string", "brush", "brush or eraser", choices=("brush", "eraser")),
        returns="null", label="Draw Stroke", lazy=True)
def draw_stroke(ev, args, scope):
    """Draw an anti-aliased polyline (round caps and joins) with the brush, or erase along it. Coverage of a
    pixel whose centre is at distance d from the line is clamp(size/2 − d + 0.5, 0, 1)."""
    op = "canvas.draw_stroke"
    values = []
    for i, node in enumerate(args[:5]):
        values.append(_points_node(ev, node, scope) if i == 1 else ev.eval(node, scope))
    values += [None] * (5 - len(values))
    layer_id, points, color, size_, tool = values
    for arg in args[5:]:
        ev.eval(arg, scope)  # extra arguments are evaluated and ignored, as for every opcode
    if not isinstance(layer_id, str):
        raise ArgumentError(f"{op}: expected string for layerId")
    if type(points) is not list:
        raise ArgumentError(f"{op}: expected array for points",
                            hint='points are a list of [x, y] pairs or {"x": x, "y": y} objects')
    ev.check_size(len(points), op)
    if type(size_) not in (int, float):
        raise ArgumentError(f"{op}: expected number for size")
    with _canvas(ev) as c:
        c.draw_stroke(layer_id, points, color, size_, "brush" if tool is None else tool)
    return None


def _points_node(ev, node, scope):
    """The points argument: code as usual, or — in recorded legacy scripts — the raw array written inline
    (an array whose first item is not an opcode name: an object, a pair, a number)."""
    if node.__class__ is Array:
        items = node.items
        if not items or not (items[0].__class__ is Atom and isinstance(items[0].value, str)):
            return to_data(node)
    return ev.eval(node, scope)
