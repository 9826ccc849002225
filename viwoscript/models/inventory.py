"""What the host's model folders hold: checkpoints, LoRAs, embeddings and VAEs (``viwo models list/scan``).

Each file of ``[models] checkpoints_dir``, ``lora_dir``, ``embeddings_dir`` and ``vae_dir`` is one row:
its kind, its name (as scripts and A1111 name it: the path relative to the folder), size, family (read
from safetensors headers only: no tensor loads, no pickle is opened) and A1111 hash — the one A1111 writes
for that kind: ``Model hash`` (10 hex digits) for checkpoints and VAEs, the addnet hash (12) for LoRAs,
the file's short sha256 (12) for embeddings. ``list`` shows cached hashes only (instant); ``scan``
computes the missing ones (seconds per gigabyte) into the hash cache. Cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import embeddings, lora
from .checkpoints import CHECKPOINT_SUFFIXES, VARIANTS, detect, list_files, safetensors_header
from .config import MODEL_DIRS, ModelConfig
from .hashes import FileHashes, HashCache
from .vae import VAE_SUFFIXES

#: Kind → file suffixes found in its folder: the ones each kind's loader reads (pickles too: they are
#: listed, never opened, and load only with ``allow_pickle``).
SUFFIXES = {
    "checkpoint": CHECKPOINT_SUFFIXES,
    "lora": lora.SAFE_SUFFIXES + lora.PICKLE_SUFFIXES,
    "embedding": embeddings.SUFFIXES,
    "vae": VAE_SUFFIXES,
}
FAMILY_NAMES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL", 1280: "SDXL refiner"}


def model_files(config: ModelConfig) -> list[tuple[str, str, Path]]:
    """``(kind, name, path)`` of every file in the configured model folders."""
    out = []
    for key, kind in MODEL_DIRS.items():
        for name, path in list_files(config.model_dir(key), SUFFIXES[kind]):
            out.append((kind, name, path))
    return out


def missing_folders(config: ModelConfig) -> list[tuple[str, Path]]:
    """``(key, folder)`` of each configured model folder that does not exist or is not a folder (a typo
    in viwo.toml would otherwise just list nothing)."""
    return [(key, folder) for key in MODEL_DIRS if (folder := config.model_dir(key)) is not None
            and not folder.is_dir()]


def a1111_hash(kind: str, h: FileHashes | None) -> str | None:
    """The hash A1111 writes for a file of ``kind``."""
    if h is None:
        return None
    if kind == "lora":
        return h.addnet_short or h.short
    if kind == "embedding":
        return h.short
    return h.model


def family_of(kind: str, path: Path) -> str | None:
    """A label of the model family a file belongs to, from its safetensors header; ``None`` when unknown
    (pickles are never opened here)."""
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        header = safetensors_header(path)
    except (OSError, ValueError):
        return "unreadable"
    shapes = {k: tuple(v.get("shape", ())) for k, v in header.items() if isinstance(v, dict) and k != "__metadata__"}
    meta = header.get("__metadata__") if isinstance(header.get("__metadata__"), dict) else {}
    if kind == "checkpoint":
        variant, inpaint = detect(shapes)
        if variant is None:
            return "not a Stable Diffusion checkpoint"
        return VARIANTS[variant][3] + (" inpainting" if inpaint else "")
    if kind == "lora":
        arch = str(meta.get("modelspec.architecture", "") or meta.get("ss_base_model_version", "")).lower()
        if "xl" in arch:
            return "SDXL"
        if arch.startswith(("sd_v1", "stable-diffusion-v1")):
            return "SD 1.x"
        if arch.startswith(("sd_v2", "stable-diffusion-v2")):
            return "SD 2.x"
        if any(k.startswith(("lora_te2_", "lora_te1_")) for k in shapes):
            return "SDXL"
        for k, s in shapes.items():  # the cross-attention key projection reads the text encoder's width
            if ("attn2" in k and "to_k" in k and ("lora_down" in k or "lora_A" in k or "lora.down" in k)
                    and len(s) == 2):
                return FAMILY_NAMES.get(s[1])
        return None
    if kind == "embedding":
        if "clip_g" in shapes or "clip_l" in shapes:
            return "SDXL"
        for k, s in shapes.items():
            if s and (k == "emb_params" or k.startswith("string_to_param")):
                return FAMILY_NAMES.get(s[-1])
        return None
    return None


def inventory(config: ModelConfig, *, compute: bool = False, cache: HashCache | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """One row per file of the model folders: ``{kind, name, path, size, family, hash, sha256?, cached}``.
    ``compute``: hash files not in the cache (``progress(name, done_bytes, total_bytes)`` meanwhile)."""
    cache = cache or HashCache.for_config(config)
    rows = []
    for kind, name, path in model_files(config):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        h = cache.cached(path, addnet=kind == "lora" and path.suffix == ".safetensors")
        if h is None and compute:
            report = None if progress is None else (lambda done, total, n=name: progress(n, done, total))
            try:
                h = cache.hashes(path, addnet=True if kind == "lora" and path.suffix == ".safetensors" else None,
                                 progress=report)
            except OSError:
                h = None
        row: dict[str, Any] = {"kind": kind, "name": name, "path": str(path), "size": size,
                               "family": family_of(kind, path), "hash": a1111_hash(kind, h), "cached": h is not None}
        if h is not None:
            row["sha256"] = h.sha256
        rows.append(row)
    return rows


__all__ = ["SUFFIXES", "a1111_hash", "family_of", "inventory", "missing_folders", "model_files"]
