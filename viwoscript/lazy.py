"""Modules imported on first attribute use, so that importing an opcode module stays cheap.

``np = lazy_module("numpy")`` at the top of a module defers ``import numpy`` until a function first
touches ``np.something``; ``viwo --help`` and pure scripts never pay for it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule(ModuleType):
    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_target"] = None

    def _load(self) -> ModuleType:
        target = self.__dict__["_lazy_target"]
        if target is None:
            target = importlib.import_module(self.__name__)
            self.__dict__["_lazy_target"] = target
        return target

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` that imports on first attribute access."""
    return _LazyModule(name)
