"""The syntax tree shared by both source forms.

A ViwoScript program is JSON data: arrays are calls (or raw data in positions an opcode does not
evaluate), objects are literal data, everything else is a literal atom. The text form is sugar that
parses to exactly the same tree. Every node carries a :class:`Span`; spans never take part in
equality, so ``parse(print(tree)) == tree`` compares structure only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """A source location: 1-based line and column of the first character, plus the end."""

    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0
    file: str | None = None

    def __bool__(self) -> bool:
        return self.line > 0

    def __str__(self) -> str:
        where = self.file or "<script>"
        return f"{where}:{self.line}:{self.col}" if self.line else where


NO_SPAN = Span()


@dataclass(frozen=True, slots=True)
class Atom:
    """A literal: str, int, float, bool or None."""

    value: Any
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def __eq__(self, other: object) -> bool:
        # True == 1 in Python; the tree must keep them apart.
        return (
            isinstance(other, Atom)
            and type(self.value) is type(other.value)
            and (self.value == other.value or (self.value != self.value and other.value != other.value))
        )

    def __hash__(self) -> int:
        return hash((type(self.value), self.value))


@dataclass(frozen=True, slots=True)
class Array:
    """A JSON array. Evaluated as a call when its head names an opcode; raw data where unevaluated."""

    items: tuple[Node, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    #: Precomputed for the evaluator's hot path: the head's string (or None) and the arguments.
    op: str | None = field(default=None, init=False, compare=False, repr=False)
    rest: tuple[Node, ...] = field(default=(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        items = self.items
        if items:
            first = items[0]
            if first.__class__ is Atom and first.value.__class__ is str:
                object.__setattr__(self, "op", first.value)
            object.__setattr__(self, "rest", items[1:])

    @property
    def head(self) -> Any:
        """The head's value when it is a string atom, else None."""
        return self.op

    @property
    def args(self) -> tuple[Node, ...]:
        return self.rest


@dataclass(frozen=True, slots=True)
class Object:
    """A JSON object literal: raw data, returned as it is (its values are never evaluated)."""

    entries: tuple[tuple[str, Node], ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Node = Atom | Array | Object


def to_data(node: Node) -> Any:
    """The plain Python value of a node (fresh lists and dicts each time)."""
    if isinstance(node, Atom):
        return node.value
    if isinstance(node, Array):
        return [to_data(item) for item in node.items]
    return {key: to_data(value) for key, value in node.entries}


def from_data(data: Any, span: Span = NO_SPAN) -> Node:
    """Build a node tree (without positions) from plain JSON-like Python data."""
    if isinstance(data, list | tuple):
        return Array(tuple(from_data(item, span) for item in data), span)
    if isinstance(data, dict):
        return Object(tuple((str(k), from_data(v, span)) for k, v in data.items()), span)
    if data is None or isinstance(data, bool | int | float | str):
        return Atom(data, span)
    raise TypeError(f"cannot represent {type(data).__name__} in a script")


def call(head: str, *args: Node, span: Span = NO_SPAN) -> Array:
    return Array((Atom(head, span), *args), span)


#: Calls that make the code below them run many times (what the compiled runner compiles).
HOT_OPS = frozenset({"std.while", "std.for", "std.lambda"})


def contains_call(node: Node, ops: frozenset[str] | set[str]) -> bool:
    """Whether ``node`` or anything below it calls one of ``ops`` (iterative: any depth)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.__class__ is Array:
            if n.op in ops:
                return True
            stack.extend(n.rest)
    return False


def count_nodes(node: Node, stop: int) -> int:
    """How many nodes ``node`` holds (itself included), counting no further than ``stop``."""
    n = 0
    stack = [node]
    while stack and n < stop:
        item = stack.pop()
        n += 1
        if item.__class__ is Array:
            stack.extend(item.items)
        elif item.__class__ is Object:
            stack.extend(v for _, v in item.entries)
    return n
