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
  real :class:`~viwoscript.scope.Scope` objects, and a block scope nothing can declare into is not
  allocated at all (it would stay empty).
* **Errors** are stamped with the innermost call's span (``_n`` is the index of the call being made).
* **Forms**: this module is a driver. Each special form's emit rule lives beside its walk rule in
  ``runners/forms/`` (operators' in ``stdlib/math.py`` and ``stdlib/boolean.py``, from ``emit.py``);
  the driver finds it on the opcode's function. Eager opcodes without one become plain calls; lazy
  opcodes without one (plugins, ``std.quote``, computed names, odd shapes), code nested deeper than
  CPython allows in one function, and program code that runs once are evaluated by this run's walk
  (``ev.eval``: the forms' walk rules), sharing the same scopes and counters. A compiled lambda called
  after the host changed the opcodes walks its body (``Evaluator.walk_call``).

A tree that cannot be compiled at all (too deep or big for CPython, or a compiler inconsistency) is walked
instead, and that fallback is reported with a :class:`CompileFallbackWarning`, never silently.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import OrderedDict
from typing import Any

from ..errors import ViwoError
from ..limits import Limits
from ..nodes import HOT_OPS, Array, Atom, Object, contains_call, count_nodes, to_data
from ..scope import BreakSignal, ContinueSignal, ControlSignal, ReturnSignal, Scope
from ..values import Lambda, truthy
from .emit import (
    _UNBOUND,
    MAX_INDENT,
    MAX_NEST,
    EmitKit,
    _as_error,
    _assign_outer,
    _bind,
    _charge_slow,
    _CScope,
    _locate,
    _lookup,
    _pure,
    _too_deep,
    _Unit,
    type_test,
)
from .tree import Evaluator

COMPILED_CACHE = 64  # compiled trees kept per Runtime
COMPILE_MAX_NODES = 20_000  # bigger trees are walked: compiling one would take CPython about half a second


class CompileFallbackWarning(RuntimeWarning):
    """The compiled runner could not compile a tree and walks it instead (correct, but slower; and a sign
    of a compiler limit or bug worth reporting). The test suite turns it into an error."""


class Compiler(EmitKit):
    """Compiles one program tree for one registry: the driver. It knows no form: a node whose opcode's
    function carries an emit rule (``spec.fn.emit``, beside its walk rule) is emitted by that rule; any
    other eager call becomes a plain call of the opcode's function; any other lazy one is walked."""

    def __init__(self, registry):
        self.specs = registry._specs
        self.version = registry.version
        self.info: dict = {}
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
            self.compile_unit(node, None, None, charge_seq=charge_seq, program=True)
        src = "\n\n".join("\n".join(u.lines) for u in self.units) + "\n"
        self.ns["T"] = self.table
        self.ns["_call"] = CompiledEvaluator.call
        # (No warnings.catch_warnings around this: it would change the process's warning filters while
        # other threads run. Generated code never draws a SyntaxWarning: literals are folded at compile
        # time, never tested with `is` or given attributes; tests/test_compiler.py checks it.)
        code = compile(src, "<viwoscript compiled>", "exec")
        exec(code, self.ns)  # noqa: S102 - our own generated source, names only from the tables above
        self.source = src  # the generated Python, for debugging the compiler
        return self.ns["_u0"]

    # --- units -----------------------------------------------------------------------------------
    def compile_unit(self, body, params, creation, *, charge_seq=False, program=False, key=None):
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
                   f"return ev.walk_call({self.const(tuple(params))}, {self.const(body)}, P, A)")
            # What Evaluator.call does around a walked body: count the depth, reset the loop nesting.
            u.emit("d = ev.depth = ev.depth + 1")
            u.emit("if d > ev.max_depth: raise _too_deep(ev)")
            u.emit("lp = ev.loops")
            u.emit("ev.loops = 0")
        u.emit("_n = -1")
        u.emit("try:")
        u.indent += 1
        prologue_at = len(u.lines)
        if program and self._program_block(body):
            if charge_seq:
                u.pending.append(body)
            result = self.block(u, body.rest, root)
        else:
            result = self.expr(u, body, root)
        self.flush(u)
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
            k = self.const(tuple(params))
            out.append(f"S{root.id} = Scope(P, _bind({k}, A))" if params else f"S{root.id} = Scope(P)")
            out.append(f"V{root.id} = S{root.id}.vars")
        return out

    # --- helpers ---------------------------------------------------------------------------------
    def const(self, value) -> str:
        name = f"K{len(self.ns)}"
        self.ns[name] = value
        return name

    def lit(self, value) -> str:
        t = type(value)
        if (value is None or t is bool or t is str or (t is int and -10**18 < value < 10**18)
                or (t is float and math.isfinite(value))):
            text = repr(value)
            text = f"({text})" if text.startswith("-") else text
            self.literals[text] = value
            return text
        return self.const(value)

    def _hot(self, node) -> bool:
        """Whether a subtree holds a loop or a lambda (code that may run many times). Run-once code
        is walked instead: compiling it would cost more than it saves."""
        key = id(node)
        hot = self.hot.get(key)
        if hot is None:
            hot = self.hot[key] = contains_call(node, HOT_OPS)
        return hot

    def index(self, node, spec) -> int:
        self.table.append((node, spec))
        return len(self.table) - 1

    def _program_block(self, node) -> bool:
        """A program whose top is the builtin std.seq runs its items in the program's scope."""
        if node.__class__ is not Array:
            return False
        spec = self.specs.get(node.op)
        return spec is not None and getattr(spec.fn, "program_block", False)

    def block(self, u, nodes, cs) -> str:
        result = "None"
        for node in nodes:
            result = self.expr(u, node, cs)
        return result

    def expr(self, u, node, cs) -> str:
        """Emit code evaluating ``node`` in ``cs``; return a Python expression of its value that stays
        valid (a temp or a literal)."""
        cls = node.__class__
        if cls is Atom:
            return self.lit(node.value)
        if cls is Object:
            k = self.const(node)
            t = u.temp()
            u.emit(f"{t} = _data({k})")
            return t
        spec = self.specs.get(node.op)
        if spec is None:
            self.flush(u)
            n = self.index(node, None)
            k = self.const(node)
            u.emit(f"_n = {n}")
            u.emit(f"raise ev._unknown({k})")
            return "None"
        if u.nest >= MAX_NEST or u.indent > MAX_INDENT or (u.cold and not self._hot(node)):
            return self._fallback(u, node, cs, spec)
        u.nest += 1
        try:
            rule = getattr(spec.fn, "emit", None)
            if rule is not None:
                r = rule(self, u, node, cs, spec)
                if r is not None:
                    return r
            if spec.lazy:
                return self._fallback(u, node, cs, spec)
            return self.call(u, node, cs, spec)
        finally:
            u.nest -= 1

    def _fallback(self, u, node, cs, spec) -> str:
        """Hand the node to the tree-walker, in a real scope (this function then keeps real scopes)."""
        self.mark_real(u, cs)
        cs.info[1] = True  # it may declare anything (computed names, plugins): search it at run time
        self.flush(u)
        n = self.index(node, spec)
        k = self.const(node)
        t = u.temp()
        u.emit(f"_n = {n}")
        u.emit(f"{t} = ev.eval({k}, {self.scope_obj(u, cs)})")
        return t

    def args(self, u, node, cs, spec) -> list[str]:
        rest = node.rest
        u.pending.append(node)
        vals = [self.expr(u, a, cs) for a in rest]
        mx = spec.max_args
        if mx is not None and len(vals) > mx:
            vals = vals[:mx]
        return vals

    def call(self, u, node, cs, spec, vals=None) -> str:
        if vals is None:
            vals = self.args(u, node, cs, spec)
        self.flush(u)
        n = self.index(node, spec)
        f = self.const(spec.fn)
        t = u.temp()
        u.emit(f"_n = {n}")
        if spec.validate:
            test = type_test(spec, vals, self.literals)
            if test != "True":  # the walker's check, run only when the quick one fails (it raises)
                s = self.const(spec)
                check = f"ev._validate({s}, ({''.join(v + ', ' for v in vals)}))"
                u.emit(check if test == "False" else f"if not ({test}): {check}")
        u.emit(f"{t} = {f}(ev{''.join(', ' + v for v in vals)})")
        return t


def compile_program(registry, node, *, charge_seq: bool = True):
    """Compile ``node``; ``None`` when it cannot be (the caller walks it instead, and this warns with a
    :class:`CompileFallbackWarning`)."""
    try:
        return Compiler(registry).compile_program(node, charge_seq=charge_seq)
    except (RecursionError, SyntaxError, MemoryError, ValueError, AssertionError) as e:
        # Too deep or too big for CPython, or a compiler inconsistency: walking is always correct.
        warnings.warn(f"viwoscript: the compiled runner walks a program it could not compile "
                      f"({type(e).__name__}: {str(e)[:200]})", CompileFallbackWarning, stacklevel=2)
        return None


class CompiledEvaluator(Evaluator):
    """One run under the compiled runner: hot trees run as generated Python, the rest is walked."""

    def __init__(self, runner: CompiledRunner, runtime, limits: Limits, args=None, filename=None, source=None):
        super().__init__(runtime, limits, args, filename, source)
        self.compiled_runner = runner

    def call(self, fn: Any, args: list | tuple, *, op: str = "apply") -> Any:
        """Call a lambda; one made by compiled code runs its compiled body (which does the bookkeeping
        of ``walk_call`` itself)."""
        if fn.__class__ is Lambda:
            code = fn.code
            if code is not None:
                return code(self, fn.scope, args)
        return Evaluator.call(self, fn, args, op=op)

    def run_program_tree(self, node, scope: Scope) -> Any:
        code = self.compiled_runner.compiled(self.registry, node, charge_seq=True)
        if code is None:
            return Evaluator.run_program_tree(self, node, scope)
        if self.deadline is not None:  # the timeout is for running: compiling came first
            self.deadline = time.monotonic() + self.limits.timeout
        return code(self, scope)

    def run_module_tree(self, node, scope: Scope) -> Any:
        code = self.compiled_runner.compiled(self.registry, node, charge_seq=False)
        if code is None:
            return Evaluator.run_module_tree(self, node, scope)
        return code(self, scope)


class CompiledRunner:
    """Compiles hot trees (with a loop or a lambda) once per registry and runs them; walks the rest. Keeps
    the compiled code of the last :data:`COMPILED_CACHE` trees."""

    name = "compiled"

    def __init__(self):
        self._cache: OrderedDict = OrderedDict()  # id(tree) -> (tree, registry version, seq flag, code)

    def start(self, runtime, limits: Limits, args: list | None = None, filename: str | None = None,
              source: str | None = None) -> CompiledEvaluator:
        """The state of one run of a script under this runner."""
        return CompiledEvaluator(self, runtime, limits, args, filename, source)

    def compiled(self, registry, tree, *, charge_seq: bool = True):
        """The compiled program for a parsed tree — ``f(evaluator, scope)`` — or None when the tree is
        walked instead (no loop or lambda in it, more than COMPILE_MAX_NODES nodes, or it could not be
        compiled: see :class:`CompileFallbackWarning`). ``charge_seq`` is False for modules (std.import
        does not charge their top-level sequence)."""
        key = id(tree)
        hit = self._cache.get(key)
        version = (id(registry._specs), registry.version)
        if hit is not None and hit[0] is tree and hit[1] == version and hit[2] == charge_seq:
            self._cache.move_to_end(key)
            return hit[3]
        if contains_call(tree, HOT_OPS) and count_nodes(tree, COMPILE_MAX_NODES + 1) <= COMPILE_MAX_NODES:
            code = compile_program(registry, tree, charge_seq=charge_seq)
        else:  # no loop and no lambda: every node runs at most once, walking it is cheaper (and a huge
            # script is walked rather than have its run wait for CPython to compile it)
            code = None
        self._cache[key] = (tree, version, charge_seq, code)
        if len(self._cache) > COMPILED_CACHE:
            self._cache.popitem(last=False)
        return code
