"""Variables and the control signals: what every runner and every special form shares.

A :class:`Scope` is one level of variables with a link to the enclosing level. ``std.break``,
``std.continue`` and ``std.return`` travel as the :class:`ControlSignal` exceptions below; ``std.try``
lets them pass.
"""

from __future__ import annotations

from typing import Any


class Scope:
    __slots__ = ("vars", "parent")

    def __init__(self, parent: Scope | None = None, vars: dict | None = None):
        self.vars = {} if vars is None else vars
        self.parent = parent

    def lookup(self, name: str) -> Any:
        s = self
        while s is not None:
            v = s.vars
            if name in v:
                return v[name]
            s = s.parent
        return None

    def assign(self, name: str, value: Any) -> bool:
        s = self
        while s is not None:
            if name in s.vars:
                s.vars[name] = value
                return True
            s = s.parent
        return False

    def names(self) -> set[str]:
        out: set[str] = set()
        s = self
        while s is not None:
            out.update(s.vars)
            s = s.parent
        return out


class ControlSignal(Exception):
    """Break, continue and return travel as exceptions; std.try lets them pass."""


class BreakSignal(ControlSignal):
    pass


class ContinueSignal(ControlSignal):
    pass


class ReturnSignal(ControlSignal):
    def __init__(self, value: Any):
        self.value = value
