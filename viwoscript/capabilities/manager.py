"""A Runtime's capabilities: what is registered, what is granted to whom, and calls from scripts.

The Runtime creates one lazily as ``runtime.caps``. Grants become *records* (type, params, holder);
scripts hold :class:`CapabilityHandle` values that point at records. A handle cannot be forged: it is a
host value only this manager creates, a plain object with the same keys is just an object, and every
use checks that the record belongs to this manager, is held by the running script's principal and has
not been given away or revoked.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ..errors import ArgumentError, CapabilityError, InternalError
from ..values import HostValue, Lambda, preview, to_display
from .base import TYPE_RE, CallContext, Capability
from .binding import bind_arguments
from .grants import matches_filter, namespace_covers, narrows, normalize_params, plain_copy, restrict
from .registry import CapabilityRegistry, Entry

SELF = "self"


def _serves_some_calls(cls: type[Capability]) -> bool:
    """Whether an unavailable implementation may still serve some calls (it overrides ``available_for``)."""
    return cls.available_for.__func__ is not Capability.available_for.__func__


class Record:
    """One granted capability: type, parameters (a private deep copy), holder, pinned implementation."""

    __slots__ = ("id", "type", "params", "holder", "provider", "parent", "origin", "revoked", "handle")

    def __init__(self, rid: str, cap_type: str, params: dict, holder: Any, provider: str | None,
                 parent: str | None = None, origin: str = "grant"):
        self.id = rid
        self.type = cap_type
        self.params = params
        self.holder = holder
        self.provider = provider
        self.parent = parent
        #: "grant" (by the host), "mint" (parent = the authority) or "delegate" (parent = the narrowed one).
        self.origin = origin
        self.revoked = False
        self.handle: CapabilityHandle | None = None

    def snapshot(self) -> tuple:
        return (self.id, self.type, repr(self.params), self.holder, self.provider, self.parent, self.origin,
                self.revoked)


class CapabilityHandle(HostValue):
    """What a script holds: a reference to a granted capability. Opaque to scripts.

    ``std.call_method`` reaches only the methods its capability declares; there is no attribute access.
    """

    type_name = "capability"
    script_methods: frozenset[str] = frozenset()
    __slots__ = ("_record", "_manager")

    def __init__(self, record: Record, manager: CapabilityManager):
        self._record = record
        self._manager = manager

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def params(self) -> dict:
        """A copy of the grant parameters (for hosts; scripts see them through ``json.stringify``)."""
        return plain_copy(self._record.params, "params")

    def to_json(self) -> Any:
        return {"__brand": "Capability", "type": self._record.type, "id": self._record.id,
                "params": plain_copy(self._record.params, "params")}

    def __repr__(self) -> str:
        entry = self._manager.registry.select(self._record.type, self._record.provider)
        fake = " (fake)" if entry is not None and entry.cls.fake else ""
        return f"<capability {self._record.type}{fake} {self._record.id}>"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def describe(cls: type[Capability]) -> str:
    """A capability's description: declared, else the first paragraph of its docstring."""
    if cls.description:
        return cls.description
    doc = cls.__doc__ if cls.__doc__ is not Capability.__doc__ else None
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def holder_id(obj: Any) -> Any:
    """The holder id of a principal or target: ``obj["id"]``/``obj.id`` for entities, or a plain id."""
    if isinstance(obj, dict):
        obj = obj.get("id")
    elif isinstance(obj, HostValue):
        obj = getattr(obj, "id", None)
    if type(obj) in (int, str) or (type(obj) is float and obj.is_integer()):
        return int(obj) if type(obj) is float else obj
    return None


