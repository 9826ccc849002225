"""Tab completion: opcode names in call heads, variables elsewhere, meta commands and their arguments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .commands import META_COMMANDS

if TYPE_CHECKING:
    from ..opcodes import Registry

_WORD_RE = re.compile(r"[^\s()\[\]{}\",;:]*\Z")


def _in_string(text: str) -> bool:
    line_quotes = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and line_quotes % 2:
            i += 2
            continue
        if c == '"':
            line_quotes += 1
        elif c == ";" and not line_quotes % 2:
            nl = text.find("\n", i)
            if nl == -1:
                return False
            i = nl
        i += 1
    return bool(line_quotes % 2)


def completions(text: str, registry: Registry, variables: set[str] | dict) -> list[tuple[str, str, str]]:
    """``(completion, kind, meta)`` for the word before the cursor (the end of ``text``).

    Call heads complete opcode names; argument positions complete variables and ``true``/``false``/
    ``null``; a line starting with ``:`` completes meta commands (and opcode names after ``:doc``).
    """
    stripped = text.lstrip()
    if stripped.startswith(":"):
        cmd, sep, arg = stripped.partition(" ")
        if not sep:
            return [(c, "command", META_COMMANDS[c]) for c in META_COMMANDS if c.startswith(cmd)]
        if cmd in (":doc", ":ops") and " " not in arg:
            return [(n, "opcode", "") for n in registry.names() if n.startswith(arg)]
        return []
    if _in_string(text):
        return []
    word = _WORD_RE.search(text).group(0)
    before = text[: len(text) - len(word)].rstrip(" \t")
    if before.endswith("("):
        names = registry.names()
        hits = [n for n in names if n.startswith(word)]
        if not hits and word:
            hits = [n for n in names if word in n]
        return [(n, "opcode", registry.get(n).signature()) for n in hits]
    out = [(v, "variable", _type_of(variables, v)) for v in sorted(variables) if v.startswith(word)]
    out += [(k, "keyword", "") for k in ("true", "false", "null") if k.startswith(word) and word]
    return out


def completion_word(text: str) -> str:
    """The text a completion replaces: the symbol before the cursor, or the meta command/argument."""
    stripped = text.lstrip()
    if stripped.startswith(":"):
        cmd, sep, arg = stripped.partition(" ")
        return arg if sep else cmd
    return _WORD_RE.search(text).group(0)


def _type_of(variables, name: str) -> str:
    if isinstance(variables, dict):
        from ..values import typeof

        return typeof(variables.get(name))
    return ""


def make_completer(session):
    """A prompt_toolkit Completer over ``session.runtime`` (read at each completion: ``:reset`` replaces it)."""
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class ViwoCompleter(Completer):
        """Completion from the live Runtime: its opcodes and the session's variables."""

        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            stripped = text.lstrip()
            if stripped.startswith((":load ", ":save ")):
                arg = stripped.split(" ", 1)[1]
                yield from paths.get_completions(Document(arg, len(arg)), complete_event)
                return
            rt = session.runtime
            word = completion_word(text)
            for value, _kind, meta in completions(text, rt.registry, all_vars(rt)):
                yield Completion(value, start_position=-len(word), display_meta=meta)

    return ViwoCompleter()


def all_vars(runtime) -> dict:
    out: dict = {}
    scope = runtime.globals
    chain = []
    while scope is not None:
        chain.append(scope)
        scope = scope.parent
    for s in reversed(chain):
        out.update(s.vars)
    return out
