"""``viwo images``: image entities in the store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import cli
from ..options import fail, open_store, store_option


@cli.group("images")
def images():
    """Image entities in the store: list, show, export, rm."""


@images.command("list")
@store_option
@click.option("--search", help="Only entities whose name or metadata contains this text, or whose id starts with it.")
@click.option("--json", "as_json", is_flag=True)
def images_list(store_dir, search, as_json):
    """List stored image entities."""
    try:
        with open_store(store_dir) as s:
            recs = s.list(kind="image", search=search)
    except Exception as e:  # noqa: BLE001
        fail(e, "images list")
    if as_json:
        click.echo(json.dumps(recs, ensure_ascii=False, indent=2))
        return
    for r in recs:
        seed = r["metadata"].get("seed")
        click.echo(f"{r['id']}  {r['name']}" + (f"  seed={seed}" if seed is not None else "")
                   + (f"  owner={r['owner']}" if r["owner"] else ""))


_LIST_HINT = "`viwo images list` shows the stored entities"


@images.command("show")
@store_option
@click.argument("entity_id")
def images_show(store_dir, entity_id):
    """Show one entity's record and metadata (ENTITY_ID: an id, or a unique prefix of one)."""
    try:
        with open_store(store_dir) as s:
            rec = s.require(entity_id, "images show", hint=_LIST_HINT)
            img = s.read_blob(rec["blob"])
    except Exception as e:  # noqa: BLE001
        fail(e, "images show")
    click.echo(json.dumps({**rec, "width": img.width, "height": img.height, "mode": img.mode},
                          ensure_ascii=False, indent=2))


@images.command("export")
@store_option
@click.argument("entity_id")
@click.argument("dest", type=click.Path(dir_okay=True))
def images_export(store_dir, entity_id, dest):
    """Write an entity's image to DEST (.png/.jpg/.webp, or a folder) with its metadata embedded
    (ENTITY_ID: an id, or a unique prefix of one)."""
    from ...io import write_image
    from ...values import Image

    try:
        with open_store(store_dir) as s:
            rec = s.require(entity_id, "images export", hint=_LIST_HINT)
            img = Image(s.read_blob(rec["blob"]).pixels, rec["metadata"])
        target = Path(dest)
        if target.is_dir():
            target = target / f"{rec['name'] or rec['id']}.png"
        click.echo(str(write_image(img, target, extra={"entity": {"id": rec["id"], "name": rec["name"]}})))
    except Exception as e:  # noqa: BLE001
        fail(e, "images export")


@images.command("rm")
@store_option
@click.argument("entity_ids", nargs=-1, required=True)
def images_rm(store_dir, entity_ids):
    """Delete entities (their image files go when no entity uses them). Ids may be unique prefixes."""
    from ...errors import ViwoError

    status = 0
    try:
        with open_store(store_dir) as s:
            for ref in entity_ids:
                try:
                    eid = s.resolve(ref, "images rm")
                except ViwoError as e:  # an ambiguous prefix: say so, go on with the others
                    click.echo(f"error: {e.message}" + (f"\n  hint: {e.hint}" if e.hint else ""), err=True)
                    status = 1
                    continue
                if eid is not None and s.delete(eid):
                    click.echo(f"deleted {eid}")
                else:
                    click.echo(f"error: images rm: no entity with id {ref}\n  hint: {_LIST_HINT}", err=True)
                    status = 1
            s.gc()
    except Exception as e:  # noqa: BLE001
        fail(e, "images rm")
    raise SystemExit(status)
