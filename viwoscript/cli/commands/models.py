"""``viwo models``: model helpers (``make-tiny``)."""

from __future__ import annotations

import click

from ..app import CONTEXT, cli


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
