"""Reading input: when an input is complete, which call the cursor is in (the signature bar), and the
indentation a new line gets."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..errors import IncompleteInputError, ViwoSyntaxError

if TYPE_CHECKING:
    from ..opcodes import OpSpec, Registry

PROMPT = "viwo> "
CONTINUATION = "  ... "


def is_complete(text: str, registry: Registry | None = None) -> bool:
    """Whether ``text`` is a whole input: it parses, or fails for a reason more lines cannot fix."""
    if not text.strip() or text.lstrip().startswith(":"):
        return True
    from ..syntax import parse

    try:
        parse(text, filename="<repl>", slots=registry.slot_kind if registry is not None else None)
    except IncompleteInputError:
        return False
    except ViwoSyntaxError:
        return True
    return True


@dataclasses.dataclass
class _Frame:
    opener: str
    count: int = 0  # items started inside this bracket (the head included)
    head: str | None = None


def call_context(text: str) -> tuple[str, int] | None:
    """The innermost call the cursor (at the end of ``text``) is in: ``(opcode, argument index)``.

    The index is 0-based over the arguments after the head; -1 while the head itself is being typed.
    """
    stack: list[_Frame] = []
    i, n = 0, len(text)
    atom_start = -1
    in_string = False
    while i < n:
        c = text[i]
        if atom_start >= 0 and (c.isspace() or c in "()[]{}\",;:"):
            _end_atom(stack, text[atom_start:i])
            atom_start = -1
        if c == ";":
            nl = text.find("\n", i)
            i = n if nl == -1 else nl
            continue
        if c == '"':
            if stack:
                stack[-1].count += 1
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                in_string = True
                break
            i = j + 1
            continue
        if c in "([{":
            if stack:
                stack[-1].count += 1
            stack.append(_Frame(c))
        elif c in ")]}":
            if stack:
                stack.pop()
        elif not (c.isspace() or c in ",:") and atom_start < 0:
            atom_start = i
            if stack:
                stack[-1].count += 1
        i += 1
    in_item = in_string or atom_start >= 0
    for depth in range(len(stack) - 1, -1, -1):
        f = stack[depth]
        if f.opener != "(":
            continue
        if f.head is None:
            if atom_start >= 0 and depth == len(stack) - 1 and f.count == 1:
                return (text[atom_start:], -1)
            return None
        inner = depth < len(stack) - 1
        return (f.head, f.count - 2 if (inner or in_item) else f.count - 1)
    return None


def _end_atom(stack: list[_Frame], atom: str) -> None:
    if stack and stack[-1].opener == "(" and stack[-1].count == 1 and stack[-1].head is None:
        stack[-1].head = atom


def signature_fragments(spec: OpSpec, index: int) -> list[tuple[str, str]]:
    """prompt_toolkit formatted text: the signature with the current parameter highlighted."""
    from ..opcodes import REQUIRED, _show

    out = [("class:signature", f"({spec.name}")]
    current = spec.param_at(index) if index >= 0 else None
    for p in spec.params:
        text = p.name + ("..." if p.variadic else "")
        if p.type not in ("any", "block", "name", "names"):
            text += f": {p.type}"
        if p.default is not REQUIRED and not p.variadic:
            text += f" = {_show(p.default)}"
        out.append(("class:signature", " "))
        out.append(("class:signature.current" if p is current else "class:signature", text))
    out.append(("class:signature", f") -> {spec.returns}"))
    if spec.description:
        from ..terminal.describe import first_sentence

        out.append(("class:signature.doc", "  " + first_sentence(spec.description)))
    return out


def toolbar_fragments(text: str, registry: Registry) -> list[tuple[str, str]]:
    ctx = call_context(text)
    if ctx is None:
        return [("class:signature.doc", " Enter runs a complete input · Tab completes · :help · Ctrl-D quits")]
    head, index = ctx
    spec = registry.get(head)
    if spec is None:
        if index == -1:
            names = [n for n in registry.names() if n.startswith(head)][:6]
            if names:
                return [("class:signature.doc", " " + "  ".join(names))]
        return [("class:signature.doc", f" unknown opcode {head}" if index >= 0 else "")]
    return signature_fragments(spec, index)


def open_depth(text: str) -> int:
    depth = 0
    in_str = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == ";":
            nl = text.find("\n", i)
            i = len(text) if nl == -1 else nl
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return depth
