"""The ``local`` executor: work runs on this process's worker threads, one per slot (design §17).

Each unit gets a fresh :class:`JobRuntime` built from its :class:`~viwoscript.executors.base.RunSettings`
(the host's grants, limits and roots) plus what the host adds for the user (their entity store, model
capabilities). Cancel interrupts the Runtime: a unit not started yet never starts, a running one stops at
its next opcode or capability step.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Executor as _FuturesExecutor
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..errors import InternalError, InterruptedError_, ScriptError, ViwoError
from ..runtime import PARSED_CACHE_MAX_CHARS, Runtime, _big_stack
from .base import BatchItemSpec, CallSpec, EventCallback, Executor, Host, JobSpec, Outcome, RunSettings

BLOB_PREFIX = "blob:"
#: Cancels remembered for work not started yet (beyond this, old ones are forgotten).
MAX_PENDING_CANCELS = 10_000


class JobRuntime(Runtime):
    """A Runtime for one unit of work: ``blob:{sha256}`` image sources resolve through the host (for this
    user only), and a cancel that arrives before the script starts still stops it."""

    def __init__(self, *, user: str | None = None, host: Host | None = None, resolved_roots: list | None = None,
                 shared_trees: SharedTrees | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.shared_trees = shared_trees
        if resolved_roots is not None:  # resolved once by the executor, not per job
            self.roots = list(resolved_roots)
        self.user = user
        self.host = host
        self.cancel_requested = False

    @property
    def models(self):
        """The host's model manager, shared by every job (weights load once per process, not per job)."""
        if getattr(self, "_models", None) is None and self.host is not None:
            shared = getattr(self.host, "model_manager", None)
            if shared is not None:
                self._models = shared()
        return Runtime.models.fget(self)

    @models.setter
    def models(self, manager) -> None:
        self._models = manager

    def parse(self, source, *, filename: str | None = None, syntax: str | None = None):
        trees = self.shared_trees
        specs = self.registry._specs
        # Only while this Runtime's opcode table is the shared, unchangeable one (copy-on-write after copy()):
        # a Runtime that registered opcodes of its own parses for itself.
        if trees is None or not isinstance(source, str) or len(source) > PARSED_CACHE_MAX_CHARS \
                or not self.registry._shared:
            return super().parse(source, filename=filename, syntax=syntax)
        key = (source, filename, syntax, id(specs))
        tree = trees.get(key, specs)
        if tree is None:
            tree = super().parse(source, filename=filename, syntax=syntax)
            trees.put(key, specs, tree)
        return tree

    def resolve_path(self, path: str, op: str, *, must_exist: bool = True) -> Path:
        if isinstance(path, str) and path.startswith(BLOB_PREFIX):
            if not must_exist:
                raise ScriptError(f"{op}: cannot write to an upload ({path[:80]})",
                                  hint="write to a file name under the allowed folders instead")
            if self.host is None or self.user is None:
                raise ScriptError(f"{op}: blob: sources are only available in scripts run by `viwo serve`")
            return self.host.resolve_blob(self.user, path[len(BLOB_PREFIX):], op)
        return super().resolve_path(path, op, must_exist=must_exist)

    def _run_evaluator(self, ev, tree, scope):
        # Publish the evaluator before reading the flag: a cancel either sees it (and interrupts it) or
        # set the flag before we read it.
        self._current = ev
        if self.cancel_requested:
            ev.interrupted = True
        if not getattr(_slot_thread, "big_stack", False):
            return super()._run_evaluator(ev, tree, scope)
        # A slot thread has the evaluation thread's big stack: run right here (no thread per job).
        try:
            return ev.run_program(tree, scope)
        except ViwoError:
            raise
        except Exception as err:  # noqa: BLE001 - as Runtime reports a bug: an InternalError
            raise InternalError(f"internal error: {type(err).__name__}: {err}",
                                hint="this is a bug in viwoscript; run with --debug for the traceback") from err
        finally:
            self._current = None

    def interrupt(self) -> None:
        self.cancel_requested = True
        super().interrupt()


