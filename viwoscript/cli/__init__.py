"""The ``viwo`` command line: one click group, one small module per command under ``commands/``.

Where things are:

- ``app.py``: the ``cli`` group, :func:`main` (the console-script entry point and ``python -m viwoscript``),
  exit codes and :func:`guarded` (errors → exit codes).
- ``options.py``: the shared options (``--config --gas --timeout --size --out --root --runner``, ``--quiet
  --json --debug``, ``--arg``/``--args-json``) and :func:`make_config` / :func:`make_runtime`.
- ``commands/NAME.py``: the ``viwo NAME`` command (or group). What the command line shares with the REPL —
  the script loader, terminal output, the rich views — lives in ``viwoscript.terminal``.

Adding a command is one line: write ``commands/NAME.py`` defining it with ``@cli.command()`` (``from ..app
import cli``; import anything heavy inside the function, so ``viwo --help`` stays quick) and add ``NAME`` to
the import line below.

Exit codes: 0 success, 1 script error (or diagnostics found, or files that would be reformatted),
2 usage or configuration error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from .app import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cli, main
from .commands import caps, check, config, fmt, images, info, models, ops, repl, run, serve, template  # noqa: F401
from .options import CANVAS_MAX_PIXELS

__all__ = ["CANVAS_MAX_PIXELS", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "cli", "main"]
