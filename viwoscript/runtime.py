"""The composition root: the Runtime, and the one place that builds it from its parts.

A Runtime owns its opcode registry (the standard library assembled here, plus plugins and the host's),
its runner (``runners/``), limits, allowed file roots, capability grants, canvas, store, model manager and
the host's callbacks; the ``make_*`` functions below build the parts, each on first use. Several Runtimes
in one process share only what cannot change (the standard registry, copy-on-write) unless the host
passes the same object to both.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import Diagnostic, InternalError, ViwoError, ViwoSyntaxError
from .limits import EMBED_DEFAULTS, Limits
from .nodes import Node
from .opcodes import OpSpec, Registry
from .runners import RUNNERS, Runner, make_runner  # noqa: F401 - RUNNERS is part of this module's API
from .runners.tree import Evaluator
from .scope import Scope

#: Stack for the evaluation thread: deep scripts fail with a DepthLimitError, never a crash.
EVAL_STACK_BYTES = 512 * 1024 * 1024
#: The Python recursion limit that lets scripts reach Limits.max_depth (up to its ceiling). The Runtime
#: never changes the process's limit (a process-wide setting belongs to the application): the `viwo`
#: command raises it to this at start; a host that wants deeply recursive scripts does the same
#: (``sys.setrecursionlimit(EVAL_RECURSION_LIMIT)``). Below it, a script that nests deeper than Python
#: allows stops with a DepthLimitError that says so.
EVAL_RECURSION_LIMIT = 100_000


@lru_cache(maxsize=1)
def builtin_registry() -> Registry:
    """The standard library's opcodes (a shared read-only template: Runtimes copy it)."""
    from .stdlib import batch, boolean, canvas, entity, image, kernel, obj, std, string
    from .stdlib import list as list_ops
    from .stdlib import math as math_ops
    from .stdlib import time as time_ops

    reg = Registry()
    for module in (std, math_ops, boolean, list_ops, obj, string, time_ops, canvas, kernel, image, batch, entity):
        reg.register_module(module)
    return reg


@lru_cache(maxsize=4)
def _base_registry(eps: tuple[tuple[str, str], ...]) -> tuple[Registry, tuple[str, ...]]:
    """The standard opcodes plus those of the plugin entry points ``eps`` ((name, value) pairs), and the
    plugins' load errors: built once per set of plugins, shared read-only by every Runtime."""
    from .plugins import load_opcode_plugins

    reg = builtin_registry().copy()
    errors = load_opcode_plugins(reg, eps) if eps else []
    return reg, tuple(errors)


EventCallback = Callable[[dict], None]


