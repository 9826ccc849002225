"""``viwo repl``: an interactive session over one Runtime (prompt_toolkit), or a plain line reader.

The pieces are plain functions and classes so they can be tested without a terminal:

- ``reading.py``: :func:`is_complete` (continue reading while the parse is incomplete), :func:`call_context`
  and :func:`signature_fragments` (the bottom-toolbar signature help), :func:`open_depth` (auto-indent);
- ``completion.py``: :func:`completions` (opcode names in call heads, variables elsewhere, meta commands);
- ``session.py``: :class:`ReplSession` (evaluation, output, the inputs that ran);
- ``commands.py``: the ``:`` meta commands, as methods of the session;
- ``transcript.py``: the inputs that ran as one script (``:save``, and the script REPL images carry);
- ``prompt.py``: the front ends, :func:`run_plain` and :func:`build_prompt_session`.

:func:`run_repl` wires them to a terminal. Scripts are loaded (``:load``) with the command line's loader,
``viwoscript.terminal.loader``; the REPL never imports ``viwoscript.cli``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from .commands import META_COMMANDS
from .completion import completion_word, completions, make_completer
from .prompt import build_prompt_session, run_interactive, run_plain
from .reading import call_context, is_complete, open_depth, signature_fragments, toolbar_fragments
from .session import ReplSession
from .transcript import session_script

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["META_COMMANDS", "ReplSession", "build_prompt_session", "call_context", "completion_word",
           "completions", "is_complete", "make_completer", "open_depth", "run_plain", "run_repl",
           "session_script", "signature_fragments", "toolbar_fragments"]


def run_repl(cfg: Config, *, as_json: bool = False, quiet: bool = False, history: str | None = "",
             stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Start the REPL: prompt_toolkit on a terminal, the plain reader otherwise."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdout.isatty()
    session = ReplSession(cfg, as_json=as_json, quiet=quiet, stdout=stdout,
                          progress=None if interactive else False)
    if not interactive:
        return run_plain(session, stdin)
    return run_interactive(session, build_prompt_session(session, history))
