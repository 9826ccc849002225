"""The two front ends of a session: prompt_toolkit on a terminal, a plain line reader otherwise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .completion import make_completer
from .reading import CONTINUATION, PROMPT, is_complete, open_depth, toolbar_fragments

if TYPE_CHECKING:
    from .session import ReplSession


def run_plain(session: ReplSession, stdin: TextIO | None = None) -> int:
    """Read inputs line by line (no prompts): for pipes and files. Exit 1 if any input failed."""
    stdin = stdin or sys.stdin
    buf: list[str] = []
    for line in stdin:
        if not buf and line.lstrip().startswith(":"):
            session.handle(line.strip())
        else:
            buf.append(line)
            text = "".join(buf)
            if not is_complete(text, session.runtime.registry):
                continue
            buf.clear()
            session.handle(text)
        if session.done:
            break
    if buf and "".join(buf).strip() and not session.done:
        session.handle("".join(buf))  # reports the unclosed input
    return 1 if session.failures else 0


def default_history_file() -> Path:
    import platformdirs

    return platformdirs.user_state_path("viwoscript") / "repl_history"


def history_for(session: ReplSession, history: str | None):
    """The prompt history: in memory (``None``), the default file (``""``, its folder made), or a file given with
    ``--history`` — whose folder is never made silently: a missing one is warned about and the history is
    kept in memory."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    if history is None:
        return InMemoryHistory()
    if not history:
        path = default_history_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            session.terminal.err(f"warning: cannot make {path.parent} ({e.strerror or e}); history is not kept",
                                 style="yellow")
            return InMemoryHistory()
        return FileHistory(str(path))
    path = Path(history).expanduser()
    if not path.parent.is_dir():
        session.terminal.err(f"warning: --history: the folder {path.parent} does not exist; this session's history "
                             "is not saved", style="yellow")
        return InMemoryHistory()
    return FileHistory(str(path))


def build_prompt_session(session: ReplSession, history: str | None = "", *, input=None, output=None):
    """The prompt_toolkit PromptSession (separate so tests can drive it with pipe input)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.filters import has_completions
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer
    from prompt_toolkit.styles import Style

    from ..terminal.lexer import lexer_for

    hist = history_for(session, history)
    kb = KeyBindings()
    auto_indent: list = [None]  # (row, indent) of the line Enter just indented

    @kb.add("enter", filter=~has_completions)
    def _enter(event):
        buf = event.current_buffer
        doc = buf.document
        if doc.text_after_cursor.strip() == "" and is_complete(buf.text, session.runtime.registry):
            buf.validate_and_handle()
        else:  # still open, or editing inside the input: a new line, indented by the open brackets
            indent = "  " * open_depth(doc.text_before_cursor)
            buf.insert_text("\n" + indent)
            auto_indent[0] = (buf.document.cursor_position_row, indent) if indent else None

    @kb.add(" ")
    def _space(event):
        # Indentation typed at the start of an auto-indented line replaces the automatic one (typing or
        # pasting an indented input without bracketed paste must not double it).
        buf = event.current_buffer
        doc = buf.document
        auto, auto_indent[0] = auto_indent[0], None
        if auto is not None and auto[0] == doc.cursor_position_row and doc.current_line_before_cursor == auto[1]:
            buf.delete_before_cursor(len(auto[1]))
        buf.insert_text(" ")

    @kb.add("escape", "enter")
    def _newline(event):
        event.current_buffer.insert_text("\n")

    style = Style.from_dict({
        "pygments.comment": "italic #888888",
        "pygments.literal.string": "ansigreen",
        "pygments.literal.string.escape": "ansiyellow",
        "pygments.literal.number": "ansicyan",
        "pygments.keyword": "ansimagenta",
        "pygments.name.function": "bold ansiblue",
        "pygments.name.exception": "ansired",
        "pygments.error": "bg:ansired ansiwhite",
        "prompt": "bold",
        "bottom-toolbar": "noreverse bg:#222222 #aaaaaa",
        "signature": "#aaaaaa",
        "signature.current": "bold underline ansiwhite",
        "signature.doc": "#777777",
    })

    def toolbar():
        from prompt_toolkit.application import get_app

        doc = get_app().current_buffer.document
        return toolbar_fragments(doc.text_before_cursor, session.runtime.registry)

    return PromptSession(
        message=[("class:prompt", PROMPT)],
        multiline=True,
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        history=hist,
        auto_suggest=AutoSuggestFromHistory(),
        lexer=PygmentsLexer(lexer_for(session.runtime.registry.names())),
        completer=make_completer(session),
        complete_while_typing=False,
        bottom_toolbar=toolbar,
        key_bindings=kb,
        style=style,
        include_default_pygments_style=False,
        input=input,
        output=output,
    )


def run_interactive(session: ReplSession, prompt_session) -> int:
    from .. import __version__

    print(f"viwoscript {__version__} · :help for commands · Ctrl-D to quit", file=session.out)
    while not session.done:
        try:
            text = prompt_session.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the input
        except EOFError:
            break
        try:
            session.handle(text)
        except KeyboardInterrupt:
            session.terminal.error("interrupted")
    return 0
