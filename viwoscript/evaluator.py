"""Moved: the tree-walker and run state are ``viwoscript.runners.tree``, scopes and control signals
``viwoscript.scope``. These names stay importable from here for code written against the first layout."""

from __future__ import annotations

from .runners.tree import Evaluator
from .scope import BreakSignal, ContinueSignal, ControlSignal, ReturnSignal, Scope

__all__ = ["BreakSignal", "ContinueSignal", "ControlSignal", "Evaluator", "ReturnSignal", "Scope"]
