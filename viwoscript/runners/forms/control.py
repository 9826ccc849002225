"""``std.seq``, ``std.if``, ``std.while``, ``std.for``, ``std.break``, ``std.continue``, ``std.return``,
``std.try``: sequencing, branches, loops and errors."""

from __future__ import annotations

from ...errors import ArgumentError, ScriptError, ViwoError
from ...nodes import Array, Atom
from ...opcodes import P
from ...opcodes import opcode as _opcode
from ...scope import BreakSignal, ContinueSignal, ReturnSignal, Scope
from ...values import describe, truthy
from ..emit import MAX_BLOCKS, emits, is_literal
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


@emits(seq)
def emit_seq(c, u, node, cs, spec):
    u.pending.append(node)
    inner = c.new_scope(u, cs, ("seq", id(node)))
    return c.block(u, node.rest, inner)


#: A program (or module) whose top is this form runs its items in the program's scope, not a new one.
seq.program_block = True


@opcode("std.if", P("condition"), P("then", "block", kind="block"), P("else", "block", None, kind="block"),
        label="If", lazy=True)
def if_(ev, args, scope):
    """Evaluate `then` when the condition is truthy, else `else`; null when that branch is missing."""
    n = len(args)
    cond = ev.eval(args[0], scope) if n else None
    if truthy(cond):
        return ev.eval(args[1], block_scope(ev, args[1], scope)) if n > 1 else None
    return ev.eval(args[2], block_scope(ev, args[2], scope)) if n > 2 else None


@emits(if_)
def emit_if(c, u, node, cs, spec):
    rest = node.rest
    u.pending.append(node)
    cond = c.expr(u, rest[0], cs) if rest else "None"
    c.flush(u)
    t = u.temp()
    u.emit(f"if {c.truth(cond)}:")
    u.indent += 1
    if len(rest) > 1:
        inner = emit_block_scope(c, u, rest[1], cs, "then")
        v = c.expr(u, rest[1], inner)
        c.flush(u)
        u.emit(f"{t} = {v}")
    else:
        u.emit(f"{t} = None")
    u.indent -= 1
    u.emit("else:")
    u.indent += 1
    if len(rest) > 2:
        inner = emit_block_scope(c, u, rest[2], cs, "else")
        v = c.expr(u, rest[2], inner)
        c.flush(u)
        u.emit(f"{t} = {v}")
    else:
        u.emit(f"{t} = None")
    u.indent -= 1
    return t


def block_scope(ev, node, scope: Scope) -> Scope:
    """The scope a branch or loop body runs in: a new one. Only a lazy opcode is handed a scope it could
    declare into (eager ones get values), and the builtin lazy ones below never declare into it, so
    bodies headed by anything else (arithmetic, calls, std.seq, ...) skip the allocation."""
    spec = ev.specs.get(node.op) if node.__class__ is Array else None
    if spec is None or not spec.lazy or spec.fn in NEVER_DECLARE:
        return scope
    return Scope(scope)


def emit_block_scope(c, u, node, cs, role):
    """block_scope's emit rule: the compile-time scope a branch or loop body runs in."""
    spec = c.specs.get(node.op) if node.__class__ is Array else None
    if spec is None or not spec.lazy or spec.fn in NEVER_DECLARE:
        return cs
    return c.new_scope(u, cs, (role, id(node)))


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


@emits(while_)
def emit_while(c, u, node, cs, spec):
    rest = node.rest
    if not rest:
        return None  # the walker returns null without charging the arguments: same as fallback
    if u.blocks + 3 > MAX_BLOCKS:
        return None
    cond, body = rest[0], (rest[1] if len(rest) > 1 else None)
    free = cond.__class__ is not Array and body.__class__ is not Array
    u.pending.append(node)
    c.flush(u)
    if free:  # the per-iteration charge below is the loop's own: it raises at the loop
        u.emit(f"_n = {c.index(node, spec)}")

    def emit_body():
        u.emit("while True:")
        u.indent += 1
        u.loop_body = False
        v = c.expr(u, cond, cs)
        c.flush(u)
        u.emit(f"if not {c.truth(v)}: break")
        if free:
            u.emit("ev.charge()")
        if body is not None:
            u.emit("try:")
            u.indent += 1
            u.loop_body = True
            inner = emit_block_scope(c, u, body, cs, "body")
            c.expr(u, body, inner)
            c.flush(u)
            u.emit("pass")
            u.indent -= 1
            u.emit("except _BRK:")
            u.emit("    break")
            u.emit("except _CNT:")
            u.emit("    continue")
        u.indent -= 1

    c.loop(u, emit_body)
    return "None"


@opcode("std.for", P("name", "string", kind="name"), P("list", "array"), P("body", "block", kind="block"),
        label="For each", lazy=True)
def for_(ev, args, scope):
    """Run the body once per item of the list, the item bound to `name` in a fresh scope each time; anything
    but a list is an error (the original silently skipped the loop)."""
    name = ev.eval(args[0], scope) if args else None
    items = ev.eval(args[1], scope) if len(args) > 1 else None
    body = args[2] if len(args) > 2 else None
    if type(name) is not str:
        raise ArgumentError(f"std.for: expected string for name, got {describe(name)}")
    if type(items) is not list:
        raise for_over(items)
    if body is None:
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


