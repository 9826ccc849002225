"""Executors: where jobs run (design §17).

An :class:`~viwoscript.executors.base.Executor` runs three units of work and streams their events back:
a whole job (:class:`JobSpec`: a script plus its grants and limits), a batch item (:class:`BatchItemSpec`)
and a single capability call (:class:`CallSpec`). ``local`` (the default) runs them on worker threads of
this process, one per slot; another executor (Ray) implements the same interface, and the server and
the CLI never need to change for it.

>>> from viwoscript.executors import get_executor               # doctest: +SKIP
>>> ex = get_executor("local", slots=1)                           # doctest: +SKIP
>>> ex = get_executor("ray", num_workers=2, num_cpus=0.5)          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .base import BatchItemSpec, CallSpec, Executor, JobSpec, Outcome
from .settings import EXECUTORS

__all__ = ["EXECUTORS", "BatchItemSpec", "CallSpec", "Executor", "JobSpec", "Outcome", "get_executor"]


def get_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name`` built with ``options`` (``local``: ``slots``, ``host``; ``ray``: see
    :class:`~viwoscript.executors.ray.RayExecutor`)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
