"""``std.let``, ``std.var``, ``std.set``: declaring, reading and assigning variables."""

from __future__ import annotations

from ...errors import ArgumentError, ScriptError
from ...nodes import Atom
from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...values import preview
from ..emit import emits

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "std")
    return _opcode(name, *params, into=OPCODES, **kw)


@opcode("std.let", P("name", "string", kind="name"), P("value"), label="Let", validate=False, lazy=True,
        layout="infix")
def let(ev, args, scope):
    """Declare a variable in the current scope (re-declaring overwrites) and return its value."""
    name = ev.eval(args[0], scope) if args else None
    value = ev.eval(args[1], scope) if len(args) > 1 else None
    if type(name) is not str:
        raise ArgumentError("std.let: expected string for name")
    scope.vars[name] = value
    return value


@emits(let)
def emit_let(c, u, node, cs, spec):
    rest = node.rest
    if not rest or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
        return None
    name = rest[0].value
    u.pending.append(node)
    value = c.expr(u, rest[1], cs) if len(rest) > 1 else "None"
    cs.info[0].add(name)
    c.flush(u)
    if not cs.real:
        u.emit(f"{cs.local(name)} = {value}")
    else:
        s = cs
        while not s.materialized:  # cannot happen: declaring makes it materialized
            s = s.parent
        u.emit(f"V{s.id}[{name!r}] = {value}")
    return value


@opcode("std.var", P("name", "string", kind="name"), label="Variable", validate=False, lazy=True)
def var(ev, args, scope):
    """Read the nearest binding of a variable; an unbound name reads as null."""
    node = args[0] if args else None
    name = node.value if node.__class__ is Atom else (ev.eval(node, scope) if node is not None else None)
    if type(name) is not str:
        return None  # no binding has such a name (the original read undefined)
    return scope.lookup(name)  # (the tree-walker inlines this for the common literal-name case)


@emits(var)
def emit_var(c, u, node, cs, spec):
    rest = node.rest
    if len(rest) != 1 or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
        return None
    u.pending.append(node)
    t = u.temp()
    c.read(u, cs, rest[0].value, t)
    return t


@opcode("std.set", P("name", "string", kind="name"), P("value"), label="Set", validate=False, lazy=True,
        layout="infix")
def set_(ev, args, scope):
    """Assign the nearest existing binding and return the value."""
    name = ev.eval(args[0], scope) if args else None
    value = ev.eval(args[1], scope) if len(args) > 1 else None
    if not (type(name) is str and scope.assign(name, value)):
        raise ScriptError(f"Cannot set undefined variable '{name if type(name) is str else preview(name)}'",
                          hint="declare it first with std.let")
    return value


@emits(set_)
def emit_set(c, u, node, cs, spec):
    rest = node.rest
    if not rest or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
        return None
    u.pending.append(node)
    value = c.expr(u, rest[1], cs) if len(rest) > 1 else "None"
    c.flush(u)
    n = c.index(node, spec)
    u.emit(f"_n = {n}")
    c.write(u, cs, rest[0].value, value)
    return value
