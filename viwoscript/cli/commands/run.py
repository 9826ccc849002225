"""``viwo run`` and ``viwo eval``: check, run and print a script."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .. import options
from ..app import CONTEXT, EXIT_ERROR, Exit, cli, guarded
from ..execute import execute
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
@click.option("--arg-sets", "arg_sets", type=click.Path(dir_okay=False), metavar="FILE",
              help="Run the script once per argument set in FILE (JSON: a list of argument lists, or of objects "
                   "of template parameters), each set a whole job: one after another here, or at the same time "
                   "on the workers with --executor ray. Images are saved as NAME-setNNN-001.png.")
@guarded
def run(file, arg_pairs, args_json, config_path, gas, timeout, size, out, roots, runner, quiet, as_json, debug,
        no_check, show_script, executor, arg_sets):
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
      viwo run template:sweep --arg-sets prompts.json --executor ray
    """
    from ...executors.settings import executor_config
    from ...terminal.loader import load_script

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    ec = executor_config(cfg, executor)
    if arg_sets is not None:
        from .run_sets import run_sets

        if arg_pairs or args_json or show_script:
            raise click.UsageError("--arg-sets gives every run its arguments: leave out --arg, --args-json and "
                                   "--show-script")
        raise Exit(run_sets(file, arg_sets, cfg, ec, models=_model_config(cfg), quiet=quiet, as_json=as_json,
                            debug=debug, check=not no_check, show_null=as_json))
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
