"""Model names → local folders or checkpoint files, and what they hold (family, inpaint UNet, native size).

A name is, in order: an alias from the host's configuration (whose target the host trusts: any local
folder, single-file checkpoint or Hugging Face id); a single-file checkpoint (a path, or a file in the
host's ``checkpoints_dir`` by its name, see :mod:`.checkpoints`); a diffusers folder under the Runtime's
allowed roots; a Hugging Face id
(``org/name``) already in the local Hugging Face cache (downloaded only when the host allows it and
``HF_HUB_OFFLINE`` is not set). The family comes from the model's own config files (``model_index.json``,
the ControlNet's ``config.json``), never from its name. Reading these JSON files is all that happens
here: nothing loads weights, so limits can be checked first.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ScriptError
from .config import ModelConfig

HF_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+\Z")
#: model_index.json ``_class_name`` → family. Pipelines of one family share components via ``from_pipe``.
PIPELINE_FAMILIES = {
    "StableDiffusionPipeline": "sd15", "StableDiffusionImg2ImgPipeline": "sd15",
    "StableDiffusionInpaintPipeline": "sd15", "StableDiffusionControlNetPipeline": "sd15",
    "StableDiffusionControlNetImg2ImgPipeline": "sd15", "StableDiffusionControlNetInpaintPipeline": "sd15",
    "StableDiffusionXLPipeline": "sdxl", "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl", "StableDiffusionXLControlNetPipeline": "sdxl",
    "StableDiffusionXLControlNetImg2ImgPipeline": "sdxl", "StableDiffusionXLControlNetInpaintPipeline": "sdxl",
}
FAMILY_LABELS = {"sd15": "Stable Diffusion 1.x/2.x", "sdxl": "Stable Diffusion XL"}
_MAX_ALIAS_DEPTH = 8


@dataclass(frozen=True)
class ResolvedModel:
    """A model found on disk: ``kind`` is ``pipeline`` or ``controlnet``."""

    name: str
    path: Path
    kind: str
    family: str
    class_name: str
    inpaint_unet: bool = False
    native_size: int = 512
    source: str = "folder"
    #: A single-file checkpoint's detected kind and config folder (``source == "checkpoint"``).
    checkpoint: Any = None

    def to_metadata(self) -> dict:
        out = {"name": self.name, "family": self.family, "class": self.class_name, "source": self.source}
        if self.checkpoint is not None:
            out["variant"] = self.checkpoint.variant
        return out


def offline() -> bool:
    """Whether Hugging Face offline mode is on (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve(name: str, config: ModelConfig, roots: list[Path], op: str, *, kind: str = "pipeline",
            trusted: bool = False, fetch: bool = True) -> ResolvedModel:
    """Find model ``name``; ``trusted`` names come from the host (paths anywhere), others from scripts.
    ``fetch=False`` never downloads (a check, e.g. ``viwo caps``)."""
    looked: list[str] = []
    target, host = name, trusted
    for _ in range(_MAX_ALIAS_DEPTH):
        if target in config.aliases:
            looked.append(f"alias {target!r}")
            target, host = config.aliases[target], True
        else:
            break
    if kind == "pipeline":
        file = _as_checkpoint(target, roots, op, host, config, looked)
        if file is not None:
            return describe_checkpoint(name, file, config, op)
    path = _as_folder(target, roots, op, host, looked)
    source = "folder"
    if path is None and HF_ID_RE.match(target):
        path = _from_hf_cache(target, kind, config, looked, fetch)
        source = "huggingface"
    if path is None:
        raise ScriptError(f"{op}: model {name!r} not found",
                          hint="looked in: " + "; ".join(looked or ["nothing configured"])
                          + f"; configure it in viwo.toml: [models] {_key(name)} = \"/path/to/diffusers/folder, "
                          "model.safetensors or org/name from the Hugging Face cache\", or set checkpoints_dir")
    return describe(name, path, kind, op, source)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else "my-model"


def _as_checkpoint(target: str, roots: list[Path], op: str, host: bool, config: ModelConfig,
                   looked: list[str]) -> Path | None:
    """A single-file checkpoint: a file path (the host's anywhere, a script's under the roots) or a file
    in ``checkpoints_dir`` by its name (with or without extension, subfolders as A1111 shows them)."""
    from . import checkpoints as ck

    raw = Path(os.path.expanduser(target)) if host else Path(target)
    if raw.suffix.lower() in ck.CHECKPOINT_SUFFIXES + ck.PICKLE_SUFFIXES:
        if host:
            if raw.is_file():
                return raw.resolve()
        elif roots and ".." not in raw.parts and (raw.is_absolute() or any((r / raw).is_file() for r in roots)):
            from ..paths import resolve_under_roots

            found = resolve_under_roots(target, roots, op)  # refuses paths outside the roots
            if found.is_file():
                return found
    folder = config.model_dir("checkpoints_dir")
    if folder is not None:
        looked.append(f"checkpoints_dir {folder}")
        return ck.find_in_dir(target, folder, ck.CHECKPOINT_SUFFIXES + (".pt", ".pth"))
    return None


def describe_checkpoint(name: str, path: Path, config: ModelConfig, op: str) -> ResolvedModel:
    """A single-file checkpoint as a model: its kind from the weight keys (header only), no weights load."""
    from .checkpoints import inspect_checkpoint

    info = inspect_checkpoint(path, allow_pickle=config.allow_pickle, op=op, name=name)
    return ResolvedModel(name, path, "pipeline", info.family, info.class_name, inpaint_unet=info.inpaint,
                         native_size=info.native_size, source="checkpoint", checkpoint=info)


def _as_folder(target: str, roots: list[Path], op: str, host: bool, looked: list[str]) -> Path | None:
    raw = Path(os.path.expanduser(target)) if host else Path(target)
    if host:
        looked.append(f"folder {raw}")
        return raw.resolve() if raw.is_dir() else None
    if not roots:
        looked.append("no folders (this runtime allows none)")
        return None
    looked.append("folders under " + ", ".join(str(r) for r in roots))
    if ".." in raw.parts:
        raise ScriptError(f"{op}: '..' is not allowed in model paths ({target})")
    from ..paths import resolve_under_roots

    exists = raw.is_absolute() or any((r / raw).exists() for r in roots)
    if not exists:
        return None
    found = resolve_under_roots(target, roots, op)  # refuses paths outside the roots
    return found if found.is_dir() else None


def _from_hf_cache(repo_id: str, kind: str, config: ModelConfig, looked: list[str], fetch: bool = True) -> Path | None:
    try:
        import huggingface_hub as hub
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:  # pragma: no cover - comes with diffusers
        looked.append("the Hugging Face cache (huggingface_hub is not installed)")
        return None
    marker = "model_index.json" if kind == "pipeline" else "config.json"
    looked.append(f"the Hugging Face cache ({constants.HF_HUB_CACHE})")
    hit = try_to_load_from_cache(repo_id, marker)
    if isinstance(hit, str):
        return Path(hit).parent
    if not config.download or offline():
        looked.append("no download (" + ("offline mode" if offline() else "downloads are off: [models] download = true")
                      + ")")
        return None
    if not fetch:
        looked.append("not downloaded yet (download = true fetches it on first use)")
        return None
    try:
        files = hub.list_repo_files(repo_id)
        wanted = needed_files(files, kind, safety_checker=config.safety_checker)
        if marker not in wanted:
            looked.append(f"the Hugging Face Hub ({repo_id} has no {marker}: not a diffusers "
                          + ("pipeline" if kind == "pipeline" else "ControlNet") + ")")
            return None
        return Path(hub.snapshot_download(repo_id, allow_patterns=wanted))
    except Exception as e:  # noqa: BLE001 - network and hub errors become one clear error
        looked.append(f"the Hugging Face Hub (download failed: {type(e).__name__}: {e})"[:300])
        return None


#: Weight files diffusers can load, best first (per component folder, one kind is fetched).
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_CONFIG_SUFFIXES = (".json", ".txt", ".model")


def needed_files(files: list[str], kind: str = "pipeline", *, safety_checker: bool = False) -> list[str]:
    """Of a Hugging Face repository's ``files``, those a diffusers ``from_pretrained`` needs: the
    configs and tokenizer files, and per component one set of weights (safetensors, else ``.bin``; no
    ``.fp16``/``non_ema`` variants, no single-file ``.ckpt`` checkpoints, no ONNX/Flax copies; the safety
    checker's weights only when it is configured). For SD1.5 this is ~4 GB instead of the whole ~40 GB repo."""
    folders: dict[str, list[str]] = {}
    for f in files:
        folder = f.rsplit("/", 1)[0] if "/" in f else ""
        folders.setdefault(folder, []).append(f)
    out: list[str] = []
    for folder, names in sorted(folders.items()):
        if kind == "pipeline" and folder == "":
            out += [f for f in names if f == "model_index.json"]
            continue
        if kind == "controlnet" and folder != "":
            continue
        if "/" in folder:  # nested folders (e.g. onnx exports, samples) are not components
            continue
        out += [f for f in names if f.endswith(_CONFIG_SUFFIXES)]
        if kind == "pipeline" and folder == "safety_checker" and not safety_checker:
            continue
        weights = [f for f in names if f.endswith(WEIGHT_SUFFIXES) and _plain(f)]
        for suffix in WEIGHT_SUFFIXES:
            chosen = [f for f in weights if f.endswith(suffix)]
            if chosen:
                out += chosen
                break
    return out


def _plain(path: str) -> bool:
    """A weight file without a variant tag: ``x.safetensors`` or a shard ``x-00001-of-00002.safetensors``,
    not ``x.fp16.safetensors`` or ``x.non_ema.bin``."""
    return path.rsplit("/", 1)[-1].count(".") == 1


def _read_json(path: Path, op: str, name: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ScriptError(f"{op}: model {name!r}: cannot read {path.name}: {e}",
                          hint="point the model at a diffusers folder (one with model_index.json)") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{op}: model {name!r}: {path.name} is not a JSON object")
    return data


def describe(name: str, path: Path, kind: str, op: str, source: str = "folder") -> ResolvedModel:
    """Read the config files of the model in ``path``."""
    if kind == "controlnet":
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise ScriptError(f"{op}: ControlNet {name!r} ({path}) has no config.json",
                              hint="a ControlNet folder holds config.json and the weights (diffusers layout)")
        cfg = _read_json(cfg_path, op, name)
        cls = cfg.get("_class_name")
        if cls != "ControlNetModel":
            raise ScriptError(f"{op}: {name!r} is a {cls or 'unknown model'}, not a ControlNetModel")
        family = "sdxl" if cfg.get("addition_embed_type") == "text_time" else "sd15"
        return ResolvedModel(name, path, kind, family, cls, source=source)
    index = path / "model_index.json"
    if not index.is_file():
        raise ScriptError(f"{op}: model {name!r} ({path}) has no model_index.json",
                          hint="point it at a diffusers pipeline folder (save_pretrained layout)")
    cfg = _read_json(index, op, name)
    cls = cfg.get("_class_name")
    family = PIPELINE_FAMILIES.get(cls)
    if family is None:
        raise ScriptError(f"{op}: model {name!r} is a {cls or 'pipeline of unknown class'}, which this "
                          "capability cannot run", hint="supported: Stable Diffusion 1.x/2.x and SDXL pipelines")
    unet = path / "unet" / "config.json"
    ucfg = _read_json(unet, op, name) if unet.is_file() else {}
    vae = path / "vae" / "config.json"
    vcfg = _read_json(vae, op, name) if vae.is_file() else {}
    scale = 2 ** (len(vcfg.get("block_out_channels", (0, 0, 0, 0))) - 1)
    sample = ucfg.get("sample_size", 128 if family == "sdxl" else 64)
    sample = sample[0] if isinstance(sample, list | tuple) else sample
    return ResolvedModel(name, path, kind, family, cls, inpaint_unet=ucfg.get("in_channels") == 9,
                         native_size=int(sample) * scale, source=source)


def configured_models(config: ModelConfig) -> list[dict]:
    """Every model a configuration names, checked as a script would find it (JSON files only, never a
    download): ``{role, name, target, kind, available, family?, native_size?, path?, source?, reason?}``.
    ``viwo models list`` prints it; ``viwo caps`` gives the default model's reason."""
    from ..errors import ViwoError

    net_names = set()
    for value in config.controlnets.values():
        net_names.update(value if isinstance(value, list) else [value])
    rows: list[dict] = []

    def check(role: str, name: str, kind: str) -> None:
        target = config.aliases.get(name, name)
        row: dict = {"role": role, "name": name, "target": target, "kind": kind}
        try:
            m = resolve(name, config, [], "models", kind=kind, trusted=True, fetch=False)
        except ViwoError as e:
            looked = (e.hint or "").split("; configure it")[0]
            row.update(available=False, reason=e.message.removeprefix("models: ") + (f" ({looked})" if looked else ""))
        else:
            row.update(available=True, family=m.family, path=str(m.path), source=m.source)
            if m.checkpoint is not None:
                row["variant"] = m.checkpoint.label
            if kind == "pipeline":
                row.update(native_size=m.native_size, inpaint_unet=m.inpaint_unet)
        rows.append(row)

    roles: dict[str, list[str]] = {}
    if config.default_model:
        roles.setdefault(config.default_model, []).append("default")
    if config.inpaint:
        roles.setdefault(config.inpaint, []).append("inpaint")
    for alias in config.aliases:
        check(", ".join(["alias", *roles.pop(alias, [])]), alias, "controlnet" if alias in net_names else "pipeline")
    for name, role in roles.items():  # a default or inpaint model given as a folder or id, not an alias
        check(", ".join(role), name, "pipeline")
    for ctype, value in config.controlnets.items():
        for name in value if isinstance(value, list) else [value]:
            if name not in config.aliases:
                check(f"controlnet {ctype}", name, "controlnet")
    if config.annotators:
        folder = Path(os.path.expanduser(config.annotators))
        row = {"role": "annotators", "name": config.annotators, "target": config.annotators, "kind": "annotators"}
        if folder.is_dir():
            row.update(available=True, path=str(folder.resolve()), source="folder")
        elif config.download and not offline() and HF_ID_RE.match(config.annotators):
            row.update(available=True, source="huggingface", reason="fetched on first use (download = true)")
        else:
            row.update(available=False, reason="not a local folder" + ("" if config.download else
                                                                      ", and downloads are off (download = true)"))
        rows.append(row)
    return rows
