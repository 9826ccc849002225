"""What emit rules build with: compile-time scopes and units, the helpers generated code calls, and the
emit kit (:class:`EmitKit`) the compiled runner's driver hands to every emit rule.

An emit rule is ``rule(c, u, node, cs, spec) -> str | None``: it writes Python lines into the unit ``u``
(one generated function) for ``node`` evaluated in the compile-time scope ``cs`` and returns a Python
expression of the value (a temp or a literal), or None to leave the node to the driver's generic call (or
to the walk rule, for a lazy opcode). A form's emit rule lives beside its walk rule
(``viwoscript/runners/forms/``); ``c`` is the driver, whose public methods below and in
``compiled.Compiler`` (``expr``, ``args``, ``call``, ``index``, ``const``, ``compile_unit``) are the kit.
Generated code must do exactly what the walk rule does: the same gas in the same order, the same scopes,
errors and events (``tests/test_runner_parity.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import ArgumentError, InternalError, ScriptError, ViwoError
from ..opcodes import TYPE_CHECKS
from ..values import to_text, truthy


class _Unbound:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unbound>"


_UNBOUND = _Unbound()
MAX_NEST = 40  # nested constructs in one function before a subtree is left to the walker
MAX_INDENT = 80  # Python refuses 100 levels of indentation
MAX_BLOCKS = 17  # Python allows 20 statically nested loops/try blocks per function


# --- runtime helpers the generated code calls ----------------------------------------------------

def _lookup(scope, name):
    while scope is not None:
        v = scope.vars
        if name in v:
            return v[name]
        scope = scope.parent
    return None


def _assign_outer(scope, name, value):
    while scope is not None:
        v = scope.vars
        if name in v:
            v[name] = value
            return value
        scope = scope.parent
    raise ScriptError(f"Cannot set undefined variable '{to_text(name)}'", hint="declare it first with std.let")


def _charge_slow(ev, k, spans):
    """The batch of ``k`` charges did not fit the fuel: charge one by one, exactly like the walker."""
    ev.fuel += k
    for span in spans:
        ev.fuel -= 1
        if ev.fuel < 0:
            try:
                ev._poll()
            except ViwoError as e:
                raise e.located(span) from None


def _pure(ev, f, a, b, spans):
    """Call a side-effect-free operator whose entry charges are still pending; pay them if it raises."""
    try:
        return f(ev, a, b)
    except BaseException:
        ev.fuel -= len(spans)
        if ev.fuel < 0:
            _charge_slow(ev, len(spans), spans)
        raise


def _locate(e, table, n):
    if e.span is None and n >= 0:
        node, spec = table[n]
        e.span = node.span
        if e.hint is None and e.__class__ is ArgumentError and spec is not None and e.message.startswith(spec.name):
            e.hint = f"usage: {spec.signature()}"
    return e


def _as_error(e, table, n):
    """A Python exception from call ``n`` as the ViwoError the walker would have raised there."""
    if isinstance(e, ViwoError):
        return _locate(e, table, n)
    node, spec = table[n] if n >= 0 else (None, None)
    op = spec.name if spec is not None else "viwoscript"
    err = InternalError(f"{op}: internal error: {type(e).__name__}: {e}", node.span if node is not None else None,
                        hint="this is a bug in viwoscript or a plugin; run with --debug for the traceback")
    err.__cause__ = e
    return err


def _too_deep(ev):
    ev.depth -= 1
    return ev.depth_error()


def _bind(params, args):
    n = len(args)
    return {name: (args[i] if i < n else None) for i, name in enumerate(params)}


# --- compile-time scopes -------------------------------------------------------------------------


# --- compile-time scopes and units ---------------------------------------------------------------

class _CScope:
    """A scope the walker would create at this point of the program."""

    def __init__(self, unit, parent, key, info, initial=(), external=False):
        self.unit = unit
        self.parent = parent  # the enclosing _CScope (for a lambda's root: where the lambda was made)
        self.initial = tuple(initial)
        # [declared names, dynamic (may hold any name), real (must be a Scope object)]
        self.info = info.setdefault(key, [set(self.initial), external, external])
        self.external = external
        self.id = next(unit.ids)
        self.locals: dict[str, str] = {}

    def may_hold(self, name: str) -> bool:
        return self.info[1] or name in self.info[0]

    @property
    def real(self) -> bool:
        return self.info[2]

    @property
    def materialized(self) -> bool:
        return bool(self.external or self.initial or self.info[0] or self.info[1])

    def local(self, name: str) -> str:
        py = self.locals.get(name)
        if py is None:
            py = self.locals[name] = f"L{self.id}_{len(self.locals)}"
        return py


class _Unit:
    """One generated Python function: the program, or one lambda body."""

    def __init__(self, creation):
        self.creation = creation  # the _CScope the lambda was made in (None for the program)
        self.lines: list[str] = []
        self.indent = 1
        self.tmp = itertools.count()
        self.ids = itertools.count()
        self.pending: list = []  # nodes entered (charged) but not yet paid for
        self.loop_body = False  # compiling directly in a loop body of this function
        self.cold = False  # code that runs once per run (the program outside loops): walk it unless hot
        self.nest = 0
        self.blocks = 1
        self.ancestors: set[int] = set()  # how many scopes up the ancestors the body reads are

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def temp(self) -> str:
        return f"t{next(self.tmp)}"


def emits(walk):
    """Attach an emit rule to the walk rule it mirrors: the driver finds it as ``spec.fn.emit``, so a host
    that replaces the opcode (another function) gets the generic call, never this rule."""

    def attach(rule):
        walk.emit = rule
        return rule

    return attach


class EmitKit:
    """The driver's methods emit rules share: charging, scopes, variable places, truth, loops."""

    specs: dict
    literals: dict[str, Any]
    pass_no: int
    def flush(self, u) -> None:
        if not u.pending:
            return
        k = len(u.pending)
        spans = self.const(tuple(n.span for n in u.pending))
        u.pending = []
        u.emit(f"ev.fuel -= {k}")
        u.emit(f"if ev.fuel < 0: _charge_slow(ev, {k}, {spans})")

    def mark_real(self, u, cs) -> None:
        """``cs`` and the scopes around it in this function must be real Scope objects (a closure
        captures them, or the walker is handed them)."""
        c = cs
        while c is not None and c.unit is u:
            if not c.info[2] and self.pass_no == 2:  # decided in pass 1; pass 2 must agree
                raise AssertionError("compiler: scope representation changed between passes")
            c.info[2] = True
            c = c.parent

    def scope_obj(self, u, cs) -> str:
        """The Python expression of the runtime Scope standing for ``cs`` (dict mode only)."""
        c = cs
        while c is not None and c.unit is u:
            if c.materialized and hasattr(c, "py"):
                return c.py
            c = c.parent
        return "P"

    def new_scope(self, u, cs_parent, key, initial=(), values=()) -> _CScope:
        """Enter a block scope: allocate it (dict mode) or reset its locals (locals mode)."""
        cs = _CScope(u, cs_parent, key, self.info, initial=initial)
        if not cs.real:
            for name, value in zip(initial, values, strict=True):
                u.emit(f"{cs.local(name)} = {value}")
            for name in sorted(cs.info[0] - set(initial)):
                u.emit(f"{cs.local(name)} = _U")
        elif cs.materialized:
            parent = self.scope_obj(u, cs_parent)
            cs.py = f"S{cs.id}"
            if initial:
                items = ", ".join(f"{name!r}: {value}" for name, value in zip(initial, values, strict=True))
                u.emit(f"S{cs.id} = Scope({parent}, {{{items}}})")
            else:
                u.emit(f"S{cs.id} = Scope({parent})")
            u.emit(f"V{cs.id} = S{cs.id}.vars")
        return cs

    def _chain(self, u, cs):
        """(kind, access) for each place a name may live, innermost first: ("local", py),
        ("dict", dict expr) within this function or an ancestor's, ending with ("outer", scope expr)."""
        c = cs
        hops = 0
        while c is not None:
            if c.unit is u:
                yield c, ("dict" if c.real else "local", None)
                c = c.parent
                continue
            if c.materialized:
                yield c, ("anc", hops)
                if c.parent is None:  # the program's root scope: what lies beyond is the host's
                    yield None, ("outer", hops)
                    return
                hops += 1
            c = c.parent
        if u.creation is None:
            yield None, ("outer", None)

    def _places(self, u, cs, name: str):
        """Where ``name`` may be bound, innermost first, as (test, place): ``test`` is a Python
        condition that it is bound there (None: surely bound, the search ends), ``place`` a Python
        target for it. Ends with (None, ("outer", scope expr)) when the search reaches the host's
        scopes."""
        for c, (kind, where) in self._chain(u, cs):
            if kind == "outer":
                if where is not None:
                    u.ancestors.add(where)
                yield None, ("outer", "S0.parent" if where is None else f"A{where}.parent")
                return
            if kind == "local":
                if name in c.initial:
                    yield None, c.local(name)
                    return
                if name in c.info[0]:
                    py = c.local(name)
                    yield f"{py} is not _U", py
                continue
            if not c.may_hold(name) or (kind == "dict" and not c.materialized):
                continue
            if kind == "dict":
                d = f"V{c.id}"
            else:
                u.ancestors.add(where)
                d = f"W{where}"
            if name in c.initial:
                yield None, f"{d}[{name!r}]"
                return
            yield f"{name!r} in {d}", f"{d}[{name!r}]"
        yield None, ("outer", "None")  # (unreachable: the chain always ends with the program's root)

    def read(self, u, cs, name: str, out: str) -> None:
        first = True
        for test, place in self._places(u, cs, name):
            if isinstance(place, tuple):
                self._branch(u, first, None, f"{out} = _lookup({place[1]}, {name!r})")
                return
            self._branch(u, first, test, f"{out} = {place}")
            if test is None:
                return
            first = False

    def write(self, u, cs, name: str, value: str) -> None:
        """std.set: assign the nearest existing binding, or raise."""
        first = True
        for test, place in self._places(u, cs, name):
            if isinstance(place, tuple):
                self._branch(u, first, None, f"_assign_outer({place[1]}, {name!r}, {value})")
                return
            self._branch(u, first, test, f"{place} = {value}")
            if test is None:
                return
            first = False

    def _branch(self, u, first: bool, cond: str | None, stmt: str) -> None:
        if cond is None:
            if first:
                u.emit(stmt)
            else:
                u.emit("else:")
                u.emit("    " + stmt)
            return
        u.emit(("if " if first else "elif ") + cond + ":")
        u.emit("    " + stmt)

    # --- expressions -----------------------------------------------------------------------------
    def truth(self, v: str) -> str:
        if is_literal(v):  # known now
            return "True" if truthy(self.literals[v]) else "False"
        return f"({v} is True or ({v} is not False and {v} is not None and _truthy({v})))"

    def loop(self, u, emit_body) -> None:
        """ev.loops bookkeeping around a Python loop; ``emit_body`` writes the loop itself (callers
        have checked that three more blocks fit)."""
        u.emit("ev.loops += 1")
        u.emit("try:")
        u.indent += 1
        u.blocks += 3
        saved = u.loop_body, u.cold
        u.cold = False  # code in a loop runs many times: worth compiling
        try:
            emit_body()
        finally:
            u.loop_body, u.cold = saved
            u.blocks -= 3
        u.indent -= 1
        u.emit("finally:")
        u.emit("    ev.loops -= 1")

    def pure_call(self, u, spec, a, b) -> str:
        """The call of a builtin operator that has no side effects and fails only by raising. The
        charges pending before it need not be paid first: they are paid when it raises (exactly, so
        a budget that ran out before it wins), else with the rest of the batch."""
        f = self.const(spec.fn)
        if not u.pending:
            return f"{f}(ev, {a}, {b})"
        spans = self.const(tuple(node.span for node in u.pending))
        return f"_pure(ev, {f}, {a}, {b}, {spans})"


