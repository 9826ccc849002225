"""``viwo caps``: the capabilities, whether each is available (and why not), their methods."""

from __future__ import annotations

import json

import click

from ..app import CONTEXT, EXIT_OK, Exit, cli, guarded
from ..options import config_option, make_config, make_runtime


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="get_capability_metadata plus availability, as JSON.")
@config_option
@guarded
def caps(as_json, config_path):
    """List the capabilities: available or not (and why), their methods and parameters."""
    from ...terminal import describe

    cfg = make_config(config_path)
    rt = make_runtime(cfg)
    entries = describe.capabilities(rt)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    describe.console().print(describe.caps_view(entries))
