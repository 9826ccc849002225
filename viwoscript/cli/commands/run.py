"""``viwo run`` and ``viwo eval``: check, run and print a script."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .. import options
from ..app import CONTEXT, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, Exit, cli, guarded
from ..options import (
    argument_options,
    make_config,
    output_options,
    parse_args,
    runtime_options,
    template_args,
)

if TYPE_CHECKING:
    from ...config import Config
    from ...terminal.loader import Script


@cli.command(context_settings=CONTEXT)
@click.argument("file", metavar="FILE|-")
@argument_options
@runtime_options
@output_options
@click.option("--no-check", is_flag=True, help="Skip the static check before running.")
@click.option("--show-script", is_flag=True, help="Print the script (text form) before running it: what an "
              "image holds, or what an A1111 image's parameters became.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where batch items run: local (default: here, one after another) or ray (Ray workers, at "
                   "the same time; [executor] in viwo.toml configures it, see docs/distributed.md).")
@guarded
def run(file, arg_pairs, args_json, config_path, gas, timeout, size, out, roots, runner, quiet, as_json, debug,
        no_check, show_script, executor):
    """Run a script: a .viwo (text) or .json file, - for stdin, template:NAME, a PNG/JPEG/WebP that viwo saved,
    or an A1111 image (its parameters become the equivalent script, run with your models).

    The static check runs first and reports every problem before anything runs. The result is printed
    (null prints nothing unless --json); images the script returns or outputs are saved as PNG in
    --out with their paths printed.

    \b
    Examples:
      viwo run examples/hello.viwo
      viwo run sweep.viwo --arg prompt='a red comet' --arg steps=20 --size 512x512
      echo '(+ 1 2)' | viwo run -
      viwo run viwo-out/hello-001.png      re-run the script embedded in an image
      viwo run a1111.png --show-script     replay an A1111 image (model, LoRAs from viwo.toml [models])
      viwo run template:sweep --arg prompt='a cat'
      viwo run examples/batch_seeds.viwo --executor ray
    """
    from ...executors.settings import executor_config
    from ...terminal.loader import load_script

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    ec = executor_config(cfg, executor)
    rt = options.make_runtime(cfg)  # configuration errors leave through guarded (exit 2)
    if file.startswith("template:"):  # template parameters by name: --arg prompt="a cat" --arg seed=5
        script = load_script(file, rt.parse, template_args=template_args(arg_pairs, args_json))
        args = script.args or []
    else:
        args = parse_args(arg_pairs, args_json)
        script = load_script(file, rt.parse, models=_model_config(cfg))
        if script.args and not (arg_pairs or args_json):  # an image re-run with the arguments it recorded
            args = script.args
    if show_script:
        from ...syntax import to_text

        click.echo(script.text if script.text is not None else to_text(script.tree))
    if ec.kind == "local":
        raise Exit(execute(cfg, rt, script, args=args, quiet=quiet, as_json=as_json, debug=debug,
                           check=not no_check, show_null=as_json))
    raise Exit(execute_on(ec, cfg, rt, script, args=args, quiet=quiet, as_json=as_json, debug=debug,
                          check=not no_check, show_null=as_json))


def execute_on(ec, cfg: Config, rt, script: Script, **kw) -> int:
    """:func:`execute` with batch items sent to the executor ``ec`` describes (started here, so an
    unreachable cluster is reported before anything runs, and stopped at the end); ends with a summary
    naming the executor and its workers."""
    from ...errors import ViwoError
    from ...executors.settings import make_executor
    from ...terminal.console import use_color

    ex = make_executor(ec, models=cfg.models or None)
    try:
        ex.start()
        rt.executor = ex
        return execute(cfg, rt, script, where={"executor": ex.name, "worker": "driver"}, **kw)
    except ViwoError as e:
        click.echo(e.render(color=use_color(sys.stderr)), err=True)
        return EXIT_ERROR
    finally:
        if not kw.get("quiet"):
            click.echo(ex.describe(), err=True)
        ex.shutdown()


def _model_config(cfg: Config):
    """The host's ModelConfig from ``[models]`` (None without the models package)."""
    try:
        from ...models.config import ModelConfig
    except ImportError:  # pragma: no cover
        return None
    return ModelConfig.from_table(cfg.models) if cfg.models else ModelConfig()


@cli.command("eval", context_settings=CONTEXT)
@click.argument("expr")
@argument_options
@runtime_options
@output_options
@click.option("--no-check", is_flag=True, help="Skip the static check before running.")
@guarded
def eval_(expr, arg_pairs, args_json, config_path, gas, timeout, size, out, roots, runner, quiet, as_json, debug,
          no_check):
    """Evaluate one expression (text or JSON form) and print its value.

    Like `viwo run` with the script given on the command line: the same options, the static check first
    (its warnings are shown; an error stops the run), and null is printed.

    \b
    Examples:
      viwo eval '(+ 1 2)'                          → 3
      viwo eval '["str.upper", "hi"]'              → "HI"
      viwo eval '(list.map [1 2 3] (std.lambda (x) (* x x)))' --json
      viwo eval '(* (std.arg 0) 2)' --arg n=21     → 42
    """
    from ...errors import ViwoError
    from ...terminal.loader import Script

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    rt = options.make_runtime(cfg)
    args = parse_args(arg_pairs, args_json)
    try:
        tree = rt.parse(expr, filename="<eval>")
    except ViwoError as e:
        from ...terminal.console import use_color

        click.echo(e.render(None if e.source else expr, color=use_color(sys.stderr)), err=True)
        raise Exit(EXIT_ERROR) from None
    script = Script(tree, "<eval>", expr, None, "eval")
    raise Exit(execute(cfg, rt, script, args=args, quiet=quiet, as_json=as_json, debug=debug, check=not no_check,
                       show_null=True))


def execute(cfg: Config, rt, script: Script, *, args: list, quiet: bool, as_json: bool, debug: bool, check: bool,
            show_null: bool, where: dict | None = None) -> int:
    """Check, run and print a loaded script with the Runtime ``rt``; returns the exit code. ``where``:
    metadata naming the executor, for the images this process makes (:func:`execute_on`)."""
    from ...errors import InterruptedError_, ViwoError
    from ...nodes import to_data
    from ...terminal.console import ImageSaver, Terminal, sigint_interrupts, use_color

    check_out_dir(cfg, script, rt)
    terminal = Terminal(ImageSaver(cfg.out_dir, script.stem), quiet=quiet)
    terminal.saver.where = where
    rt.on_event = terminal.on_event
    color = use_color(sys.stderr)
    text = script.text
    try:
        if check:
            from ...checker import check_tree

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
    from ...config import DEFAULT, ConfigError
    from ...terminal.console import may_make_images, out_dir_problem

    problem = out_dir_problem(cfg.out_dir)
    if problem is None or not may_make_images(script.tree, rt.registry):
        return
    source = cfg.settings["paths.out"].source
    where = "--out" if source == "--out" else "the output folder (default ./viwo-out)" if source == DEFAULT \
        else f"{source}: [paths] out"
    raise ConfigError(f"{where}: images cannot be saved: {problem}; nothing was run",
                      hint="pass --out DIR with a folder you can write to, or set [paths] out in viwo.toml")
