"""The Ray worker (design §17): one actor per GPU or CPU slot, each with its own warm model manager.

:class:`Worker` is plain Python; :mod:`viwoscript.executors.ray` makes it a Ray actor. Every unit of work
(a batch item, a whole job, one capability call) runs on a fresh :class:`~viwoscript.executors.local.JobRuntime`
built from the unit's :class:`~viwoscript.executors.base.RunSettings` (the same grants, limits and roots as
where the script runs) and the worker's recipe (the ``[models]`` table, extra capabilities and opcodes),
sharing the worker's model manager, so weights stay loaded between units (LRU within its byte budget).
Events the unit sends are buffered until the driver collects them (:meth:`Worker.events`, and with the
unit's result); :meth:`Worker.interrupt` stops a running unit at its next opcode or step.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from typing import Any

#: Events buffered per worker while nobody collects them (the oldest are dropped beyond this).
MAX_EVENTS = 10_000


def pin_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch (as where the script runs: the same pixels for the same seeds).
    The executor starts the worker with ``OMP_NUM_THREADS`` set, for a torch imported later."""
    torch = sys.modules.get("torch")
    if threads and torch is not None:
        torch.set_num_threads(threads)


class Worker:
    """One worker: ``name``, a recipe for its Runtimes and a warm model manager."""

    def __init__(self, name: str, recipe: dict):
        self.name = name
        self.recipe = dict(recipe)
        pin_threads(self.recipe.get("threads"))
        self._models = None
        self._caps = None
        self._lock = threading.Lock()
        self._events: deque = deque(maxlen=MAX_EVENTS)
        self._running: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self.done = 0

    # --- control (runs beside a unit: the actor has several threads) -------------------------------
    def info(self) -> dict:
        import socket

        gpus: list = []
        try:
            import ray

            gpus = [str(g) for g in ray.get_gpu_ids()]
        except Exception:  # noqa: BLE001 - outside Ray (tests of this class)
            pass
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(), "gpus": gpus,
                "threads": os.environ.get("OMP_NUM_THREADS")}

    def events(self) -> list:
        """The buffered events ``(work_id, event)``, oldest first (and forgets them)."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def interrupt(self, work_id: str) -> bool:
        """Stop ``work_id``: now if it runs, before it starts if it has not yet."""
        with self._lock:
            self._cancelled.add(work_id)
            rt = self._running.get(work_id)
        if rt is not None:
            rt.interrupt()
        return rt is not None

    def loaded(self) -> list[str]:
        """Names of the models this worker holds (for model affinity)."""
        if self._models is None:
            return []
        return sorted({e["name"] for e in self._models.loaded() if e.get("name")})

    def pid(self) -> int:
        return os.getpid()

    # --- work ----------------------------------------------------------------------------------------
    def models(self):
        if self._models is None:
            from ..models.manager import ModelManager

            self._models = ModelManager()
        return self._models

    def capabilities(self) -> list:
        if self._caps is None:
            caps = list(self.recipe.get("capabilities") or [])
            models = self.recipe.get("models")
            if models:
                from ..capabilities import capabilities

                caps = [*capabilities(models), *caps]
            self._caps = caps
        return self._caps

    def run(self, work_id: str, script: Any, captures: dict | None, args: list | None, settings: Any,
            filename: str | None = None, user: str | None = None, blobs: dict | None = None) -> dict:
        """Run one unit: ``script`` (text, JSON data or a tree) with ``captures`` (packed, see
        :mod:`viwoscript.travel`) as its variables; ``blobs`` (sha256 → bytes) are the uploads its
        ``blob:`` sources name, sent along by the server. Returns ``{status, value | error, gas, worker,
        models, events}``: ``status`` is ``ok``, ``error`` or ``cancelled``."""
        if blobs is None:  # not from a server: no uploads to resolve
            return self._run(work_id, script, captures, args, settings, filename, user, None)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="viwo-blobs-") as folder:
            return self._run(work_id, script, captures, args, settings, filename, user,
                             _Uploads(folder, blobs, self.models))

    def _run(self, work_id, script, captures, args, settings, filename, user, host) -> dict:
        from ..errors import InterruptedError_
        from ..scope import Scope
        from ..travel import Item, check_result, error_record, item_scope, tag_images
        from .local import JobRuntime

        where = {"executor": "ray", "worker": self.name}

        def on_event(event: dict) -> None:
            if event.get("type") in ("image", "preview") and event.get("image") is not None:
                event = {**event, "image": tag_images(event["image"], where)}
            with self._lock:
                self._events.append((work_id, event))

        rt = JobRuntime(user=user, host=host, limits=settings.limits, grants=settings.grants, roots=settings.roots,
                        canvas_size=settings.canvas_size, runner=settings.runner, on_event=on_event,
                        capabilities=self.capabilities(), opcodes=self.recipe.get("opcodes") or (),
                        plugins=self.recipe.get("plugins", True))
        rt.models = self.models()
        with self._lock:
            cancelled = work_id in self._cancelled
            if not cancelled:
                self._running[work_id] = rt
        if cancelled:  # cancelled before it started (_end takes the lock itself)
            return self._end(work_id, {"status": "cancelled"})
        ev = None
        try:
            tree = rt.parse(script, filename=filename)
            scope = item_scope(rt, Item(tree, captures or {}, [])) if captures else Scope(rt.globals)
            ev = rt.evaluator(None, args, filename=filename, source=script if isinstance(script, str) else None)
            value = rt._run_evaluator(ev, tree, scope)
            if rt.cancel_requested:
                return self._end(work_id, {"status": "cancelled", "gas": ev.gas_used()})
            check_result(value)
            return self._end(work_id, {"status": "ok", "value": tag_images(value, where), "gas": ev.gas_used()})
        except InterruptedError_ as e:
            if rt.cancel_requested:
                return self._end(work_id, {"status": "cancelled"})
            return self._end(work_id, {"status": "error", "error": error_record(e)})
        except Exception as e:  # noqa: BLE001 - every failure becomes this unit's error, never the worker's
            gas = ev.gas_used() if ev is not None else 0
            return self._end(work_id, {"status": "error", "error": error_record(e), "gas": gas})

    def _end(self, work_id: str, out: dict) -> dict:
        with self._lock:
            self._running.pop(work_id, None)
            self._cancelled.discard(work_id)
            mine = [e for e in self._events if e[0] == work_id]
            rest = [e for e in self._events if e[0] != work_id]
            self._events.clear()
            self._events.extend(rest)
            self.done += 1
        out.setdefault("gas", 0)
        out.update(worker=self.name, models=self.loaded(), events=mine)
        return out


class _Uploads:
    """The host of a unit run on a worker: the ``blob:`` uploads the server sent with it (written to a
    private folder for the unit's lifetime) and the worker's model manager."""

    def __init__(self, folder: str, blobs: dict, models):
        from pathlib import Path

        self.files = {}
        for digest, data in blobs.items():
            path = Path(folder) / digest
            path.write_bytes(data)
            self.files[digest] = path
        self._models = models

    def runtime_kwargs(self, user: str) -> dict:
        return {}

    def resolve_blob(self, user: str, digest: str, op: str):
        from ..errors import ScriptError

        path = self.files.get(digest.split(".")[0])
        if path is None:
            raise ScriptError(f"{op}: no upload blob:{digest[:80]}",
                              hint="upload the image with POST /blobs and use the sha256 it returns; on the ray "
                                   "executor a blob: name must be written out in the script (not computed)")
        return path

    def model_manager(self):
        return self._models()

