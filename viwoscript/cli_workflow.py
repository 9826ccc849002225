"""Workflow commands for the ``viwo`` CLI: ``info``, ``images``, ``template``.

Attach them in ``viwoscript/cli.py`` with ``for c in WORKFLOW_COMMANDS: cli.add_command(c)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

STORE_OPTION = click.option("--store", "store_dir", type=click.Path(file_okay=False), metavar="DIR",
                            help="Store folder (default: the user data folder).")


def _open_store(store_dir):
    from .store import Store

    return Store(store_dir)


def _fail(e) -> None:
    from .errors import ViwoError

    if isinstance(e, ViwoError):
        click.echo(f"error: {e.message}" + (f"\n  hint: {e.hint}" if e.hint else ""), err=True)
        raise SystemExit(1)
    raise e


@click.command("info")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole metadata as JSON.")
@click.option("--raw", is_flag=True, help="Also print the raw metadata fields.")
def info(images, as_json, raw):
    """Print what made an image: viwo, A1111, ComfyUI or InvokeAI metadata.

    \b
    Examples:
      viwo info viwo-out/hello-001.png
      viwo info --json photo.jpg
    """
    from .errors import ViwoError
    from .io import read_metadata
    from .io.metadata import FIELDS

    status = 0
    for path in images:
        if not Path(path).is_file():  # a missing file is a usage error (exit 2), like `viwo run`
            click.echo(f"error: info: no such file: {path}", err=True)
            status = 2
            continue
        try:
            meta = read_metadata(path)
        except ViwoError as e:
            click.echo(f"error: {e.message}", err=True)
            status = max(status, 1)
            continue
        if as_json:
            click.echo(json.dumps(meta if raw else {k: v for k, v in meta.items() if k != "raw"},
                                  ensure_ascii=False, indent=2, default=str))
            continue
        click.echo(f"{path}: {meta['format']} {meta['width']}×{meta['height']} {meta['mode']}")
        click.echo(f"  metadata: {', '.join(meta['sources']) or 'none'}")
        for name in FIELDS:
            if meta.get(name) is not None:
                value = meta[name]
                click.echo(f"  {name}: {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}")
        if meta.get("script") is not None:
            from .syntax import from_python, to_text

            try:
                text = to_text(from_python(meta["script"])) if not isinstance(meta["script"], str) else meta["script"]
            except Exception:  # noqa: BLE001 - show what is there
                text = json.dumps(meta["script"])
            click.echo("  script: " + text.replace("\n", "\n          "))
            if meta.get("args"):
                click.echo(f"  args: {json.dumps(meta['args'], ensure_ascii=False)}")
        for err in meta["errors"]:
            click.echo(f"  warning: {err}")
        if meta["unknown"]:
            click.echo(f"  unknown fields: {', '.join(meta['unknown'])}")
        if raw:
            for k, v in meta["raw"].items():
                click.echo(f"  raw {k}: {v[:2000]}")
    raise SystemExit(status)


@click.group("images")
def images():
    """Image entities in the store: list, show, export, rm."""


@images.command("list")
@STORE_OPTION
@click.option("--search", help="Only entities whose name or metadata contains this text.")
@click.option("--json", "as_json", is_flag=True)
def images_list(store_dir, search, as_json):
    """List stored image entities."""
    with _open_store(store_dir) as s:
        recs = s.list(kind="image", search=search)
    if as_json:
        click.echo(json.dumps(recs, ensure_ascii=False, indent=2))
        return
    for r in recs:
        seed = r["metadata"].get("seed")
        click.echo(f"{r['id']}  {r['name']}" + (f"  seed={seed}" if seed is not None else "")
                   + (f"  owner={r['owner']}" if r["owner"] else ""))


@images.command("show")
@STORE_OPTION
@click.argument("entity_id")
def images_show(store_dir, entity_id):
    """Show one entity's record and metadata."""
    try:
        with _open_store(store_dir) as s:
            rec = s.require(entity_id, "images show")
            img = s.read_blob(rec["blob"])
    except Exception as e:  # noqa: BLE001
        _fail(e)
    click.echo(json.dumps({**rec, "width": img.width, "height": img.height, "mode": img.mode},
                          ensure_ascii=False, indent=2))


