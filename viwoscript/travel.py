"""Batch items that travel to another Runtime (design §17): a lambda's tree and the values it captures.

A batch item sent to an executor's worker is plain, picklable data (:class:`Item`): the script to run
there (a call of the item's lambda, or of one capability method), the values the lambda captures from
the scopes it was made in, and its arguments. What travels:

- null, booleans, numbers, strings, lists and objects of those (copied: changes a worker makes to a
  captured list stay on the worker);
- images (their pixels and metadata);
- capability handles, as ``(type, params, provider)``: the worker grants them again under the same
  parameters, so the item can do exactly what the script could;
- lambdas (their tree and, in turn, what they capture; a lambda may refer to itself).

Anything else (an entity, a layer) cannot travel: packing fails with an error that names the captured
variable. Only variables the lambda's body reads (``std.var``/``std.set`` with a literal name) are
captured; a body that reads a variable by a computed name captures every variable that can travel.

On the worker, :func:`run_item` rebuilds the values (re-granting capabilities on that Runtime) and runs
the item; :func:`result_record` turns what it returned (or raised) into data that travels back, and
:func:`error_from_record` rebuilds the error, with its position in the script, on the script's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors as _errors
from .errors import ScriptError, ViwoError
from .nodes import Array, Atom, Node, Object, call
from .scope import Scope
from .values import HostValue, Image, Lambda, to_display

#: Deepest nesting of captured values packed (deeper data is refused rather than overflowing the stack).
MAX_PACK_DEPTH = 200
FN = "__fn"
CAP = "__cap"


@dataclass(frozen=True)
class CapRef:
    """A capability handle in transit: re-granted on the worker under the same parameters."""

    type: str
    params: dict
    provider: str | None = None


@dataclass
class FnRef:
    """A lambda in transit: its parameters, body tree and captured values (``id`` for self-reference)."""

    id: int
    params: tuple
    body: Node
    captures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SeenFn:
    """A lambda already packed higher up (a recursive lambda refers to itself through its scope)."""

    id: int


@dataclass
class Item:
    """One batch item as data: ``script`` run with ``captures`` as its variables and ``args`` as its
    arguments. ``model`` (a model name, when known) lets an executor prefer a worker that holds it."""

    script: Node
    captures: dict
    args: list
    label: str = "batch item"
    model: str | None = None


# --- packing (where the script runs) -------------------------------------------------------------------

def lambda_item(fn: Any, args: list, op: str, span: Any = None, *, model: str | None = None) -> Item:
    """The item ``fn(*args)``, ``fn`` a lambda; a capture that cannot travel is a located error."""
    if fn.__class__ is not Lambda:
        from .errors import ArgumentError

        raise ArgumentError(f"{op}: fn must be a lambda, got {to_display(fn)}", span)
    packer = _Packer(op, fn.span or getattr(fn.body, "span", None) or span)
    packed = packer.pack_fn(fn, "fn")
    script = call("std.apply", call("std.var", Atom(FN)), *[call("std.arg", Atom(i)) for i in range(len(args))])
    return Item(script, {FN: packed}, packer.value(list(args), "the item"), label=op, model=model)


def call_item(handle: Any, method: str, params: dict, op: str, span: Any = None, *, model: str | None = None) -> Item:
    """The item ``handle.method(params)`` (one capability call of ``batch.run``)."""
    packer = _Packer(op, span)
    script = call("std.call_method", call("std.var", Atom(CAP)), Atom(method), call("std.arg", Atom(0)))
    return Item(script, {CAP: packer.value(handle, "capability")}, [packer.value(params, "params")], label=op,
                model=model)


def read_names(body: Node) -> tuple[set[str], set[str], bool]:
    """(names read or assigned, names declared or bound as parameters, whether a name is computed)."""
    used: set[str] = set()
    bound: set[str] = set()
    dynamic = False
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, Array):
            op, rest = node.op, node.rest
            if op in ("std.var", "std.set", "std.let") and rest:
                if isinstance(rest[0], Atom) and type(rest[0].value) is str:
                    (bound if op == "std.let" else used).add(rest[0].value)
                elif op == "std.var":
                    dynamic = True
            elif op == "std.lambda" and rest and isinstance(rest[0], Array):
                bound.update(p.value for p in rest[0].items if isinstance(p, Atom) and type(p.value) is str)
            stack.extend(node.items)
        elif isinstance(node, Object):
            stack.extend(v for _, v in node.entries)
    return used, bound, dynamic


def _visible(scope: Scope | None) -> dict:
    """Every variable visible from ``scope`` (nearest binding wins)."""
    chain = []
    while scope is not None:
        chain.append(scope.vars)
        scope = scope.parent
    out: dict = {}
    for vars_ in reversed(chain):
        out.update(vars_)
    return out


class CannotTravel(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _Packer:
    def __init__(self, op: str, span: Any):
        self.op = op
        self.span = span
        self.fns: dict[int, int] = {}  # id(Lambda) -> pack id

    def fail(self, name: str, what: str) -> ScriptError:
        return ScriptError(
            f"{self.op}: the lambda captures '{name}', {what}, which cannot be sent to another worker",
            self.span, hint="pass what the item needs as plain values (numbers, strings, lists, objects, images, "
                            "capabilities), or run with the local executor")

    def pack_fn(self, fn: Lambda, name: str) -> FnRef | SeenFn:
        key = id(fn)
        if key in self.fns:
            return SeenFn(self.fns[key])
        ref = FnRef(len(self.fns) + 1, tuple(fn.params), fn.body)
        self.fns[key] = ref.id
        used, bound, dynamic = read_names(fn.body)
        visible = _visible(fn.scope)
        names = set(visible) if dynamic else used
        for var in sorted(names):
            if var not in visible or var in fn.params:
                continue
            try:
                ref.captures[var] = self.value(visible[var], var)
            except CannotTravel as e:
                if dynamic or var in bound:  # maybe never read from here: leave it behind
                    continue
                raise self.fail(var, e.what) from None
        return ref

    def value(self, v: Any, name: str, depth: int = 0) -> Any:
        if depth > MAX_PACK_DEPTH:
            raise self.fail(name, "data nested too deeply")
        t = v.__class__
        if v is None or t in (bool, int, float, str):
            return v
        if t is list:
            return [self.value(i, name, depth + 1) for i in v]
        if t is dict:
            return {k: self.value(i, name, depth + 1) for k, i in v.items()}
        if t is Image or isinstance(v, Image):
            return v
        if t is Lambda:
            return self.pack_fn(v, name)
        if isinstance(v, HostValue) and getattr(v, "type_name", "") == "capability":
            rec = v._record  # noqa: SLF001 - the manager's own record: type, params, provider
            if getattr(rec, "revoked", False):
                raise CannotTravel("a revoked capability")
            return CapRef(rec.type, _plain(rec.params), rec.provider)
        if isinstance(v, HostValue):
            raise CannotTravel(_a(getattr(v, "type_name", type(v).__name__)))
        raise CannotTravel(_a(type(v).__name__))


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _plain(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_plain(i) for i in v]
    if isinstance(v, dict):
        return {k: _plain(i) for k, i in v.items()}
    return v


# --- unpacking and running (on the worker) -------------------------------------------------------------

class _Unpacker:
    def __init__(self, runtime: Any):
        self.rt = runtime
        self.fns: dict[int, Lambda] = {}
        self.caps: dict[CapRef, Any] = {}

    def value(self, v: Any) -> Any:
        t = v.__class__
        if t is list:
            return [self.value(i) for i in v]
        if t is dict:
            return {k: self.value(i) for k, i in v.items()}
        if t is CapRef:
            return self.cap(v)
        if t is FnRef:
            scope = Scope(None, {})
            fn = Lambda(v.params, v.body, scope)
            self.fns[v.id] = fn
            for name, packed in v.captures.items():
                scope.vars[name] = self.value(packed)
            return fn
        if t is SeenFn:
            return self.fns.get(v.id)
        return v

    def cap(self, ref: CapRef) -> Any:
        key = (ref.type, repr(ref.params), ref.provider)
        handle = self.caps.get(key)
        if handle is None:
            handle = self.caps[key] = self.rt.caps.grant(ref.type, ref.params, provider=ref.provider)
        return handle


def item_scope(runtime: Any, item: Item) -> Scope:
    """The variables an item runs with on ``runtime`` (capabilities granted there again)."""
    un = _Unpacker(runtime)
    return Scope(None, {name: un.value(v) for name, v in item.captures.items()})


def check_result(value: Any, depth: int = 0) -> None:
    """Raise ScriptError when a result cannot travel back (a capability, a lambda, an entity)."""
    if depth > MAX_PACK_DEPTH:
        raise ScriptError("batch item: its result is nested too deeply to send back")
    t = value.__class__
    if t is list:
        for v in value:
            check_result(v, depth + 1)
    elif t is dict:
        for v in value.values():
            check_result(v, depth + 1)
    elif t is Lambda or (isinstance(value, HostValue) and not isinstance(value, Image)):
        raise ScriptError(f"batch item: its result holds {to_display(value)}, which cannot be sent back from "
                          f"a worker", hint="return plain values and images from a batch item")


def tag_images(value: Any, extra: dict, depth: int = 0) -> Any:
    """``value`` with ``extra`` added to the metadata of every image in it (where it was made)."""
    if depth > MAX_PACK_DEPTH:
        return value
    t = value.__class__
    if t is list:
        return [tag_images(v, extra, depth + 1) for v in value]
    if t is dict:
        return {k: tag_images(v, extra, depth + 1) for k, v in value.items()}
    if isinstance(value, Image):
        return Image(value.pixels, {**value.metadata, **extra})
    return value


def error_record(e: BaseException) -> dict:
    """A raised error as data that travels (class name, message, hint, position)."""
    if isinstance(e, ViwoError):
        return {"class": type(e).__name__, "message": e.message, "hint": e.hint, "span": e.span,
                "catchable": e.catchable}
    return {"class": "InternalError", "message": f"internal error on a worker: {type(e).__name__}: {e}",
            "hint": "this is a bug in viwoscript (or a plugin); the worker's log has details", "span": None,
            "catchable": True}


def error_from_record(rec: dict, span: Any = None) -> ViwoError:
    """The error of :func:`error_record` again (its class when it is one of viwoscript's)."""
    cls = getattr(_errors, rec.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, ViwoError)):
        cls = ScriptError
    try:
        err = cls(rec.get("message", "error"), rec.get("span") or span, hint=rec.get("hint"))
    except TypeError:
        err = ScriptError(rec.get("message", "error"), rec.get("span") or span, hint=rec.get("hint"))
    if rec.get("catchable") is False:
        err.catchable = False
    return err
