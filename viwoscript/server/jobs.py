"""The job queue: SQLite rows (``viwoscript.store.jobs``), one runner task per executor slot.

Submitting writes a ``queued`` row and wakes a runner; a runner claims the oldest queued row (FIFO),
runs it through the :class:`~viwoscript.executors.base.Executor`, turns its value into JSON (Images become
files under ``/blobs``) and records the end. Events from the run become notifications for the job's owner.
Cancel by id: a queued job is finished as ``cancelled`` in the same transaction that would have let it
start, so it never starts; a running one is interrupted at its next opcode or step. On start-up, rows left
``running`` by a previous process become ``interrupted`` and queued ones run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..executors.base import CallSpec, JobSpec, Outcome, RunSettings
from ..store.jobs import FINISHED, Jobs, QueueFull
from .rpc import QUEUE_FULL, UNKNOWN_JOB, RpcError

log = logging.getLogger("viwoscript.server")

#: When the queue moves (a job starts, a queued one is cancelled), the owners of the first this many queued
#: jobs hear their new ``queue_position`` (``job.queue``); a job further back hears when it comes this close.
QUEUE_REPORT = 16
#: ``job.queue`` rounds are at most this often (seconds): a busy queue that moves thousands of times a
#: second costs a few notifications, not thousands; the last positions always go out.
QUEUE_REPORT_INTERVAL = 0.05


class JobManager:
    def __init__(self, config, jobs: Jobs, executor, hub, blobs):
        self.config = config
        self.jobs = jobs
        self.executor = executor
        self.hub = hub
        self.blobs = blobs
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viwo-db")
        self._wake = asyncio.Event()
        self._runners: list[asyncio.Task] = []
        self._waiters: dict[str, list[asyncio.Future]] = {}
        #: job id -> (owner, client_id) of the jobs running now
        self._running: dict[str, tuple[str, str | None]] = {}
        self._stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        #: new jobs waiting for the next group commit: (owner, client_id, request, key, future, wait)
        self._new: list[tuple] = []
        #: calls from slot threads for the event loop, run in order by one callback (see :meth:`post`)
        self._outbox: deque = deque()
        self._outbox_lock = threading.Lock()
        self._outbox_scheduled = False
        self._settings: RunSettings | None = None
        #: job.queue rounds: when the last one ran, whether one is due, what each job last heard
        self._queue_round_at = 0.0
        self._queue_round_due = False
        self._queue_heard: dict[str, int] = {}
        self._queue_timer: asyncio.TimerHandle | None = None

    # --- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        start = getattr(self.executor, "start", None)  # an executor elsewhere (Ray): its workers, now
        if start is not None:  # (on this thread, before the server listens: Ray wants the main thread)
            start()
        interrupted = await self.db(self.jobs.recover)
        if interrupted:
            log.warning("%d job(s) were running when the server stopped: now interrupted", len(interrupted))
        for i in range(self.executor.slots):
            self._runners.append(self.loop.create_task(self._runner(), name=f"viwo-runner-{i}"))

    async def stop(self) -> None:
        self._stopping = True
        if self._queue_timer is not None:
            self._queue_timer.cancel()
        for task in self._runners:
            task.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        await self.executor.close()
        self._db_pool.shutdown(wait=True)

    async def db(self, fn, *args, **kwargs):
        """Run a job-store call. Job rows are written with ``synchronous=NORMAL`` (no fsync per commit):
        a transaction takes a fraction of a millisecond, less than handing it to another thread and back
        on a busy machine, so it runs right here on the event loop. Anything slower (a user's entity
        store, synchronous=FULL) goes through :meth:`slow_db`."""
        return fn(*args, **kwargs)

    async def slow_db(self, fn, *args, **kwargs):
        """Run a store call on the database thread (the event loop never waits for an fsync)."""
        if kwargs:
            return await self.loop.run_in_executor(self._db_pool, lambda: fn(*args, **kwargs))
        return await self.loop.run_in_executor(self._db_pool, fn, *args)

    # --- requests ---------------------------------------------------------------------------------
    async def submit(self, user: str, client_id: str | None, request: dict, *,
                     idempotency_key: str | None = None, wait: bool = False) -> dict:
        """Queue a job: its record once the row is committed (``queued``, or the existing job with the same
        idempotency key); with ``wait``, the record once the job has finished (the job goes on when the
        caller stops waiting).

        Jobs submitted in the same turn of the event loop are written in one transaction (group commit);
        nobody hears of a job (reply, ``queued`` notification, a slot starting it) before its row commits.
        """
        fut = self.loop.create_future()
        self._new.append((user, client_id, request, idempotency_key, fut, wait))
        if len(self._new) == 1:
            self.loop.call_soon(self._commit_new)
        try:
            rec = await fut
        except QueueFull as e:
            raise RpcError(QUEUE_FULL, f"queue full: {e}", {"max_queued_jobs": e.limit}) from None
        if wait and rec["status"] not in FINISHED:  # an existing job (idempotency key), not finished yet
            return await self.wait(user, rec["job"])
        return rec

    def _commit_new(self) -> None:
        """One transaction for every job submitted since the last one, then their replies (or, for those
        who wait for the end, their waiters) and ``queued`` notifications; then the slots are woken."""
        batch, self._new = self._new, []
        try:
            outs = self.jobs.create_many([b[:4] for b in batch], max_queued=self.config.max_queued_jobs)
        except Exception as e:  # noqa: BLE001 - every submitter hears of it
            log.exception("could not record %d new job(s)", len(batch))
            for b in batch:
                if not b[4].done():
                    b[4].set_exception(e)
            return
        woke = False
        for (user, client_id, _, _, fut, wait), out in zip(batch, outs, strict=True):
            if isinstance(out, BaseException):
                if not fut.done():
                    fut.set_exception(out)
                continue
            rec, created = out
            if created:
                self.hub.status(user, client_id, rec["job"], "queued", rec.get("queue_position"))
                self._queue_heard[rec["job"]] = rec.get("queue_position")
                woke = True
                if wait:  # the same future gives the finished record
                    if not fut.done():
                        self._waiters.setdefault(rec["job"], []).append(fut)
                    continue
            if not fut.done():
                fut.set_result(rec)
        if woke:
            self._wake.set()

    def _forget_waiter(self, job_id: str, fut: asyncio.Future) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                del self._waiters[job_id]

    def post(self, fn, *args) -> None:
        """From any thread: call ``fn(*args)`` on the event loop, in order with every other post. Posts
        that come while the loop is busy are run by one callback (one wake-up, not one per post)."""
        self._outbox.append((fn, args))
        with self._outbox_lock:
            if self._outbox_scheduled:
                return
            self._outbox_scheduled = True
        self.loop.call_soon_threadsafe(self._run_outbox)

    def _run_outbox(self) -> None:
        with self._outbox_lock:
            self._outbox_scheduled = False
        outbox = self._outbox
        while outbox:
            fn, args = outbox.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - one bad event must not lose the others
                log.exception("event delivery failed")

    async def get(self, user: str, job_id: Any) -> dict:
        rec = await self.db(self.jobs.get, job_id, user) if isinstance(job_id, str) else None
        if rec is None:
            raise RpcError(UNKNOWN_JOB, f"unknown job {job_id!r}", {"job": job_id})
        if rec["status"] == "queued":
            rec["queue_position"] = self.jobs.queue_position(rec["job"])
        return rec

    def _queue_moved(self) -> None:
        """On the event loop: the queue moved; a ``job.queue`` round is due (now, or once
        ``QUEUE_REPORT_INTERVAL`` has passed since the last one)."""
        if self._queue_round_due or self._stopping:
            return
        self._queue_round_due = True
        wait = self._queue_round_at + QUEUE_REPORT_INTERVAL - self.loop.time()
        self._queue_timer = self.loop.call_later(max(0.0, wait), self._queue_round)

    def _queue_round(self) -> None:
        """The owners of the first ``QUEUE_REPORT`` queued jobs hear where they stand now (if it changed)."""
        self._queue_round_due = False
        self._queue_timer = None
        self._queue_round_at = self.loop.time()
        if self._stopping:
            return
        try:
            head = self.jobs.queued_head(QUEUE_REPORT)
        except Exception:  # noqa: BLE001 - a report is a courtesy; the record stays the truth
            log.exception("could not read the queue positions")
            return
        heard = {}
        for q in head:
            job, pos = q["job"], q["queue_position"]
            if self._queue_heard.get(job) != pos:
                self.hub.notify(q["owner"], q["client_id"], "job.queue", {"job": job, "queue_position": pos})
            heard[job] = pos
        # jobs further back keep what they heard with their queued status
        for job, pos in self._queue_heard.items():
            if job not in heard and pos is not None and pos > QUEUE_REPORT:
                heard[job] = pos
        self._queue_heard = {j: p for j, p in heard.items() if self.jobs.is_queued(j)}

    async def wait(self, user: str, job_id: str) -> dict:
        """The record once the job has finished."""
        fut = self.loop.create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        try:
            rec = await self.get(user, job_id)
            if rec["status"] in FINISHED:
                return rec
            return await fut
        finally:
            self._forget_waiter(job_id, fut)

    async def cancel(self, user: str, job_id: Any) -> dict:
        if not isinstance(job_id, str):
            raise RpcError(UNKNOWN_JOB, f"unknown job {job_id!r}", {"job": job_id})
        rec, before = await self.db(self.jobs.cancel, job_id, user)
        if rec is None:
            raise RpcError(UNKNOWN_JOB, f"unknown job {job_id!r}", {"job": job_id})
        if before == "queued":
            full = await self.db(self.jobs.get, job_id, full=True)
            self._finished(full["owner"], full["client_id"], rec)
            self._queue_moved()
        elif before == "running":  # also when its slot has claimed it but not started it yet
            self.executor.cancel(job_id)
        return rec

    # --- running ----------------------------------------------------------------------------------
    async def _runner(self) -> None:
        if getattr(self.executor, "run_in_slot", None) is not None:
            await self._slot_runner()
        else:
            await self._async_runner()

    async def _slot_runner(self) -> None:
        """For executors that run work on slot threads of this process (``local``): the slot itself takes
        queued jobs one after another until the queue is empty, so back-to-back jobs never wait for the
        event loop to hand them over; events and ends reach the loop with ``call_soon_threadsafe``."""
        while not self._stopping:
            self._wake.clear()
            try:
                await self.executor.run_in_slot(self._drain)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the runner
                log.exception("could not run the job queue")
                await asyncio.sleep(1)
                continue
            await self._wake.wait()

    def _drain(self) -> None:
        """On a slot thread: claim, run and record queued jobs until there are none (or the server stops).
        A job's end and the next job's start are one transaction; nothing is told before it commits."""
        post = self.post
        rec = self.jobs.claim_next()
        while rec is not None and not self._stopping:
            post(self.hub.status, rec["owner"], rec["client_id"], rec["job"], "running")
            post(self._queue_moved)
            try:
                status, result, error, images = self._run_here(rec)
            except Exception as e:  # noqa: BLE001 - one job's failure never stops the queue
                log.exception("job %s failed inside the server", rec["job"])
                status, result, error, images = "error", None, error_record(e, None), []
            if self._stopping:  # left `running`: the next start records it as interrupted
                return
            done, rec = self.jobs.finish(rec, status, result=result, error=error, images=images, claim_next=True)
            if done is not None:
                post(self._finished, done.pop("owner"), done.pop("client_id"), done)

    def _run_here(self, rec: dict) -> tuple:
        job_id, owner, client_id = rec["job"], rec["owner"], rec["client_id"]
        request = rec["request"]
        self._running[job_id] = (owner, client_id)
        started = time.monotonic()
        images: list[dict] = []
        script, args = request.get("script"), request.get("args")
        events = _EventSink(self, job_id, owner, client_id, images, script, args)
        settings = self.settings_for(request)
        try:
            if request.get("kind") == "call":
                outcome = self.executor.run_sync(job_id, owner, settings, _call_script(request), [request["params"]],
                                                 None, events)
            else:
                outcome = self.executor.run_sync(job_id, owner, settings, script_text(script), args, None, events)
            status, result, error = self._conclude(outcome, owner, script, args, images)
        finally:
            self._running.pop(job_id, None)
        if self.config.verbose:
            log.info("job %s of %s: %s in %.3f s", job_id, owner, status, time.monotonic() - started)
        return status, result, error, images

    async def _async_runner(self) -> None:
        """For executors elsewhere (another process or machine): await each job."""
        rec = None
        while True:
            if rec is None:
                self._wake.clear()
                try:
                    rec = await self.db(self.jobs.claim_next)
                except Exception:  # noqa: BLE001 - a store hiccup must not kill the runner
                    log.exception("could not read the job queue")
                    await asyncio.sleep(1)
                    continue
                if rec is None:
                    await self._wake.wait()
                    continue
                self._wake.set()  # there may be more: let another idle runner look
            self.hub.status(rec["owner"], rec["client_id"], rec["job"], "running")
            self._queue_moved()
            try:
                status, result, error, images = await self._run(rec)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one job's failure never stops the queue
                log.exception("job %s failed inside the server", rec["job"])
                status, result, error, images = "error", None, error_record(e, None), []
            # One transaction records this job's end and claims the next one.
            try:
                done, rec = await self.db(self.jobs.finish, rec, status, result=result, error=error,
                                          images=images, claim_next=True)
            except Exception:  # noqa: BLE001
                log.exception("could not record the end of job %s", rec["job"])
                done, rec = None, None
            if done is not None:
                self._finished(done.pop("owner"), done.pop("client_id"), done)

    def settings_for(self, request: dict) -> RunSettings:
        sc = self.config
        gas = request.get("gas")
        if gas is None:
            if self._settings is None:  # the same for every job without its own gas
                self._settings = RunSettings(limits=sc.limits, grants=sc.grants,
                                             roots=tuple(str(r) for r in sc.roots), canvas_size=sc.canvas_size,
                                             runner=sc.runner)
            return self._settings
        max_gas = sc.limits.gas
        if max_gas is not None:
            gas = min(gas, max_gas)  # clamped, never refused
        return RunSettings(limits=sc.limits.with_(gas=gas), grants=sc.grants, roots=tuple(str(r) for r in sc.roots),
                           canvas_size=sc.canvas_size, runner=sc.runner)

    async def _run(self, rec: dict) -> tuple:
        """Run a claimed job: ``(status, result, error, images)``."""
        job_id, owner, client_id = rec["job"], rec["owner"], rec["client_id"]
        request = rec["request"]
        self._running[job_id] = (owner, client_id)
        started = time.monotonic()
        images: list[dict] = []
        script = request.get("script")
        events = _EventSink(self, job_id, owner, client_id, images, script, request.get("args"))
        settings = self.settings_for(request)
        try:
            if request.get("kind") == "call":
                spec = CallSpec(job_id, owner, request["capability"], request["method"], request["params"], settings)
                outcome = await self.executor.run_call(spec, events)
            else:
                spec = JobSpec(job_id, owner, script_text(script), settings, args=request.get("args"))
                outcome = await self.executor.run_job(spec, events)
            if outcome.status == "done" and _has_image(outcome.value):  # PNG encoding: off the event loop
                status, result, error = await self.loop.run_in_executor(
                    None, self._conclude, outcome, owner, script, request.get("args"), images)
            else:
                status, result, error = self._conclude(outcome, owner, script, request.get("args"), images)
        finally:
            self._running.pop(job_id, None)
        if self.config.verbose:
            log.info("job %s of %s: %s in %.3f s", job_id, owner, status, time.monotonic() - started)
        return status, result, error, images

    def _conclude(self, outcome: Outcome, owner: str, script: Any, args: Any, images: list) -> tuple:
        """(status, result JSON, error record) of an outcome; Images in the value become files."""
        if outcome.status == "done":
            try:
                value = self.to_json(outcome.value, owner, script, args, images)
            except ValueError as e:
                return "error", None, error_record(e, None)
            return "done", value, None
        if outcome.status == "cancelled":
            return "cancelled", None, None
        return "error", None, error_record(outcome.error, outcome.tree)

    def to_json(self, value: Any, owner: str, script: Any, args: Any, images: list) -> Any:
        from ..values import Image, to_json_value

        seen: dict[int, dict] = {}

        def walk(v: Any, depth: int = 0) -> Any:
            if depth > 200:
                raise ValueError("the result is nested too deeply to send")
            if isinstance(v, Image):
                if id(v) not in seen:
                    info = self.blobs.put_image(owner, v, script=script, args=args)
                    images.append(info)
                    seen[id(v)] = {"type": "image", **info}
                return seen[id(v)]
            if type(v) is list:
                return [walk(i, depth + 1) for i in v]
            if type(v) is dict:
                return {k: walk(i, depth + 1) for k, i in v.items()}
            return to_json_value(v)

        return walk(value)

    def _finished(self, owner: str, client_id: str | None, rec: dict | None) -> None:
        if rec is None:
            return
        self.hub.status(owner, client_id, rec["job"], rec["status"])
        for fut in self._waiters.pop(rec["job"], []):
            if not fut.done():
                fut.set_result(rec)


class _EventSink:
    """Runtime events (on a worker thread) → notifications for the job's owner (on the event loop)."""

    def __init__(self, manager: JobManager, job_id: str, owner: str, client_id: str | None, images: list,
                 script: Any, args: Any):
        self.m = manager
        self.job = job_id
        self.owner = owner
        self.client_id = client_id
        self.images = images
        self.script = script
        self.args = args

    def _notify(self, method: str, params: dict) -> None:
        self.m.post(self.m.hub.notify, self.owner, self.client_id, method, params)

    def __call__(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress":
            self._notify("job.progress", {"job": self.job, "task": event.get("task"), "step": event.get("step"),
                                          "total": event.get("total")})
        elif kind in ("log", "warn"):
            self._notify("job.log", {"job": self.job, "level": "warning" if kind == "warn" else "info",
                                     "message": str(event.get("message", ""))})
        elif kind == "send":
            from ..values import to_json_value

            self._notify("job.log", {"job": self.job, "level": "event", "message": str(event.get("event")),
                                     "payload": to_json_value(event.get("payload"))})
        elif kind == "image":
            image = event.get("image")
            if image is not None and hasattr(image, "pixels"):
                info = self.m.blobs.put_image(self.owner, image, script=self.script, args=self.args)
                self.images.append(info)
                params = {"job": self.job, **info}
                if event.get("name"):
                    params["name"] = str(event["name"])
                self._notify("job.image", params)
        elif kind == "preview":
            image = event.get("image")
            if image is not None and hasattr(image, "to_png_bytes"):
                data = image.to_png_bytes()
                header = {"kind": "preview", "job": self.job, "mime": "image/png", "width": image.width,
                          "height": image.height}
                if "step" in event:
                    header["step"] = event["step"]
                self.m.post(self.m.hub.send_binary, self.owner, self.client_id, header, data)


def _has_image(value: Any, depth: int = 0) -> bool:
    from ..values import Image

    if isinstance(value, Image):
        return True
    if depth > 200:
        return True  # let the thread report it
    if type(value) is list:
        return any(_has_image(v, depth + 1) for v in value)
    if type(value) is dict:
        return any(_has_image(v, depth + 1) for v in value.values())
    return False


def _call_script(request: dict) -> list:
    """The script of a capability call (``plugin_rpc``), as the local executor runs it."""
    return ["std.call_method", ["get_capability", request["capability"]], request["method"], ["std.arg", 0]]


def script_text(script: Any) -> Any:
    """The text a job runs: text form as given; the JSON form as JSON text (so errors get positions)."""
    if isinstance(script, str):
        return script
    import json

    return json.dumps(script, ensure_ascii=False)


def error_record(e: BaseException | None, tree: Any) -> dict:
    """``{type, message, line, col, hint, path}`` (design §15)."""
    from ..errors import ViwoError

    if isinstance(e, ViwoError):
        span = e.span
        return {"type": e.kind, "message": e.message, "line": span.line if span else None,
                "col": span.col if span else None, "hint": e.hint,
                "path": node_path(tree, span) if (tree is not None and span) else None}
    return {"type": "InternalError", "message": f"internal error: {type(e).__name__}: {e}", "line": None,
            "col": None, "hint": "this is a bug in viwoscript; the server log has details", "path": None}


def node_path(tree: Any, span: Any) -> list | None:
    """Index path (array indices, object keys) of the node at ``span`` in the JSON form (the outermost one,
    when a call and its head start at the same place)."""
    from ..nodes import Array, Object

    best: list | None = None
    stack: list[tuple[Any, list]] = [(tree, [])]
    while stack:
        node, path = stack.pop()
        s = getattr(node, "span", None)
        if s is not None and s and (s.line, s.col, s.end_line, s.end_col) == \
                (span.line, span.col, span.end_line, span.end_col) and (best is None or len(path) < len(best)):
            best = path
        if isinstance(node, Array):
            stack.extend((item, [*path, i]) for i, item in enumerate(node.items))
        elif isinstance(node, Object):
            stack.extend((v, [*path, k]) for k, v in node.entries)
    if best and best[-1] == 0:  # the opcode name of a call: the block is the call itself
        parent = tree
        for key in best[:-1]:
            parent = parent.items[key] if isinstance(parent, Array) else dict(parent.entries)[key]
        if isinstance(parent, Array) and parent.op is not None:
            best = best[:-1]
    return best
