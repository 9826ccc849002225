"""Running one loaded script in this process: check it, run it, print its result and save its images
(``viwo run``, ``viwo eval`` and each set of ``viwo run --arg-sets``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .app import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from ..config import Config
    from ..terminal.loader import Script


def execute(cfg: Config, rt, script: Script, *, args: list, quiet: bool, as_json: bool, debug: bool, check: bool,
            show_null: bool, where: dict | None = None, stem: str | None = None) -> int:
    """Check, run and print a loaded script with the Runtime ``rt``; returns the exit code. ``where``:
    metadata naming the executor, for the images this process makes (:func:`execute_on`); ``stem``: what
    saved images are called (default: the script's name)."""
    from ..errors import InterruptedError_, ViwoError
    from ..nodes import to_data
    from ..terminal.console import ImageSaver, Terminal, sigint_interrupts, use_color

    check_out_dir(cfg, script, rt)
    terminal = Terminal(ImageSaver(cfg.out_dir, stem or script.stem), quiet=quiet)
    terminal.saver.where = where
    rt.on_event = terminal.on_event
    color = use_color(sys.stderr)
    text = script.text
    try:
        if check:
            from ..checker import check_tree

            diagnostics = check_tree(script.tree, rt.registry)
            errors = [d for d in diagnostics if d.severity == "error"]
            for d in diagnostics if (errors or not quiet) else ():
                terminal.err(d.render(text, color=color))
            if errors:
                return EXIT_ERROR
        terminal.saver.script = to_data(script.tree)
        terminal.saver.args = args
        with sigint_interrupts(rt):
            value = rt.run(script.tree, filename=script.filename, args=args)
        terminal.stop_progress()
        try:
            terminal.result(value, as_json=as_json, show_null=show_null, limits=rt.limits)
        except (ValueError, OSError) as e:  # a result with no JSON form; an image that cannot be saved
            terminal.error(f"error: {e}")
            return EXIT_ERROR
        return EXIT_OK
    except (InterruptedError_, KeyboardInterrupt):
        terminal.error("interrupted")
        return EXIT_INTERRUPTED
    except ViwoError as e:
        terminal.error(e.render(None if e.source else text, color=color))
        if debug:
            import traceback

            terminal.error("".join(traceback.format_exception(e)).rstrip())
        return EXIT_ERROR
    finally:
        terminal.stop_progress()


def check_out_dir(cfg: Config, script: Script, rt) -> None:
    """Before anything runs: a script that can make images needs an output folder it can write to."""
    from ..config import DEFAULT, ConfigError
    from ..terminal.console import may_make_images, out_dir_problem

    problem = out_dir_problem(cfg.out_dir)
    if problem is None or not may_make_images(script.tree, rt.registry):
        return
    source = cfg.settings["paths.out"].source
    where = "--out" if source == "--out" else "the output folder (default ./viwo-out)" if source == DEFAULT \
        else f"{source}: [paths] out"
    raise ConfigError(f"{where}: images cannot be saved: {problem}; nothing was run",
                      hint="pass --out DIR with a folder you can write to, or set [paths] out in viwo.toml")
