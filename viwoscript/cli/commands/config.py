"""``viwo config``: the effective configuration and where each value came from."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..app import CONTEXT, EXIT_ERROR, EXIT_OK, EXIT_USAGE, Exit, cli, guarded
from ..options import make_config, make_runtime, runtime_options

if TYPE_CHECKING:
    from ...config import Config


@cli.command("config", context_settings=CONTEXT)
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--path", "path_only", is_flag=True, help="Print only the path of the file in use.")
@guarded
def config_(config_path, gas, timeout, size, out, roots, runner, as_json, path_only):
    """Show the effective configuration and where each value came from.

    The file read is --config FILE, else ./viwo.toml, else viwo.toml in the user config directory.
    The same flags as `viwo run` (--gas, --size, ...) show how they override it.
    """
    from ...config import RELEVANT_ENV, user_config_file
    from ...terminal import describe

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    if path_only:
        if cfg.path is None:
            raise Exit(EXIT_ERROR)
        click.echo(str(cfg.path))
        raise Exit(EXIT_OK)
    env = {k: os.environ[k] for k in RELEVANT_ENV if k in os.environ}
    if as_json:
        click.echo(json.dumps({"file": str(cfg.path) if cfg.path else None, "settings": cfg.to_dict(),
                               "environment": env}, ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    describe.console().print(describe.config_view(cfg, env, [Path.cwd() / "viwo.toml", user_config_file()]))
    problem = grants_problem(cfg)
    if problem is not None:
        from ...terminal.console import use_color

        click.echo("\n" + problem.render(color=use_color(sys.stderr)), err=True)
        raise Exit(EXIT_USAGE)


def grants_problem(cfg: Config):
    """The error the configured grants cause (an unknown type or limit), or None."""
    if cfg.grants in ("default", []):
        return None
    from ...errors import ViwoError

    try:
        make_runtime(cfg).caps  # noqa: B018 - creating the manager applies the grants
    except ViwoError as e:
        return e
    except ImportError:
        return None
    return None
