"""``viwo repl``: the interactive session (``viwoscript.repl``)."""

from __future__ import annotations

import click

from ..app import CONTEXT, Exit, cli, guarded
from ..options import make_config, runtime_options


@cli.command(context_settings=CONTEXT)
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Start with JSON output (toggle with :json).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no std.log output.")
@click.option("--history", "history_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="History file (default: in the user state dir).")
@click.option("--no-history", is_flag=True, help="Keep no history file.")
@guarded
def repl(config_path=None, gas=None, timeout=None, size=None, out=None, roots=(), runner=None, as_json=False,
         quiet=False, history_path=None, no_history=False):
    """Interactive session: variables, canvas and capabilities persist between inputs.

    Type :help inside for the meta commands. Not on a terminal, it reads plain lines
    (echo '(+ 1 2)' | viwo repl) and exits 1 if any input failed.
    """
    from ...repl import run_repl

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    raise Exit(run_repl(cfg, as_json=as_json, quiet=quiet, history=None if no_history else (history_path or "")))
