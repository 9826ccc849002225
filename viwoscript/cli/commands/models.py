"""``viwo models``: the configured models and whether each can load (``list``); ``make-tiny``."""

from __future__ import annotations

import json

import click

from ..app import CONTEXT, EXIT_ERROR, EXIT_OK, Exit, cli, guarded
from ..options import config_option, make_config


@cli.group("models", context_settings=CONTEXT)
def models() -> None:
    """Model helpers (needs the diffusion extra: pip install 'viwoscript[diffusion]')."""


@models.command("make-tiny", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--family", default="sd15", show_default=True,
              type=click.Choice(["sd15", "sdxl", "sd15-inpaint", "sd15-controlnet", "sdxl-controlnet"]),
              help="Which pipeline layout to build.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same weights.")
def make_tiny(directory, family, seed) -> None:
    """Build a tiny random-weight model in DIRECTORY (diffusers layout) to try workflows without weights.

    \b
    Example:
      viwo models make-tiny tiny-sd15 && printf '[models]\\ndefault = "tiny-sd15"\\n' > viwo.toml
    """
    try:
        from ...models.tiny import make_tiny as build
    except ImportError as e:  # the diffusion extra is missing
        raise click.ClickException(f"{e}; install it with: pip install 'viwoscript[diffusion]'") from None
    try:
        import torch  # noqa: F401
    except ImportError:
        raise click.ClickException("torch is not installed: pip install 'viwoscript[diffusion]'") from None
    path = build(directory, family, seed=seed)
    click.echo(f"{family} tiny model written to {path}")


@models.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One object per model, as JSON.")
@config_option
@guarded
def list_models(as_json, config_path) -> None:
    """The models viwo.toml's [models] table names, each checked as a script would find it: its folder
    (or Hugging Face cache entry), family and native size, or why it cannot load. Reads JSON files only;
    never downloads. Exits 1 when one cannot load.

    \b
    Example:
      viwo models list
    """
    from ...models.config import ModelConfig
    from ...models.resolve import FAMILY_LABELS, configured_models

    cfg = make_config(config_path)
    rows = configured_models(ModelConfig.from_table(cfg.models))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        click.echo("no models configured: add a [models] table to viwo.toml (see docs/generation.md)")
    for row in [] if as_json else rows:
        head = f"{row['name']}  ({row['role']})"
        if row["available"]:
            what = FAMILY_LABELS.get(row.get("family"), row.get("family") or row["kind"])
            size = f", native {row['native_size']} px" if row.get("native_size") else ""
            inpaint = ", inpainting UNet" if row.get("inpaint_unet") else ""
            kind = " ControlNet" if row["kind"] == "controlnet" else ""
            where = row.get("path") or row.get("reason", "")
            click.echo(f"{head}: {what}{kind}{size}{inpaint} — {where}")
        else:
            click.echo(f"{head}: cannot load: {row['reason']}")
    raise Exit(EXIT_OK if all(r["available"] for r in rows) else EXIT_ERROR)
