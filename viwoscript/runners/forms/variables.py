"""``std.let``, ``std.var``, ``std.set``: declaring, reading and assigning variables."""

from __future__ import annotations

from ...errors import ArgumentError, ScriptError
from ...nodes import Atom
from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...values import to_text

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


@opcode("std.var", P("name", "string", kind="name"), label="Variable", validate=False, lazy=True)
def var(ev, args, scope):
    """Read the nearest binding of a variable; an unbound name reads as null."""
    node = args[0] if args else None
    name = node.value if node.__class__ is Atom else (ev.eval(node, scope) if node is not None else None)
    return scope.lookup(name)  # (the tree-walker inlines this for the common literal-name case)


@opcode("std.set", P("name", "string", kind="name"), P("value"), label="Set", validate=False, lazy=True,
        layout="infix")
def set_(ev, args, scope):
    """Assign the nearest existing binding and return the value."""
    name = ev.eval(args[0], scope) if args else None
    value = ev.eval(args[1], scope) if len(args) > 1 else None
    if not (type(name) is str and scope.assign(name, value)):
        raise ScriptError(f"Cannot set undefined variable '{to_text(name)}'",
                          hint="declare it first with std.let")
    return value
