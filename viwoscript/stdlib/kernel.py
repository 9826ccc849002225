"""Kernel opcodes: capabilities (``get_capability``, ``std.call_method``, ``mint``, ``delegate``, ...).

Everything here goes through ``runtime.caps`` (:class:`viwoscript.capabilities.manager.CapabilityManager`):
a script reaches a capability only through a handle the host granted, and a method only if the
capability declares it. ``std.call_method`` on other values reaches a small per-type allowlist
(:data:`VALUE_METHODS`); there is no general attribute access.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArgumentError
from ..limits import made_image
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import HostValue, Image, Lambda, to_display, to_json_value, typeof

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "kernel")
    kw.setdefault("pure", False)
    return _opcode(name, *params, into=OPCODES, **kw)


# --- capabilities --------------------------------------------------------------------------------

def _bounded(ev, value: Any, op: str) -> Any:
    """``value`` after one walk of it counted against this run's limits (the grant code then copies data
    whose size is known to be within them)."""
    if type(value) in (list, dict):
        try:
            to_json_value(value, ev, op)
        except ValueError:
            pass  # contains itself: the grant code says what is wrong with it
    return value


@opcode("get_capability", P("type", "string", description="The capability type, e.g. diffusers.generate"),
        P("filter", "object", None, "Parameters the capability must cover, e.g. {\"path\": \"/data\"}"),
        returns="capability", label="Get Capability")
def get_capability(ev, cap_type, flt=None):
    """A handle to a capability granted to this script whose parameters cover the filter, or null."""
    return ev.runtime.caps.find(cap_type, _bounded(ev, flt, "get_capability"))


@opcode("has_capability", P("type", "string", description="The capability type"),
        P("filter", "object", None, "Parameters the capability must cover"),
        returns="boolean", label="Has Capability")
def has_capability(ev, cap_type, flt=None):
    """Whether this script holds a capability of this type whose parameters cover the filter."""
    return ev.runtime.caps.find(cap_type, _bounded(ev, flt, "has_capability"), op="has_capability") is not None


@opcode("std.call_method", P("object", description="A capability handle, or an image/string/list/object"),
        P("method", "string", description="The method name"),
        P("args", description="Arguments: positional ones, then an optional options object", variadic=True),
        returns="any", label="Call Method", category="std")
def call_method(ev, obj, name, *args):
    """Call a capability's declared method (arguments bound to its declaration, options camelCase or
    snake_case), or an allowlisted method of another value (see docs/capabilities.md)."""
    caps_handle = getattr(obj, "type_name", None) == "capability" and isinstance(obj, HostValue)
    if caps_handle:
        return made_image(ev, ev.runtime.caps.call(ev, obj, name, list(args)), "std.call_method")
    return made_image(ev, call_value_method(obj, name, list(args)), "std.call_method")


@opcode("mint", P("authority", "capability", description="A sys.mint capability"),
        P("type", "string", description="The capability type to mint (within the authority's namespace)"),
        P("params", "object", None, "The new capability's parameters"),
        returns="capability", label="Mint Capability")
def mint(ev, authority, cap_type, params=None):
    """Mint a new capability with a sys.mint authority whose namespace covers the type."""
    return ev.runtime.caps.mint(authority, cap_type, _bounded(ev, params, "mint"))


@opcode("delegate", P("parent", "capability", description="The capability to narrow"),
        P("restrictions", "object", description="Parameters to narrow, e.g. {\"max_steps\": 20}"),
        returns="capability", label="Delegate Capability")
def delegate(ev, parent, restrictions):
    """A new capability of the same type whose parameters are the parent's narrowed by the restrictions;
    anything that would widen it is an error."""
    return ev.runtime.caps.delegate(parent, _bounded(ev, restrictions, "delegate"))


@opcode("give_capability", P("cap", "capability", description="The capability to give away"),
        P("target", "object", description="The entity receiving it, e.g. (std.caller)"),
        returns="null", label="Give Capability", validate=False)
def give_capability(ev, cap=None, target=None):
    """Transfer a capability to another entity; this script no longer holds it."""
    ev.runtime.caps.give(cap, target)
    return None


@opcode("get_capability_metadata", returns="array", label="Capability Metadata")
def get_capability_metadata(ev):
    """Every registered capability type with its methods and their parameters (design §8 shape)."""
    return ev.runtime.capability_metadata()


# --- allowlisted methods of other values ---------------------------------------------------------

def _image_metadata(img: Image) -> Any:
    return to_json_value(img.metadata)


def _length(v: Any) -> int:
    return len(v)


def _includes(v: Any, item: Any = None) -> bool:
    from ..values import strict_equal

    if type(v) is str:
        if type(item) is not str:
            raise ArgumentError("std.call_method: includes on a string expects a string")
        return item in v
    return any(strict_equal(x, item) or (x != x and item != item and type(x) is float and type(item) is float)
               for x in v)


#: Methods ``std.call_method`` may call on values that are not capabilities, by script type.
#: Each entry: name → (function, number of arguments it takes).
VALUE_METHODS: dict[str, dict[str, tuple]] = {
    "image": {
        "width": (lambda img: img.width, 0),
        "height": (lambda img: img.height, 0),
        "size": (lambda img: [img.width, img.height], 0),
        "mode": (lambda img: img.mode, 0),
        "metadata": (_image_metadata, 0),
    },
    "string": {"length": (_length, 0), "includes": (_includes, 1)},
    "array": {"length": (_length, 0), "includes": (_includes, 1)},
    "object": {"keys": (lambda o: list(o), 0), "has": (lambda o, k=None: type(k) is str and k in o, 1)},
}


def _value_type(obj: Any) -> str:
    if isinstance(obj, HostValue):
        return obj.type_name
    if isinstance(obj, Lambda):
        return "lambda"
    return typeof(obj)


def call_value_method(obj: Any, name: Any, args: list) -> Any:
    """``std.call_method`` on a value that is not a capability: only its type's allowlisted methods."""
    if obj is None:
        raise ArgumentError(f"std.call_method: cannot call method {to_display(name)} on null",
                            hint="the object is null: did get_capability find nothing?")
    vt = _value_type(obj)
    if isinstance(obj, Image) or type(obj) in (str, list, dict):
        table = VALUE_METHODS[vt]
        entry = table.get(name) if type(name) is str else None
        if entry is not None:
            fn, arity = entry
            if len(args) > arity:
                raise ArgumentError(f"std.call_method: {vt} method {name} takes {arity} argument"
                                    f"{'s' if arity != 1 else ''}, got {len(args)}")
            return fn(obj, *args)
        names = list(table)
    elif isinstance(obj, HostValue):
        names = sorted(n for n in type(obj).script_methods if not n.startswith("_"))
        if type(name) is str and name in names:
            return _host_method(obj, name, args)
    else:
        names = []
    raise ArgumentError(f"std.call_method: {vt} has no callable method {to_display(name)}",
                        hint=f"callable on {vt}: {', '.join(names) or 'nothing'}")


def _host_method(obj: HostValue, name: str, args: list) -> Any:
    """A host value's own allowlisted member (``HostValue.script_methods``): called, or read if not callable."""
    attr = getattr(obj, name)
    if callable(attr):
        return attr(*args)
    if args:
        raise ArgumentError(f"std.call_method: {obj.type_name} member {name} takes no arguments")
    return attr