class LocalExecutor(Executor):
    """Runs units on ``slots`` worker threads of this process."""

    name = "local"

    def __init__(self, *, slots: int = 1, host: Host | None = None):
        super().__init__(slots=slots, host=host)
        self._pool = SlotThreads(slots, "viwo-slot")
        self._lock = threading.Lock()
        self._running: dict[str, JobRuntime] = {}
        self._cancelled: set[str] = set()
        self._roots: dict[tuple, tuple[Path, ...]] = {}
        self._trees = SharedTrees()

    # --- Executor -------------------------------------------------------------------------------------
    async def run_job(self, spec: JobSpec, on_event: EventCallback) -> Outcome:
        return await self._submit(spec.id, spec.user, spec.settings, spec.script, spec.args, spec.filename, on_event)

    async def run_call(self, spec: CallSpec, on_event: EventCallback) -> Outcome:
        script = ["std.call_method", ["get_capability", spec.capability], spec.method, ["std.arg", 0]]  # as the server
        return await self._submit(spec.id, spec.user, spec.settings, script, [spec.params], None, on_event)

    async def run_batch_item(self, spec: BatchItemSpec, on_event: EventCallback) -> Outcome:
        script = ["std.apply", spec.fn, ["std.arg", 0]]
        return await self._submit(spec.id, spec.user, spec.settings, script, [spec.item], None, on_event)

    def cancel(self, work_id: str) -> bool:
        with self._lock:
            if len(self._cancelled) > MAX_PENDING_CANCELS:  # cancels of work that ended meanwhile
                self._cancelled.clear()
            self._cancelled.add(work_id)
            rt = self._running.get(work_id)
        if rt is not None:
            rt.interrupt()
        return True

    async def close(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for rt in running:
            rt.interrupt()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- running --------------------------------------------------------------------------------------
    async def run_in_slot(self, fn, *args):
        """Run ``fn(*args)`` on one of the slot threads (a host draining its queue there uses
        :meth:`run_sync` for each unit)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _submit(self, work_id, user, settings, script, args, filename, on_event) -> Outcome:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_sync, work_id, user, settings, script, args,
                                          filename, on_event)

    def make_runtime(self, user: str, settings: RunSettings, on_event: EventCallback | None) -> JobRuntime:
        extra = self.host.runtime_kwargs(user) if self.host is not None else {}
        roots = self._roots.get(settings.roots)
        if roots is None:  # the host's roots: resolved once (each resolve is file-system calls)
            if len(self._roots) > 64:
                self._roots.clear()
            roots = self._roots[settings.roots] = tuple(Path(r).resolve() for r in settings.roots)
        return JobRuntime(user=user, host=self.host, limits=settings.limits, grants=settings.grants,
                          resolved_roots=roots, shared_trees=self._trees, canvas_size=settings.canvas_size,
                          runner=settings.runner,
                          on_event=on_event, **extra)

    def run_sync(self, work_id: str, user: str, settings: RunSettings, script: Any, args: list | None,
                 filename: str | None, on_event: EventCallback | None) -> Outcome:
        """Run one unit on the calling thread (a slot)."""
        source = script if isinstance(script, str) else None
        with self._lock:
            if work_id in self._cancelled:
                self._cancelled.discard(work_id)
                return Outcome("cancelled", source=source)
        rt = self.make_runtime(user, settings, on_event)
        with self._lock:
            self._running[work_id] = rt
            if work_id in self._cancelled:
                rt.cancel_requested = True
        tree = None
        try:
            tree = rt.parse(script, filename=filename)
            value = rt.run(script, args=args, filename=filename)
            if rt.cancel_requested:
                return Outcome("cancelled", source=source, tree=tree)
            return Outcome("done", value=value, source=source, tree=tree)
        except InterruptedError_ as e:
            if rt.cancel_requested:
                return Outcome("cancelled", error=e, source=source, tree=tree)
            return Outcome("error", error=e, source=source, tree=tree)
        except ViwoError as e:
            return Outcome("error", error=e, source=source, tree=tree)
        except Exception as e:  # noqa: BLE001 - a bug must fail this job, never the slot
            return Outcome("error", error=e, source=source, tree=tree)
        finally:
            with self._lock:
                self._running.pop(work_id, None)
                self._cancelled.discard(work_id)


_slot_thread = threading.local()


class SharedTrees:
    """Parsed scripts shared by the executor's Runtimes: the same text under the same opcode table parses
    to the same immutable tree, so a script sent again (a button pressed twice, a batch of one script
    with other arguments) is parsed once. The last ``size`` texts are kept."""

    def __init__(self, size: int = 256):
        self.size = size
        self._trees: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, specs: Any):
        with self._lock:
            entry = self._trees.get(key)
            if entry is None or entry[0] is not specs:  # (the table is held, so its id is not reused)
                return None
            self._trees.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, specs: Any, tree: Any) -> None:
        with self._lock:
            self._trees[key] = (specs, tree)
            if len(self._trees) > self.size:
                self._trees.popitem(last=False)


class SlotThreads(_FuturesExecutor):
    """``n`` worker threads with the evaluation thread's big stack (a ``concurrent.futures`` executor).

    A script runs on the slot thread itself (:meth:`JobRuntime._run_evaluator`), so a job costs no thread
    start and no hand-over to an evaluation thread. Threads start on the first submit.
    """

    def __init__(self, n: int, name: str):
        self.n = n
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self.name}: cannot run work after shutdown")
            if not self._threads:
                with _big_stack():
                    for i in range(self.n):
                        t = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
                        t.start()
                        self._threads.append(t)
        fut: Future = Future()
        self._queue.put((fut, fn, args, kwargs))
        return fut

    def _work(self) -> None:
        _slot_thread.big_stack = True
        while True:
            item = self._queue.get()
            if item is None:
                return
            fut, fn, args, kwargs = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
                fut.set_exception(e)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for t in threads:
                t.join()
