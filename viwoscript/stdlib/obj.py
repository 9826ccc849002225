"""``obj.*``: objects have string keys in insertion order, are mutable and shared by reference (§9).

Library lambdas get ``(value, key)``; ``obj.reduce``'s gets ``(acc, value, key)``.
"""

from __future__ import annotations

from ..errors import ArgumentError, ScriptError
from ..nodes import Array, to_data
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import Lambda, preview, to_json_text, truthy

OPCODES: list = []

#: Keys the original refused because they reach JavaScript prototypes; refused here too so that
#: scripts behave the same on both interpreters.
DISALLOWED_KEYS = frozenset({"__proto__", "constructor", "prototype"})

def opcode(name, *params, **kw):
    kw.setdefault("category", "object")
    return _opcode(name, *params, into=OPCODES, **kw)


OBJ = P("object", "object")
KEY = P("key", "string")


@opcode("obj.new", P("pairs", "block", kind="pairs", variadic=True), label="New object", returns="object",
        lazy=True, category="data")
def new(ev, args, scope):
    """A new object from `[key, value]` pairs (each key evaluated and required to be a string); last key wins."""
    out: dict = {}
    e = ev.eval
    for i, pair in enumerate(args):
        if pair.__class__ is not Array or len(pair.items) != 2:
            raise ArgumentError(f"obj.new: expected pair at index {i}, got {to_json_text(to_data(pair))}",
                                pair.span, hint='write each entry as ["key", valueExpr]')
        key = e(pair.items[0], scope)
        value = e(pair.items[1], scope)  # evaluated before the key is checked, as in the original
        if type(key) is not str:
            raise ArgumentError(f"obj.new: expected string key at index {i}, got {preview(key, as_json=True)}",
                                pair.items[0].span)
        out[key] = value
    if len(out) > ev.limits.max_object:
        ev.check_size(len(out), "obj.new", "object")
    return out


@opcode("obj.keys", OBJ, label="Keys", returns="array")
def keys(ev, obj):
    """The object's keys, in insertion order."""
    return list(obj)


@opcode("obj.values", OBJ, label="Values", returns="array")
def values(ev, obj):
    """The object's values, in key order."""
    return list(obj.values())


@opcode("obj.entries", OBJ, label="Entries", returns="array")
def entries(ev, obj):
    """The object's `[key, value]` pairs, in key order."""
    return [[k, v] for k, v in obj.items()]


@opcode("obj.get", OBJ, KEY, P("default", default=None), label="Get")
def get(ev, obj, key, *default):
    """The value stored under a key; a missing key returns `default`, or is an error without one."""
    if key in obj:
        return obj[key]
    if default:  # given, even as null: a missing argument is not the same as null here
        return default[0]
    raise ScriptError(f"obj.get: key '{key}' not found",
                      hint="check with obj.has first, or pass a default: (obj.get o key default)")


@opcode("obj.set", OBJ, KEY, P("value"), label="Set", returns="object")
def set_(ev, obj, key, value=None):
    """Store a value under a key; returns the (mutated) object."""
    if key in DISALLOWED_KEYS:
        raise ArgumentError(f"obj.set: disallowed key '{key}'",
                            hint="__proto__, constructor and prototype are reserved; pick another key")
    if key not in obj and len(obj) >= ev.limits.max_object:
        ev.check_size(len(obj) + 1, "obj.set", "object")
    obj[key] = value
    return obj


@opcode("obj.has", OBJ, KEY, label="Has key", returns="boolean")
def has(ev, obj, key):
    """Whether the object has the key."""
    return key in obj


@opcode("obj.del", OBJ, KEY, label="Delete key", returns="boolean")
def del_(ev, obj, key):
    """Remove a key; returns whether it existed."""
    if key in obj:
        del obj[key]
        return True
    return False


@opcode("obj.merge", P("objects", "object", variadic=True), label="Merge", returns="object")
def merge(ev, *objs):
    """A new object with the keys of every object; later objects win (null arguments are skipped, as
    JavaScript's Object.assign skips them)."""
    out: dict = {}
    for o in objs:
        if o is not None:
            out.update(o)
    if len(out) > ev.limits.max_object:
        ev.check_size(len(out), "obj.merge", "object")
    return out


# The original declared the lambda parameter as an object (a lambda was an object there): a number
# or string is a type error; an object that is not a lambda is handled per opcode as it was.
FN = P("lambda", "object")


def _lambda_or(ev, op: str, fn):
    if fn.__class__ is Lambda:
        return fn
    if type(fn) is not dict:
        raise ArgumentError(f"{op}: expected lambda")
    return None


@opcode("obj.map", OBJ, FN, label="Map object", returns="object", validate=False)
def map_(ev, obj=None, fn=None):
    """A new object with the same keys and each value replaced by `f(value, key)`."""
    _check_obj(ev, "obj.map", obj)
    if _lambda_or(ev, "obj.map", fn) is None:
        raise ArgumentError(f"obj.map: expected lambda, got {preview(fn, as_json=True)}")
    call = ev.call
    return {k: call(fn, (v, k), op="obj.map") for k, v in list(obj.items())}


@opcode("obj.filter", OBJ, FN, label="Filter object", returns="object", validate=False)
def filter_(ev, obj=None, fn=None):
    """A new object with the entries for which `f(value, key)` is truthy."""
    _check_obj(ev, "obj.filter", obj)
    if _lambda_or(ev, "obj.filter", fn) is None:
        return {}
    call = ev.call
    return {k: v for k, v in list(obj.items()) if truthy(call(fn, (v, k), op="obj.filter"))}


@opcode("obj.reduce", OBJ, FN, P("init", default=None), label="Reduce object", validate=False)
def reduce(ev, obj=None, fn=None, init=None):
    """Fold the entries into one value: `acc = f(acc, value, key)`, starting from `init`."""
    _check_obj(ev, "obj.reduce", obj)
    if _lambda_or(ev, "obj.reduce", fn) is None:
        return init
    acc = init
    call = ev.call
    for k, v in list(obj.items()):
        acc = call(fn, (acc, v, k), op="obj.reduce")
    return acc


@opcode("obj.flatMap", OBJ, FN, label="FlatMap object", returns="object", validate=False)
def flat_map(ev, obj=None, fn=None):
    """Merge the objects that `f(value, key)` returns (other results are ignored) into a new object."""
    _check_obj(ev, "obj.flatMap", obj)
    if _lambda_or(ev, "obj.flatMap", fn) is None:
        return {}
    out: dict = {}
    call = ev.call
    for k, v in list(obj.items()):
        r = call(fn, (v, k), op="obj.flatMap")
        if type(r) is dict:
            out.update(r)
            if len(out) > ev.limits.max_object:
                ev.check_size(len(out), "obj.flatMap", "object")
    return out


def _check_obj(ev, op: str, obj) -> None:
    if type(obj) is not dict:
        raise ArgumentError(f"{op}: expected object for object")
