"""``and``, ``or``, ``not``: truthiness with short-circuit (the standard library lists them under boolean)."""

from __future__ import annotations

from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...values import truthy
from ..emit import emits

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "boolean")
    return _opcode(name, *params, into=OPCODES, **kw)


@opcode("and", P("values", "block", kind="block", variadic=True), label="And", returns="boolean", lazy=True,
        layout="infix")
def and_(ev, args, scope):
    """True when every operand is truthy; stops at the first falsy one."""
    for node in args:
        if not truthy(ev.eval(node, scope)):
            return False
    return True


@emits(and_)
def emit_and(c, u, node, cs, spec, *, short=False):
    rest = node.rest
    if len(rest) > 4:
        return None
    u.pending.append(node)
    t = u.temp()
    depth = 0
    for item in rest:
        v = c.expr(u, item, cs)
        c.flush(u)
        if short:  # or: stop at the first truthy operand
            u.emit(f"if {c.truth(v)}: {t} = True")
        else:
            u.emit(f"if not {c.truth(v)}: {t} = False")
        u.emit("else:")
        u.indent += 1
        depth += 1
    c.flush(u)
    u.emit(f"{t} = {'False' if short else 'True'}")
    u.indent -= depth
    return t


@opcode("or", P("values", "block", kind="block", variadic=True), label="Or", returns="boolean", lazy=True,
        layout="infix")
def or_(ev, args, scope):
    """True when some operand is truthy; stops at the first truthy one."""
    for node in args:
        if truthy(ev.eval(node, scope)):
            return True
    return False


@emits(or_)
def emit_or(c, u, node, cs, spec):
    return emit_and(c, u, node, cs, spec, short=True)


@opcode("not", P("value"), label="Not", returns="boolean")
def not_(ev, value=None):
    """Negated truthiness."""
    return not truthy(value)


@emits(not_)
def emit_not(c, u, node, cs, spec):
    vals = c.args(u, node, cs, spec)  # (truthiness cannot fail: no need to pay charges first)
    t = u.temp()
    v = vals[0] if vals else "None"
    u.emit(f"{t} = not {c.truth(v)}")
    return t
