"""``std.seq``, ``std.if``, ``std.while``, ``std.for``, ``std.break``, ``std.continue``, ``std.return``,
``std.try``: sequencing, branches, loops and errors."""

from __future__ import annotations

from ...errors import ScriptError, ViwoError
from ...nodes import Array
from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...scope import BreakSignal, ContinueSignal, ReturnSignal, Scope
from ...values import truthy
from .functions import lambda_, quote
from .variables import set_, var

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "std")
    return _opcode(name, *params, into=OPCODES, **kw)


@opcode("std.seq", P("exprs", "block", kind="block", variadic=True), label="Sequence", lazy=True)
def seq(ev, args, scope):
    """Evaluate expressions in order in a new scope; return the last value (null when empty)."""
    inner = Scope(scope)
    result = None
    e = ev.eval
    for node in args:
        result = e(node, inner)
    return result


@opcode("std.if", P("condition"), P("then", "block", kind="block"), P("else", "block", None, kind="block"),
        label="If", lazy=True)
def if_(ev, args, scope):
    """Evaluate `then` when the condition is truthy, else `else`; null when that branch is missing."""
    n = len(args)
    cond = ev.eval(args[0], scope) if n else None
    if truthy(cond):
        return ev.eval(args[1], block_scope(ev, args[1], scope)) if n > 1 else None
    return ev.eval(args[2], block_scope(ev, args[2], scope)) if n > 2 else None


def block_scope(ev, node, scope: Scope) -> Scope:
    """The scope a branch or loop body runs in: a new one. Only a lazy opcode is handed a scope it could
    declare into (eager ones get values), and the builtin lazy ones below never declare into it, so
    bodies headed by anything else (arithmetic, calls, std.seq, ...) skip the allocation."""
    spec = ev.specs.get(node.op) if node.__class__ is Array else None
    if spec is None or not spec.lazy or spec.fn in NEVER_DECLARE:
        return scope
    return Scope(scope)


@opcode("std.while", P("condition", "block", kind="block"), P("body", "block", kind="block"), label="While",
        lazy=True)
def while_(ev, args, scope):
    """Repeat the body while the condition is truthy; returns null."""
    if not args:
        return None
    cond, body = args[0], (args[1] if len(args) > 1 else None)
    e = ev.eval
    # A loop of literals evaluates no opcode: charge it per iteration so it still runs out of gas.
    free = cond.__class__ is not Array and body.__class__ is not Array
    body_scope = block_scope
    ev.loops += 1
    try:
        while truthy(e(cond, scope)):
            if free:
                ev.charge()
            if body is None:
                continue
            try:
                e(body, body_scope(ev, body, scope))  # each iteration's body runs in a new scope, as in the original
            except BreakSignal:
                break
            except ContinueSignal:
                continue
    finally:
        ev.loops -= 1
    return None


@opcode("std.for", P("name", "string", kind="name"), P("list", "array"), P("body", "block", kind="block"),
        label="For each", lazy=True)
def for_(ev, args, scope):
    """Run the body once per item of the list, the item bound to `name` in a fresh scope each time."""
    name = ev.eval(args[0], scope) if args else None
    items = ev.eval(args[1], scope) if len(args) > 1 else None
    body = args[2] if len(args) > 2 else None
    if type(items) is not list or body is None:
        return None
    e = ev.eval
    ev.loops += 1
    try:
        i = 0
        while i < len(items):  # the live list: items appended during the loop are visited
            try:
                e(body, Scope(scope, {name: items[i]}))
            except BreakSignal:
                break
            except ContinueSignal:
                pass
            i += 1
    finally:
        ev.loops -= 1
    return None


@opcode("std.break", label="Break", validate=False)
def break_(ev):
    """Leave the innermost loop."""
    if ev.loops <= 0:
        raise _outside_loop("std.break")
    raise BreakSignal()


@opcode("std.continue", label="Continue", validate=False)
def continue_(ev):
    """Skip to the next iteration of the innermost loop."""
    if ev.loops <= 0:
        raise _outside_loop("std.continue")
    raise ContinueSignal()


def _outside_loop(op: str) -> ScriptError:
    # Break and continue pass through std.try, so this error cannot be caught either.
    err = ScriptError(f"{op}: not inside a loop", hint=f"{op} only works inside std.while or std.for")
    err.catchable = False
    return err


@opcode("std.return", P("value", default=None), label="Return", validate=False)
def return_(ev, value=None):
    """Return from the innermost lambda call (at the top level: end the script with this value)."""
    raise ReturnSignal(value)


@opcode("std.try", P("body", "block", kind="block"), P("errName", "string", kind="name"),
        P("catch", "block", kind="block"), label="Try", lazy=True)
def try_(ev, args, scope):
    """Evaluate the body; on an error bind its message text to `errName` and evaluate `catch`."""
    if not args:
        return None
    try:
        return ev.eval(args[0], Scope(scope))
    except ViwoError as e:
        if not e.catchable or len(args) < 3:  # no catch body: the error goes on, as in the original
            raise
        name = ev.eval(args[1], scope) if len(args) > 1 else None
        inner = Scope(scope)
        if type(name) is str:
            inner.vars[name] = e.message
        return ev.eval(args[2], inner)


#: Builtin lazy forms that never declare into the scope they are given (they make their own or declare
#: nothing); see block_scope.
NEVER_DECLARE = frozenset({var, set_, seq, if_, while_, for_, try_, lambda_, quote})