class Runtime:
    """An interpreter instance.

    >>> rt = Runtime()
    >>> rt.run('(+ 1 2)')
    3
    """

    def __init__(self, *, capabilities: Iterable[Any] | None = None, grants: Iterable[Any] | str | None = None,
                 limits: Limits | None = None, roots: Iterable[str | os.PathLike] = (),
                 canvas_size: tuple[int, int] = (1024, 1024), opcodes: Iterable[OpSpec] = (),
                 on_event: EventCallback | None = None, plugins: bool = True,
                 principal: Any = None, caller: Any = None, store: Any = None, runner: str = "compiled",
                 executor: Any = None):
        self.runner = runner
        #: Where batch items run (design §17): None or a local executor runs them here, one after another;
        #: one that sends them to workers (``viwoscript.executors.ray.RayExecutor``) runs them there.
        self.executor = executor
        self._parsed: OrderedDict = OrderedDict()  # (text, filename, syntax, registry version) -> tree
        if plugins:
            from .plugins import opcode_entry_points

            base, plugin_errors = _base_registry(opcode_entry_points())
        else:
            base, plugin_errors = _base_registry(())
        self.registry: Registry = base.copy()  # shared until this Runtime registers an opcode
        self.plugin_errors: list[str] = list(plugin_errors)
        #: Whether entry-point plugins (opcodes and capabilities) are loaded for this Runtime.
        self.load_plugins = plugins
        for spec in opcodes:
            self.register(spec)
        self.limits = limits or EMBED_DEFAULTS
        self.roots = [Path(r).resolve() for r in roots]
        self.canvas_size = canvas_size
        self.on_event = on_event
        self.principal = principal
        self.caller = caller
        # The entity store the entity opcodes use: a Store, a folder (opened on first use), True for the
        # default folder, or None for no store.
        self._store = store
        self._capability_args = (capabilities, grants)
        self._caps = None
        self._canvas = None
        self.globals = Scope()
        self._current: Evaluator | None = None

    # --- host state, created on first use ---------------------------------------------------------
    @property
    def canvas(self):
        """This Runtime's layer stack (``viwoscript.canvas.layers.LayerStack``)."""
        if self._canvas is None:
            self._canvas = make_canvas(self.canvas_size)
        return self._canvas

    @property
    def store(self):
        """The entity store (``viwoscript.store.Store``), opened on first use; None when there is none."""
        if self._store is None or self._store is False:
            return None
        if self._store is True or isinstance(self._store, str | os.PathLike):
            self._store = make_store(None if self._store is True else self._store, self)
        return self._store

    @store.setter
    def store(self, value) -> None:
        self._store = value

    @property
    def caps(self):
        """This Runtime's capabilities and grants (``viwoscript.capabilities.manager.CapabilityManager``)."""
        if self._caps is None:
            self._caps = make_capabilities(self, *self._capability_args)
        return self._caps

    @property
    def models(self):
        """This Runtime's model manager (``viwoscript.models.manager.ModelManager``); assign one to share it."""
        if getattr(self, "_models", None) is None:
            self._models = make_models()
        return self._models

    @models.setter
    def models(self, manager) -> None:
        self._models = manager

    def resolve_path(self, path: str, op: str, *, must_exist: bool = True) -> Path:
        """A script-given path resolved under the allowed roots (never outside them)."""
        from .paths import resolve_under_roots

        return resolve_under_roots(path, self.roots, op, must_exist=must_exist)

    # --- opcodes ---------------------------------------------------------------------------------
    def register(self, spec: OpSpec | Callable, *, replace_existing: bool = False) -> OpSpec:
        """Add an opcode (an ``OpSpec`` or a function decorated with ``@opcode``) to this Runtime only."""
        return self.registry.register(spec, replace_existing=replace_existing)

    def opcodes_metadata(self) -> list[dict]:
        """The ``get_opcodes`` list (design §8)."""
        return self.registry.metadata()

    def capability_metadata(self) -> list[dict]:
        """The ``get_capability_metadata`` list (design §8)."""
        return self.caps.metadata()

    # --- events ----------------------------------------------------------------------------------
    def emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # --- parsing and checking --------------------------------------------------------------------
    def parse(self, source: str | list | Node, *, filename: str | None = None, syntax: str | None = None) -> Node:
        from . import syntax as syn
        from .nodes import Array, Atom, Object

        if isinstance(source, Array | Atom | Object):
            return source
        if isinstance(source, bytes):
            source = source.decode("utf-8")
        if not isinstance(source, str):  # already-parsed JSON data (a list, or any JSON value)
            return syn.from_python(source)
        if len(source) > PARSED_CACHE_MAX_CHARS:
            return syn.parse(source, filename=filename, syntax=syntax, slots=self.registry.slot_kind)
        # The same text parses to the same (immutable) tree: running a source string again reuses the
        # tree and so its compiled code (the REPL, std.import, hosts passing text).
        key = (source, filename, syntax, id(self.registry._specs), self.registry.version)
        tree = self._parsed.get(key)
        if tree is None:
            tree = syn.parse(source, filename=filename, syntax=syntax, slots=self.registry.slot_kind)
            self._parsed[key] = tree
            if len(self._parsed) > PARSED_CACHE:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        return tree

    def check(self, source: str | list | Node, *, filename: str | None = None,
              syntax: str | None = None) -> list[Diagnostic]:
        """Every problem found without running the script (an empty list when there are none)."""
        from .checker import check_tree

        try:
            tree = self.parse(source, filename=filename, syntax=syntax)
        except ViwoSyntaxError as e:
            return [e.to_diagnostic()]
        return check_tree(tree, self.registry)

    # --- running ---------------------------------------------------------------------------------
    def run(self, source: str | list | Node, *, filename: str | None = None, args: list | dict | None = None,
            syntax: str | None = None, limits: Limits | None = None, scope: Scope | None = None,
            check: bool = False, record: Any = None) -> Any:
        """Parse and evaluate a script; return its value.

        ``record``: the script that images saved by this run embed (tree or JSON data; default: the script
        run). The REPL passes the whole session, so an image saved by one input replays every input before it.

        ``args`` are the script arguments (``std.arg``/``std.args``). ``scope`` keeps variables between
        runs (the REPL passes ``runtime.globals``); by default each run starts with fresh variables.
        With ``check=True`` the static check runs first and its first error is raised.
        """
        text = source if isinstance(source, str) else None
        tree = self.parse(source, filename=filename, syntax=syntax)
        if check:
            errors = [d for d in self.check(tree) if d.severity == "error"]
            if errors:
                d = errors[0]
                raise ViwoError(d.message, d.span, hint=d.hint, source=text)
        if isinstance(args, dict):
            args = list(args.values())
        elif args is not None and not isinstance(args, list | tuple):
            raise TypeError(f"Runtime.run: args must be a list (or a dict, taken in order), not {type(args).__name__}")
        ev = self.evaluator(limits, args, filename=filename, source=text)
        ev.record = record
        return self._run_evaluator(ev, tree, scope if scope is not None else Scope(self.globals))

    def evaluator(self, limits: Limits | None = None, args: list | None = None, *, filename: str | None = None,
                  source: str | None = None) -> Evaluator:
        """The state of one run under this Runtime's runner (gas, depth, limits): ``run_program(tree,
        scope)`` runs a parsed tree in it on the calling thread. For hosts and tools that drive runs
        themselves (``run`` does this on an evaluation thread with a big stack)."""
        return self._runner_impl.start(self, limits or self.limits, args, filename, source)

    def _run_evaluator(self, ev: Evaluator, tree: Node, scope: Scope) -> Any:
        if threading.current_thread().name == _THREAD_NAME:
            # Already on an evaluation thread (a nested run): stay on it.
            return ev.run_program(tree, scope)
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                outcome["value"] = ev.run_program(tree, scope)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = e
            finally:
                done.set()

        self._current = ev
        with _big_stack():
            worker = threading.Thread(target=target, name=_THREAD_NAME, daemon=True)
            worker.start()
        try:
            while True:
                try:
                    # Wait on the event, not on join(): a KeyboardInterrupt during Thread.join() can mark
                    # the thread finished while it still runs (CPython 3.11).
                    done.wait()
                    break
                except KeyboardInterrupt:
                    ev.interrupted = True  # the script stops at its next poll
            worker.join()
        finally:
            self._current = None
        if "error" in outcome:
            err = outcome["error"]
            if isinstance(err, ViwoError):
                raise err
            raise InternalError(f"internal error: {type(err).__name__}: {err}",
                                hint="this is a bug in viwoscript; run with --debug for the traceback") from err
        return outcome.get("value")

    @property
    def runner(self) -> str:
        """"compiled" runs scripts as generated Python functions; "tree" walks the tree (the reference)."""
        return self._runner

    @runner.setter
    def runner(self, value: str) -> None:
        self._runner_impl: Runner = make_runner(value)  # (raises ValueError for an unknown name)
        self._runner = value

    def compiled(self, tree: Node, *, charge_seq: bool = True):
        """The compiled program for a parsed tree — ``f(evaluator, scope)`` — or None when the tree is
        walked instead (no loop or lambda in it, more than COMPILE_MAX_NODES nodes, or too deeply
        nested for CPython). Kept for the last COMPILED_CACHE trees. ``charge_seq`` is False for
        modules (std.import does not charge their top-level sequence). For tools and tests; running
        scripts never needs it."""
        impl = self._runner_impl if self._runner == "compiled" else self.__dict__.get("_compiler")
        if impl is None:
            from .runners.compiled import CompiledRunner

            impl = self._compiler = CompiledRunner()
        return impl.compiled(self.registry, tree, charge_seq=charge_seq)

    def interrupt(self) -> None:
        """Ask the running script to stop (thread-safe); it raises at its next poll."""
        ev = self._current
        if ev is not None:
            ev.interrupted = True


