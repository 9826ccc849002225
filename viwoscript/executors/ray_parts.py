"""The ray executor's parts that need no running work: importing Ray (with the install hint), reaching a
cluster (a quick probe, a bounded wait), torch's thread count here, and the pool of free workers with its
model affinity. :mod:`viwoscript.executors.ray` uses them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ScriptError

INSTALL_HINT = "pip install 'viwoscript[ray]'"

class ExecutorError(ScriptError):
    """The executor cannot run work: Ray missing, the cluster unreachable, workers that cannot be placed."""

    kind = "ExecutorError"


def import_ray():
    """The ``ray`` module, or an ExecutorError with the install hint."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("ray executor: the ray package is not installed", hint=INSTALL_HINT) from None
    return ray


def local_threads() -> int | None:
    """torch's CPU thread count here (workers use the same, so CPU results match bit for bit)."""
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit():
        return int(env)
    import importlib.util
    import sys

    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.get_num_threads()


class _Pool:
    """Which workers are free; model affinity when choosing one."""

    def __init__(self, n: int):
        self.free = list(range(n))
        self.cond = threading.Condition()
        self.models: dict[int, set[str]] = {i: set() for i in range(n)}

    def take(self, model: str | None = None, avoid: set[int] = frozenset(), *, block: bool = False,
             stop: Callable[[], bool] | None = None) -> int | None:
        with self.cond:
            while True:
                choice = self._choose(model, avoid)
                if choice is not None or not block or (stop is not None and stop()):
                    if choice is not None:
                        self.free.remove(choice)
                    return choice
                self.cond.wait(0.2)

    def _choose(self, model: str | None, avoid: set[int]) -> int | None:
        if not self.free:
            return None
        options = [w for w in self.free if w not in avoid] or list(self.free)
        if model is not None:
            holders = [w for w in options if model in self.models.get(w, ())]
            if holders:
                return holders[0]
            empty = [w for w in options if not self.models.get(w)]  # keep other workers' models warm
            if empty:
                return empty[0]
        return options[0]

    def give(self, w: int, models: list[str] | None = None) -> None:
        with self.cond:
            if models is not None:
                self.models[w] = set(models)
            if w not in self.free:
                self.free.append(w)
                self.free.sort()
            self.cond.notify_all()


def probe(address: str, timeout: float = 5.0) -> str | None:
    """Why ``address`` (``host:port`` or ``ray://host:port``) cannot be reached, or None (also for
    ``auto``, which Ray resolves itself): a dead address fails here in seconds instead of Ray's long retries."""
    import socket

    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or address in ("auto", "local"):
        return None
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        return f"{e.strerror or e} (nothing answers at {host}:{port})"
    return None


def _with_timeout(fn: Callable[[], Any], seconds: float) -> Any:
    """``fn()`` on a helper thread; TimeoutError when it takes longer than ``seconds``."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, name="viwo-ray-init", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _asks(per: dict) -> dict:
    out = {k: v for k, v in per.items() if k in ("num_cpus", "num_gpus")}
    out.update(per.get("resources") or {})
    return out


def _shown(resources: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" if isinstance(v, int | float) else f"{k}: {v}"
                           for k, v in sorted(resources.items())) + "}"
