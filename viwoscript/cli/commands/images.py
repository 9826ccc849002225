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
@click.option("--search", help="Only entities whose name or metadata contains this text.")
@click.option("--json", "as_json", is_flag=True)
def images_list(store_dir, search, as_json):
    """List stored image entities."""
    with open_store(store_dir) as s:
        recs = s.list(kind="image", search=search)
    if as_json:
        click.echo(json.dumps(recs, ensure_ascii=False, indent=2))
        return
    for r in recs:
        seed = r["metadata"].get("seed")
        click.echo(f"{r['id']}  {r['name']}" + (f"  seed={seed}" if seed is not None else "")
                   + (f"  owner={r['owner']}" if r["owner"] else ""))


@images.command("show")
@store_option
@click.argument("entity_id")
def images_show(store_dir, entity_id):
    """Show one entity's record and metadata."""
    try:
        with open_store(store_dir) as s:
            rec = s.require(entity_id, "images show")
            img = s.read_blob(rec["blob"])
    except Exception as e:  # noqa: BLE001
        fail(e)
    click.echo(json.dumps({**rec, "width": img.width, "height": img.height, "mode": img.mode},
                          ensure_ascii=False, indent=2))


@images.command("export")
@store_option
@click.argument("entity_id")
@click.argument("dest", type=click.Path(dir_okay=True))
def images_export(store_dir, entity_id, dest):
    """Write an entity's image to DEST (.png/.jpg/.webp, or a folder) with its metadata embedded."""
    from ...io import write_image
    from ...values import Image

    try:
        with open_store(store_dir) as s:
            rec = s.require(entity_id, "images export")
            img = Image(s.read_blob(rec["blob"]).pixels, rec["metadata"])
        target = Path(dest)
        if target.is_dir():
            target = target / f"{rec['name'] or rec['id']}.png"
        click.echo(str(write_image(img, target, extra={"entity": {"id": rec["id"], "name": rec["name"]}})))
    except Exception as e:  # noqa: BLE001
        fail(e)


@images.command("rm")
@store_option
@click.argument("entity_ids", nargs=-1, required=True)
def images_rm(store_dir, entity_ids):
    """Delete entities (their image files go when no entity uses them)."""
    status = 0
    with open_store(store_dir) as s:
        for eid in entity_ids:
            if s.delete(eid):
                click.echo(f"deleted {eid}")
            else:
                click.echo(f"error: no entity with id {eid}", err=True)
                status = 1
        s.gc()
    raise SystemExit(status)
