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