# --- generic emit rules and tests ----------------------------------------------------------------

def int_arithmetic(c, u, node, cs, spec):
    """Emit rule of an arithmetic operator named like Python's (+ - * %): Python's own operator while
    both operands are ints and the result is a safe integer (±2**53), else the opcode's function."""
    if len(node.rest) != 2:
        return None
    a, b = c.args(u, node, cs, spec)
    n = c.index(node, spec)
    slow = c.pure_call(u, spec, a, b)
    t = u.temp()
    op = node.op
    u.emit(f"_n = {n}")
    u.emit(f"if {int_test(c.literals, a, b)}:")
    if op == "%":
        u.emit(f"    {t} = {a} % {b} if {a} >= 0 and {b} > 0 else {slow}")
    else:
        u.emit(f"    {t} = {a} {op} {b}")
        zero = f"not {t} or " if op == "*" else ""
        u.emit(f"    if {zero}not -9007199254740992 <= {t} <= 9007199254740992: {t} = {slow}")
    u.emit("else:")
    u.emit(f"    {t} = {slow}")
    return t


def int_comparison(c, u, node, cs, spec):
    """Emit rule of a comparison named like Python's (< > <= >=): Python's own while both operands
    are ints, else the opcode's function."""
    if len(node.rest) != 2:
        return None
    a, b = c.args(u, node, cs, spec)
    n = c.index(node, spec)
    slow = c.pure_call(u, spec, a, b)
    t = u.temp()
    u.emit(f"_n = {n}")
    u.emit(f"{t} = {a} {node.op} {b} if {int_test(c.literals, a, b)} else {slow}")
    return t


