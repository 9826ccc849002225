"""``viwo fmt``: canonical formatting, and conversion between the text and JSON forms."""

from __future__ import annotations

from pathlib import Path

import click

from ..app import CONTEXT, EXIT_ERROR, EXIT_OK, Exit, cli, guarded
from ..options import plural


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--to", "target", type=click.Choice(["text", "json"]), help="Convert to this form.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if a file is not canonically formatted.")
@click.option("--write", "-w", is_flag=True,
              help="Rewrite files in place (with --to: write NAME.viwo / NAME.json beside them).")
@click.option("--drop-comments", is_flag=True, help="Allow --write to drop comments (the printer loses them).")
@guarded
def fmt(files, target, check_only, write, drop_comments):
    """Print scripts in canonical form, or convert between the text and JSON forms.

    Without --write the result goes to stdout (give one file, or - for stdin).

    \b
    Examples:
      viwo fmt sketch.viwo                   print canonically formatted
      viwo fmt --check examples/*.viwo       exit 1 if any would change
      viwo fmt --to json sketch.viwo         the JSON form on stdout
      viwo fmt --to json --write sketch.viwo writes sketch.json
    """
    from ...runtime import Runtime
    from ...syntax import detect_syntax, to_json, to_text
    from ...terminal.lexer import count_comments, has_code
    from ...terminal.loader import is_image_file, load_script

    if check_only and (write or target):
        raise click.UsageError("--check compares files with their own canonical form; use it without --to/--write")
    if not (write or check_only) and len(files) > 1:
        raise click.UsageError("give one file to print, or use --write / --check for several")
    rt = Runtime()
    changed = failed = skipped = 0
    for file in files:
        if file != "-" and is_image_file(file):
            raise click.BadParameter(f"{file} is an image; fmt works on script files", param_hint="FILE")
        if file.startswith("template:"):
            raise click.BadParameter(f"{file} is a template; fmt works on script files (`viwo template export "
                                     f"{file.removeprefix('template:')}` prints it)", param_hint="FILE")
        script = load_script(file, rt.parse)
        text, tree = script.text, script.tree
        syntax = detect_syntax(text, script.filename)
        form = target or syntax
        new = to_text(tree, slots=rt.registry.slot_kind) if form == "text" else to_json(tree) + "\n"
        if form == "text" and not has_code(text, syntax):
            new = ""  # an empty script (or only comments) prints as nothing, not as `null`
        comments = count_comments(text) if syntax == "text" else 0
        if check_only:
            if comments:  # the canonical form has no comments: it would always differ
                skipped += 1
                click.echo(f"skipped {file}: it has comments, which the printer does not keep yet", err=True)
            elif new != text:
                changed += 1
                click.echo(f"would reformat {file}", err=True)
            continue
        if not write:
            if comments:
                click.echo(f"warning: {file}: {plural(comments, 'comment')} not kept in the output", err=True)
            click.echo(new, nl=False)
            continue
        dest = Path(file) if form == syntax else Path(file).with_suffix(".viwo" if form == "text" else ".json")
        if file == "-":
            raise click.UsageError("--write needs files, not stdin")
        if comments and not drop_comments:
            click.echo(f"error: {file}: formatting would drop {plural(comments, 'comment')}; not written\n"
                       "  = help: the printer does not keep comments yet; pass --drop-comments to write anyway",
                       err=True)
            failed += 1
            continue
        if dest.exists() and dest.read_text(encoding="utf-8") == new:
            continue
        if dest != Path(file) and dest.exists():
            click.echo(f"error: {file}: {dest} already exists; not overwritten\n"
                       f"  = help: move or remove {dest} first, or print with `viwo fmt --to {form} {file}`", err=True)
            failed += 1
            continue
        dest.write_text(new, encoding="utf-8")
        changed += 1
        click.echo(f"wrote {dest}", err=True)
    if check_only:
        note = f", {skipped} skipped" if skipped else ""
        click.echo(f"{plural(changed, 'file')} would be reformatted, {len(files) - changed - skipped} already "
                   f"formatted{note}", err=True)
        raise Exit(EXIT_ERROR if changed else EXIT_OK)
    raise Exit(EXIT_ERROR if failed else EXIT_OK)
