"""Host configuration of the model-running capabilities: :class:`ModelConfig`.

It never reaches scripts. The CLI builds one from ``viwo.toml``'s ``[models]`` table; an embedding
program builds its own and passes :func:`viwoscript.capabilities.capabilities` to ``Runtime(capabilities=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ArgumentError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: Keys of a ``[models]`` table that are settings, not aliases.
SETTINGS = ("default", "inpaint", "controlnets", "annotators", "device", "dtype", "cpu_offload", "vae_tiling",
            "vae_slicing", "safety_checker", "cache_bytes", "download", "upscale_dir", "face_detector",
            "checkpoints_dir", "lora_dir", "embeddings_dir", "vae_dir", "vaes", "allow_pickle", "cache_dir")
#: Settings that are paths on the host (a relative one in viwo.toml is relative to the file's folder).
PATH_SETTINGS = ("checkpoints_dir", "lora_dir", "embeddings_dir", "vae_dir", "cache_dir", "upscale_dir",
                 "face_detector")
#: The model folders of ``[models]`` (A1111/ComfyUI layouts): key → what lives there (``viwo models scan``).
MODEL_DIRS = {"checkpoints_dir": "checkpoint", "lora_dir": "lora", "embeddings_dir": "embedding",
              "vae_dir": "vae"}


@dataclass(frozen=True)
class ModelConfig:
    """Which models exist for scripts and how they are loaded.

    ``aliases`` maps short names to a local diffusers directory or a Hugging Face id (looked up in the
    local HF cache). ``default`` is the model used when a script names none (an alias, path or id; when
    unset, the alias ``default`` or else the first alias). ``inpaint`` is the default model of
    ``diffusers.inpaint`` (else ``default``). ``controlnets`` maps a control type (``canny``,
    ``scribble``, ...) to one ControlNet id or a list (one per base family, SD1.5 and SDXL).
    ``annotators`` is a local copy of the ``lllyasviel/Annotators`` weights (scribble, hed, depth,
    openpose and lineart preprocessors; canny and invert need none); a value that is not a local folder
    is a Hugging Face id, fetched only with ``download``.
    ``device``/``dtype`` ``"auto"``: CUDA with float16 when available, else CPU with float32.
    ``cache_bytes`` bounds every weight kept loaded (``None``: 16 GiB). ``download``: fetch missing
    Hugging Face ids, only the files diffusers loads (never when ``HF_HUB_OFFLINE`` is set).
    ``upscale_dir`` is the folder of ``diffusers.upscale``'s weight files (``RealESRGAN_x4plus.pth``,
    ...) and ``face_detector`` its YuNet ONNX file (else looked for in ``upscale_dir``); see
    ``docs/upscale.md``.

    Model folders as A1111, ComfyUI or InvokeAI keep them (see ``docs/models.md``): ``checkpoints_dir``
    holds single-file checkpoints (``.safetensors``; ``.ckpt`` only with ``allow_pickle``, since loading a
    pickle runs code), each a model by its file name; ``lora_dir`` LoRA files, ``embeddings_dir``
    textual-inversion embeddings, ``vae_dir`` VAE files or folders. ``vaes`` maps a model name (alias,
    checkpoint name or path) to the VAE it uses instead of its own (a name in ``vae_dir``, a single-file
    VAE or a diffusers ``AutoencoderKL`` folder). ``cache_dir`` is where small caches live (the A1111 hash
    cache ``model-hashes.json``); default: the user cache folder (``platformdirs``).
    """

    aliases: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None
    inpaint: str | None = None
    controlnets: Mapping[str, Any] = field(default_factory=dict)
    annotators: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    safety_checker: bool = False
    cache_bytes: int | None = None
    download: bool = False
    upscale_dir: str | None = None
    face_detector: str | None = None
    checkpoints_dir: str | None = None
    lora_dir: str | None = None
    embeddings_dir: str | None = None
    vae_dir: str | None = None
    vaes: Mapping[str, str] = field(default_factory=dict)
    allow_pickle: bool = False
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ArgumentError(f"models: unknown device {self.device!r}", hint="one of " + ", ".join(DEVICES))
        if self.dtype not in DTYPES:
            raise ArgumentError(f"models: unknown dtype {self.dtype!r}", hint="one of " + ", ".join(DTYPES))
        for name in ("upscale_dir", "face_detector", "cache_dir", *MODEL_DIRS):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and v):
                raise ArgumentError(f"models: {name} must be a path (a string), got {v!r}",
                                    hint=f'e.g. {name} = "/models/{name.removesuffix("_dir")}"')
        if not (isinstance(self.vaes, Mapping) and all(isinstance(k, str) and isinstance(v, str) and v
                                                       for k, v in self.vaes.items())):
            raise ArgumentError(f"models: vaes must be a table of model name = VAE name or path, got {self.vaes!r}",
                                hint='e.g. vaes = { sd15 = "vae-ft-mse-840000-ema-pruned" }')
        if not isinstance(self.allow_pickle, bool):
            raise ArgumentError(f"models: allow_pickle must be true or false, got {self.allow_pickle!r}")

    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None) -> ModelConfig:
        """From a ``[models]`` table: setting keys (:data:`SETTINGS`) plus ``alias = "dir or hf id"``."""
        table = dict(table or {})
        kw = {k: table.pop(k) for k in SETTINGS if k in table}
        for k, v in table.items():
            if not isinstance(v, str):
                raise ArgumentError(f"models: alias {k!r} must be a string (a local folder or a Hugging Face id)")
        return cls(aliases=table, **kw)

    @property
    def default_model(self) -> str | None:
        if self.default:
            return self.default
        if "default" in self.aliases:
            return "default"
        return next(iter(self.aliases), None)

    @property
    def configured(self) -> bool:
        return self.default_model is not None

    def load_key(self) -> tuple:
        """What changes how weights load: part of the cache key, so differently loaded copies never mix."""
        return (self.device, self.dtype, self.cpu_offload, self.safety_checker)

    def model_dir(self, key: str) -> Path | None:
        """The folder of :data:`MODEL_DIRS` ``key`` (``~`` expanded) as a ``Path``, or ``None`` when unset."""
        if key not in MODEL_DIRS:
            raise KeyError(key)
        value = getattr(self, key)
        return Path(os.path.expanduser(value)) if value else None

    def replace(self, **kw) -> ModelConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(kw)
        return ModelConfig(**values)
