"""``std.lambda``, ``std.apply``, ``std.quote``: closures, calls and unevaluated data."""

from __future__ import annotations

from ...errors import ArgumentError
from ...nodes import Array, Atom, to_data
from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...values import Lambda, to_text
from ..emit import emits, is_literal

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "std")
    return _opcode(name, *params, into=OPCODES, **kw)


def param_names(params_node) -> tuple:
    """The parameter names of a ``std.lambda``: a raw list, each item a name (other items as text)."""
    return tuple(to_text(to_data(p)) if not (p.__class__ is Atom and type(p.value) is str) else p.value
                 for p in params_node.items)


@opcode("std.lambda", P("params", "array", kind="names"), P("body", "block", kind="block"), label="Lambda",
        returns="lambda", lazy=True)
def lambda_(ev, args, scope):
    """Make a closure over the current scope. `params` is a raw list of names."""
    params_node = args[0] if args else None
    if isinstance(params_node, Array):
        params = param_names(params_node)
    elif params_node is None:
        params = ()
    else:
        raise ArgumentError("std.lambda: expected array for params",
                            hint="write the parameter names as a list: (std.lambda (x y) body)")
    body = args[1] if len(args) > 1 else Atom(None)
    return Lambda(params, body, scope, span=ev.current_span)


@emits(lambda_)
def emit_lambda(c, u, node, cs, spec):
    rest = node.rest
    if not rest or rest[0].__class__ is not Array:
        return None
    params = param_names(rest[0])
    body = rest[1] if len(rest) > 1 else Atom(None)
    c.mark_real(u, cs)  # the closure captures these scopes
    u.pending.append(node)
    name = c.compile_unit(body, params, cs, key=id(node))
    k = c.const((params, body))
    t = u.temp()
    u.emit(f"{t} = Lambda({k}[0], {k}[1], {c.scope_obj(u, cs)}, None, None, {name})")
    return t


@opcode("std.apply", P("func", "lambda"), P("args", variadic=True), label="Apply", validate=False)
def apply(ev, func=None, *args):
    """Call a lambda with arguments (missing ones are null, extra ones ignored)."""
    return ev.call(func, args)


@emits(apply)
def emit_apply(c, u, node, cs, spec):
    vals = c.args(u, node, cs, spec)
    c.flush(u)
    n = c.index(node, spec)
    t = u.temp()
    u.emit(f"_n = {n}")
    f = vals[0] if vals else "None"
    args = f"({''.join(v + ', ' for v in vals[1:])})"
    if is_literal(f):
        u.emit(f"{t} = _call(ev, {f}, {args})")
    else:  # a compiled lambda is called directly (its body does the bookkeeping of Evaluator.call)
        u.emit(f"if {f}.__class__ is Lambda and {f}.code is not None: {t} = {f}.code(ev, {f}.scope, {args})")
        u.emit(f"else: {t} = _call(ev, {f}, {args})")
    return t


@opcode("std.quote", P("value", kind="raw"), label="Quote", lazy=True)
def quote(ev, args, scope):
    """Return the argument unevaluated, as data."""
    return to_data(args[0]) if args else None
