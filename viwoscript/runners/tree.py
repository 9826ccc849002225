"""The tree runner: the reference tree-walker, and the run state every runner shares.

It evaluates the node tree directly: an :class:`~viwoscript.nodes.Array` whose head names an opcode is a
call, an :class:`~viwoscript.nodes.Atom` is its value, an :class:`~viwoscript.nodes.Object` is fresh
data. Eager opcodes get evaluated arguments; lazy ones get nodes and the scope. Errors raised below a
call are stamped with that call's span (the innermost call wins).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..errors import (
    ArgumentError,
    DepthLimitError,
    GasExhaustedError,
    InternalError,
    InterruptedError_,
    ScriptError,
    SizeLimitError,
    TimeoutLimitError,
    ViwoError,
)
from ..limits import BIG_STRING, Limits, made_string
from ..nodes import Array, Atom, Node, Span, to_data
from ..opcodes import TYPE_CHECKS
from ..scope import BreakSignal, ContinueSignal, ControlSignal, ReturnSignal, Scope
from ..values import Lambda, preview
from .forms.variables import var as _builtin_var

__all__ = ["BreakSignal", "ContinueSignal", "ControlSignal", "Evaluator", "ReturnSignal", "Scope"]

POLL_EVERY = 1000


class Evaluator:
    """One run's state: gas, depth, loop nesting, deadline, interrupt flag."""

    def __init__(self, runtime, limits: Limits, args: list | None = None, filename: str | None = None,
                 source: str | None = None):
        self.runtime = runtime
        self.registry = runtime.registry
        self.specs = runtime.registry._specs
        self.limits = limits
        self.args = list(args or [])
        self.filename = filename
        self.source = source
        self.gas_left = limits.gas if limits.gas is not None else float("inf")
        self.fuel = 0
        self._refill()
        self.depth = 0
        self.max_depth = limits.max_depth
        self.loops = 0  # loop nesting inside the current lambda call
        self.deadline = time.monotonic() + limits.timeout if limits.timeout else None
        self.interrupted = False
        self.current_span: Span | None = None
        self.program: Node | None = None
        spec = self.specs.get("std.var")
        #: The builtin std.var (reading a variable is a third of all evaluations: eval inlines it).
        self._var_spec = spec if spec is not None and spec.fn is _builtin_var else None

    # --- limits ----------------------------------------------------------------------------------
    def _refill(self) -> None:
        chunk = self.gas_left if self.gas_left < POLL_EVERY else POLL_EVERY
        self.gas_left -= chunk
        self.fuel = chunk

    def _poll(self) -> None:
        """Called when the fuel counter runs out: account gas, check the clock and interrupts."""
        self.fuel += 1  # undo the charge that tripped us
        self.check_interrupt()
        if self.fuel <= 0 and self.gas_left <= 0:
            raise GasExhaustedError("Script ran out of gas!",
                                    hint=f"raise the budget (--gas, Limits(gas=...)); it was {self.limits.gas}")
        self._refill()
        self.fuel -= 1

    def charge(self, units: int = 1) -> None:
        """Charge gas for work that is not an opcode evaluation (e.g. an empty loop iteration)."""
        self.fuel -= units
        if self.fuel < 0:
            self._poll()

    def check_interrupt(self) -> None:
        """Raise if the run was interrupted or its time is up. Long host work calls this too."""
        if self.interrupted:
            raise InterruptedError_("Script interrupted", hint="the host stopped the run (Ctrl-C)")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutLimitError(f"Script timed out after {self.limits.timeout:g} s",
                                    hint="raise the limit (--timeout, Limits(timeout=...))")

    def gas_used(self) -> int | float:
        total = self.limits.gas if self.limits.gas is not None else float("inf")
        return total - self.gas_left - self.fuel

    def check_string(self, s: str, op: str) -> str:
        if len(s) > self.limits.max_string:
            raise SizeLimitError(f"{op}: string of {len(s)} characters exceeds the limit of {self.limits.max_string}",
                                 hint="build smaller strings, or raise Limits(max_string=...)")
        return made_string(self, s, op) if len(s) >= BIG_STRING else s

    def check_size(self, n: int, op: str, what: str = "list") -> None:
        limit = self.limits.max_list if what == "list" else self.limits.max_object
        if n > limit:
            raise SizeLimitError(f"{op}: {what} of {n} items exceeds the limit of {limit}",
                                 hint=f"raise Limits(max_{'list' if what == 'list' else 'object'}=...)")

    # --- evaluation ------------------------------------------------------------------------------
    def eval(self, node: Node, scope: Scope) -> Any:
        cls = node.__class__
        if cls is Atom:
            return node.value
        if cls is Array:
            spec = self.specs.get(node.op)
            if spec is None:
                raise self._unknown(node)
            self.fuel -= 1
            if self.fuel < 0:
                try:
                    self._poll()
                except ViwoError as e:
                    raise e.located(node.span) from None
            rest = node.rest
            if spec is self._var_spec and len(rest) == 1 and rest[0].__class__ is Atom:
                name = rest[0].value
                s = scope
                while s is not None:
                    v = s.vars
                    if name in v:
                        return v[name]
                    s = s.parent
                return None
            try:
                if spec.lazy:
                    return spec.fn(self, rest, scope)
                fn = spec.fn
                n = len(rest)
                mx = spec.max_args
                if mx is not None and n > mx:
                    # Extra arguments are evaluated (left to right, once) and then ignored, as in the
                    # original; `check` warns about them.
                    args = [self.eval(item, scope) for item in rest][:mx]
                    if spec.validate:
                        self._validate(spec, args)
                    return fn(self, *args)
                # Literal arguments are read in place: no call for the most common argument kind.
                if n == 1:
                    a = rest[0]
                    a = a.value if a.__class__ is Atom else self.eval(a, scope)
                    if spec.validate:
                        self._validate(spec, (a,))
                    return fn(self, a)
                if n == 2:
                    a, b = rest
                    a = a.value if a.__class__ is Atom else self.eval(a, scope)
                    b = b.value if b.__class__ is Atom else self.eval(b, scope)
                    if spec.validate:
                        self._validate(spec, (a, b))
                    return fn(self, a, b)
                args = [self.eval(item, scope) for item in rest]
                if spec.validate:
                    self._validate(spec, args)
                return fn(self, *args)
            except ViwoError as e:
                if e.span is None:
                    e.span = node.span
                    if e.hint is None and e.__class__ is ArgumentError and e.message.startswith(spec.name):
                        e.hint = f"usage: {spec.signature()}"
                raise
            except (ControlSignal, RecursionError):
                raise
            except Exception as e:  # a bug in an opcode: report where, not a traceback
                raise self._internal(e, node, spec.name) from e
        # Object literal: fresh data each time it is evaluated.
        return to_data(node)

    def _unknown(self, node: Array):
        from ..nodes import to_data as data

        head = node.items[0] if node.items else None
        if head is None:
            err = self.registry.unknown("")
            err.message = "Unknown opcode: "
            err.args = (err.message,)
            err.hint = "an empty list is not a call; write (list.new) for an empty list"
        else:
            err = self.registry.unknown(head.value if isinstance(head, Atom) else data(head))
        err.span = node.span
        return err

    def _internal(self, e: Exception, node: Array, op: str) -> InternalError:
        err = InternalError(f"{op}: internal error: {type(e).__name__}: {e}", node.span,
                            hint="this is a bug in viwoscript or a plugin; run with --debug for the traceback")
        return err

    def _validate(self, spec, args) -> None:
        params = spec.params
        np = len(params)
        for i, v in enumerate(args):
            if i < np:
                p = params[i]
            elif np and params[-1].variadic:
                p = params[-1]
            else:
                break
            t = p.type
            if t == "any" or (v is None and p.optional):
                continue
            if not TYPE_CHECKS[t](v):
                if t == "lambda":
                    raise ArgumentError(f"{spec.name}: expected lambda")
                raise ArgumentError(f"{spec.name}: expected {t} for {p.name}")
        if len(args) < spec.min_args:
            # Missing arguments read as null, as in the original; a required typed one is an error.
            for p in params[len(args):]:
                if not p.optional and p.type not in ("any", "null"):
                    if p.type == "lambda":
                        raise ArgumentError(f"{spec.name}: expected lambda")
                    raise ArgumentError(f"{spec.name}: expected {p.type} for {p.name}")

    def block(self, nodes, scope: Scope) -> Any:
        """Evaluate nodes in order in ``scope``; the last value (null when empty)."""
        result = None
        ev = self.eval
        for node in nodes:
            result = ev(node, scope)
        return result

    # --- lambdas ---------------------------------------------------------------------------------
    def call(self, fn: Any, args: list | tuple, *, op: str = "apply") -> Any:
        """Call a lambda with arguments (missing → null, extra ignored) in a fresh scope."""
        if fn is None:
            raise ScriptError(f"{op}: func not found")
        if fn.__class__ is not Lambda:
            raise ArgumentError(f"{op}: func must be a lambda, got {preview(fn, as_json=True)}")
        return self.walk_call(fn.params, fn.body, fn.scope, args)

    def walk_call(self, params: tuple, body: Node, parent: Scope, args: list | tuple) -> Any:
        """Walk a lambda body in a new scope under ``parent`` with the parameters bound."""
        self.depth += 1
        if self.depth > self.max_depth:
            self.depth -= 1
            raise self.depth_error()
        loops = self.loops
        self.loops = 0
        try:
            if len(args) == len(params):
                vars = dict(zip(params, args, strict=True))
            else:
                n = len(args)
                vars = {name: (args[i] if i < n else None) for i, name in enumerate(params)}
            return self.eval(body, Scope(parent, vars))
        except ReturnSignal as r:
            return r.value
        finally:
            self.depth -= 1
            self.loops = loops

    def _program_block(self, node: Node) -> bool:
        """A program whose top is the builtin std.seq runs its statements in the given scope."""
        if node.__class__ is not Array:
            return False
        spec = self.specs.get(node.op)
        return spec is not None and getattr(spec.fn, "program_block", False)

    def depth_error(self) -> DepthLimitError:
        return DepthLimitError(f"Maximum call depth of {self.limits.max_depth} exceeded",
                               hint="check for runaway recursion, or raise the limit ([limits] max_depth in viwo.toml, "
                                    "Limits(max_depth=...) when embedding)")

    def run_module(self, node: Node, scope: Scope, source: str) -> Any:
        """Evaluate an imported module's program with this run's gas and limits."""
        loops, depth = self.loops, self.depth
        self.loops = 0
        try:
            return self.run_module_tree(node, scope)
        except ReturnSignal as r:
            return r.value
        except ViwoError as e:
            if e.source is None and e.span is not None:
                e.source = source
            raise
        finally:
            self.loops, self.depth = loops, depth

    def run_module_tree(self, node: Node, scope: Scope) -> Any:
        """Run a module's tree (std.import does not charge its top-level sequence)."""
        if self._program_block(node):
            return self.block(node.items[1:], scope)
        return self.eval(node, scope)

    def run_program(self, node: Node, scope: Scope) -> Any:
        """Evaluate a whole program; a top-level std.seq runs in ``scope`` itself, not a new one."""
        self.program = node  # what images made by this run embed as their script
        try:
            try:
                return self.run_program_tree(node, scope)
            except ReturnSignal as r:
                return r.value
            except BreakSignal:
                raise ScriptError("break outside of a loop", self.current_span,
                                  hint="std.break only works inside std.while or std.for") from None
            except ContinueSignal:
                raise ScriptError("continue outside of a loop", self.current_span,
                                  hint="std.continue only works inside std.while or std.for") from None
        except RecursionError:
            raise DepthLimitError("Script nested too deeply for the interpreter", hint=_recursion_hint()) from None
        except ViwoError as e:
            if e.source is None:
                e.source = self.source
            raise


    def run_program_tree(self, node: Node, scope: Scope) -> Any:
        """Run a program's tree: a top-level std.seq is charged once and runs its items in ``scope``."""
        if self._program_block(node):
            self.fuel -= 1
            if self.fuel < 0:
                try:
                    self._poll()
                except ViwoError as e:
                    raise e.located(node.span) from None
            return self.block(node.items[1:], scope)
        return self.eval(node, scope)


class TreeRunner:
    """Walks every tree (the reference runner)."""

    name = "tree"

    def start(self, runtime, limits: Limits, args: list | None = None, filename: str | None = None,
              source: str | None = None) -> Evaluator:
        """The state of one run of a script under this runner."""
        return Evaluator(runtime, limits, args, filename, source)


def _recursion_hint() -> str:
    limit = sys.getrecursionlimit()
    hint = "reduce the recursion depth or nesting of the script"
    if limit < 100_000:  # runtime.EVAL_RECURSION_LIMIT: the host kept Python's lower default
        hint += (f"; the host's Python recursion limit is {limit}: an application embedding viwoscript "
                 "can raise it with sys.setrecursionlimit(viwoscript.runtime.EVAL_RECURSION_LIMIT)")
    return hint
