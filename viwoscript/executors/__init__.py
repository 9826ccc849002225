"""Executors: where jobs run (design §17).

An :class:`~viwoscript.executors.base.Executor` runs three units of work and streams their events back:
a whole job (:class:`JobSpec`: a script plus its grants and limits), a batch item (:class:`BatchItemSpec`)
and a single capability call (:class:`CallSpec`). ``local`` (the default) runs them on worker threads of
this process, one per slot; another executor (Ray) implements the same interface, and the server and
the CLI never need to change for it.

>>> from viwoscript.executors import get_executor               # doctest: +SKIP
>>> ex = get_executor("local", slots=1)                           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .base import BatchItemSpec, CallSpec, Executor, JobSpec, Outcome

__all__ = ["EXECUTORS", "BatchItemSpec", "CallSpec", "Executor", "JobSpec", "Outcome", "get_executor"]

#: Executor names accepted by ``--executor`` and ``[executor] kind``.
EXECUTORS = ("local",)


def get_executor(name: str = "local", **options: Any) -> Executor:
    """The executor called ``name`` built with ``options`` (``slots``, ``host``)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
