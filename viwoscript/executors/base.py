"""The Executor interface (design §17): three units of work, events streamed back, cancel by id.

Units:

- :class:`JobSpec` — a whole job: a script, its arguments and the grants, limits, roots and canvas size it
  runs under (plain data, so it can travel to another process or machine).
- :class:`BatchItemSpec` — one independent item of a ``batch.*`` opcode: a lambda (as its JSON tree) and
  its argument, run on a worker's own Runtime under the same grants.
- :class:`CallSpec` — one capability call (``plugin_rpc``): capability type, method and named parameters.

Every unit runs with an ``on_event(event: dict)`` callback that receives the Runtime's events (``progress``,
``log``, ``warn``, ``image``, ``preview``, ...) from whatever thread the work runs on; the caller makes
them thread-safe. ``cancel(work_id)`` stops queued-in-executor work before it starts and running work at
its next step or opcode. Results come back as an :class:`Outcome` with Python values (Images included);
turning them into files and JSON is the caller's business.

What an executor cannot carry as data (the user's entity store, where ``blob:`` sources live, model
capabilities built from ``[models]``) comes from its ``host`` (see :class:`Host`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

EventCallback = Callable[[dict], None]


@dataclass(frozen=True)
class RunSettings:
    """What every unit runs under: the host's grants, limits, file roots, canvas size and runner."""

    limits: Any  # viwoscript.Limits
    grants: Any = "default"
    roots: tuple[str, ...] = ()
    canvas_size: tuple[int, int] = (1024, 1024)
    runner: str = "compiled"


@dataclass(frozen=True)
class JobSpec:
    """A whole job."""

    id: str
    user: str
    script: Any  # text form (str) or JSON form (list / literal)
    settings: RunSettings
    args: list | None = None
    filename: str | None = None


@dataclass(frozen=True)
class BatchItemSpec:
    """One item of a batch: ``fn`` (the JSON form of a lambda) applied to ``item``."""

    id: str
    user: str
    fn: Any
    item: Any
    settings: RunSettings
    index: int = 0


@dataclass(frozen=True)
class CallSpec:
    """One capability call: ``capability`` type, ``method`` name, named ``params``."""

    id: str
    user: str
    capability: str
    method: str
    params: dict
    settings: RunSettings


@dataclass
class Outcome:
    """How a unit ended: ``status`` is ``done``, ``error`` or ``cancelled``."""

    status: str
    value: Any = None
    error: BaseException | None = None
    source: str | None = None  # the script text (for error rendering and metadata)
    tree: Any = None  # the parsed script (for error paths)
    extra: dict = field(default_factory=dict)


class Host(Protocol):
    """What a local executor asks its host for (the server implements it)."""

    def runtime_kwargs(self, user: str) -> dict:
        """Extra ``Runtime`` keyword arguments for ``user`` (``store``, ``capabilities``, ``opcodes``)."""

    def resolve_blob(self, user: str, digest: str, op: str) -> Path:
        """The file of upload ``blob:{digest}`` if ``user`` may read it (else raise a ScriptError)."""

    def model_manager(self) -> Any:
        """The model manager every unit shares (``viwoscript.models.manager.ModelManager``)."""


class Executor(abc.ABC):
    """Runs units of work; ``slots`` of them at a time."""

    name = "executor"

    def __init__(self, *, slots: int = 1, host: Host | None = None):
        if not isinstance(slots, int) or slots < 1:
            raise ValueError(f"executor: slots must be a whole number >= 1, got {slots!r}")
        self.slots = slots
        self.host = host

    @abc.abstractmethod
    async def run_job(self, spec: JobSpec, on_event: EventCallback) -> Outcome:
        """Run a whole job; returns when it ended."""

    @abc.abstractmethod
    async def run_call(self, spec: CallSpec, on_event: EventCallback) -> Outcome:
        """Run one capability call."""

    @abc.abstractmethod
    async def run_batch_item(self, spec: BatchItemSpec, on_event: EventCallback) -> Outcome:
        """Run one batch item."""

    @abc.abstractmethod
    def cancel(self, work_id: str) -> bool:
        """Stop the unit ``work_id`` (before it starts, or at its next step); False if it is unknown here."""

    async def close(self) -> None:  # noqa: B027 - optional: executors holding nothing need no close
        """Stop running work and release the slots."""
