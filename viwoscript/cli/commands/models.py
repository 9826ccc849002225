"""``viwo models``: the configured models and the files of the model folders (``list``, ``scan``); ``make-tiny``."""

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
@click.option("--json", "as_json", is_flag=True, help="One object per model and per file, as JSON.")
@config_option
@guarded
def list_models(as_json, config_path) -> None:
    """The models viwo.toml's [models] table names, each checked as a script would find it: its folder,
    checkpoint file or Hugging Face cache entry, family and native size, or why it cannot load. Then every
    file of checkpoints_dir, lora_dir, embeddings_dir and vae_dir with its family, size and A1111 hash
    (hashes already computed by `viwo models scan`; "-" where none is cached). Reads JSON and file
    headers only; never downloads. Exits 1 when a configured model cannot load or a configured folder
    does not exist.

    \b
    Example:
      viwo models list
      viwo models list --json | jq '.[] | select(.kind == "lora") | .name'
    """
    _show(config_path, as_json, compute=False)


@models.command("scan", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="One object per model and per file, as JSON.")
@config_option
@guarded
def scan_models(as_json, config_path) -> None:
    """Like `list`, and computes the A1111 hash of every file in the model folders that has none cached
    yet (sha256 of the whole file: seconds per gigabyte, with progress on stderr). Hashes are cached by
    path, size and modification time (model-hashes.json in [models] cache_dir, else the user cache
    folder), so a second scan, `list` and image metadata reuse them.

    \b
    Example:
      viwo models scan
    """
    _show(config_path, as_json, compute=True)


def _show(config_path, as_json: bool, *, compute: bool) -> None:
    from ...models.config import MODEL_DIRS, ModelConfig
    from ...models.inventory import inventory, missing_folders
    from ...models.resolve import FAMILY_LABELS, configured_models

    cfg = make_config(config_path)
    config = ModelConfig.from_table(cfg.models)
    rows = configured_models(config)
    files = inventory(config, compute=compute, progress=_progress() if compute and not as_json else None)
    missing = missing_folders(config)
    for key, folder in missing:
        what = "is not a folder" if folder.exists() else "does not exist"
        click.echo(f"warning: [models] {key} = {folder} {what}: nothing is listed or found there; "
                   f"fix {key} in {cfg.path or 'viwo.toml'}",
                   err=True)
    ok = all(r["available"] for r in rows) and not missing
    if as_json:
        click.echo(json.dumps(rows + [{"role": "file", **f} for f in files], ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK if ok else EXIT_ERROR)
    if not rows and not files:
        folders = ", ".join(MODEL_DIRS)
        click.echo(f"no models configured: add a [models] table to viwo.toml (an alias, default, or {folders}; "
                   "see docs/models.md)")
    for row in rows:
        head = f"{row['name']}  ({row['role']})"
        if row["available"]:
            what = FAMILY_LABELS.get(row.get("family"), row.get("family") or row["kind"])
            if row.get("variant"):
                what = row["variant"]
            size = f", native {row['native_size']} px" if row.get("native_size") else ""
            inpaint = ", inpainting UNet" if row.get("inpaint_unet") else ""
            kind = " ControlNet" if row["kind"] == "controlnet" else ""
            where = row.get("path") or row.get("reason", "")
            click.echo(f"{head}: {what}{kind}{size}{inpaint} — {where}")
        else:
            click.echo(f"{head}: cannot load: {row['reason']}")
    if files:
        _table(files, compute)
    raise Exit(EXIT_OK if ok else EXIT_ERROR)


def _table(files: list[dict], computed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Model files", title_justify="left")
    for col, kw in (("kind", {}), ("name", {"overflow": "fold"}), ("family", {}), ("size", {"justify": "right"}),
                    ("A1111 hash", {})):
        table.add_column(col, **kw)
    for f in files:
        table.add_row(f["kind"], f["name"], f["family"] or "-", _size(f["size"]), f["hash"] or "-")
    console = Console(width=max(100, Console().width), soft_wrap=False)
    console.print(table)
    if not computed and not all(f["hash"] for f in files):
        console.print("hashes marked - are not computed yet: run `viwo models scan`")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _progress():
    """A progress callback printing one updating line per file on stderr (at most every 5%)."""
    state = {"name": None, "pct": -5}

    def report(name: str, done: int, total: int) -> None:
        pct = 100 if not total else int(done * 100 / total)
        if name != state["name"]:
            state.update(name=name, pct=-5)
        if pct >= state["pct"] + 5 or done == total:
            state["pct"] = pct
            click.echo(f"\rhashing {name}: {pct}%", err=True, nl=done == total)

    return report
