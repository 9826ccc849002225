"""Runners: how a parsed program runs.

Two runners sit behind one protocol, :class:`Runner`, and the Runtime picks one (``Runtime(runner=...)``):

* ``tree`` (:mod:`.tree`): walks the tree; the reference semantics.
* ``compiled`` (:mod:`.compiled`, the default): turns hot trees into Python functions, the compile cache
  inside it; it is a driver that knows no form of its own.

The special forms (:mod:`.forms`) are shared: each has its walk rule and its emit rule side by side. A
run's state (gas, depth, limits, interrupt) is the :class:`~.tree.Evaluator` a runner starts; opcodes
receive it as ``ev``. Nothing enters one runner from inside the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..limits import Limits
    from .tree import Evaluator

#: The runners a Runtime can use, the default first.
RUNNERS = ("compiled", "tree")


class Runner(Protocol):
    """What the Runtime needs from a runner."""

    name: str

    def start(self, runtime: Any, limits: Limits, args: list | None = None, filename: str | None = None,
              source: str | None = None) -> Evaluator:
        """The state of one run (``run_program``/``run_module``/``call`` run trees and lambdas in it)."""
        ...


def make_runner(name: str) -> Runner:
    """A fresh runner by name (one per Runtime: the compiled runner keeps its compile cache)."""
    if name == "compiled":
        from .compiled import CompiledRunner

        return CompiledRunner()
    if name == "tree":
        from .tree import TreeRunner

        return TreeRunner()
    raise ValueError(f"Runtime: runner must be one of {', '.join(RUNNERS)}, not {name!r}")
