"""Live canvas sessions for Layer Mode (design §15 "Live canvas sessions"): a page's script plus its layers.

A :class:`CanvasSession` holds one page's program (the JSON form, a ``std.seq`` of top-level statements)
and the :class:`~viwoscript.canvas.layers.LayerStack` it leaves. Appending statements applies them
incrementally: a stroke costs one stroke, never a replay. Every ``snapshot_every`` statements the session
keeps a snapshot of the layers (copy-on-write: a snapshot shares a layer's pixels until the next change to
that layer copies them), so undo and redo replay only from the nearest snapshot. Each change reports the
tiles that changed (``Tile``: layer, x, y, w, h and the RGBA bytes, row-major) so a server can send them as
binary frames; the browser never receives whole layers per stroke.

Statements run as replay's "canvas" mode runs them: canvas opcodes and pure opcodes are executed by the
Runtime given to the session (so their meaning is the opcodes' own); anything else (a capability call, a
log) becomes a locked placeholder layer that keeps the statement. ``canvas.layer.load_image`` of a
``blob:{sha256}`` source loads the server's uploaded or generated image through ``load_blob``.

This module knows no transport: the server's RPC methods (``canvas_open``, ``canvas_apply``, ...) wrap it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..canvas import raster
from ..canvas.layers import Layer, LayerStack
from ..errors import ArgumentError, ScriptError, ViwoError

#: Side of the square tiles changes are reported in (aligned to multiples of it).
TILE = 64
#: Statements between two snapshots (undo replays at most this many).
SNAPSHOT_EVERY = 32
#: Snapshots kept per session; past that, every other old one is dropped (recent ones stay dense).
MAX_SNAPSHOTS = 48
#: Pixel bytes held by snapshots alone (not shared with the live layers) before old ones are thinned.
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
#: Bytes of undo patches (the pixels under recent strokes) kept per session.
MAX_PATCH_BYTES = 64 * 1024 * 1024
#: Most statements in one session's script.
MAX_STATEMENTS = 100_000
#: Most redo steps kept.
MAX_REDO = 1000

BLOB_RE = re.compile(r"^blob:([0-9a-f]{64})$")
_STROKE = "canvas.draw_stroke"
_LOAD = "canvas.layer.load_image"


@dataclass(frozen=True)
class Tile:
    """A changed rectangle of one layer: RGBA bytes of ``w × h`` pixels, rows top to bottom."""

    layer: str
    x: int
    y: int
    w: int
    h: int
    data: bytes

    def header(self, session: str, seq: int) -> dict:
        """The JSON header of the binary frame (design §15)."""
        return {"kind": "tile", "seq": seq, "mime": "application/x-viwo-rgba", "session": session,
                "layer": self.layer, "x": self.x, "y": self.y, "w": self.w, "h": self.h}


@dataclass
class Update:
    """What one call changed: the layer list after it, the tiles to repaint, layers to clear first."""

    version: int
    layers: list[dict]
    active: str | None
    width: int
    height: int
    tiles: list[Tile] = field(default_factory=list)
    #: Layers whose pixels the client must drop before painting the tiles (they were rebuilt).
    reset: list[str] = field(default_factory=list)
    can_undo: bool = False
    can_redo: bool = False

    def to_json(self) -> dict:
        """Everything but the tile bytes (those travel as binary frames)."""
        return {"version": self.version, "layers": self.layers, "active": self.active,
                "width": self.width, "height": self.height, "reset": self.reset,
                "tiles": len(self.tiles), "can_undo": self.can_undo, "can_redo": self.can_redo}


@dataclass
class _LayerState:
    id: str
    name: str
    type: str
    visible: bool
    opacity: float
    locked: bool
    control_type: str | None
    mask_for: str | None
    op: Any
    history: list
    pixels: np.ndarray | None


@dataclass
class _Patch:
    """What undoing one stroke needs: its layer, the Stroke in the layer's history, and the pixels of its
    window before it (``was_blank``: the layer had no pixels at all)."""

    layer: str
    stroke: Any
    was_blank: bool
    window: tuple[int, int, int, int] | None
    before: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return 0 if self.before is None else self.before.nbytes


@dataclass
class _Snapshot:
    count: int  # the state after the first ``count`` statements
    width: int
    height: int
    active: str | None
    layers: list[_LayerState]
    vars: dict


class CanvasSession:
    """One page's script and layers. Not thread-safe by itself: calls hold ``self.lock``.

    >>> from viwoscript.runtime import Runtime
    >>> s = CanvasSession(Runtime(canvas_size=(64, 64)))
    >>> u = s.apply([["canvas.layer.create", "a", "A"], ["canvas.draw_stroke", "a", [[8, 8]], "red", 4]])
    >>> [t.layer for t in u.tiles], u.version
    (['a'], 2)
    >>> s.undo().version
    1
    """

    def __init__(self, runtime: Any, *, load_blob: Callable[[str], bytes] | None = None,
                 snapshot_every: int = SNAPSHOT_EVERY, max_snapshots: int = MAX_SNAPSHOTS,
                 max_snapshot_bytes: int = MAX_SNAPSHOT_BYTES, max_patch_bytes: int = MAX_PATCH_BYTES,
                 tile: int = TILE):
        self.runtime = runtime
        self.stack: LayerStack = runtime.canvas
        self.load_blob = load_blob
        self.snapshot_every = max(1, int(snapshot_every))
        self.max_snapshots = max(2, int(max_snapshots))
        self.max_snapshot_bytes = int(max_snapshot_bytes)
        self.tile = int(tile)
        self.statements: list[Any] = []
        self.redo_stack: list[Any] = []
        self.lock = threading.RLock()
        self._scope = type(runtime.globals)(runtime.globals)
        #: ids of pixel arrays owned by snapshots: a layer holding one copies it before changing it.
        self._frozen: dict[int, np.ndarray] = {}
        self._snapshots: list[_Snapshot] = [self._take(0)]
        #: Recent strokes' undo patches by statement index (the pixels each one covered, before it).
        self._patches: dict[int, _Patch] = {}
        self._patch_bytes = 0
        self.max_patch_bytes = int(max_patch_bytes)

    # --- public API --------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return len(self.statements)

    def script(self) -> list:
        """The whole program, JSON form."""
        return ["std.seq", *self.statements]

    def state(self, *, tiles: bool = True) -> Update:
        """The current layers, with every non-empty tile of every layer (what a page needs on open)."""
        with self.lock:
            out = self._update()
            if tiles:
                for layer in self.stack.layers:
                    out.tiles += self._layer_tiles(layer)
            return out

    def apply(self, statements: list) -> Update:
        """Append statements (JSON form) and apply them. A statement that fails is not kept: the error is
        raised after the ones before it were applied, and the state is exactly as if it was never sent."""
        if not isinstance(statements, list):
            raise ArgumentError("canvas_apply: statements must be a list of statements (JSON form)")
        with self.lock:
            if len(self.statements) + len(statements) > MAX_STATEMENTS:
                raise ScriptError(f"canvas_apply: a session holds at most {MAX_STATEMENTS} statements",
                                  hint="save the canvas as an image or template and start a new one")
            tiles: dict[tuple[str, int, int], Tile] = {}
            reset: set[str] = set()
            try:
                for stmt in statements:
                    self._apply_one(stmt, tiles, reset)
            finally:
                if statements:
                    self.redo_stack.clear()
            return self._update(list(tiles.values()), reset)

    def undo(self, steps: int = 1) -> Update:
        """Drop the last ``steps`` statements (kept for redo). Recent strokes are undone by putting back
        the pixels they covered; anything else replays from the nearest snapshot."""
        with self.lock:
            steps = max(0, min(int(steps), len(self.statements)))
            if not steps:
                return self._update()
            dropped = self.statements[-steps:]
            self.redo_stack.extend(reversed(dropped))
            del self.redo_stack[:-MAX_REDO]
            fast = self._undo_patches(steps)
            if fast is not None:
                return fast
            return self._rebuild(self.statements[:-steps])

    def cheap(self, statements: list | None = None, *, undo: int = 0) -> bool:
        """Whether applying ``statements`` (a few literal strokes) or undoing ``undo`` recent strokes takes
        about a millisecond: a server may then run it on its event loop instead of a thread."""
        if statements is not None:
            return len(statements) <= 4 and all(
                _is_call(st, _STROKE) and _literal_stroke(st) and len(st[2]) <= 500 and len(st) > 4
                and type(st[4]) in (int, float) and st[4] <= 64 for st in statements)
        n = len(self.statements)
        return 0 < undo <= 4 and all(i in self._patches for i in range(n - undo, n))

    def _undo_patches(self, steps: int) -> Update | None:
        """Undo the last ``steps`` statements from their patches when every one is a recent stroke."""
        n = len(self.statements)
        patches = [self._patches.get(i) for i in range(n - steps, n)]
        if any(p is None for p in patches):
            return None
        stack = self.stack
        layers = {la.id: la for la in stack.layers}
        depth: dict[str, int] = {}
        for i in range(n - 1, n - steps - 1, -1):  # check first: nothing changes unless all apply
            p = self._patches[i]
            layer = layers.get(p.layer)
            k = depth[p.layer] = depth.get(p.layer, 0) + 1
            if layer is None or len(layer.history) < k or layer.history[-k] is not p.stroke:
                return None
        self._snapshots = [s for s in self._snapshots if s.count <= n - steps]
        self._forget_frozen()
        tiles: dict[tuple[str, int, int], Tile] = {}
        reset: set[str] = set()
        for i in range(n - 1, n - steps - 1, -1):
            p = self._patches.pop(i)
            self._patch_bytes -= p.nbytes
            layer = layers[p.layer]
            layer.pixels  # noqa: B018 - nothing may stay pending
            self._thaw(layer)
            layer.history.pop()
            if p.was_blank:
                layer._pixels = None
                layer._pending = []
                reset.add(layer.id)
                for key in [k for k in tiles if k[0] == layer.id]:
                    del tiles[key]
            elif p.window is not None:
                x0, y0, x1, y1 = p.window
                layer._pixels[y0:y1, x0:x1] = p.before
                if layer.id not in reset:
                    self._window_tiles(layer, p.window, tiles)
            self.statements.pop()
        return self._update(list(tiles.values()), reset)

    def redo(self, steps: int = 1) -> Update:
        """Re-apply statements undone before (appending anything new clears them)."""
        with self.lock:
            steps = max(0, min(int(steps), len(self.redo_stack)))
            redo, keep = self.redo_stack[-steps:], self.redo_stack[:-steps] if steps else self.redo_stack
            if not steps:
                return self._update()
            tiles: dict[tuple[str, int, int], Tile] = {}
            reset: set[str] = set()
            for stmt in reversed(redo):
                self._apply_one(stmt, tiles, reset, strict=False)
            self.redo_stack = keep
            return self._update(list(tiles.values()), reset)

    def replace(self, statements: list) -> Update:
        """Replace the whole program (the script panel was edited): rebuilt from the nearest snapshot the
        old and new programs share; only the tiles that differ are reported."""
        if not isinstance(statements, list):
            raise ArgumentError("canvas_replace: statements must be a list of statements (JSON form)")
        if len(statements) > MAX_STATEMENTS:
            raise ScriptError(f"canvas_replace: a session holds at most {MAX_STATEMENTS} statements")
        with self.lock:
            self.redo_stack.clear()
            return self._rebuild(list(statements))

    # --- applying ------------------------------------------------------------------------------------
    def _apply_one(self, stmt: Any, tiles: dict | None, reset: set, *, strict: bool = True) -> None:
        """Apply one statement. ``tiles`` None: report nothing (a rebuild diffs at the end). Not strict: a
        statement that fails becomes a placeholder layer (replay's rule) instead of an error."""
        stack = self.stack
        if _is_call(stmt, _STROKE) and _literal_stroke(stmt):
            try:
                self._stroke(stmt, tiles)
            except ViwoError as e:
                if strict or not e.catchable:
                    raise
                self._placeholder(stmt, tiles, reset)
        else:
            for layer in stack.layers:
                self._thaw(layer)
            sig = {la.id: _signature(la) for la in stack.layers}
            try:
                self._run(stmt)
            except BaseException as e:
                self._rebuild(self.statements, report=False)
                if strict or not isinstance(e, ViwoError) or not e.catchable:
                    raise
                self._placeholder(stmt, tiles, reset)
                return
            self.statements.append(stmt)
            if tiles is not None:
                for layer in stack.layers:
                    if sig.get(layer.id) != _signature(layer):
                        self._reset_layer(layer, tiles, reset)
        self._maybe_snapshot()

    def _stroke(self, stmt: list, tiles: dict | None) -> None:
        stack = self.stack
        layer = next((la for la in stack.layers if la.id == stmt[1]), None)
        window = None
        if layer is not None:
            self._thaw(layer)
            if tiles is not None and len(stmt) > 4 and type(stmt[4]) in (int, float):
                pts = np.asarray([[p["x"], p["y"]] if isinstance(p, dict) else p for p in stmt[2]], np.float64)
                if np.isfinite(pts).all():
                    window = raster.stroke_window(pts.reshape(-1, 2), float(stmt[4]), stack.width, stack.height)
        before = None
        was_blank = layer is not None and layer._pixels is None and not layer._pending
        if window is not None and layer._pixels is not None:
            x0, y0, x1, y1 = window
            before = layer._pixels[y0:y1, x0:x1].copy()
        args = list(stmt[1:6]) + [None] * (6 - len(stmt))
        stack.draw_stroke(args[0], args[1], args[2], args[3], "brush" if args[4] is None else args[4])
        self.statements.append(stmt)
        if window is not None and layer._pixels is not None:
            self._diff_window(layer, before, layer.pixels, window, tiles)  # .pixels rasterizes it now
        if tiles is not None and (window is not None or was_blank):
            self._remember_patch(_Patch(layer.id, layer.history[-1], was_blank, window, before))

    def _remember_patch(self, patch: _Patch) -> None:
        self._patches[len(self.statements) - 1] = patch
        self._patch_bytes += patch.nbytes
        while self._patch_bytes > self.max_patch_bytes and self._patches:
            old = next(iter(self._patches))
            self._patch_bytes -= self._patches.pop(old).nbytes

    def _window_tiles(self, layer: Layer, window: tuple[int, int, int, int], tiles: dict) -> None:
        """Every aligned tile touching ``window``, with the layer's current pixels."""
        x0, y0, x1, y1 = window
        t = self.tile
        px = layer.pixels
        h, w = px.shape[:2]
        for ty in range(y0 // t * t, y1, t):
            for tx in range(x0 // t * t, x1, t):
                bx1, by1 = min(tx + t, w), min(ty + t, h)
                tiles[(layer.id, tx, ty)] = Tile(layer.id, tx, ty, bx1 - tx, by1 - ty, px[ty:by1, tx:bx1].tobytes())

    def _placeholder(self, stmt: Any, tiles: dict | None, reset: set) -> None:
        from ..replay import placeholder

        layer = placeholder(self.stack, len(self.statements), self.runtime.parse(stmt))
        self.statements.append(stmt)
        if tiles is not None:
            reset.add(layer.id)
        self._maybe_snapshot()

    def _reset_layer(self, layer: Layer, tiles: dict, reset: set) -> None:
        reset.add(layer.id)
        for key in [k for k in tiles if k[0] == layer.id]:
            del tiles[key]
        for t in self._layer_tiles(layer):
            tiles[(t.layer, t.x, t.y)] = t

    def _maybe_snapshot(self) -> None:
        if len(self.statements) % self.snapshot_every == 0 and self._snapshots[-1].count < len(self.statements):
            self._remember(self._take(len(self.statements)))

    def _run(self, stmt: Any) -> None:
        """One top-level statement through the Runtime, or as a placeholder layer (replay's canvas mode)."""
        from ..replay import placeholder, replayable

        rt = self.runtime
        tree = rt.parse(stmt)
        index = len(self.statements)
        if _is_call(stmt, _LOAD) and isinstance(_arg(stmt, 2), str) and _arg(stmt, 2).startswith("blob:"):
            self._load_blob(stmt)
            return
        if not replayable(tree, rt.registry):
            placeholder(self.stack, index, tree)
            return
        rt.run(tree, scope=self._scope)

    def _load_blob(self, stmt: list) -> None:
        from ..pixels.channels import to_rgba
        from ..pixels.decode import decode

        op = _LOAD
        src = stmt[2]
        m = BLOB_RE.match(src)
        if not m:
            raise ArgumentError(f"{op}: malformed blob reference {src[:80]!r}", hint="expected blob:<sha256 hex>")
        if self.load_blob is None:
            raise ScriptError(f"{op}: blob: sources are only available in a server session")
        data = self.load_blob(m.group(1))
        x, y = _arg(stmt, 3) or 0, _arg(stmt, 4) or 0
        rgba = to_rgba(decode(data, op=op, max_pixels=self.stack.max_pixels, name=src[:20] + "…").pixels)
        self.stack.put_image(_arg(stmt, 1), rgba, x, y, op=op)

    # --- snapshots -----------------------------------------------------------------------------------
    def _take(self, count: int) -> _Snapshot:
        layers = []
        for la in self.stack.layers:
            px = None if la.is_blank else la.pixels
            if px is not None:
                self._frozen[id(px)] = px
            layers.append(_LayerState(la.id, la.name, la.type, la.visible, la.opacity, la.locked,
                                      la.control_type, la.mask_for, la.op, list(la.history), px))
        return _Snapshot(count, self.stack.width, self.stack.height, self.stack.active, layers,
                         dict(self._scope.vars))

    def _remember(self, snap: _Snapshot) -> None:
        """Keep a snapshot; past ``max_snapshots`` or ``max_snapshot_bytes`` of pixels held only by
        snapshots, every other old snapshot goes (the first and the recent half stay)."""
        self._snapshots = [s for s in self._snapshots if s.count < snap.count] + [snap]
        while len(self._snapshots) > 2 and (len(self._snapshots) > self.max_snapshots
                                           or self._snapshot_bytes() > self.max_snapshot_bytes):
            half = len(self._snapshots) // 2
            old = self._snapshots[1:half]
            self._snapshots = self._snapshots[:1] + old[1::2] + self._snapshots[half:]
            if not old:
                break
        self._forget_frozen()

    def _forget_frozen(self) -> None:
        live = {id(ls.pixels) for s in self._snapshots for ls in s.layers if ls.pixels is not None}
        self._frozen = {k: v for k, v in self._frozen.items() if k in live}

    def _snapshot_bytes(self) -> int:
        current = {id(la._pixels) for la in self.stack.layers if la._pixels is not None}
        seen: dict[int, int] = {}
        for s in self._snapshots:
            for ls in s.layers:
                if ls.pixels is not None and id(ls.pixels) not in current:
                    seen[id(ls.pixels)] = ls.pixels.nbytes
        return sum(seen.values())

    def _thaw(self, layer: Layer) -> None:
        """Copy a layer's pixels before a change when a snapshot shares them."""
        if layer._pixels is not None and id(layer._pixels) in self._frozen \
                and self._frozen[id(layer._pixels)] is layer._pixels:
            if layer._pending:
                raise AssertionError("a frozen layer has pending strokes")
            layer._pixels = layer._pixels.copy()

    def _restore(self, snap: _Snapshot) -> None:
        stack = self.stack
        stack.layers = []
        stack.width, stack.height = snap.width, snap.height
        for ls in snap.layers:
            la = Layer(stack, ls.id, ls.name, ls.type)
            la.visible, la.opacity, la.locked = ls.visible, ls.opacity, ls.locked
            la.control_type, la.mask_for, la.op = ls.control_type, ls.mask_for, ls.op
            la.history = list(ls.history)
            la._pixels = ls.pixels
            stack.layers.append(la)
        stack.active = snap.active
        self._scope.vars = dict(snap.vars)

    def _rebuild(self, statements: list, *, report: bool = True) -> Update:
        """The state after ``statements``, from the nearest snapshot whose statements are a prefix of them.
        A statement that fails here becomes a placeholder layer (as in replay), so a rebuild always ends."""
        old = {la.id: (None if la.is_blank else la.pixels) for la in self.stack.layers}
        n = 0
        while n < len(statements) and n < len(self.statements) and statements[n] == self.statements[n]:
            n += 1
        self._snapshots = [s for s in self._snapshots if s.count <= n]
        for i in [i for i in self._patches if i >= n]:
            self._patch_bytes -= self._patches.pop(i).nbytes
        snap = self._snapshots[-1]
        self._restore(snap)
        self.statements = list(statements[:snap.count])
        for stmt in statements[snap.count:]:
            self._apply_one(stmt, None, set(), strict=False)
        if not report:
            return self._update()
        tiles: dict[tuple[str, int, int], Tile] = {}
        reset: set[str] = set()
        for la in self.stack.layers:
            before = old.get(la.id)
            now = None if la.is_blank else la.pixels
            if la.id not in old or before is None or now is None or before.shape != now.shape:
                if la.id in old and before is None and now is None:
                    continue
                self._reset_layer(la, tiles, reset)
            elif before is not now:
                self._diff_window(la, before, now, (0, 0, now.shape[1], now.shape[0]), tiles)
        return self._update(list(tiles.values()), reset)

    # --- tiles ---------------------------------------------------------------------------------------
    def _diff_window(self, layer: Layer, before: np.ndarray | None, after: np.ndarray,
                     window: tuple[int, int, int, int], tiles: dict) -> None:
        """Tiles of the aligned grid inside ``window`` whose pixels differ (``before`` covers the window;
        None = it was transparent)."""
        x0, y0, x1, y1 = window
        t = self.tile
        h, w = after.shape[:2]
        for ty in range(y0 // t * t, y1, t):
            for tx in range(x0 // t * t, x1, t):
                if (layer.id, tx, ty) in tiles:
                    del tiles[(layer.id, tx, ty)]  # re-added with the current pixels below
                    changed = True
                else:
                    ax0, ay0, ax1, ay1 = max(tx, x0), max(ty, y0), min(tx + t, x1), min(ty + t, y1)
                    new = after[ay0:ay1, ax0:ax1]
                    if before is None:
                        changed = bool(new.any())
                    else:
                        changed = not np.array_equal(before[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0], new)
                if changed:
                    bx1, by1 = min(tx + t, w), min(ty + t, h)
                    tiles[(layer.id, tx, ty)] = Tile(layer.id, tx, ty, bx1 - tx, by1 - ty,
                                                     after[ty:by1, tx:bx1].tobytes())

    def _layer_tiles(self, layer: Layer) -> list[Tile]:
        """Every tile of a layer holding a non-transparent pixel."""
        if layer.is_blank:
            return []
        px = layer.pixels
        h, w = px.shape[:2]
        t = self.tile
        alpha = px[:, :, 3]
        rows = alpha.any(axis=1)
        out = []
        for ty in range(0, h, t):
            if not rows[ty:ty + t].any():
                continue
            cols = alpha[ty:ty + t].any(axis=0)
            for tx in range(0, w, t):
                if cols[tx:tx + t].any():
                    out.append(Tile(layer.id, tx, ty, min(t, w - tx), min(t, h - ty), px[ty:ty + t, tx:tx + t].tobytes()))
        return out

    def _update(self, tiles: list[Tile] | None = None, reset: set[str] | None = None) -> Update:
        s = self.stack
        layers = s.to_list()
        for info, layer in zip(layers, s.layers, strict=True):
            if layer.op is not None:  # a placeholder: the page shows which statement it stands for
                op = layer.op
                info["placeholder"] = op[0] if type(op) is list and op and type(op[0]) is str else "statement"
        return Update(len(self.statements), layers, s.active, s.width, s.height, tiles or [],
                      sorted(reset or ()), bool(self.statements), bool(self.redo_stack))


def _is_call(stmt: Any, head: str) -> bool:
    return type(stmt) is list and bool(stmt) and stmt[0] == head


def _arg(stmt: list, i: int) -> Any:
    return stmt[i] if len(stmt) > i else None


def _literal_stroke(stmt: list) -> bool:
    """``canvas.draw_stroke`` with literal arguments only (what a page records): the fast path."""
    if not 4 <= len(stmt) <= 6 or not isinstance(stmt[1], str) or type(stmt[2]) is not list or not stmt[2]:
        return False
    for p in stmt[2]:
        if type(p) is list:
            if len(p) != 2 or type(p[0]) not in (int, float) or type(p[1]) not in (int, float):
                return False
        elif type(p) is dict:
            if set(p) != {"x", "y"} or type(p["x"]) not in (int, float) or type(p["y"]) not in (int, float):
                return False
        else:
            return False
    color = stmt[3]
    if not (color is None or isinstance(color, str)):
        return False
    return all(v is None or type(v) in (int, float, str) for v in stmt[4:])


def _signature(layer: Layer) -> tuple:
    h = layer.history
    return (id(layer._pixels) if layer._pixels is not None else None, len(h), id(h[-1]) if h else None,
            layer.is_blank)
