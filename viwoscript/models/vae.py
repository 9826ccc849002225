"""VAE overrides: a model's images decoded (and encoded) by another VAE, per model or per call.

A1111 users swap VAEs (``vae-ft-mse-840000-ema-pruned``, ``sdxl_vae``) because a checkpoint's own one
gives washed-out or broken colours. Here a VAE is, in order:

- a path: a diffusers ``AutoencoderKL`` folder (``config.json`` + weights, or a pipeline folder's
  ``vae/``) or a single-file VAE (``.safetensors``; ``.pt``/``.ckpt`` only with ``allow_pickle``) — the
  host's anywhere, a script's only under the Runtime's roots;
- a name in ``[models] vae_dir``, with or without extension, as A1111's VAE menu shows it.

Which one applies: the call's ``vae`` option, else ``[models] vaes`` for the model (keyed by the name
the script used, an alias, or the checkpoint's file name), else the model's own. ``"none"`` or
``"model"`` selects the model's own. A single-file VAE takes its architecture from the model it is used
with (its ``vae/config.json``, or the shipped config of a checkpoint), so it needs no config of its own.
The loaded VAE is held by the model manager (one byte budget, LRU) and swapped into the pipeline for
the call only (shared ``from_pipe`` pipelines are never left holding it). Cheap to import.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import ScriptError
from .checkpoints import PICKLE_SUFFIXES, find_in_dir, pickle_refusal
from .config import ModelConfig
from .resolve import ResolvedModel

VAE_SUFFIXES = (".safetensors", ".pt", ".ckpt", ".bin", ".pth")
#: Values of the ``vae`` option meaning "the model's own VAE" (A1111's "None").
OWN = ("none", "model", "own", "automatic")


def configured_vae(model: ResolvedModel, config: ModelConfig) -> str | None:
    """The ``[models] vaes`` entry for ``model``: by the name the script used, its alias target, its
    path, or its checkpoint file name (with or without extension)."""
    if not config.vaes:
        return None
    keys = [model.name, config.aliases.get(model.name), str(model.path), model.path.name]
    if model.path.suffix:
        keys.append(model.path.stem)
    for k in keys:
        if k and k in config.vaes:
            return config.vaes[k]
    return None


def find_vae(name: str, config: ModelConfig, roots: list[Path], op: str, *, trusted: bool) -> Path:
    """The VAE file or folder called ``name`` (see the module docstring), or a ScriptError saying where
    it looked."""
    looked = []
    raw = Path(os.path.expanduser(name)) if trusted else Path(name)
    if trusted:
        looked.append(f"path {raw}")
        if raw.exists():
            return raw.resolve()
    elif roots and ".." not in raw.parts and (raw.is_absolute() or any((r / raw).exists() for r in roots)):
        from ..paths import resolve_under_roots

        return resolve_under_roots(name, roots, op)
    folder = config.model_dir("vae_dir")
    if folder is not None:
        looked.append(f"vae_dir {folder}")
        hit = find_in_dir(name, folder, VAE_SUFFIXES)
        if hit is not None:
            return hit
        rel = Path(name)
        if not rel.is_absolute() and ".." not in rel.parts and (folder / rel).is_dir():
            return folder / rel  # a diffusers VAE folder inside vae_dir
    raise ScriptError(f"{op}: VAE {name!r} not found", hint="looked in: " + ("; ".join(looked) or "nothing configured")
                      + "; put it in [models] vae_dir or give a path (a script's paths must be under its roots)")


def vae_config_source(model: ResolvedModel) -> tuple[Path, str]:
    """Where a single-file VAE used with ``model`` takes its architecture: ``(folder, subfolder)``."""
    if model.checkpoint is not None:
        return model.checkpoint.config_dir, "vae"
    return model.path, "vae"


def load_vae(path: Path, model: ResolvedModel, *, dtype: Any, allow_pickle: bool = False) -> Any:
    """An ``AutoencoderKL`` from a folder or a single file (architecture from ``model``, see above)."""
    from diffusers import AutoencoderKL

    if path.is_dir():
        folder = path if (path / "config.json").is_file() else path / "vae"
        if not (folder / "config.json").is_file():
            raise ScriptError(f"models: VAE folder {path} has no config.json",
                              hint="a diffusers AutoencoderKL folder holds config.json and the weights")
        return AutoencoderKL.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ScriptError(f"models: VAE {path.name}: {pickle_refusal(path)}")
    src, sub = vae_config_source(model)
    return AutoencoderKL.from_single_file(str(path), config=str(src), subfolder=sub, local_files_only=True,
                                          torch_dtype=dtype)


def pick_vae(model: ResolvedModel, config: ModelConfig, requested: str | None, roots: list[Path],
             op: str) -> tuple[Path, str] | None:
    """``(path, name)`` of the VAE one call of ``model`` uses instead of its own, or ``None``:
    ``requested`` (the ``vae`` option, a script's name) else the configured one. Finds files only (call it
    before anything loads, so a wrong name fails early)."""
    trusted = False
    name = requested
    if name is None:
        name, trusted = configured_vae(model, config), True
    if name is None or name.strip().lower() in OWN:
        return None
    return find_vae(name, config, roots, op, trusted=trusted), name


def hold_vae(mgr: Any, model: ResolvedModel, config: ModelConfig, path: Path, name: str, op: str) -> Any:
    """The VAE at ``path`` for ``model``, loaded once and held by the model manager ``mgr``."""
    from .device import device_policy
    from .manager import module_bytes

    device, dtype = device_policy(config)
    src = vae_config_source(model)

    def load():
        try:
            vae = load_vae(path, model, dtype=dtype, allow_pickle=config.allow_pickle)
        except ScriptError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            raise ScriptError(f"{op}: cannot load VAE {name!r} from {path}: {e}",
                              hint="a VAE is a diffusers AutoencoderKL folder or an SD/SDXL VAE file of the "
                                   "model's family") from None
        if device != "cpu":
            vae.to(device)
        return vae, module_bytes([vae])

    size = path.stat().st_size if path.is_file() else 0
    return mgr.hold(("vae", str(path), str(src[0]), device, str(dtype)), load, name=name, path=path, kind="vae",
                    estimate=size, device=device, dtype=dtype)


def vae_metadata(path: Path, name: str, config: ModelConfig) -> dict:
    """``{vae, vae_hash?}`` for image metadata (A1111's ``VAE`` and ``VAE hash``: sha256, 10 digits)."""
    out = {"vae": name}
    if path.is_file():
        from .hashes import HashCache

        try:
            out["vae_hash"] = HashCache.for_config(config).hashes(path).model
        except OSError:
            pass
    return out


@contextlib.contextmanager
def swapped_vae(pipe: Any, vae: Any):
    """``pipe`` with ``vae`` in place of its own for the block (nothing when ``vae`` is None)."""
    if vae is None:
        yield pipe
        return
    own = pipe.vae
    pipe.vae = vae
    try:
        yield pipe
    finally:
        pipe.vae = own


__all__ = ["OWN", "VAE_SUFFIXES", "configured_vae", "find_vae", "hold_vae", "load_vae", "pick_vae", "swapped_vae",
           "vae_metadata"]