class CapabilityManager:
    """Registered capabilities, grants and the calls scripts make (one per Runtime).

    ``grants``: ``None`` grants nothing (the embedding default); ``"default"`` grants every available
    capability whose class allows it with its documented default limits (the CLI without config); or
    a list of ``{"type": ..., "params": {...}, "provider": ...}`` (``params`` and ``provider`` optional).
    """

    def __init__(self, runtime: Any, capabilities: Iterable[Any] | None = None, grants: Any = None):
        self.runtime = runtime
        self.registry = CapabilityRegistry()
        if getattr(runtime, "load_plugins", True):
            self.registry.load_entry_points()
        else:
            self.registry.load_builtin()
        if capabilities:
            self.registry.add_all(capabilities)
        if self.registry.errors and hasattr(runtime, "plugin_errors"):
            runtime.plugin_errors.extend(self.registry.errors)
        self.records: list[Record] = []
        self._ids = itertools.count(1)
        self._loaded: set[int] = set()
        self._warned: set[str] = set()
        self.self_id = holder_id(getattr(runtime, "principal", None))
        if self.self_id is None:
            self.self_id = SELF
        self.holders: set[Any] = {self.self_id}
        caller = holder_id(getattr(runtime, "caller", None))
        if caller is not None:
            self.holders.add(caller)
        self._grant_all(grants)

    @property
    def errors(self) -> list[str]:
        """Plugins that failed to load or clashed (shown by ``viwo caps``)."""
        return self.registry.errors

    # --- host API --------------------------------------------------------------------------------
    def _grant_all(self, grants: Any) -> None:
        if grants is None:
            return
        if grants == "default":
            for t in self.registry.types():
                entry = self.registry.select(t)
                if entry is not None and entry.available and entry.cls.default_grant:
                    self.grant(t)
            return
        if isinstance(grants, str | dict):
            raise CapabilityError("grants must be None, \"default\" or a list of {type, params} objects",
                                  hint='e.g. Runtime(grants=[{"type": "diffusers.generate", "params": {"max_steps": 50}}])')
        for i, g in enumerate(grants):
            if isinstance(g, str):
                g = {"type": g}
            if not isinstance(g, dict) or not isinstance(g.get("type"), str):
                raise CapabilityError(f"grant #{i + 1}: expected {{\"type\": ..., \"params\": {{...}}}}, got {g!r}")
            unknown = set(g) - {"type", "params", "provider"}
            if unknown:
                raise CapabilityError(f"grant #{i + 1} ({g['type']}): unknown key(s) {', '.join(sorted(unknown))}",
                                      hint="a grant has type, params and optionally provider")
            self.grant(g["type"], g.get("params"), provider=g.get("provider"))

    def grant(self, cap_type: str, params: dict | None = None, *, provider: str | None = None,
              holder: Any = None) -> CapabilityHandle:
        """Grant a registered capability (to the script's principal unless ``holder`` is given)."""
        entries = [e for e in (self.registry.real.get(cap_type), self.registry.fakes.get(cap_type)) if e]
        if not entries:
            raise CapabilityError(f"cannot grant unknown capability type '{cap_type}'",
                                  hint="registered: " + (", ".join(self.registry.types()) or "none"))
        if provider is not None and self.registry.select(cap_type, provider) is None:
            raise CapabilityError(f"capability '{cap_type}' has no implementation '{provider}'",
                                  hint="implementations: " + ", ".join(self.registry.providers(cap_type)))
        cls = (self.registry.select(cap_type, provider) or entries[0]).cls
        where = f"grant {cap_type}"
        normalized = normalize_params(cap_type, params, cls.limit_specs(), where)
        if holder is not None:
            self.holders.add(holder)
        return self._new(cap_type, normalized, self.self_id if holder is None else holder, provider)

    def add_holder(self, holder: Any) -> None:
        """Let scripts give capabilities to ``holder`` (an entity id) with ``give_capability``."""
        self.holders.add(holder)

    def held_by(self, holder: Any = None) -> list[CapabilityHandle]:
        """Handles of the live records held by ``holder`` (default: the script's principal)."""
        h = self.self_id if holder is None else holder
        return [self._handle(r) for r in self.records if r.holder == h and not r.revoked]

    def revoke(self, handle: CapabilityHandle) -> None:
        """Withdraw a capability and everything delegated from it."""
        rec = self._own_record(handle, "revoke", check_holder=False)
        doomed = {rec.id}
        for r in self.records:  # records are created after their parents, so one pass suffices
            if r.parent in doomed:
                doomed.add(r.id)
        for r in self.records:
            if r.id in doomed:
                r.revoked = True

    def handle_by_id(self, rid: str) -> CapabilityHandle | None:
        """For hosts that serialise handles (RPC): the live handle with this id. Never for scripts."""
        for r in self.records:
            if r.id == rid and not r.revoked:
                return self._handle(r)
        return None

    def snapshot(self) -> list[tuple]:
        """Every record's state (tests compare it before and after an attack)."""
        return [r.snapshot() for r in self.records]

    def close(self) -> None:
        """Unload every loaded capability."""
        for entry in self.registry.entries():
            if entry.instance is not None and id(entry.instance) in self._loaded:
                entry.instance.unload()
        self._loaded.clear()

    # --- listing and metadata ---------------------------------------------------------------------
    def status(self) -> list[dict]:
        """One row per implementation for ``viwo caps``.

        ``{type, provider, label, description, available, reason, fake, selected, granted, methods,
        limits}``, sorted by type with the implementation in use (``selected``) last; a plugin that
        failed to load is a row with ``type: None``, ``available: false`` and the error as ``reason``.
        """
        rows = []
        granted = {r.type for r in self.records if not r.revoked and r.holder == self.self_id}
        # per type, the implementations not in use first and the selected one last
        entries = sorted(self.registry.entries(),
                         key=lambda e: (e.cls.type, self.registry.select(e.cls.type) is e))
        for entry in entries:
            cls = entry.cls
            selected = self.registry.select(cls.type) is entry
            rows.append({
                "type": cls.type, "provider": cls.provider, "label": cls.label or cls.type,
                "description": describe(cls), "available": entry.available, "reason": entry.reason,
                "fake": cls.fake, "selected": selected, "granted": selected and cls.type in granted,
                "methods": [spec.signature() for spec in cls.methods.values()],
                "limits": [lim.to_metadata() for lim in cls.limits],
            })
        for err in self.registry.errors:
            rows.append({"type": None, "provider": None, "label": "plugin error", "description": err,
                         "available": False, "reason": err, "fake": False, "selected": False, "granted": False,
                         "methods": [], "limits": []})
        return rows

    available = status

    def metadata(self) -> list[dict]:
        """``get_capability_metadata`` (design §8): every registered type, from its declarations."""
        out = []
        for t in self.registry.types():
            entry = self.registry.select(t)
            cls = entry.cls
            out.append({"type": t, "label": cls.label or t, "description": describe(cls),
                        "methods": [spec.to_metadata() for spec in cls.methods.values()]})
        return out

    # --- script API (kernel opcodes) ----------------------------------------------------------------
    def find(self, cap_type: Any, flt: Any, op: str = "get_capability") -> CapabilityHandle | None:
        if type(cap_type) is not str:
            raise ArgumentError(f"{op}: expected string for type")
        if flt is None:
            flt = {}
        if type(flt) is not dict:
            raise ArgumentError(f"{op}: expected object for filter")
        flt = plain_copy(flt, op)
        declared = self._declared(cap_type)
        for r in self.records:
            if r.type == cap_type and r.holder == self.self_id and not r.revoked and \
                    matches_filter(r.params, flt, declared):
                return self._handle(r)
        return None

    def call(self, ev: Any, obj: Any, name: str, args: list) -> Any:
        rec = self._own_record(obj, "std.call_method")
        entry = self._entry_for(rec)
        cls = entry.cls
        spec = cls.methods.get(name) if type(name) is str else None
        if spec is None:
            callable_ = ", ".join(cls.methods) or "none"
            raise ArgumentError(f"std.call_method: {rec.type} has no method {to_display(name)}",
                                hint=f"callable: {callable_}")
        per_call = entry.reason is not None and _serves_some_calls(cls)
        if entry.reason is not None and not per_call:
            raise CapabilityError(f"{rec.type}.{name}: not available here: {entry.reason}",
                                  hint="run `viwo caps` to see what is installed")
        instance = entry.get_instance()
        ctx = CallContext(self.runtime, ev, instance, name, plain_copy(rec.params, "params"), rec.handle, self)
        where = f"{rec.type}.{name}"
        bound = bind_arguments(where, spec, args, ctx)
        if per_call and cls.available_for(bound) is not None:  # e.g. no default model, and none named
            raise CapabilityError(f"{where}: not available here: {entry.reason}",
                                  hint="run `viwo caps` to see what is installed")
        real = self.registry.real.get(rec.type)
        if cls.fake and rec.provider is None and real is not None and real is not entry \
                and real.cls.available_for(bound) is None:
            # the fake stands in only for calls the real one cannot serve (e.g. a named model is real work)
            entry, cls, spec = real, real.cls, real.cls.methods.get(name, spec)
            instance = entry.get_instance()
            defaulted = ctx.defaulted
            ctx = CallContext(self.runtime, ev, instance, name, ctx.params, rec.handle, self)
            ctx.defaulted = defaulted
        instance.check_inputs(ctx, spec, bound)
        # the fake says so when it stands in for a real one; a grant that pins it chose it, no warning
        if cls.fake and real is not None and rec.provider is None and rec.type not in self._warned:
            self._warned.add(rec.type)
            ctx.warn(f"{rec.type}: using the fake implementation (a deterministic test pattern, no model); the "
                     f"real one {'is unavailable: ' + real.reason if real.reason else 'was not selected'}")
        if id(instance) not in self._loaded:
            instance.load(ctx)
            self._loaded.add(id(instance))
        kwargs = {p.name: bound[p.name] for p in spec.params}
        result = spec.fn(instance, ctx, **kwargs)
        _check_result(where, result)
        return result

    def mint(self, authority: Any, cap_type: Any, params: Any, op: str = "mint") -> CapabilityHandle:
        auth = self._own_record(authority, op, what="authority")
        if auth.type != "sys.mint":
            raise CapabilityError(f"{op}: authority must be sys.mint, got {auth.type}",
                                  hint="minting needs a sys.mint capability granted by the host")
        if type(cap_type) is not str or not TYPE_RE.match(cap_type):
            raise ArgumentError(f"{op}: type must be a dotted name like 'user.alice.door', got {to_display(cap_type)}")
        ns = auth.params.get("namespace")
        if not namespace_covers(ns, cap_type):
            raise CapabilityError(f"{op}: authority namespace '{ns}' does not cover '{cap_type}'",
                                  hint=f"this authority mints '{ns}' and names below it ('{ns}.…')")
        if params is None:
            params = {}
        if type(params) is not dict:
            raise ArgumentError(f"{op}: expected object for params")
        declared = self._declared(cap_type)
        normalized = normalize_params(cap_type, params, declared, op)
        if cap_type == "sys.mint" and not narrows("namespace", ns, normalized.get("namespace"), "namespace"):
            raise CapabilityError(f"{op}: a minted sys.mint cannot cover more than its authority "
                                  f"('{normalized.get('namespace')}' is not within '{ns}')")
        return self._new(cap_type, normalized, self.self_id, None, parent=auth.id, origin="mint")

    def delegate(self, parent: Any, restrictions: Any, op: str = "delegate") -> CapabilityHandle:
        rec = self._own_record(parent, op, what="parent")
        if restrictions is None:
            restrictions = {}
        if type(restrictions) is not dict:
            raise ArgumentError(f"{op}: expected object for restrictions")
        declared = self._declared(rec.type)
        for key in restrictions:
            if declared and key not in declared and key != "*" and key not in rec.params:
                raise CapabilityError(f"{op}: {rec.type} has no parameter '{key}'",
                                      hint="known: " + ", ".join(declared))
        params = restrict(rec.params, restrictions, declared, op)
        return self._new(rec.type, params, self.self_id, rec.provider, parent=rec.id, origin="delegate")

    def give(self, cap: Any, target: Any, op: str = "give_capability") -> None:
        rec = self._own_record(cap, op, what="cap")
        tid = holder_id(target)
        if tid is None or not isinstance(target, dict | HostValue):
            raise ArgumentError(f"{op}: expected target entity, got {preview(target, 120)}",
                                hint="give it to an entity, e.g. (std.caller)")
        if tid not in self.holders:
            raise CapabilityError(f"{op}: no such target: {to_display(tid)}",
                                  hint="the target must be an entity this host knows (the caller, or one "
                                       "the host registered)")
        rec.holder = tid

    # --- internals --------------------------------------------------------------------------------
    def _declared(self, cap_type: str) -> dict:
        entry = self.registry.select(cap_type)
        return entry.cls.limit_specs() if entry is not None else {}

    def _entry_for(self, rec: Record) -> Entry:
        entry = self.registry.select(rec.type, rec.provider)
        if entry is None:
            raise CapabilityError(f"std.call_method: {rec.type} has no methods (no implementation is registered)",
                                  hint="it is a token: check it with has_capability")
        return entry

    def _new(self, cap_type: str, params: dict, holder: Any, provider: str | None,
             parent: str | None = None, origin: str = "grant") -> CapabilityHandle:
        rec = Record(f"cap-{next(self._ids)}", cap_type, params, holder, provider, parent, origin)
        self.records.append(rec)
        return self._handle(rec)

    def _handle(self, rec: Record) -> CapabilityHandle:
        if rec.handle is None:
            rec.handle = CapabilityHandle(rec, self)
        return rec.handle

    def _own_record(self, obj: Any, op: str, what: str = "capability", *, check_holder: bool = True) -> Record:
        if not isinstance(obj, CapabilityHandle):
            if obj is None:
                raise ArgumentError(f"{op}: expected capability for {what}, got null",
                                    hint="get_capability returns null when nothing matching is granted; "
                                         "check with has_capability")
            shown = "a plain object that only looks like one" if isinstance(obj, dict) else preview(obj, 80)
            raise ArgumentError(f"{op}: expected capability for {what}, got {shown}",
                                hint="capabilities come from get_capability, mint or delegate")
        rec = obj._record
        if obj._manager is not self:
            raise CapabilityError(f"{op}: this capability belongs to another runtime")
        if rec.revoked:
            raise CapabilityError(f"{op}: capability {rec.id} ({rec.type}) was revoked")
        if check_holder and rec.holder != self.self_id:
            raise CapabilityError(f"{op}: capability {rec.id} ({rec.type}) is no longer held by this script",
                                  hint="it was given away with give_capability")
        return rec


def _check_result(where: str, value: Any, depth: int = 0) -> None:
    """A method must return script values; anything else is a bug in the capability."""
    t = type(value)
    if value is None or t in (bool, int, float, str) or isinstance(value, HostValue | Lambda):
        return
    if depth < 64 and t is list:
        for v in value:
            _check_result(where, v, depth + 1)
        return
    if depth < 64 and t is dict:
        for k, v in value.items():
            if type(k) is not str:
                break
            _check_result(where, v, depth + 1)
        else:
            return
    raise InternalError(f"{where}: returned a {t.__name__}, which is not a script value",
                        hint="this is a bug in the capability; it must return numbers, strings, lists, objects "
                             "or host values such as Image")


__all__ = ["CapabilityHandle", "CapabilityManager", "Capability", "Record", "holder_id"]
