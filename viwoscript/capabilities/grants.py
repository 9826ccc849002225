"""Grant parameters: normalising them, narrowing them (``delegate``), matching filters, namespaces.

The rules follow the original viwo kernel, minus its bugs:

- equal values always narrow;
- ``"*": true`` (a wildcard capability) may be dropped or kept, never added; a wildcard lets a delegate
  *add* parameters the parent lacks, but every parameter the parent has is still checked;
- ``max`` limits (declared, or any key starting with ``max_``): lower or equal; ``null`` means unlimited,
  so a number narrows ``null`` and ``null`` never narrows a number; ``min`` limits (``min_*``): higher
  or equal;
- ``subset`` (declared, or any list): every item of the child is in the parent; ``null`` (any) → any list;
- ``path``: a sub-path on a ``/`` boundary, after normalisation; ``..`` segments are refused;
  ``paths`` (``roots``): every child path lies under some parent path;
- ``domain``: equal or a subdomain on a ``.`` boundary;
- ``namespace``: equal, or a sub-namespace on a ``.`` boundary (``fs`` covers ``fs.read``, never
  ``fsx.read``); ``"*"`` covers everything and only ``"*"`` narrows to ``"*"``;
- booleans (``flag``, the default for undeclared booleans, e.g. ``readonly``): ``true`` restricts, so
  ``false → true`` narrows and ``true → false`` widens; ``allow`` flags the opposite;
- anything else (numbers that are not limits, strings, objects): must stay equal.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any

from ..errors import CapabilityError
from ..limits import Meter
from ..values import HostValue, to_display, to_json_text, typeof
from .base import TYPE_RE, Limit

WILDCARD = "*"


# --- JSON-safe copies ----------------------------------------------------------------------------

def plain_copy(value: Any, where: str, depth: int = 0, meter: Meter | None = None) -> Any:
    """A deep copy of JSON-like data (null, booleans, numbers, strings, lists, objects) or an error.

    Grant parameters are data: lambdas, images and capability handles are refused, so no later change
    to the script's object can reach a stored grant. The walk is counted (``limits.Meter``): a list shared
    into itself many times is a LimitError, not a hang.
    """
    if depth > 32:
        raise CapabilityError(f"{where}: parameters nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str or t is int:
        return value
    if t is float:
        if not math.isfinite(value):
            raise CapabilityError(f"{where}: parameters must be finite numbers, got {to_display(value)}")
        return value
    if t is list or t is dict:
        m = meter if meter is not None else Meter(None, where)
        m.left -= len(value) + 1
        if m.left < 0:
            m.poll()
        if t is list:
            return [plain_copy(v, where, depth + 1, m) for v in value]
        return {str(k): plain_copy(v, where, depth + 1, m) for k, v in value.items()}
    kind = value.type_name if isinstance(value, HostValue) else typeof(value)
    raise CapabilityError(f"{where}: parameters must be plain data, got {kind}",
                          hint="use numbers, strings, booleans, lists and objects")


def deep_equal(a: Any, b: Any) -> bool:
    """Structural equality that keeps JSON types apart (``true`` is not ``1``)."""
    ta, tb = type(a), type(b)
    num = (int, float)
    if ta in num and tb in num:
        return a == b
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    return a == b


def _is_num(v: Any) -> bool:
    return type(v) in (int, float)


# --- kinds ---------------------------------------------------------------------------------------

def kind_of(key: str, value: Any, declared: dict[str, Limit] | None = None) -> str:
    """How ``key`` narrows: its declared kind, else inferred from its name and value as the original did."""
    if declared and key in declared:
        return declared[key].kind
    if key == "path":
        return "path"
    if key in ("roots", "paths"):
        return "paths"
    if key == "domain":
        return "domain"
    if key == "namespace":
        return "namespace"
    if key.startswith("max_"):
        return "max"
    if key.startswith("min_"):
        return "min"
    if type(value) is list:
        return "subset"
    if type(value) is bool:
        return "flag"
    return "exact"


def normalize_path(p: str) -> str | None:
    """A normalised path, or None for one with ``..`` segments (never a valid restriction)."""
    if "\x00" in p or ".." in p.replace("\\", "/").split("/"):
        return None
    return posixpath.normpath(p.replace("\\", "/"))


def path_within(parent: Any, child: Any) -> bool:
    if type(parent) is not str or type(child) is not str:
        return False
    pp, cp = normalize_path(parent), normalize_path(child)
    if pp is None or cp is None:
        return False
    if pp == cp:
        return True
    if pp.startswith("/") != cp.startswith("/"):
        return False
    if pp in ("/", "."):
        return pp == "/" or not cp.startswith("/")
    return cp.startswith(pp + "/")


def _domain_labels(d: str) -> list[str] | None:
    labels = d.lower().rstrip(".").split(".")
    return labels if all(labels) else None


def domain_within(parent: Any, child: Any) -> bool:
    if type(parent) is not str or type(child) is not str:
        return False
    pl, cl = _domain_labels(parent), _domain_labels(child)
    if pl is None or cl is None:
        return parent == child
    return len(cl) >= len(pl) and cl[len(cl) - len(pl):] == pl


def namespace_covers(namespace: Any, name: Any) -> bool:
    """``fs`` covers ``fs`` and ``fs.read``, never ``fsx.read``; ``*`` covers everything."""
    if type(namespace) is not str or type(name) is not str:
        return False
    if namespace == WILDCARD:
        return True
    if name == WILDCARD or not TYPE_RE.match(namespace):
        return False
    return name == namespace or name.startswith(namespace + ".")


def narrows(key: str, parent: Any, child: Any, kind: str | None = None) -> bool:
    """Whether ``child`` is the same as or narrower than ``parent`` for parameter ``key``."""
    if deep_equal(parent, child):
        return True
    if key == WILDCARD:
        return parent is True and child is False
    kind = kind or kind_of(key, parent)
    if kind == "max":
        if child is None:
            return False
        return _is_num(child) and (parent is None or (_is_num(parent) and child <= parent))
    if kind == "min":
        if child is None:
            return False
        return _is_num(child) and (parent is None or (_is_num(parent) and child >= parent))
    if kind == "subset":
        if type(child) is not list:
            return False
        return parent is None or (type(parent) is list and all(any(deep_equal(c, p) for p in parent) for c in child))
    if kind == "path":
        return parent is None and type(child) is str and normalize_path(child) is not None or path_within(parent, child)
    if kind == "paths":
        if type(child) is not list or not all(type(c) is str for c in child):
            return False
        if parent is None:
            return all(normalize_path(c) is not None for c in child)
        return type(parent) is list and all(any(path_within(p, c) for p in parent) for c in child)
    if kind == "domain":
        return domain_within(parent, child)
    if kind == "namespace":
        return namespace_covers(parent, child)
    if kind == "flag":
        return parent is False and child is True
    if kind == "allow":
        return parent is True and child is False
    return False


def restrict(parent: dict, restrictions: dict, declared: dict[str, Limit] | None = None,
             where: str = "delegate") -> dict:
    """The parameters of a capability delegated from ``parent`` with ``restrictions``, or an error.

    Never wider than the parent: each key the parent has must narrow; a key it lacks may be added only
    under the parent's wildcard or as a restricting ``true`` flag; ``"*"`` is never added.
    """
    restrictions = plain_copy(restrictions, where)
    has_wildcard = parent.get(WILDCARD) is True
    for key, child in restrictions.items():
        if key not in parent:
            if key == WILDCARD:
                raise CapabilityError(f"{where}: cannot add the wildcard '*': it would widen the capability",
                                      hint="a delegate can only narrow its parent")
            kind = kind_of(key, child, declared)
            if has_wildcard or (kind == "flag" and child is True):
                if kind in ("max", "min", "subset", "path", "paths") and child is None:
                    raise CapabilityError(f"{where}: '{key}': null would not restrict anything")
                continue
            raise CapabilityError(f"{where}: cannot add new parameter '{key}': the parent capability lacks it",
                                  hint="a delegate can only narrow parameters its parent has")
        parent_value = parent[key]
        if not narrows(key, parent_value, child, kind_of(key, parent_value, declared)):
            raise CapabilityError(
                f"{where}: restriction '{key}' would expand permissions (parent: {to_json_text(parent_value)}, "
                f"child: {to_json_text(child)})",
                hint=_narrow_hint(kind_of(key, parent_value, declared)))
    return {**parent, **restrictions}


def _narrow_hint(kind: str) -> str:
    return {
        "max": "a limit can only be lowered (null means unlimited)",
        "min": "a minimum can only be raised",
        "subset": "a list can only lose items",
        "path": "a path can only move into a sub-folder",
        "paths": "each path must lie inside one of the parent's",
        "domain": "a domain can only become a subdomain",
        "namespace": "a namespace can only become a sub-namespace (a.b → a.b.c)",
        "flag": "a restricting flag can only be turned on",
        "allow": "a permission flag can only be turned off",
    }.get(kind, "this parameter cannot change")


def within(parent: dict, child: dict, declared: dict[str, Limit] | None = None) -> bool:
    """Whether ``child`` is a valid narrowing of ``parent`` (used by tests and ``give``)."""
    has_wildcard = parent.get(WILDCARD) is True
    for key, value in child.items():
        if key in parent:
            if not narrows(key, parent[key], value, kind_of(key, parent[key], declared)):
                return False
        elif key == WILDCARD or not (has_wildcard or (kind_of(key, value, declared) == "flag" and value is True)):
            return False
    return all(key in child for key in parent)


def matches_filter(params: dict, flt: dict, declared: dict[str, Limit] | None = None) -> bool:
    """Whether a capability with ``params`` satisfies a ``get_capability`` filter.

    Each filter value must be covered by the capability's own value for that key (equal or narrower:
    a capability for ``/home/me`` satisfies ``{"path": "/home/me/docs"}``). A wildcard capability
    satisfies keys it does not restrict, never a key it restricts differently.
    """
    wildcard = params.get(WILDCARD) is True
    for key, want in flt.items():
        if key in params:
            if not narrows(key, params[key], want, kind_of(key, params[key], declared)):
                return False
        elif not wildcard or key == WILDCARD:
            return False
    return True


# --- grant normalisation -------------------------------------------------------------------------

def normalize_params(cap_type: str, params: dict | None, declared: dict[str, Limit], where: str,
                     *, strict: bool = True) -> dict:
    """Fill in declared defaults, check types of declared limits; unknown keys are errors (``strict``)."""
    params = plain_copy(params or {}, where)
    if type(params) is not dict:
        raise CapabilityError(f"{where}: params must be an object")
    out: dict[str, Any] = {}
    for name, lim in declared.items():
        if name in params:
            value = params[name]
        elif lim.required:
            raise CapabilityError(f"{where}: {cap_type} needs the parameter '{name}'",
                                  hint=lim.description or None)
        else:
            value = plain_copy(lim.default, where)
        _check_limit_value(where, lim, value)
        out[name] = value
    for key, value in params.items():
        if key in declared:
            continue
        if key == WILDCARD:
            if value is not True and value is not False:
                raise CapabilityError(f"{where}: '*' must be true or false")
            out[key] = value
            continue
        if strict and declared:
            raise CapabilityError(f"{where}: {cap_type} has no parameter '{key}'",
                                  hint="known: " + ", ".join(declared))
        out[key] = value
    return out


def _check_limit_value(where: str, lim: Limit, value: Any) -> None:
    kind = lim.kind
    ok = True
    if value is None:
        ok = kind in ("max", "min", "subset", "paths", "path")
    elif kind in ("max", "min"):
        ok = _is_num(value) and value >= 0
    elif kind in ("subset", "paths"):
        ok = type(value) is list
    elif kind in ("path", "domain", "namespace"):
        ok = type(value) is str and value != ""
    elif kind in ("flag", "allow"):
        ok = type(value) is bool
    if not ok:
        raise CapabilityError(f"{where}: parameter '{lim.name}' has an invalid value {to_json_text(value)}",
                              hint=lim.description or None)
