"""The compiled runner: a program tree becomes Python source, one function per lambda body.

It has the reference tree-walker's semantics exactly (``tests/test_runner_parity.py`` checks values,
errors, spans, hints, gas and events against it, and the golden suite runs under both runners):

* **Gas** is still charged per opcode evaluation, in the walker's order (a call is charged on entry,
  before its arguments). Entries with nothing observable between them (variable reads, literals, pure
  operators) are charged in one subtraction; when the budget cannot cover the batch, ``_charge_slow``
  charges them one by one and raises at exactly the node where the walker would have, and a pure
  operator that raises pays the charges pending before it first (``_pure``).
* **Scopes** are created where the walker creates them. A scope that no closure captures and no walked
  node is handed keeps its variables in Python locals (unbound ones hold ``_UNBOUND``); the others are
  real :class:`~viwoscript.evaluator.Scope` objects, and a block scope nothing can declare into is not
  allocated at all (it would stay empty).
* **Errors** are stamped with the innermost call's span (``_n`` is the index of the call being made).
* Anything the compiler does not handle inline (other lazy opcodes, computed names, odd shapes, code
  nested deeper than CPython allows in one function, program code that runs once) is handed to the
  tree-walker for that node (``ev.eval``), which shares the same scopes and counters. A compiled lambda
  called after the host changed the opcodes walks its body (``Evaluator.walk_call``).

``compile_program`` returns ``None`` when the tree cannot be compiled; the evaluator then walks it.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

from .errors import ArgumentError, InternalError, ScriptError, ViwoError
from .evaluator import _TYPE_CHECKS
from .nodes import HOT_OPS, Array, Atom, Object, contains_call, to_data
from .runners.forms import control, functions, variables
from .scope import BreakSignal, ContinueSignal, ControlSignal, ReturnSignal, Scope
from .values import Lambda, to_text, truthy


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


class Compiler:
    """Compiles one program tree for one registry."""

    def __init__(self, registry):
        from .stdlib import boolean
        from .stdlib import math as math_ops

        v, c, f = variables, control, functions
        self.specs = registry._specs
        self.version = registry.version
        self.info: dict = {}
        self.builtin = {
            "std.var": v.var, "std.let": v.let, "std.set": v.set_, "std.seq": c.seq, "std.if": c.if_,
            "std.while": c.while_, "std.for": c.for_, "std.try": c.try_, "std.lambda": f.lambda_,
            "std.apply": f.apply, "std.break": c.break_, "std.continue": c.continue_,
            "std.return": c.return_, "and": boolean.and_, "or": boolean.or_, "not": boolean.not_,
            "+": math_ops.add, "-": math_ops.sub, "*": math_ops.mul, "%": math_ops.remainder,
        }
        self.builtin.update({s.name: s.fn for s in boolean.OPCODES if s.name in ("<", ">", "<=", ">=")})
        self.never_declare = control.NEVER_DECLARE
        self.hot: dict[int, bool] = {}

    # --- entry -----------------------------------------------------------------------------------
    def compile_program(self, node, *, charge_seq: bool):
        """A function ``f(ev, scope)`` that runs ``node`` as a program (or module) in ``scope``."""
        for pass_no in (1, 2):
            self.pass_no = pass_no
            self.ns: dict[str, Any] = {
                "Scope": Scope, "Lambda": Lambda, "_lookup": _lookup, "_assign_outer": _assign_outer,
                "_charge_slow": _charge_slow, "_pure": _pure, "_locate": _locate, "_as_error": _as_error, "_bind": _bind,
                "_U": _UNBOUND, "_truthy": truthy, "_VE": ViwoError, "_CS": ControlSignal, "_BRK": BreakSignal,
                "_CNT": ContinueSignal, "_data": to_data, "_call": None, "_RET": ReturnSignal,
                "_too_deep": _too_deep, "SPECS": self.specs,
            }
            self.table: list = []
            self.literals: dict[str, Any] = {"None": None}  # literal expression -> its value
            self.units: list[_Unit] = []
            self.unit_ids = itertools.count()
            self._compile_unit(node, None, None, charge_seq=charge_seq, program=True)
        src = "\n\n".join("\n".join(u.lines) for u in self.units) + "\n"
        self.ns["T"] = self.table
        from .evaluator import Evaluator

        self.ns["_call"] = Evaluator.call
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(src, "<viwoscript compiled>", "exec")
        exec(code, self.ns)  # noqa: S102 - our own generated source, names only from the tables above
        self.source = src  # the generated Python, for debugging the compiler
        return self.ns["_u0"]

    # --- units -----------------------------------------------------------------------------------
    def _compile_unit(self, body, params, creation, *, charge_seq=False, program=False, key=None):
        name = f"_u{next(self.unit_ids)}"
        u = _Unit(creation)
        u.cold = program
        self.units.append(u)
        if program:
            u.lines.append(f"def {name}(ev, S0):")
            root = _CScope(u, None, ("root", id(body)), self.info, external=True)
            root.py = "S0"
            u.emit("V0 = S0.vars")
        else:
            u.lines.append(f"def {name}(ev, P, A):")
            root = _CScope(u, creation, ("lambda", key), self.info, initial=params)
            root.py = f"S{root.id}" if root.real and root.materialized else "P"
        if not program:
            # Compiled against another opcode set (the host registered opcodes since, or the lambda
            # came from another Runtime): walk the body instead.
            u.emit(f"if ev.specs is not SPECS or ev.registry.version != {self.version}: "
                   f"return ev.walk_call({self._const(tuple(params))}, {self._const(body)}, P, A)")
            # What Evaluator.call does around a walked body: count the depth, reset the loop nesting.
            u.emit("d = ev.depth = ev.depth + 1")
            u.emit("if d > ev.max_depth: raise _too_deep(ev)")
            u.emit("lp = ev.loops")
            u.emit("ev.loops = 0")
        u.emit("_n = -1")
        u.emit("try:")
        u.indent += 1
        prologue_at = len(u.lines)
        if program and charge_seq and self._is(body, "std.seq"):
            u.pending.append(body)
            result = self._block(u, body.rest, root)
        elif program and not charge_seq and self._is(body, "std.seq"):
            result = self._block(u, body.rest, root)
        else:
            result = self._expr(u, body, root)
        self._flush(u)
        u.emit(f"return {result}")
        u.indent -= 1
        if not program:
            u.emit("except _RET as r:")
            u.emit("    return r.value")
        u.emit("except _VE as e:")
        u.emit("    raise _locate(e, T, _n)")
        u.emit("except (_CS, RecursionError):")
        u.emit("    raise")
        u.emit("except Exception as e:")
        u.emit("    raise _as_error(e, T, _n) from e")
        if not program:
            u.emit("finally:")
            u.emit("    ev.depth -= 1")
            u.emit("    ev.loops = lp")
        # The prologue: bind the parameters and the ancestor scopes the body reads.
        pro: list[str] = []
        if not program:
            pro += self._params_prologue(u, root, params)
        for hops in sorted(u.ancestors):
            pro.append(f"A{hops} = " + ("P" + ".parent" * hops))
            pro.append(f"W{hops} = A{hops}.vars")
        u.lines[prologue_at:prologue_at] = ["        " + p for p in pro]
        return name

    def _params_prologue(self, u, root, params):
        out: list[str] = []
        if not root.real:
            names = [root.local(p) for p in params]
            if names:
                out.append(f"if len(A) == {len(names)}: {', '.join(names)}, = A")
                out.append("else:")
                out.append("    n = len(A)")
                for i, py in enumerate(names):
                    out.append(f"    {py} = A[{i}] if n > {i} else None")
            for nm in sorted(root.info[0] - set(params)):
                out.append(f"{root.local(nm)} = _U")
            return out
        if root.py != "P":
            k = self._const(tuple(params))
            out.append(f"S{root.id} = Scope(P, _bind({k}, A))" if params else f"S{root.id} = Scope(P)")
            out.append(f"V{root.id} = S{root.id}.vars")
        return out

    # --- helpers ---------------------------------------------------------------------------------
    def _const(self, value) -> str:
        name = f"K{len(self.ns)}"
        self.ns[name] = value
        return name

    def _lit(self, value) -> str:
        t = type(value)
        if (value is None or t is bool or t is str or (t is int and -10**18 < value < 10**18)
                or (t is float and math.isfinite(value))):
            text = repr(value)
            text = f"({text})" if text.startswith("-") else text
            self.literals[text] = value
            return text
        return self._const(value)

    def _hot(self, node) -> bool:
        """Whether a subtree holds a loop or a lambda (code that may run many times). Run-once code
        is walked instead: compiling it would cost more than it saves."""
        key = id(node)
        hot = self.hot.get(key)
        if hot is None:
            hot = self.hot[key] = contains_call(node, HOT_OPS)
        return hot

    def _index(self, node, spec) -> int:
        self.table.append((node, spec))
        return len(self.table) - 1

    def _is(self, node, op: str) -> bool:
        """``node`` is a call of ``op`` and ``op`` is still the builtin implementation."""
        if node.__class__ is not Array or node.op != op:
            return False
        spec = self.specs.get(op)
        return spec is not None and spec.fn is self.builtin.get(op)

    def _flush(self, u) -> None:
        if not u.pending:
            return
        k = len(u.pending)
        spans = self._const(tuple(n.span for n in u.pending))
        u.pending = []
        u.emit(f"ev.fuel -= {k}")
        u.emit(f"if ev.fuel < 0: _charge_slow(ev, {k}, {spans})")

    def _mark_real(self, u, cs) -> None:
        """``cs`` and the scopes around it in this function must be real Scope objects (a closure
        captures them, or the walker is handed them)."""
        c = cs
        while c is not None and c.unit is u:
            if not c.info[2] and self.pass_no == 2:  # decided in pass 1; pass 2 must agree
                raise AssertionError("compiler: scope representation changed between passes")
            c.info[2] = True
            c = c.parent

    def _scope_obj(self, u, cs) -> str:
        """The Python expression of the runtime Scope standing for ``cs`` (dict mode only)."""
        c = cs
        while c is not None and c.unit is u:
            if c.materialized and hasattr(c, "py"):
                return c.py
            c = c.parent
        return "P"

    def _new_scope(self, u, cs_parent, key, initial=(), values=()) -> _CScope:
        """Enter a block scope: allocate it (dict mode) or reset its locals (locals mode)."""
        cs = _CScope(u, cs_parent, key, self.info, initial=initial)
        if not cs.real:
            for name, value in zip(initial, values, strict=True):
                u.emit(f"{cs.local(name)} = {value}")
            for name in sorted(cs.info[0] - set(initial)):
                u.emit(f"{cs.local(name)} = _U")
        elif cs.materialized:
            parent = self._scope_obj(u, cs_parent)
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

    def _read(self, u, cs, name: str, out: str) -> None:
        first = True
        for test, place in self._places(u, cs, name):
            if isinstance(place, tuple):
                self._branch(u, first, None, f"{out} = _lookup({place[1]}, {name!r})")
                return
            self._branch(u, first, test, f"{out} = {place}")
            if test is None:
                return
            first = False

    def _write(self, u, cs, name: str, value: str) -> None:
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
    def _block(self, u, nodes, cs) -> str:
        result = "None"
        for node in nodes:
            result = self._expr(u, node, cs)
        return result

    def _expr(self, u, node, cs) -> str:
        """Emit code evaluating ``node`` in ``cs``; return a Python expression of its value that stays
        valid (a temp or a literal)."""
        cls = node.__class__
        if cls is Atom:
            return self._lit(node.value)
        if cls is Object:
            k = self._const(node)
            t = u.temp()
            u.emit(f"{t} = _data({k})")
            return t
        spec = self.specs.get(node.op)
        if spec is None:
            self._flush(u)
            n = self._index(node, None)
            k = self._const(node)
            u.emit(f"_n = {n}")
            u.emit(f"raise ev._unknown({k})")
            return "None"
        if u.nest >= MAX_NEST or u.indent > MAX_INDENT or (u.cold and not self._hot(node)):
            return self._fallback(u, node, cs, spec)
        u.nest += 1
        try:
            fn = spec.fn
            builtin = self.builtin.get(node.op)
            if builtin is not None and fn is builtin:
                handler = getattr(self, "_op_" + _HANDLERS[node.op], None)
                if handler is not None:
                    r = handler(u, node, cs, spec)
                    if r is not None:
                        return r
            if spec.lazy:
                return self._fallback(u, node, cs, spec)
            return self._call(u, node, cs, spec)
        finally:
            u.nest -= 1

    def _fallback(self, u, node, cs, spec) -> str:
        """Hand the node to the tree-walker, in a real scope (this function then keeps real scopes)."""
        self._mark_real(u, cs)
        cs.info[1] = True  # it may declare anything (computed names, plugins): search it at run time
        self._flush(u)
        n = self._index(node, spec)
        k = self._const(node)
        t = u.temp()
        u.emit(f"_n = {n}")
        u.emit(f"{t} = ev.eval({k}, {self._scope_obj(u, cs)})")
        return t

    def _args(self, u, node, cs, spec) -> list[str]:
        rest = node.rest
        u.pending.append(node)
        vals = [self._expr(u, a, cs) for a in rest]
        mx = spec.max_args
        if mx is not None and len(vals) > mx:
            vals = vals[:mx]
        return vals

    def _call(self, u, node, cs, spec, vals=None) -> str:
        if vals is None:
            vals = self._args(u, node, cs, spec)
        self._flush(u)
        n = self._index(node, spec)
        f = self._const(spec.fn)
        t = u.temp()
        u.emit(f"_n = {n}")
        if spec.validate:
            test = _type_test(spec, vals, self.literals)
            if test != "True":  # the walker's check, run only when the quick one fails (it raises)
                s = self._const(spec)
                check = f"ev._validate({s}, ({''.join(v + ', ' for v in vals)}))"
                u.emit(check if test == "False" else f"if not ({test}): {check}")
        u.emit(f"{t} = {f}(ev{''.join(', ' + v for v in vals)})")
        return t

    # --- variables -------------------------------------------------------------------------------
    def _op_var(self, u, node, cs, spec):
        rest = node.rest
        if len(rest) != 1 or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
            return None
        u.pending.append(node)
        t = u.temp()
        self._read(u, cs, rest[0].value, t)
        return t

    def _op_let(self, u, node, cs, spec):
        rest = node.rest
        if not rest or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
            return None
        name = rest[0].value
        u.pending.append(node)
        value = self._expr(u, rest[1], cs) if len(rest) > 1 else "None"
        cs.info[0].add(name)
        self._flush(u)
        if not cs.real:
            u.emit(f"{cs.local(name)} = {value}")
        else:
            c = cs
            while not c.materialized:  # cannot happen: declaring makes it materialized
                c = c.parent
            u.emit(f"V{c.id}[{name!r}] = {value}")
        return value

    def _op_set(self, u, node, cs, spec):
        rest = node.rest
        if not rest or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
            return None
        u.pending.append(node)
        value = self._expr(u, rest[1], cs) if len(rest) > 1 else "None"
        self._flush(u)
        n = self._index(node, spec)
        u.emit(f"_n = {n}")
        self._write(u, cs, rest[0].value, value)
        return value

    # --- control flow ----------------------------------------------------------------------------
    def _op_seq(self, u, node, cs, spec):
        u.pending.append(node)
        inner = self._new_scope(u, cs, ("seq", id(node)))
        return self._block(u, node.rest, inner)

    def _branch_scope(self, u, node, cs, role) -> _CScope:
        spec = self.specs.get(node.op) if node.__class__ is Array else None
        if spec is None or not spec.lazy or spec.fn in self.never_declare:
            return cs
        return self._new_scope(u, cs, (role, id(node)))

    def _truth(self, v: str) -> str:
        if _is_literal(v):  # known now
            return "True" if truthy(self.literals[v]) else "False"
        return f"({v} is True or ({v} is not False and {v} is not None and _truthy({v})))"

    def _op_if(self, u, node, cs, spec):
        rest = node.rest
        u.pending.append(node)
        cond = self._expr(u, rest[0], cs) if rest else "None"
        self._flush(u)
        t = u.temp()
        u.emit(f"if {self._truth(cond)}:")
        u.indent += 1
        if len(rest) > 1:
            inner = self._branch_scope(u, rest[1], cs, "then")
            v = self._expr(u, rest[1], inner)
            self._flush(u)
            u.emit(f"{t} = {v}")
        else:
            u.emit(f"{t} = None")
        u.indent -= 1
        u.emit("else:")
        u.indent += 1
        if len(rest) > 2:
            inner = self._branch_scope(u, rest[2], cs, "else")
            v = self._expr(u, rest[2], inner)
            self._flush(u)
            u.emit(f"{t} = {v}")
        else:
            u.emit(f"{t} = None")
        u.indent -= 1
        return t

    def _loop(self, u, emit_body) -> None:
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

    def _op_while(self, u, node, cs, spec):
        rest = node.rest
        if not rest:
            return None  # the walker returns null without charging the arguments: same as fallback
        if u.blocks + 3 > MAX_BLOCKS:
            return None
        cond, body = rest[0], (rest[1] if len(rest) > 1 else None)
        free = cond.__class__ is not Array and body.__class__ is not Array
        u.pending.append(node)
        self._flush(u)
        if free:  # the per-iteration charge below is the loop's own: it raises at the loop
            u.emit(f"_n = {self._index(node, spec)}")

        def emit_body():
            u.emit("while True:")
            u.indent += 1
            u.loop_body = False
            c = self._expr(u, cond, cs)
            self._flush(u)
            u.emit(f"if not {self._truth(c)}: break")
            if free:
                u.emit("ev.charge()")
            if body is not None:
                u.emit("try:")
                u.indent += 1
                u.loop_body = True
                inner = self._branch_scope(u, body, cs, "body")
                self._expr(u, body, inner)
                self._flush(u)
                u.emit("pass")
                u.indent -= 1
                u.emit("except _BRK:")
                u.emit("    break")
                u.emit("except _CNT:")
                u.emit("    continue")
            u.indent -= 1

        self._loop(u, emit_body)
        return "None"

    def _op_for(self, u, node, cs, spec):
        rest = node.rest
        if len(rest) < 3 or rest[0].__class__ is not Atom or type(rest[0].value) is not str:
            return None
        if u.blocks + 3 > MAX_BLOCKS:
            return None
        name, body = rest[0].value, rest[2]
        u.pending.append(node)
        items = self._expr(u, rest[1], cs)
        self._flush(u)
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
            inner = self._new_scope(u, cs, ("for", id(node)), initial=(name,), values=(item,))
            self._expr(u, body, inner)
            self._flush(u)
            u.emit("pass")
            u.indent -= 1
            u.emit("except _BRK:")
            u.emit("    break")
            u.emit("except _CNT:")
            u.emit("    pass")
            u.indent -= 1

        self._loop(u, emit_body)
        u.indent -= 1
        return "None"

    def _op_break(self, u, node, cs, spec, *, stmt="break"):
        if not u.loop_body:
            return None  # the opcode itself decides (an error outside loops, a signal inside)
        vals = self._args(u, node, cs, spec)
        del vals
        self._flush(u)
        u.emit(stmt)
        return "None"

    def _op_continue(self, u, node, cs, spec):
        return self._op_break(u, node, cs, spec, stmt="continue")

    def _op_return(self, u, node, cs, spec):
        vals = self._args(u, node, cs, spec)
        self._flush(u)
        u.emit(f"return {vals[0] if vals else 'None'}")
        return "None"

    def _op_try(self, u, node, cs, spec):
        rest = node.rest
        if not rest:
            return None
        if len(rest) >= 3 and rest[1].__class__ is not Atom:
            return None  # a computed error name: the walker evaluates it in the catch
        if u.blocks + 2 > MAX_BLOCKS:
            return None
        u.pending.append(node)
        self._flush(u)
        t = u.temp()
        u.emit("try:")
        u.indent += 1
        u.blocks += 1
        inner = self._new_scope(u, cs, ("try", id(node)))
        v = self._expr(u, rest[0], inner)
        self._flush(u)
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
            catch = self._new_scope(u, cs, ("catch", id(node)), initial=(name,), values=(f"{err}.message",))
        else:
            catch = self._new_scope(u, cs, ("catch", id(node)))
        u.blocks += 2  # an except clause counts as a block in CPython's limit
        v = self._expr(u, rest[2], catch)
        u.blocks -= 2
        self._flush(u)
        u.emit(f"{t} = {v}")
        u.indent -= 1
        return t

    # --- functions -------------------------------------------------------------------------------
    def _op_lambda(self, u, node, cs, spec):
        rest = node.rest
        if not rest or rest[0].__class__ is not Array:
            return None
        params = tuple(to_text(to_data(p)) if not (p.__class__ is Atom and type(p.value) is str) else p.value
                       for p in rest[0].items)
        body = rest[1] if len(rest) > 1 else Atom(None)
        self._mark_real(u, cs)  # the closure captures these scopes
        u.pending.append(node)
        name = self._compile_unit(body, params, cs, key=id(node))
        k = self._const((params, body))
        t = u.temp()
        u.emit(f"{t} = Lambda({k}[0], {k}[1], {self._scope_obj(u, cs)}, None, None, {name})")
        return t

    def _op_apply(self, u, node, cs, spec):
        vals = self._args(u, node, cs, spec)
        self._flush(u)
        n = self._index(node, spec)
        t = u.temp()
        u.emit(f"_n = {n}")
        f = vals[0] if vals else "None"
        args = f"({''.join(v + ', ' for v in vals[1:])})"
        if _is_literal(f):
            u.emit(f"{t} = _call(ev, {f}, {args})")
        else:  # a compiled lambda is called directly (its body does Evaluator.call's bookkeeping)
            u.emit(f"if {f}.__class__ is Lambda and {f}.code is not None: {t} = {f}.code(ev, {f}.scope, {args})")
            u.emit(f"else: {t} = _call(ev, {f}, {args})")
        return t

    # --- operators -------------------------------------------------------------------------------
    def _op_and(self, u, node, cs, spec, *, short=False):
        rest = node.rest
        if len(rest) > 4:
            return None
        u.pending.append(node)
        t = u.temp()
        depth = 0
        for item in rest:
            v = self._expr(u, item, cs)
            self._flush(u)
            if short:  # or: stop at the first truthy operand
                u.emit(f"if {self._truth(v)}: {t} = True")
            else:
                u.emit(f"if not {self._truth(v)}: {t} = False")
            u.emit("else:")
            u.indent += 1
            depth += 1
        self._flush(u)
        u.emit(f"{t} = {'False' if short else 'True'}")
        u.indent -= depth
        return t

    def _op_or(self, u, node, cs, spec):
        return self._op_and(u, node, cs, spec, short=True)

    def _op_not(self, u, node, cs, spec):
        vals = self._args(u, node, cs, spec)  # (truthiness cannot fail: no need to pay charges first)
        t = u.temp()
        v = vals[0] if vals else "None"
        u.emit(f"{t} = not {self._truth(v)}")
        return t

    def _op_arith(self, u, node, cs, spec):
        if len(node.rest) != 2:
            return None
        a, b = self._args(u, node, cs, spec)
        n = self._index(node, spec)
        slow = self._pure_call(u, spec, a, b)
        t = u.temp()
        op = node.op
        u.emit(f"_n = {n}")
        u.emit(f"if {_int_test(self.literals, a, b)}:")
        if op == "%":
            u.emit(f"    {t} = {a} % {b} if {a} >= 0 and {b} > 0 else {slow}")
        else:
            u.emit(f"    {t} = {a} {op} {b}")
            zero = f"not {t} or " if op == "*" else ""
            u.emit(f"    if {zero}not -9007199254740992 <= {t} <= 9007199254740992: {t} = {slow}")
        u.emit("else:")
        u.emit(f"    {t} = {slow}")
        return t

    def _pure_call(self, u, spec, a, b) -> str:
        """The call of a builtin operator that has no side effects and fails only by raising. The
        charges pending before it need not be paid first: they are paid when it raises (exactly, so
        a budget that ran out before it wins), else with the rest of the batch."""
        f = self._const(spec.fn)
        if not u.pending:
            return f"{f}(ev, {a}, {b})"
        spans = self._const(tuple(node.span for node in u.pending))
        return f"_pure(ev, {f}, {a}, {b}, {spans})"

    def _op_compare(self, u, node, cs, spec):
        if len(node.rest) != 2:
            return None
        a, b = self._args(u, node, cs, spec)
        n = self._index(node, spec)
        slow = self._pure_call(u, spec, a, b)
        t = u.temp()
        u.emit(f"_n = {n}")
        u.emit(f"{t} = {a} {node.op} {b} if {_int_test(self.literals, a, b)} else {slow}")
        return t


def _is_literal(expr: str) -> bool:
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


def _type_test(spec, vals, literals) -> str:
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
        if _is_literal(v):  # check it now
            value = literals[v]
            if (value is None and p.optional) or _TYPE_CHECKS[t](value):
                continue
            return "False"
        test = pattern.format(v)
        tests.append(f"({v} is None or {test})" if p.optional else test)
    if len(vals) < spec.min_args:
        for p in spec.params[len(vals):]:
            if not p.optional and p.type not in ("any", "null"):
                return "False"
    return " and ".join(tests) or "True"


def _int_test(literals, *exprs: str) -> str:
    """A Python test that every operand is an int (literal operands are known at compile time)."""
    tests = []
    for x in exprs:
        if _is_literal(x):
            if type(literals[x]) is not int:
                return "False"  # not an int: the opcode's own code decides
            continue
        tests.append(f"{x}.__class__ is int")
    return " and ".join(tests) or "True"


_HANDLERS = {
    "std.var": "var", "std.let": "let", "std.set": "set", "std.seq": "seq", "std.if": "if",
    "std.while": "while", "std.for": "for", "std.try": "try", "std.lambda": "lambda", "std.apply": "apply",
    "std.break": "break", "std.continue": "continue", "std.return": "return", "and": "and", "or": "or",
    "not": "not", "+": "arith", "-": "arith", "*": "arith", "%": "arith", "<": "compare", ">": "compare",
    "<=": "compare", ">=": "compare",
}


def compile_program(registry, node, *, charge_seq: bool = True):
    """Compile ``node``; ``None`` when it cannot be (the caller walks it instead)."""
    try:
        return Compiler(registry).compile_program(node, charge_seq=charge_seq)
    except (RecursionError, SyntaxError, MemoryError, ValueError, AssertionError):
        # Too deep or too big for CPython, or a compiler inconsistency: walking is always correct.
        # (tests/test_compiler.py checks that every shipped program does compile.)
        return None
