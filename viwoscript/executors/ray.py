"""The ``ray`` executor (design §17): work runs on Ray actors, one per GPU or CPU slot.

``pip install 'viwoscript[ray]'``. Each worker (:class:`~viwoscript.executors.ray_worker.Worker`) keeps
its own warm model manager. Units of work:

- **batch items** (``batch.run`` and the batch module's sweeps and ``each``): the script runs here (its
  grants, limits and compute budget are checked here, before anything is sent); each item goes to a
  free worker, all at once, and the results come back in order (:meth:`RayExecutor.run_items`);
- **whole jobs** and **single capability calls** of ``viwo serve`` (:meth:`run_job`, :meth:`run_call`).

Events (progress, logs, images) come back while the work runs; cancel interrupts running work and drops
work not sent yet. A worker that dies during a call: the call is retried once on another worker, then
reported as that item's error. Model affinity: a call naming a model goes preferably to a worker that
already holds it. See docs/distributed.md.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import ScriptError
from .base import BatchItemSpec, CallSpec, EventCallback, Executor, JobSpec, Outcome, RunSettings
from .ray_parts import ExecutorError, _asks, _Pool, _shown, _with_timeout, import_ray, local_threads, probe

#: How often events of running work are collected (seconds).
EVENT_POLL_S = 0.25
#: How long a cancelled unit may take to stop at its next step before its worker is restarted.
CANCEL_GRACE_S = 5.0
#: How long workers may take to start (and be placed on the cluster).
START_TIMEOUT_S = 120.0
#: Most bytes of uploads (``blob:`` sources) sent with one job.
MAX_UPLOADS_BYTES = 512 * 1024 * 1024
#: Object store of a local cluster started by the executor (bytes): results are small images.
LOCAL_OBJECT_STORE = 200 * 1024 * 1024


class RayExecutor(Executor):
    """Runs work on Ray actors.

    ``address``: ``None`` starts a local Ray instance (stopped again by :meth:`close`); ``"auto"`` (or
    ``"ray://host:10001"``, ``"host:6379"``) joins a running cluster, which is left running.
    ``num_workers``: actors to start (default: one per GPU of the cluster, else one per CPU).
    ``num_cpus`` / ``num_gpus`` / ``resources``: what each actor reserves (fractions allowed, e.g.
    ``num_cpus=0.5`` runs 4 workers on 2 cores). ``models``: the ``[models]`` table the workers configure
    their model capabilities from; ``capabilities`` / ``opcodes``: more for every worker Runtime (they
    must be importable there). ``settings``: the grants, limits and roots work runs under when the caller
    gives none (batch items take the script's own).
    """

    name = "ray"
    #: batch.* sends items here rather than running them in the script's process.
    dispatches_items = True

    def __init__(self, *, address: str | None = None, num_workers: int | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None, resources: dict | None = None, models: dict | None = None,
                 capabilities: list | None = None, opcodes: list | None = None, plugins: bool = True,
                 settings: RunSettings | None = None, host: Any = None, slots: int | None = None,
                 init_options: dict | None = None, start_timeout: float = START_TIMEOUT_S):
        import_ray()  # a clear error now, not at the first batch
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
            raise ValueError(f"ray executor: num_workers must be a whole number >= 1, got {num_workers!r}")
        for label, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
                raise ValueError(f"ray executor: {label} must be a number >= 0, got {v!r}")
        if resources is not None and not (isinstance(resources, dict) and all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                for k, v in resources.items())):
            raise ValueError(f"ray executor: resources must map names to amounts, got {resources!r}")
        super().__init__(slots=num_workers or slots or 1, host=host)
        self.address = address
        self.num_workers = num_workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.resources = dict(resources or {})
        self.recipe = {"models": models, "capabilities": capabilities, "opcodes": opcodes, "plugins": plugins}
        self.settings = settings
        self.init_options = dict(init_options or {})
        self.start_timeout = start_timeout
        self._lock = threading.RLock()
        self._actors: list = []
        self.workers: list[dict] = []
        self._pool: _Pool | None = None
        self._owns_ray = False
        self._ids = itertools.count(1)
        self._running: dict[str, tuple[int, Any]] = {}  # work id -> (worker, ref)
        self._cancelled: set[str] = set()
        self._closed = False
        self.started_s: float | None = None
        #: items (and jobs) run per worker name, for the summary
        self.counts: dict[str, int] = {}
        self._warned: set[str] = set()

    # --- life cycle -------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._actors)

    def start(self) -> None:
        """Start (or join) Ray and the workers; idempotent. Raises ExecutorError with what to do."""
        with self._lock:
            if self._actors:
                return
            if self._closed:
                raise ExecutorError("ray executor: already closed")
            t0 = time.monotonic()
            ray = import_ray()
            if not ray.is_initialized():
                self._init(ray)
            from .ray_worker import Worker

            n, per = self._shape(ray)
            self.slots = n
            threads = local_threads()
            recipe = {**self.recipe, "threads": threads}
            if threads:  # torch reads these when the worker imports it (Ray's default is one thread)
                per["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}}
            actor_cls = ray.remote(Worker)
            self._actors = [actor_cls.options(max_concurrency=4, max_restarts=-1, max_task_retries=0, **per)
                            .remote(f"worker-{i + 1}", recipe) for i in range(n)]
            try:
                self.workers = ray.get([a.info.remote() for a in self._actors], timeout=self.start_timeout)
            except ray.exceptions.GetTimeoutError:
                total = ray.cluster_resources()
                self._kill_actors()
                raise ExecutorError(
                    f"ray executor: {n} worker(s) asking for {_shown(_asks(per))} could not start within "
                    f"{self.start_timeout:g} s; the cluster has {_shown(total)}",
                    hint="lower num_workers or what each worker asks for ([executor] num_gpus, num_cpus, "
                         "resources), or add nodes that provide it") from None
            self._pool = _Pool(n)
            self.started_s = time.monotonic() - t0

    def _init(self, ray) -> None:
        options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False,
                   **self.init_options}
        if self.address:
            hint = ("start it first (`ray start --head` on the head node), check the address, or leave "
                    "[executor] address out to start a local Ray instance")
            problem = probe(self.address)
            if problem is not None:
                raise ExecutorError(f"ray executor: cannot reach the Ray cluster at {self.address!r}: {problem}",
                                    hint=hint)
            try:
                _with_timeout(lambda: ray.init(address=self.address, **options), self.start_timeout)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                raise ExecutorError(
                    f"ray executor: cannot reach the Ray cluster at {self.address!r}: "
                    f"{str(e).splitlines()[0] if str(e) else type(e).__name__}", hint=hint) from None
            self._owns_ray = False
            return
        options.setdefault("object_store_memory", LOCAL_OBJECT_STORE)
        options.setdefault("_node_ip_address", "127.0.0.1")  # a private instance: nothing listens beyond loopback
        try:
            ray.init(**options)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds; all mean "could not start"
            raise ExecutorError(f"ray executor: could not start a local Ray instance: {str(e).splitlines()[0]}",
                                hint="see `ray status`; or join a running cluster with [executor] address") from None
        self._owns_ray = True

    def _shape(self, ray) -> tuple[int, dict]:
        """(number of workers, what each one reserves)."""
        total = ray.cluster_resources()
        gpus = total.get("GPU", 0)
        per: dict[str, Any] = {}
        if self.num_gpus is not None:
            per["num_gpus"] = self.num_gpus
        elif gpus >= 1 and self.num_cpus is None:
            per["num_gpus"] = 1
        per["num_cpus"] = self.num_cpus if self.num_cpus is not None else (0 if per.get("num_gpus") else 1)
        if self.resources:
            per["resources"] = dict(self.resources)
        n = self.num_workers
        if n is None:
            if per.get("num_gpus"):
                n = max(1, int(gpus // per["num_gpus"]))
            elif per["num_cpus"]:
                n = max(1, int(total.get("CPU", 1) // per["num_cpus"]))
            else:
                n = 1
        return n, per

    def _kill_actors(self) -> None:
        ray = import_ray()
        for a in self._actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []

    def shutdown(self) -> None:
        """Stop the workers; stop Ray too when this executor started it (never a cluster it joined)."""
        with self._lock:
            self._closed = True
            if not self._actors and not self._owns_ray:
                return
            ray = import_ray()
            self._kill_actors()
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            self._owns_ray = False

    async def close(self) -> None:
        with self._lock:
            running = list(self._running)
        for wid in running:
            self.cancel(wid)
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)

    def describe(self) -> str:
        """One line for summaries: the executor and its workers."""
        if not self.workers:
            return "ray executor: not started (no work was sent)"
        parts = []
        for w in self.workers:
            n = self.counts.get(w["name"], 0)
            gpu = f", GPU {','.join(w['gpus'])}" if w.get("gpus") else ""
            parts.append(f"{w['name']} (pid {w['pid']} on {w['host']}{gpu}: {n} unit{'s' if n != 1 else ''})")
        where = "joined " + self.address if self.address else "local Ray"
        return f"ray executor ({where}, started in {self.started_s or 0:.1f} s): " + ", ".join(parts)

    # --- batch items (called on the script's evaluation thread) -------------------------------------
    def run_items(self, ev, items: list, *, stop_on_error: bool = False,
                  on_done: Callable[[int, dict], None] | None = None) -> list[dict]:
        """Run ``items`` (:class:`viwoscript.travel.Item`) on the workers, at most one per worker at a time;
        returns one ``{status, value | error, worker}`` per item, in order. ``ev``'s interrupt and time
        limit stop everything (running items are interrupted, queued ones never sent); its remaining gas is
        each item's budget and what items use is charged to it."""
        try:
            self.start()
        except ExecutorError as e:
            raise e.located(ev.current_span) from None
        ray = import_ray()
        settings = self._item_settings(ev)
        results: list[dict | None] = [None] * len(items)
        queue = deque(range(len(items)))
        tries = [0] * len(items)
        avoid: list[set[int]] = [set() for _ in items]
        running: dict[Any, tuple[int, int, str]] = {}  # ref -> (item, worker, work id)
        last_poll = time.monotonic()
        stopping = False
        try:
            while queue or running:
                ev.check_interrupt()
                while queue and not stopping:
                    k = self._next(queue, items)
                    w = self._pool.take(items[k].model, avoid[k])
                    if w is None:
                        queue.appendleft(k)
                        break
                    wid = f"item-{next(self._ids)}"
                    it = items[k]
                    ref = self._actors[w].run.remote(wid, it.script, it.captures, it.args, settings)
                    running[ref] = (k, w, wid)
                    with self._lock:
                        self._running[wid] = (w, ref)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.1)
                now = time.monotonic()
                if now - last_poll > EVENT_POLL_S:
                    self._forward(ev, self._poll_events({w for _, w, _ in running.values()}))
                    last_poll = now
                for ref in ready:
                    k, w, wid = running.pop(ref)
                    out = self._collect(ref, w, wid, ev)
                    if out is None:  # the worker died: once more, elsewhere
                        tries[k] += 1
                        avoid[k].add(w)
                        if tries[k] < 2 and not stopping:
                            queue.appendleft(k)
                            continue
                        out = _died(items[k].label, self.workers[w]["name"], tries[k])
                    results[k] = out
                    if out.get("gas") and ev.limits.gas is not None:
                        ev.charge(int(out["gas"]))
                    if on_done is not None:
                        on_done(k, out)
                    if stop_on_error and out["status"] != "ok":
                        stopping = True
                        queue.clear()
                        for _, w2, wid2 in running.values():
                            self._actors[w2].interrupt.remote(wid2)
        finally:
            if running:
                self._stop(running)
        return [r if r is not None else {"status": "cancelled", "error": _cancelled_record()} for r in results]

    def _next(self, queue: deque, items: list) -> int:
        """The next item to send: the first queued one whose model a free worker holds, else the first."""
        pool = self._pool
        with pool.cond:
            held = set().union(*(pool.models.get(w, set()) for w in pool.free)) if pool.free else set()
        if held:
            for k in queue:
                if items[k].model in held:
                    queue.remove(k)
                    return k
        return queue.popleft()

    def _item_settings(self, ev) -> RunSettings:
        """The script's own grants, limits and roots; gas and time what it has left."""
        rt = ev.runtime
        limits = ev.limits
        changes: dict[str, Any] = {}
        if limits.gas is not None:
            changes["gas"] = max(0, int(limits.gas - ev.gas_used()))
        if ev.deadline is not None:
            changes["timeout"] = max(0.001, ev.deadline - time.monotonic())
        grants = rt._capability_args[1] if rt._capability_args[1] is not None else None  # noqa: SLF001
        base = self.settings
        return RunSettings(limits=limits.with_(**changes) if changes else limits,
                           grants=grants if grants is not None else (base.grants if base else None),
                           roots=tuple(str(r) for r in rt.roots), canvas_size=tuple(rt.canvas_size),
                           runner=rt.runner)

    def _collect(self, ref, w: int, wid: str, ev) -> dict | None:
        """The result of a finished unit (its events forwarded); None when its worker died."""
        ray = import_ray()
        with self._lock:
            self._running.pop(wid, None)
            self._cancelled.discard(wid)
        try:
            out = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            self._pool.give(w, [])
            return None
        except ray.exceptions.TaskCancelledError:
            self._pool.give(w)
            return {"status": "cancelled", "error": _cancelled_record(), "worker": self.workers[w]["name"]}
        self._pool.give(w, out.get("models"))
        name = self.workers[w]["name"]
        self.counts[name] = self.counts.get(name, 0) + 1
        if ev is not None:
            self._forward(ev, out.pop("events", []))
        return out

    def _poll_events(self, busy: set[int]) -> list:
        ray = import_ray()
        refs = [self._actors[w].events.remote() for w in sorted(busy)]
        out: list = []
        for ref in refs:
            try:
                out.extend(ray.get(ref, timeout=5))
            except Exception:  # noqa: BLE001 - a dead or busy worker: its events come with its result
                pass
        return out

    def _forward(self, ev, events: list) -> None:
        emit = ev.runtime.emit if hasattr(ev, "runtime") else ev
        for _, event in events:
            if event.get("type") == "warn":  # each worker warns once (e.g. "using the fake"): show it once
                key = str(event.get("message"))
                if key in self._warned:
                    continue
                self._warned.add(key)
            emit(event)

    def _stop(self, running: dict) -> None:
        """Interrupt running units and wait for them to stop (a worker that does not is restarted)."""
        ray = import_ray()
        for _, w, wid in running.values():
            try:
                self._actors[w].interrupt.remote(wid)
            except Exception:  # noqa: BLE001
                pass
        refs = list(running)
        _, late = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
        for ref in refs:
            k, w, wid = running[ref]
            if ref in late:  # stuck in a long step: restart the worker (its models are lost)
                try:
                    ray.kill(self._actors[w], no_restart=False)
                except Exception:  # noqa: BLE001
                    pass
                self._pool.give(w, [])
                with self._lock:
                    self._running.pop(wid, None)
            else:
                self._collect(ref, w, wid, None)

    # --- whole jobs and single calls (viwo serve) ---------------------------------------------------
    async def run_job(self, spec: JobSpec, on_event: EventCallback) -> Outcome:
        return await asyncio.get_running_loop().run_in_executor(
            None, self.run_unit, spec.id, spec.script, None, spec.args, spec.settings, on_event, spec.filename,
            spec.user)

    async def run_call(self, spec: CallSpec, on_event: EventCallback) -> Outcome:
        script = ["std.call_method", ["get_capability", spec.capability], spec.method, ["std.arg", 0]]
        return await asyncio.get_running_loop().run_in_executor(
            None, self.run_unit, spec.id, script, None, [spec.params], spec.settings, on_event, None, spec.user)

    async def run_batch_item(self, spec: BatchItemSpec, on_event: EventCallback) -> Outcome:
        script = ["std.apply", spec.fn, ["std.arg", 0]]
        return await asyncio.get_running_loop().run_in_executor(
            None, self.run_unit, spec.id, script, None, [spec.item], spec.settings, on_event, None, spec.user)

    def uploads(self, user: str | None, script: Any, args: Any) -> dict | None:
        """The uploads (sha256 → bytes) the ``blob:`` names written in ``script`` and ``args`` refer to, read
        here from the host (the server) for ``user``, to go with the unit; names ``user`` may not read are
        left out (the script's error says so on the worker)."""
        if self.host is None or user is None or not hasattr(self.host, "resolve_blob"):
            return None
        import json
        import re

        text = script if isinstance(script, str) else json.dumps(script, default=str)
        if args:
            text += json.dumps(args, default=str)
        found: dict[str, bytes] = {}
        total = 0
        for digest in dict.fromkeys(re.findall(r"blob:([0-9a-f]{64})", text)):
            try:
                data = self.host.resolve_blob(user, digest, "job").read_bytes()
            except (ScriptError, OSError):
                continue
            total += len(data)
            if total > MAX_UPLOADS_BYTES:
                raise ExecutorError(f"ray executor: the uploads this job names are more than "
                                    f"{MAX_UPLOADS_BYTES // 2**20} MiB", hint="name fewer or smaller uploads")
            found[digest] = data
        return found

    def run_unit(self, work_id: str, script: Any, captures: dict | None, args: list | None, settings: RunSettings,
                 on_event: EventCallback | None, filename: str | None = None, user: str | None = None) -> Outcome:
        """Run one unit on a free worker (waiting for one), on the calling thread; retried once on another
        worker if its worker dies."""
        from ..travel import error_from_record

        self.start()
        ray = import_ray()
        source = script if isinstance(script, str) else None
        try:
            blobs = self.uploads(user, script, args)
        except ExecutorError as e:
            return Outcome("error", error=e, source=source)
        avoid: set[int] = set()
        for _attempt in range(2):
            w = self._pool.take(None, avoid, block=True, stop=lambda: work_id in self._cancelled)
            with self._lock:
                if w is None or work_id in self._cancelled:
                    self._cancelled.discard(work_id)
                    if w is not None:
                        self._pool.give(w)
                    return Outcome("cancelled", source=source)
                ref = self._actors[w].run.remote(work_id, script, captures, args, settings, filename, user, blobs)
                self._running[work_id] = (w, ref)
            while True:
                ready, _ = ray.wait([ref], timeout=EVENT_POLL_S)
                if ready:
                    break
                if on_event is not None:
                    self._forward(on_event, self._poll_events({w}))
            out = self._collect(ref, w, work_id, on_event)
            if out is not None:
                break
            avoid.add(w)
        else:
            out = _died("job", self.workers[w]["name"], 2)
        if out["status"] == "ok":
            return Outcome("done", value=out["value"], source=source, extra={"worker": out.get("worker")})
        if out["status"] == "cancelled":
            return Outcome("cancelled", source=source)
        return Outcome("error", error=error_from_record(out["error"]), source=source,
                       tree=self._tree(script), extra={"worker": out.get("worker")})

    @staticmethod
    def _tree(script: Any) -> Any:
        try:
            from ..syntax import from_python, parse

            return parse(script) if isinstance(script, str) else from_python(script)
        except Exception:  # noqa: BLE001 - only for error paths
            return None

    def cancel(self, work_id: str) -> bool:
        with self._lock:
            self._cancelled.add(work_id)
            running = self._running.get(work_id)
        if running is not None and self._actors:
            self._actors[running[0]].interrupt.remote(work_id)
        if self._pool is not None:
            with self._pool.cond:
                self._pool.cond.notify_all()
        return True


def _cancelled_record() -> dict:
    return {"class": "InterruptedError_", "message": "batch item cancelled", "hint": None, "span": None,
            "catchable": False}


def _died(label: str, worker: str, tries: int) -> dict:
    return {"status": "error", "worker": worker, "gas": 0, "error": {
        "class": "ScriptError", "catchable": True, "span": None,
        "message": f"{label}: the worker running it stopped during the call ({tries} tr{'ies' if tries != 1 else 'y'}, "
                   f"the last on {worker})",
        "hint": "a worker process died (out of memory? killed?); see `ray status` and the worker logs"}}
