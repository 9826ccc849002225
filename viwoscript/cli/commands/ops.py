"""``viwo ops``: the opcodes, listed or described."""

from __future__ import annotations

import json

import click

from ..app import CONTEXT, EXIT_ERROR, EXIT_OK, Exit, cli, guarded


@cli.command(context_settings=CONTEXT)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="The get_opcodes metadata (a JSON array).")
@guarded
def ops(pattern, as_json):
    """List opcodes with their signatures, or describe one.

    PATTERN is an opcode name (describe it), a glob (canvas.*) or a substring (matching names and
    categories).

    \b
    Examples:
      viwo ops                  every opcode
      viwo ops str.             the string opcodes
      viwo ops std.let          one opcode in full
      viwo ops --json > ops.json
    """
    from ...runtime import Runtime
    from ...terminal import describe

    rt = Runtime()
    specs = describe.match_ops(rt.registry, pattern)
    if as_json:
        click.echo(json.dumps([s.to_metadata() for s in specs], ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    if not specs:
        hint = describe.suggest(rt.registry, pattern)
        click.echo(f"no opcode matches {pattern!r}{hint}", err=True)
        raise Exit(EXIT_ERROR)
    console = describe.console()
    if pattern and len(specs) == 1 and specs[0].name == pattern:
        console.print(describe.describe_op(specs[0]))
    else:
        console.print(describe.op_list(specs))