@emits(for_)
def emit_for(c, u, node, cs, spec):
    rest = node.rest
    if len(rest) < 3 or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
        return None
    if u.blocks + 3 > MAX_BLOCKS:
        return None
    name, body = rest[0].value, rest[2]
    u.pending.append(node)
    items = c.expr(u, rest[1], cs)
    c.flush(u)
    fail = f"_n = {c.index(node, spec)}; raise {c.const(for_over)}({items})"
    if is_literal(items):  # a number, string, boolean or null: never a list
        u.emit(fail)
        return "None"
    lst, i = u.temp(), u.temp()
    u.emit(f"if {items}.__class__ is list:")
    u.indent += 1
    u.emit(f"{lst} = {items}")

    def emit_body():
        u.emit(f"{i} = 0")
        u.emit(f"while {i} < len({lst}):")
        u.indent += 1
        item = u.temp()
        u.emit(f"{item} = {lst}[{i}]")
        u.emit(f"{i} += 1")
        u.emit("try:")
        u.indent += 1
        u.loop_body = True
        inner = c.new_scope(u, cs, ("for", id(node)), initial=(name,), values=(item,))
        c.expr(u, body, inner)
        c.flush(u)
        u.emit("pass")
        u.indent -= 1
        u.emit("except _BRK:")
        u.emit("    break")
        u.emit("except _CNT:")
        u.emit("    pass")
        u.indent -= 1

    c.loop(u, emit_body)
    u.indent -= 1
    u.emit("else:")
    u.emit("    " + fail)
    return "None"


def for_over(items) -> ArgumentError:
    """The error for ``std.for`` over something that is not a list (both runners raise it)."""
    hint = ("loop over (obj.keys o) or (obj.entries o)" if type(items) is dict else
            "loop over (str.split s \"\") for the characters" if type(items) is str else
            "count with std.while" if type(items) in (int, float) else
            "check that the value is a list before the loop")
    return ArgumentError(f"std.for: expected array for list, got {describe(items)}", hint=hint)


@opcode("std.break", label="Break", validate=False)
def break_(ev):
    """Leave the innermost loop."""
    if ev.loops <= 0:
        raise _outside_loop("std.break")
    raise BreakSignal()


@emits(break_)
def emit_break(c, u, node, cs, spec, *, stmt="break"):
    if not u.loop_body:
        return None  # the opcode itself decides (an error outside loops, a signal inside)
    vals = c.args(u, node, cs, spec)
    del vals
    c.flush(u)
    u.emit(stmt)
    return "None"


@opcode("std.continue", label="Continue", validate=False)
def continue_(ev):
    """Skip to the next iteration of the innermost loop."""
    if ev.loops <= 0:
        raise _outside_loop("std.continue")
    raise ContinueSignal()


@emits(continue_)
def emit_continue(c, u, node, cs, spec):
    return emit_break(c, u, node, cs, spec, stmt="continue")


def _outside_loop(op: str) -> ScriptError:
    # Break and continue pass through std.try, so this error cannot be caught either.
    err = ScriptError(f"{op}: not inside a loop", hint=f"{op} only works inside std.while or std.for")
    err.catchable = False
    return err


@opcode("std.return", P("value", default=None), label="Return", validate=False)
def return_(ev, value=None):
    """Return from the innermost lambda call (at the top level: end the script with this value)."""
    raise ReturnSignal(value)


@emits(return_)
def emit_return(c, u, node, cs, spec):
    vals = c.args(u, node, cs, spec)
    c.flush(u)
    u.emit(f"return {vals[0] if vals else 'None'}")
    return "None"


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


@emits(try_)
def emit_try(c, u, node, cs, spec):
    rest = node.rest
    if not rest:
        return None
    if len(rest) >= 3 and rest[1].__class__ is not Atom:
        return None  # a computed error name: the walker evaluates it in the catch
    if u.blocks + 2 > MAX_BLOCKS:
        return None
    u.pending.append(node)
    c.flush(u)
    t = u.temp()
    u.emit("try:")
    u.indent += 1
    u.blocks += 1
    inner = c.new_scope(u, cs, ("try", id(node)))
    v = c.expr(u, rest[0], inner)
    c.flush(u)
    u.emit(f"{t} = {v}")
    u.indent -= 1
    u.blocks -= 1
    if len(rest) < 3:
        u.emit("finally:")
        u.emit("    pass")
        return t
    u.emit("except (_CS, RecursionError):")
    u.emit("    raise")
    u.emit("except Exception as e:")
    u.indent += 1
    err = u.temp()
    u.emit(f"{err} = _as_error(e, T, _n)")
    u.emit(f"if not {err}.catchable: raise {err}")
    name = rest[1].value
    if type(name) is str:
        catch = c.new_scope(u, cs, ("catch", id(node)), initial=(name,), values=(f"{err}.message",))
    else:
        catch = c.new_scope(u, cs, ("catch", id(node)))
    u.blocks += 2  # an except clause counts as a block in CPython's limit
    v = c.expr(u, rest[2], catch)
    u.blocks -= 2
    c.flush(u)
    u.emit(f"{t} = {v}")
    u.indent -= 1
    return t


#: Builtin lazy forms that never declare into the scope they are given (they make their own or declare
#: nothing); see block_scope.
NEVER_DECLARE = frozenset({var, set_, seq, if_, while_, for_, try_, lambda_, quote})