@images.command("export")
@STORE_OPTION
@click.argument("entity_id")
@click.argument("dest", type=click.Path(dir_okay=True))
def images_export(store_dir, entity_id, dest):
    """Write an entity's image to DEST (.png/.jpg/.webp, or a folder) with its metadata embedded."""
    from .io import write_image
    from .values import Image

    try:
        with _open_store(store_dir) as s:
            rec = s.require(entity_id, "images export")
            img = Image(s.read_blob(rec["blob"]).pixels, rec["metadata"])
        target = Path(dest)
        if target.is_dir():
            target = target / f"{rec['name'] or rec['id']}.png"
        click.echo(str(write_image(img, target, extra={"entity": {"id": rec["id"], "name": rec["name"]}})))
    except Exception as e:  # noqa: BLE001
        _fail(e)


@images.command("rm")
@STORE_OPTION
@click.argument("entity_ids", nargs=-1, required=True)
def images_rm(store_dir, entity_ids):
    """Delete entities (their image files go when no entity uses them)."""
    status = 0
    with _open_store(store_dir) as s:
        for eid in entity_ids:
            if s.delete(eid):
                click.echo(f"deleted {eid}")
            else:
                click.echo(f"error: no entity with id {eid}", err=True)
                status = 1
        s.gc()
    raise SystemExit(status)


@click.group("template")
def template():
    """Workflow templates: save, list, export, import, rm (run one with `viwo run template:NAME`)."""


@template.command("save")
@STORE_OPTION
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--description", default="")
@click.option("--param", "params", multiple=True, metavar="NAME[:TYPE][=DEFAULT]",
              help="Declare a parameter (argument i of the script), e.g. prompt:string=\"a cat\".")
@click.option("--replace", is_flag=True, help="Replace a template of the same name.")
def template_save(store_dir, name, file, description, params, replace):
    """Save a script file as a template."""
    from .templates import template_from_script

    declared = []
    for spec in params:
        head, eq, default = spec.partition("=")
        pname, _, ptype = head.partition(":")
        d = {"name": pname, "type": ptype or "any"}
        if eq:
            try:
                d["default"] = json.loads(default)
            except ValueError:
                d["default"] = default
        declared.append(d)
    try:
        t = template_from_script(name, Path(file).read_text(encoding="utf-8"), description=description,
                                 parameters=declared)
        with _open_store(store_dir) as s:
            s.save_template(t, replace=replace)
    except Exception as e:  # noqa: BLE001
        _fail(e)
    click.echo(f"saved template {name}")


@template.command("list")
@STORE_OPTION
def template_list(store_dir):
    """List templates."""
    with _open_store(store_dir) as s:
        for d in s.list_templates():
            params = " ".join(p["name"] for p in d.get("parameters", []))
            click.echo(f"{d['name']}  {d.get('description', '')}" + (f"  ({params})" if params else ""))


@template.command("export")
@STORE_OPTION
@click.argument("name")
@click.option("-o", "--output", type=click.Path(), help="File or folder (default: stdout).")
def template_export(store_dir, name, output):
    """Print or write a template as .viwo-template.json."""
    from .templates import export_template

    try:
        with _open_store(store_dir) as s:
            t = s.load_template(name)
    except Exception as e:  # noqa: BLE001
        _fail(e)
    if output:
        click.echo(str(export_template(t, output)))
    else:
        click.echo(t.dumps(), nl=False)


@template.command("import")
@STORE_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True)
def template_import(store_dir, file, replace):
    """Import a .viwo-template.json after checking its schema and script."""
    from .templates import load_template_file

    try:
        t = load_template_file(file)
        with _open_store(store_dir) as s:
            s.save_template(t, replace=replace)
    except Exception as e:  # noqa: BLE001
        _fail(e)
    click.echo(f"imported template {t.name}")


@template.command("rm")
@STORE_OPTION
@click.argument("name")
def template_rm(store_dir, name):
    """Delete a template."""
    with _open_store(store_dir) as s:
        if not s.delete_template(name):
            click.echo(f"error: no template named '{name}'", err=True)
            raise SystemExit(1)
    click.echo(f"deleted template {name}")


def template_script(spec: str, store_dir=None, args: list | dict | None = None) -> tuple:
    """For ``viwo run template:NAME``: (script JSON data, bound args) of a stored template."""
    name = spec.removeprefix("template:")
    with _open_store(store_dir) as s:
        t = s.load_template(name)
    return t.script, t.bind(args)


WORKFLOW_COMMANDS = (info, images, template)
