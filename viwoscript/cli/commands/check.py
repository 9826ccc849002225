"""``viwo check``: every problem in scripts, without running them."""

from __future__ import annotations

import json
import sys

import click

from ..app import CONTEXT, EXIT_ERROR, EXIT_OK, Exit, cli, guarded
from ..options import plural


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as one JSON array.")
@guarded
def check(files, as_json):
    """Report every problem in scripts without running them; exit 1 if there is any.

    FILE is a script file, - for stdin, template:NAME, or an image viwo saved.

    \b
    Examples:
      viwo check examples/*.viwo
      viwo check --json workflow.json
    """
    from ...checker import check_tree
    from ...errors import ViwoError
    from ...runtime import Runtime
    from ...terminal.console import use_color
    from ...terminal.loader import SourceError, load_script

    rt = Runtime()
    color = use_color(sys.stdout)
    found: list[dict] = []
    errors = warnings = 0
    for file in files:
        text = None
        try:
            script = load_script(file, rt.parse)
            text = script.text
            diagnostics = check_tree(script.tree, rt.registry)
        except SourceError:
            raise  # a file that cannot be read is a usage error (exit 2), not a diagnostic
        except ViwoError as e:
            diagnostics = [e.to_diagnostic()]
            text = e.source
        for d in diagnostics:
            errors += d.severity == "error"
            warnings += d.severity != "error"
            if as_json:
                found.append({"file": file, **d.to_dict()})
            else:
                click.echo(d.render(text, color=color))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
    elif errors or warnings:
        click.echo(f"\n{plural(errors, 'error')} and {plural(warnings, 'warning')} in {plural(len(files), 'file')}",
                   err=True)
    else:
        click.echo(f"{plural(len(files), 'file')} checked: no problems", err=True)
    raise Exit(EXIT_ERROR if errors or warnings else EXIT_OK)
