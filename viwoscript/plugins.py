"""Entry-point discovery for third-party opcodes (``viwoscript.opcodes``) and capabilities."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

OPCODE_GROUP = "viwoscript.opcodes"
CAPABILITY_GROUP = "viwoscript.capabilities"


def iter_entry_points(group: str) -> list:
    """The installed entry points of ``group`` (read once per process: scanning the installed packages
    costs milliseconds, and a Runtime is made per job; a plugin installed later needs a new process)."""
    return list(_entry_points(group))


@cache
def _entry_points(group: str) -> tuple:
    try:
        return tuple(entry_points(group=group))
    except Exception:  # pragma: no cover - broken metadata must not stop the interpreter
        return ()


def opcode_entry_points() -> tuple[tuple[str, str], ...]:
    """(name, value) of each ``viwoscript.opcodes`` entry point: what :func:`load_opcode_plugins` loads."""
    return tuple((ep.name, ep.value) for ep in iter_entry_points(OPCODE_GROUP))


def load_opcode_plugins(registry: Any, eps: Iterable[tuple[str, str]] | None = None) -> list[str]:
    """Register the opcodes of every installed plugin module (or of the entry points ``eps``, as
    (name, value) pairs) into ``registry``; a broken plugin is skipped and reported in the returned list
    of messages.

    An entry point names a module with an ``OPCODES`` list (or one ``@opcode``-decorated function).
    """
    errors: list[str] = []
    for name, value in (opcode_entry_points() if eps is None else eps):
        try:
            obj = EntryPoint(name, value, OPCODE_GROUP).load()
            specs = getattr(obj, "OPCODES", None)
            if specs is None:
                specs = [obj]
            for spec in specs:
                registry.register(spec)
        except Exception as e:  # noqa: BLE001 - any failure in third-party code
            errors.append(f"opcode plugin {name!r} ({value}) failed to load: {e}")
    return errors


def load_capability_plugins() -> list[tuple[str, str, Any, str | None]]:
    """Load every ``viwoscript.capabilities`` entry point: ``(name, value, object, error)`` each.

    ``object`` is what the entry point names (a Capability subclass or a module with ``CAPABILITIES``);
    when loading fails it is None and ``error`` says why. The capability registry decides what to keep.
    """
    out: list[tuple[str, str, Any, str | None]] = []
    for ep in iter_entry_points(CAPABILITY_GROUP):
        try:
            out.append((ep.name, ep.value, ep.load(), None))
        except Exception as e:  # noqa: BLE001 - any failure in third-party code
            out.append((ep.name, ep.value, None, f"{type(e).__name__}: {e}"))
    return out
