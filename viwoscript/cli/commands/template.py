"""``viwo template``: workflow templates in the store (run one with ``viwo run template:NAME``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import cli
from ..options import fail, open_store, store_option


@cli.group("template")
def template():
    """Workflow templates: save, list, export, import, rm (run one with `viwo run template:NAME`)."""


@template.command("save")
@store_option
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--description", default="")
@click.option("--param", "params", multiple=True, metavar="NAME[:TYPE][=DEFAULT]",
              help="Declare a parameter (argument i of the script), e.g. prompt:string=\"a cat\".")
@click.option("--replace", is_flag=True, help="Replace a template of the same name.")
def template_save(store_dir, name, file, description, params, replace):
    """Save a script file as a template."""
    from ...runtime import Runtime
    from ...templates import PARAM_TYPES, template_from_script

    declared = []
    for spec in params:
        head, eq, default = spec.partition("=")
        pname, _, ptype = head.partition(":")
        if not pname or (ptype and ptype not in PARAM_TYPES):
            raise click.BadParameter(f"{spec!r}: expected NAME[:TYPE][=DEFAULT] with TYPE one of "
                                     f"{', '.join(PARAM_TYPES)}", param_hint="--param")
        d = {"name": pname, "type": ptype or "any"}
        if eq:
            try:
                d["default"] = json.loads(default)
            except ValueError:
                d["default"] = default
        declared.append(d)
    try:
        t = template_from_script(name, Path(file).read_text(encoding="utf-8"), description=description,
                                 parameters=declared, runtime=Runtime())  # plugins' opcodes count, as in run
        with open_store(store_dir, write=True) as s:
            _save(s, t, replace, "template save")
    except Exception as e:  # noqa: BLE001
        fail(e, "template save")
    click.echo(f"saved template {name}")


@template.command("list")
@store_option
def template_list(store_dir):
    """List templates."""
    try:
        with open_store(store_dir) as s:
            found = s.list_templates()
    except Exception as e:  # noqa: BLE001
        fail(e, "template list")
    for d in found:
        params = " ".join(p["name"] for p in d.get("parameters", []))
        click.echo(f"{d['name']}  {d.get('description', '')}" + (f"  ({params})" if params else ""))


@template.command("export")
@store_option
@click.argument("name")
@click.option("-o", "--output", type=click.Path(), help="File or folder (default: stdout).")
def template_export(store_dir, name, output):
    """Print or write a template as .viwo-template.json."""
    from ...templates import export_template, stored_template

    try:
        with open_store(store_dir) as s:
            t = stored_template(s, name)
    except Exception as e:  # noqa: BLE001
        fail(e, "template export")
    if output:
        click.echo(str(export_template(t, output)))
    else:
        click.echo(t.dumps(), nl=False)


@template.command("import")
@store_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace a template of the same name.")
def template_import(store_dir, file, replace):
    """Import a .viwo-template.json after checking its schema and script."""
    from ...runtime import Runtime
    from ...templates import load_template_file

    try:
        t = load_template_file(file, runtime=Runtime())
        with open_store(store_dir, write=True) as s:
            _save(s, t, replace, "template import")
    except Exception as e:  # noqa: BLE001
        fail(e, "template import")
    click.echo(f"imported template {t.name}")


@template.command("rm")
@store_option
@click.argument("name")
def template_rm(store_dir, name):
    """Delete a template."""
    try:
        with open_store(store_dir) as s:
            deleted = s.delete_template(name)
    except Exception as e:  # noqa: BLE001
        fail(e, "template rm")
    if not deleted:
        click.echo(f"error: template rm: no template named '{name}'\n  hint: `viwo template list` shows them", err=True)
        raise SystemExit(1)
    click.echo(f"deleted template {name}")


def _save(store, t, replace: bool, command: str) -> None:
    """Save a template; one of the same name is replaced only with --replace (the error says so)."""
    from ...errors import ScriptError

    if not replace and any(d.get("name") == t.name for d in store.list_templates()):
        raise ScriptError(f"a template named '{t.name}' already exists",
                          hint=f"pass --replace to replace it (`viwo {command} --replace ...`), or choose another name")
    store.save_template(t, replace=replace)
