"""A session's inputs as one script: for ``:save`` and for the script embedded in the images it saves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..nodes import Node
    from ..opcodes import Registry


def session_tree(trees: list[Node]) -> Node:
    """Several inputs as one tree: a single input as it is, else a ``std.seq`` of them all (an input that is
    itself a top-level ``std.seq`` of several forms is spliced in)."""
    from ..nodes import Array, Atom

    flat: list = []
    for f in trees:
        if isinstance(f, Array) and f.head == "std.seq" and len(f.items) > 2:
            flat.extend(f.args)
        else:
            flat.append(f)
    if not flat:
        return Atom(None)
    return flat[0] if len(flat) == 1 else Array((Atom("std.seq"), *flat))


def session_script(inputs: list[str], *, json_form: bool = False, registry: Registry | None = None) -> str:
    """The inputs that ran, as one script (text form; or the JSON form of the same tree)."""
    if not json_form:
        return "\n".join(inputs) + ("\n" if inputs else "")
    from ..syntax import parse, to_json

    slots = registry.slot_kind if registry is not None else None
    return to_json(session_tree([parse(t, filename="<repl>", slots=slots) for t in inputs])) + "\n"
