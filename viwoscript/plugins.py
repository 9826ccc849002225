"""Entry-point discovery for third-party opcodes (``viwoscript.opcodes``) and capabilities."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

OPCODE_GROUP = "viwoscript.opcodes"
CAPABILITY_GROUP = "viwoscript.capabilities"


def iter_entry_points(group: str):
    try:
        return list(entry_points(group=group))
    except Exception:  # pragma: no cover - broken metadata must not stop the interpreter
        return []


def load_opcode_plugins(runtime: Any) -> None:
    """Register the opcodes of every installed plugin module; a broken plugin is reported and skipped.

    An entry point names a module with an ``OPCODES`` list (or one ``@opcode``-decorated function).
    """
    for ep in iter_entry_points(OPCODE_GROUP):
        try:
            obj = ep.load()
            specs = getattr(obj, "OPCODES", None)
            if specs is None:
                specs = [obj]
            for spec in specs:
                runtime.register(spec)
        except Exception as e:  # noqa: BLE001 - any failure in third-party code
            runtime.plugin_errors.append(f"opcode plugin {ep.name!r} ({ep.value}) failed to load: {e}")