def is_literal(expr: str) -> bool:
    """Generated value expressions are temps (t…), constants (K…) or Python literals."""
    return not expr.startswith(("t", "K"))


_TYPE_TESTS = {
    "number": "({0}.__class__ is int or {0}.__class__ is float)",
    "string": "{0}.__class__ is str",
    "boolean": "{0}.__class__ is bool",
    "null": "{0} is None",
    "array": "{0}.__class__ is list",
    "object": "{0}.__class__ is dict",
    "lambda": "{0}.__class__ is Lambda",
}


def type_test(spec, vals, literals) -> str:
    """A Python test that passes exactly when ``Evaluator._validate`` would not raise for these
    arguments ("True": nothing to check; "False": call it and let it decide)."""
    tests = []
    for i, v in enumerate(vals):
        p = spec.param_at(i)
        if p is None:
            break
        t = p.type
        if t == "any":
            continue
        pattern = _TYPE_TESTS.get(t)
        if pattern is None:
            return "False"
        if is_literal(v):  # check it now
            value = literals[v]
            if (value is None and p.optional) or TYPE_CHECKS[t](value):
                continue
            return "False"
        test = pattern.format(v)
        tests.append(f"({v} is None or {test})" if p.optional else test)
    if len(vals) < spec.min_args:
        for p in spec.params[len(vals):]:
            if not p.optional and p.type not in ("any", "null"):
                return "False"
    return " and ".join(tests) or "True"


def int_test(literals, *exprs: str) -> str:
    """A Python test that every operand is an int (literal operands are known at compile time)."""
    tests = []
    for x in exprs:
        if is_literal(x):
            if type(literals[x]) is not int:
                return "False"  # not an int: the opcode's own code decides
            continue
        tests.append(f"{x}.__class__ is int")
    return " and ".join(tests) or "True"
