"""ViwoScript: an S-expression language for image-generation workflows.

>>> import viwoscript
>>> viwoscript.run('(+ 1 2)')
3

The public API is small and lazy: heavy libraries (torch, diffusers, pyvips) load only when a
capability that needs them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import Diagnostic, ViwoError
from .limits import Limits

__version__ = "0.1.0"
__all__ = ["Diagnostic", "Limits", "Runtime", "ViwoError", "__version__", "check", "parse", "run"]

if TYPE_CHECKING:
    from .runtime import Runtime


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from .runtime import Runtime

        return Runtime
    raise AttributeError(f"module 'viwoscript' has no attribute {name!r}")


def run(source: Any, *, args: list | dict | None = None, gas: int | None = None,
        filename: str | None = None) -> Any:
    """Run a script (text form, JSON text, or an already-parsed Python list) in a fresh Runtime."""
    from .runtime import Runtime

    rt = Runtime()
    limits = rt.limits.with_(gas=gas) if gas is not None else None
    return rt.run(source, args=args, filename=filename, limits=limits)


def check(source: Any, *, filename: str | None = None) -> list[Diagnostic]:
    """Every diagnostic the static check finds in a script."""
    from .runtime import Runtime

    return Runtime().check(source, filename=filename)


def parse(source: str, *, filename: str | None = None, syntax: str | None = None):
    """Parse a script into its node tree."""
    from .syntax import parse as _parse

    return _parse(source, filename=filename, syntax=syntax)
