"""The ``viwo`` group, the entry point and the mapping from errors to exit codes.

Only click is imported up front; the runtime, rich and prompt_toolkit load inside the commands that
need them, so ``viwo --help`` and ``viwo run`` start quickly.
"""

from __future__ import annotations

import functools
import os
import sys

import click

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: Deep scripts recurse deeply (on the Runtime's evaluation thread, which has a big stack). The command line
#: (only it: library code never changes a process-wide setting) raises Python's recursion limit for them, to
#: ``viwoscript.runtime.EVAL_RECURSION_LIMIT`` (not imported here: ``viwo --help`` loads no runtime).
RECURSION_LIMIT = 100_000


class Exit(Exception):
    """Leave a command with an exit code (after its message was printed)."""

    def __init__(self, code: int):
        self.code = code


def guarded(fn):
    """Map errors to exit codes: ViwoError → 1 (2 for configuration and unreadable sources), Ctrl-C → 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exit as e:
            sys.exit(e.code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as e:
            from ..errors import InterruptedError_, ViwoError

            if isinstance(e, InterruptedError_):
                click.echo("interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            if isinstance(e, ViwoError):
                from ..terminal.console import use_color

                click.echo(e.render(color=use_color(sys.stderr)), err=True)
                sys.exit(EXIT_USAGE if is_usage_error(e) else EXIT_ERROR)
            raise

    return wrapper


def is_usage_error(e: Exception) -> bool:
    """Configuration errors and sources that cannot be read exit 2, like click's usage errors."""
    from ..config import ConfigError
    from ..terminal.loader import SourceError

    return isinstance(e, ConfigError | SourceError)


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@click.version_option(package_name="viwoscript", prog_name="viwo")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """ViwoScript: run, check and explore image-generation workflows.

    \b
    Examples:
      viwo run examples/hello.viwo        run a script, save its images to ./viwo-out
      viwo eval '(+ 1 2)'                 evaluate one expression
      viwo check *.viwo                   report every problem without running
      viwo ops canvas                     list the canvas opcodes
      viwo repl                           interactive session (also: plain `viwo` on a terminal)

    Exit codes: 0 ok, 1 script error, 2 usage or configuration error, 130 interrupted.
    """
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(cli.get_command(ctx, "repl"))
        else:
            click.echo(ctx.get_help())


#: Quiet model libraries in the terminal: errors only, no download or loading bars (a user's own
#: environment variables win). Read by diffusers, transformers, huggingface_hub and tqdm when imported.
QUIET_LIBRARIES = {"DIFFUSERS_VERBOSITY": "error", "TRANSFORMERS_VERBOSITY": "error",
                   "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                   "TQDM_DISABLE": "1",
                   # --executor ray: no usage statistics sent by Ray, a macOS/Windows node stays single-machine
                   "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def process_settings() -> None:
    """The process-wide settings of the command line (never made by the library)."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    for key, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click's handling, except that Ctrl-C anywhere exits 130."""
    process_settings()
    try:
        rv = cli.main(args=argv, prog_name="viwo", standalone_mode=False)
    except BrokenPipeError:  # `viwo ops | head`: the reader left; nothing to report
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        sys.exit(EXIT_OK)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)
