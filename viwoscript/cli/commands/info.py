"""``viwo info``: what made an image (viwo, A1111, ComfyUI or InvokeAI metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import cli


@cli.command("info")
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
    from ...errors import ViwoError
    from ...io import read_metadata
    from ...io.metadata import FIELDS

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
            from ...syntax import from_python, to_text

            try:
                text = to_text(from_python(meta["script"])) if not isinstance(meta["script"], str) else meta["script"]
            except Exception:  # noqa: BLE001 - show what is there
                text = json.dumps(meta["script"])
            click.echo("  script: " + text.rstrip("\n").replace("\n", "\n          "))
            if meta.get("args"):
                click.echo(f"  args: {json.dumps(meta['args'], ensure_ascii=False)}")
        elif isinstance(meta.get("viwo"), dict):  # viwoscript wrote it: say why there is no script
            from ...terminal.loader import missing_script_reason

            click.echo(f"  script: none — {missing_script_reason(meta)}")
        for err in meta["errors"]:
            click.echo(f"  warning: {err}")
        if meta["unknown"]:
            click.echo(f"  unknown fields: {', '.join(meta['unknown'])}")
        if raw:
            for k, v in meta["raw"].items():
                click.echo(f"  raw {k}: {v[:2000]}")
    raise SystemExit(status)
