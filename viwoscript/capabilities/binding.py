"""Binding ``std.call_method`` arguments to a method's declaration, and validating each value.

Positional arguments fill the leading parameters; a trailing plain object is the options object (keys
camelCase or snake_case, aliases allowed). Every error says what is allowed.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ArgumentError
from ..values import HostValue, preview, to_display
from .base import CallContext, MethodSpec, ParamSpec, _num, _same, _snake


def bind_arguments(where: str, spec: MethodSpec, args: list, ctx: CallContext | None = None) -> dict:
    """Bind ``std.call_method`` arguments to a method's declared parameters and validate them.

    Positional arguments fill the first ``positional`` parameters; a trailing plain object after them is
    the options object (keys camelCase or snake_case). Unknown options, too many arguments, missing
    required ones, wrong types, out-of-range values and unknown choices are ArgumentErrors that say
    what is allowed. ``null`` for an optional parameter means its default.
    """
    args = list(args)
    npos = spec.n_positional
    options: dict | None = None
    option_params = spec.option_params
    if args and type(args[-1]) is dict and len(args) - 1 <= npos:
        slot = len(args) - 1
        if slot == npos or spec.params[slot].type not in ("object", "any"):
            options = args.pop()
    elif args and args[-1] is None and len(args) - 1 == npos and option_params:
        args.pop()  # an explicit null options object
    if len(args) > npos:
        names = ", ".join(p.name for p in spec.params[:npos])
        raise ArgumentError(f"{where}: takes {npos} positional argument{'s' if npos != 1 else ''}"
                            f"{' (' + names + ')' if names else ''}"
                            f"{' and an options object' if option_params else ''}, got {len(args)}",
                            hint=f"call it as {spec.signature()}")
    bound: dict[str, Any] = {}
    for p, v in zip(spec.params, args, strict=False):
        bound[p.name] = v
    if options is not None:
        by_key: dict[str, ParamSpec] = {}
        for p in spec.all_params:
            for k in p.keys():
                by_key[k] = p
        seen_from: dict[str, str] = {}
        for key, v in options.items():
            p = by_key.get(_snake(key)) if isinstance(key, str) else None
            if p is None:
                accepted = ", ".join(p.name for p in option_params) or "none"
                raise ArgumentError(f"{where}: unknown option {to_display(key)}",
                                    hint=f"accepted options: {accepted}")
            if p.name in seen_from or (p.name in bound and bound[p.name] is not None):
                raise ArgumentError(f"{where}: {p.name} given twice ({seen_from.get(p.name, 'positionally')} "
                                    f"and {to_display(key)})", hint="give each argument once")
            seen_from[p.name] = to_display(key)
            bound[p.name] = v
    out: dict[str, Any] = {}
    for p in spec.all_params:
        v = bound.get(p.name)
        if v is None:
            if not p.optional:
                raise ArgumentError(f"{where}: missing required argument {p.name}",
                                    hint=f"call it as {spec.signature()}")
            out[p.name] = p.default
            if ctx is not None:
                ctx.defaulted.add(p.name)
            continue
        out[p.name] = validate_value(where, p, v, ctx)
    return out


def validate_value(where: str, p: ParamSpec, v: Any, ctx: CallContext | None = None) -> Any:
    """Check one argument against its declaration; returns it (integers normalised, sizes rounded)."""
    t = p.type
    if t in ("number", "integer"):
        if type(v) not in (int, float):
            raise _type_error(where, p, v)
        if not math.isfinite(v):
            raise ArgumentError(f"{where}: {p.name} must be a finite number, got {to_display(v)}")
        if t == "integer":
            if v != int(v):
                raise ArgumentError(f"{where}: {p.name} must be a whole number, got {to_display(v)}")
            v = int(v)
        if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
            raise ArgumentError(f"{where}: {p.name} must be {_range_text(p)}, got {to_display(v)}",
                                hint=f"allowed: {_range_text(p)}")
        if p.multiple_of and v % p.multiple_of:
            rounded = max(p.multiple_of, int(v) // p.multiple_of * p.multiple_of)
            if ctx is not None:
                ctx.warn(f"{where}: {p.name} {to_display(v)} rounded down to {rounded} (a multiple of {p.multiple_of})")
            v = rounded
    elif t == "string":
        if type(v) is not str:
            raise _type_error(where, p, v)
    elif t == "boolean":
        if type(v) is not bool:
            raise _type_error(where, p, v)
    elif t == "array":
        if type(v) is not list:
            raise _type_error(where, p, v)
    elif t == "object":
        if type(v) is not dict:
            raise _type_error(where, p, v)
        if p.fields:
            v = _validate_fields(where, p, v, ctx)
    elif t in ("image", "capability"):
        if getattr(v, "type_name", None) != t or not isinstance(v, HostValue):
            raise _type_error(where, p, v)
    if p.choices is not None and not any(_same(v, c) for c in p.choices):
        allowed = ", ".join(to_display(c) for c in p.choices)
        if len(p.choices) <= _SHORT_CHOICES:
            raise ArgumentError(f"{where}: {p.name} must be one of {allowed}, got {to_display(v)}",
                                hint=f"allowed: {allowed}")
        raise ArgumentError(f"{where}: {p.name} must be one of {len(p.choices)} names, got {to_display(v)}"
                            + _did_you_mean(v, p.choices), hint=f"allowed: {allowed}")
    return v


#: Up to this many choices are listed in the error message itself; longer lists only in its hint.
_SHORT_CHOICES = 12


def _did_you_mean(v: Any, choices: Any) -> str:
    """``; did you mean "X"?`` for the closest text choices (any case), or nothing."""
    import difflib

    if not isinstance(v, str):
        return ""
    texts = {c.lower(): c for c in choices if isinstance(c, str)}
    close = [v.lower()] if v.lower() in texts else difflib.get_close_matches(v.lower(), list(texts), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(to_display(texts[c]) for c in close)}?" if close else ""


def _validate_fields(where: str, p: ParamSpec, obj: dict, ctx: CallContext | None) -> dict:
    fields = {k: f for f in p.fields for k in f.keys()}
    out = {}
    for key, v in obj.items():
        f = fields.get(_snake(key)) if isinstance(key, str) else None
        if f is None:
            raise ArgumentError(f"{where}: {p.name} has no field {to_display(key)}",
                                hint="fields: " + ", ".join(f.name for f in p.fields))
        out[f.name] = validate_value(f"{where}: {p.name}", f, v, ctx) if v is not None else f.default
    for f in p.fields:
        if f.name not in out:
            if not f.optional:
                raise ArgumentError(f"{where}: {p.name} needs the field {f.name}")
            out[f.name] = f.default
    return out


def _range_text(p: ParamSpec) -> str:
    if p.min is not None and p.max is not None:
        return f"between {_num(p.min)} and {_num(p.max)}"
    if p.min is not None:
        return f"at least {_num(p.min)}"
    return f"at most {_num(p.max)}"


def _type_error(where: str, p: ParamSpec, v: Any) -> ArgumentError:
    from ..values import typeof

    got = getattr(v, "type_name", None) if isinstance(v, HostValue) else typeof(v)
    want = "a whole number" if p.type == "integer" else f"{'an' if p.type[0] in 'aeiou' else 'a'} {p.type}"
    return ArgumentError(f"{where}: {p.name} must be {want}, got {got} {preview(v)}"[:300])
