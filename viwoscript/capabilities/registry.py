"""Which capability implementations exist: entry points (built-in ones too) plus the host's own.

Every installed package may register capabilities in the ``viwoscript.capabilities`` entry-point group;
an entry point names a :class:`~viwoscript.capabilities.base.Capability` subclass (or a module with a
``CAPABILITIES`` list). A plugin that fails to import is reported once, in :attr:`CapabilityRegistry.errors`,
and skipped. Two discovered real implementations of one type are an error, never a silent override (so
are two host classes); the host's own class (``Runtime(capabilities=...)``) replaces a discovered one of
its type, e.g. a configured real capability. A *fake*
(``Capability.fake = True``) stands in for its type only when no real implementation is available.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import CapabilityError
from .base import TYPE_RE, Capability

#: Shipped with viwoscript and registered through our own entry points; listed here too so that a
#: source checkout without installed package metadata still has them.
BUILTIN = ("viwoscript.capabilities.fake:FakeGenerate", "viwoscript.capabilities.mint:SysMint",
           "viwoscript.capabilities.entity_control:EntityControl")


def _load_ref(ref: str) -> Any:
    import importlib

    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _classes_of(obj: Any) -> list:
    if isinstance(obj, type) and issubclass(obj, Capability):
        return [obj]
    if isinstance(obj, Capability):
        return [obj]
    caps = getattr(obj, "CAPABILITIES", None)
    if isinstance(caps, list | tuple):
        return list(caps)
    raise TypeError(f"{obj!r} is not a Capability subclass or a module with a CAPABILITIES list")


def validate_class(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Capability)):
        raise TypeError(f"{cls!r} is not a Capability subclass")
    if not isinstance(cls.type, str) or not TYPE_RE.match(cls.type) or cls.type == "*":
        raise TypeError(f"{cls.__name__}.type must be a dotted name like 'diffusers.generate', got {cls.type!r}")


class Entry:
    """One registered implementation: its class, the instance serving this Runtime, where it came from."""

    __slots__ = ("cls", "instance", "origin", "_reason", "_checked")

    def __init__(self, cls: type[Capability], instance: Capability | None, origin: str):
        self.cls = cls
        self.instance = instance
        self.origin = origin
        self._checked = False
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        """Why it cannot run here (checked once), or None."""
        if not self._checked:
            try:
                self._reason = self.cls.availability()
            except Exception as e:  # noqa: BLE001 - a plugin's availability check must not break listing
                self._reason = f"availability check failed: {type(e).__name__}: {e}"
            self._checked = True
        return self._reason

    @property
    def available(self) -> bool:
        return self.reason is None

    def get_instance(self) -> Capability:
        if self.instance is None:
            self.instance = self.cls()
        return self.instance


class CapabilityRegistry:
    """Implementations by type: at most one real and one fake per type."""

    def __init__(self) -> None:
        self.real: dict[str, Entry] = {}
        self.fakes: dict[str, Entry] = {}
        #: One line per plugin that failed to load or clashed with another.
        self.errors: list[str] = []

    # --- registration ---------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        from ..plugins import load_capability_plugins

        for name, ref, obj, error in load_capability_plugins():
            if error is not None:
                self.errors.append(f"capability plugin {name!r} ({ref}) failed to load: {error}")
                continue
            try:
                items = _classes_of(obj)
                for item in items:
                    self.add(item, origin=f"entry point {name!r} ({ref})")
            except (TypeError, CapabilityError) as e:
                self.errors.append(f"capability plugin {name!r} ({ref}) skipped: {e}")
        self.load_builtin()

    def load_builtin(self) -> None:
        """Register the shipped capabilities that the entry points did not already provide."""
        for ref in BUILTIN:
            try:
                cls = _load_ref(ref)
            except Exception as e:  # noqa: BLE001 - report, never crash the interpreter
                self.errors.append(f"built-in capability {ref} failed to load: {e}")
                continue
            table = self.fakes if cls.fake else self.real
            if cls.type not in table:
                self.add(cls, origin=f"built-in ({ref})")

    def add(self, item: Any, *, origin: str = "Runtime(capabilities=...)", host: bool = False) -> Entry:
        """Register a class or a configured instance.

        A host (``Runtime(capabilities=...)``) may replace an entry-point or built-in implementation of
        the same type (e.g. a configured real capability); anything else that claims a type already taken
        is an error, and two host classes for one type conflict too.
        """
        instance = item if isinstance(item, Capability) else None
        cls = type(item) if instance is not None else item
        validate_class(cls)
        table = self.fakes if cls.fake else self.real
        old = table.get(cls.type)
        if old is not None:
            if old.cls is cls and instance is None:
                return old  # the same class found twice (e.g. entry point and built-in list)
            discovered = old.origin.startswith(("entry point", "built-in"))
            if not (host and (discovered or issubclass(cls, old.cls))):
                raise CapabilityError(
                    f"capability type '{cls.type}' is already registered by {old.cls.__module__}.{old.cls.__name__} "
                    f"({old.origin}); {cls.__module__}.{cls.__name__} ({origin}) cannot replace it",
                    hint="give the new capability another type, or uninstall one of the plugins")
        entry = Entry(cls, instance, origin)
        table[cls.type] = entry
        return entry

    def add_all(self, items: Iterable[Any]) -> None:
        for item in items:
            self.add(item, host=True)

    # --- lookup ---------------------------------------------------------------------------------
    def types(self) -> list[str]:
        return sorted(set(self.real) | set(self.fakes))

    def entries(self) -> list[Entry]:
        out = []
        for t in self.types():
            for table in (self.real, self.fakes):
                if t in table:
                    out.append(table[t])
        return out

    def select(self, cap_type: str, provider: str | None = None) -> Entry | None:
        """The implementation a grant of ``cap_type`` uses.

        With ``provider`` (a grant's pin) that exact implementation; otherwise the real one when it is
        available here, else the fake when there is one, else the (unavailable) real one.
        """
        real, fake = self.real.get(cap_type), self.fakes.get(cap_type)
        if provider is not None:
            for entry in (real, fake):
                if entry is not None and entry.cls.provider == provider:
                    return entry
            return None
        if real is not None and real.available:
            return real
        if fake is not None:
            return fake
        return real

    def providers(self, cap_type: str) -> list[str]:
        return [e.cls.provider for e in (self.real.get(cap_type), self.fakes.get(cap_type)) if e is not None]
