"""One declaration per opcode: :class:`OpSpec`, the :func:`opcode` decorator and the :class:`Registry`.

A module of opcodes declares each with ``@opcode(...)`` and exposes them through a module-level
``OPCODES`` list (the decorator appends to the list passed as ``into``). Check, docs, REPL
completion and the ``get_opcodes`` metadata all derive from these declarations.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .errors import UnknownOpcodeError
from .values import Lambda


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: Types a parameter may declare. "any" is not checked; the others are checked by the evaluator
#: before the opcode runs (eager opcodes with ``validate=True``) and by ``check`` for literals.
TYPES = ("any", "number", "string", "boolean", "null", "array", "object", "lambda", "image",
         "capability", "block", "name", "names")


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "any"
    default: Any = REQUIRED
    description: str = ""
    #: "value" (evaluated), "name" (a bound name: bare symbol in text form), "names" (a raw list of
    #: names), "raw" (unevaluated data), "block" (unevaluated code run by a lazy opcode).
    kind: str = "value"
    variadic: bool = False
    choices: tuple | None = None
    #: For a variadic parameter: how many arguments it needs at least.
    at_least: int = 0

    @cached_property
    def optional(self) -> bool:
        return self.default is not REQUIRED or self.variadic

    def to_metadata(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.description:
            d["description"] = self.description
        if self.optional and not self.at_least:
            d["optional"] = True
        if self.default is not REQUIRED and self.default is not None:
            d["default"] = self.default
        if self.variadic:
            d["variadic"] = True
        if self.choices:
            d["choices"] = list(self.choices)
        return d


def P(name: str, type: str = "any", default: Any = REQUIRED, description: str = "", **kw) -> Param:  # noqa: N802
    """Shorthand for :class:`Param`."""
    return Param(name, type, default, description, **kw)


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable = field(compare=False, repr=False)
    params: tuple[Param, ...] = ()
    returns: str = "any"
    category: str = ""
    label: str = ""
    description: str = ""
    #: Lazy opcodes get ``(ev, args: tuple[Node], scope)`` and evaluate what they need;
    #: eager ones get ``(ev, *values)``.
    lazy: bool = False
    #: Check declared argument types before calling (eager only). Opcodes with their own
    #: original-compatible messages turn this off.
    validate: bool = True
    layout: str | None = None
    #: Opcodes that reach outside the interpreter (files, capabilities) are not pure.
    pure: bool = True

    @cached_property
    def min_args(self) -> int:
        return sum(1 for p in self.params if not p.optional) + sum(p.at_least for p in self.params if p.variadic)

    @cached_property
    def max_args(self) -> int | None:
        return None if any(p.variadic for p in self.params) else len(self.params)

    def param_at(self, index: int) -> Param | None:
        if index < len(self.params):
            return self.params[index]
        if self.params and self.params[-1].variadic:
            return self.params[-1]
        return None

    def slot_kind(self, index: int) -> str | None:
        p = self.param_at(index)
        return p.kind if p is not None and p.kind in ("name", "names") else None

    def signature(self) -> str:
        parts = []
        for p in self.params:
            text = p.name + ("..." if p.variadic else "")
            if p.type not in ("any", "block", "name", "names"):
                text += f": {p.type}"
            if p.default is not REQUIRED and not p.variadic:
                text += f" = {_show(p.default)}"
            parts.append(text)
        return f"({self.name}{' ' if parts else ''}{' '.join(parts)}) -> {self.returns}"

    def to_metadata(self) -> dict:
        """The ``get_opcodes`` entry of design §8."""
        d: dict[str, Any] = {
            "opcode": self.name,
            "label": self.label or self.name,
            "category": self.category,
            "description": self.description,
            "slots": [
                {"name": p.name, "type": p.kind if p.kind in ("block", "name", "names") else p.type}
                for p in self.params
            ],
            "parameters": [p.to_metadata() for p in self.params],
            "returnType": self.returns,
        }
        if self.layout:
            d["layout"] = self.layout
        if self.lazy:
            d["lazy"] = True
        return d


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def opcode(name: str, *params: Param, into: list, returns: str = "any", category: str | None = None,
           label: str = "", lazy: bool = False, validate: bool = True, layout: str | None = None,
           pure: bool = True) -> Callable:
    """Declare an opcode; the function's docstring is its description."""

    def deco(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip()
        spec = OpSpec(name, fn, tuple(params), returns, category or name.split(".")[0], label,
                      " ".join(doc.split()) if doc else "", lazy, validate, layout, pure)
        into.append(spec)
        fn.spec = spec
        return fn

    return deco


class Registry:
    """Opcodes by name. Every Runtime owns one; registering never touches another Runtime's."""

    def __init__(self, specs: Iterable[OpSpec] = ()):
        self._specs: dict[str, OpSpec] = {}
        self._shared = False  # _specs is shared with the registry this one was copied from
        self.version = 0
        for spec in specs:
            self.register(spec)

    def register(self, spec: OpSpec | Callable, *, replace_existing: bool = False) -> OpSpec:
        if not isinstance(spec, OpSpec):
            spec = getattr(spec, "spec", None)
            if not isinstance(spec, OpSpec):
                raise TypeError("register() takes an OpSpec or a function decorated with @opcode")
        if spec.name in self._specs and not replace_existing:
            raise ValueError(f"opcode {spec.name!r} is already registered; pass replace_existing=True "
                             "to override it deliberately")
        if self._shared:  # copy on first write: the registry we were copied from stays as it was
            self._specs = dict(self._specs)
            self._shared = False
        self._specs[spec.name] = spec
        self.version += 1  # compiled programs bound to the old set are stale
        return spec

    def unregister(self, name: str) -> OpSpec | None:
        """Remove an opcode from this registry only (a host taking an opcode away from its scripts);
        the removed declaration, or None when there was none."""
        if name not in self._specs:
            return None
        if self._shared:
            self._specs = dict(self._specs)
            self._shared = False
        self.version += 1
        return self._specs.pop(name)

    def register_module(self, module: Any, **kw) -> None:
        for spec in getattr(module, "OPCODES", ()):
            self.register(spec, **kw)

    def copy(self) -> Registry:
        """A registry with the same opcodes; registering into either one never changes the other (the
        table is shared until one of them registers: a Runtime's copy costs nothing until then)."""
        r = Registry()
        r._specs = self._specs
        r._shared = self._shared = True
        return r

    def get(self, name: Any) -> OpSpec | None:
        return self._specs.get(name) if isinstance(name, str) else None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return list(self._specs)

    def slot_kind(self, op: str, index: int) -> str | None:
        spec = self._specs.get(op)
        return spec.slot_kind(index) if spec is not None else None

    def suggest(self, name: str) -> list[str]:
        """Opcodes a mistyped head may have meant: those named ``<module>.name`` first ((if ...) → std.if),
        then close spellings."""
        same = [n for n in self._specs if n.endswith("." + name)]
        same.sort(key=lambda n: (not n.startswith("std."), n))
        close = [n for n in difflib.get_close_matches(name, self._specs, n=3, cutoff=0.6) if n not in same]
        return (same + close)[:3]

    def unknown(self, head: Any) -> UnknownOpcodeError:
        text = head if isinstance(head, str) else _head_text(head)
        hint = None
        if isinstance(head, str):
            close = self.suggest(head)
            if close:
                hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
            elif head.isidentifier():
                hint = f"run `viwo ops` to list the opcodes; a lambda held in a variable is called with (std.apply {head} ...)"
            else:
                hint = "run `viwo ops` to list the opcodes"
        return UnknownOpcodeError(f"Unknown opcode: {text}", hint=hint)

    def metadata(self) -> list[dict]:
        return [spec.to_metadata() for spec in self._specs.values()]


def _head_text(head: Any) -> str:
    from .values import to_display

    return to_display(head)


def with_params(spec: OpSpec, **changes) -> OpSpec:
    return replace(spec, **changes)


def _is_num(v):
    t = type(v)
    return t is int or t is float


def _is_host(name):
    def check(v):
        return getattr(v, "type_name", None) == name

    return check


#: The run-time test of each declared parameter type (``check`` and the runners use these).
TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "number": _is_num,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
    "lambda": lambda v: type(v) is Lambda,
    "image": _is_host("image"),
    "capability": _is_host("capability"),
}