# --- the parts: how each is built. This is the one place that knows their classes; the parts themselves
# receive what they need (a size, a folder, the Runtime's grants) and never build a Runtime. -----------

def make_canvas(size: tuple[int, int]):
    """A Runtime's layer stack (``viwoscript.canvas.layers.LayerStack``)."""
    from .canvas.layers import LayerStack

    return LayerStack(*size)


def make_store(folder, runtime: Runtime):
    """A Runtime's entity store (``viwoscript.store.Store``) in ``folder`` (None: the user data folder);
    created on its first write, which the Runtime reports as a ``log`` event."""
    from .store import Store

    return Store(folder, on_create=lambda p: runtime.emit({"type": "log", "message": f"created a new store in {p}"}))


def make_capabilities(runtime: Runtime, capabilities, grants):
    """A Runtime's capability manager: its classes, grants and handles."""
    from .capabilities.manager import CapabilityManager

    return CapabilityManager(runtime, capabilities, grants)


def make_models():
    """A Runtime's model manager (weights), unless the host assigns a shared one to ``rt.models``."""
    from .models.manager import ModelManager

    return ModelManager()


_THREAD_NAME = "viwoscript-eval"
PARSED_CACHE = 64  # parsed texts kept per Runtime
PARSED_CACHE_MAX_CHARS = 100_000  # longer texts are parsed each time, not kept
_stack_lock = threading.Lock()


class _big_stack:  # noqa: N801 - used as a context manager
    def __enter__(self):
        _stack_lock.acquire()
        self.old = threading.stack_size()
        try:
            threading.stack_size(EVAL_STACK_BYTES)
        except (ValueError, RuntimeError):  # pragma: no cover - platform without stack control
            pass
        return self

    def __exit__(self, *exc):
        threading.stack_size(self.old)
        _stack_lock.release()
        return False
