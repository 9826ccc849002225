"""Single-file checkpoints (``.safetensors``; ``.ckpt`` when the host allows pickles): names, detection, loading.

The files A1111, ComfyUI and InvokeAI users have hold a whole Stable Diffusion model in the original
(LDM) key layout. What model a file is comes from its weight keys and shapes, read from the safetensors
header without loading a tensor:

- ``conditioner.embedders.1.model.`` (OpenCLIP bigG beside CLIP-L): SDXL base;
- ``conditioner.embedders.0.model.`` alone: the SDXL refiner;
- ``cond_stage_model.model.`` (OpenCLIP ViT-H): SD 2.x;
- ``cond_stage_model.transformer.`` (CLIP-L): SD 1.x;
- without a text encoder, the UNet's cross-attention width (768 SD1, 1024 SD2) and ``label_emb`` (SDXL).

Whether a model predicts noise (epsilon) or velocity (v-prediction) is not in its keys: a sidecar YAML
beside the checkpoint (``model.yaml`` with ``parameterization: "v"``, A1111's convention), a ``v_pred``
key (some SDXL v-prediction models) or the ``prediction_type`` option say so.

Weights load through diffusers' single-file path with a config folder that never comes from a hub: one
beside the checkpoint (``model.config/`` holding ``model_index.json`` and component configs), else the
one shipped in this package for the detected kind (``viwoscript/models/configs/``: configs and
tokenizer settings only, no weights; the CLIP tokenizer's vocabulary is built from one shared file of
BPE merges). Importing this module is cheap (json only); torch and diffusers load inside the functions
that need them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ScriptError

CONFIGS = Path(__file__).with_name("configs")
#: Files that can be a single-file checkpoint (``.ckpt`` needs ``allow_pickle``).
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")

#: Detected kind → (family of the pipeline manager, pipeline class, native size, label).
VARIANTS: dict[str, tuple[str, str, int, str]] = {
    "sd15": ("sd15", "StableDiffusionPipeline", 512, "SD 1.x"),
    "sd2": ("sd15", "StableDiffusionPipeline", 512, "SD 2.x"),
    "sd2_v": ("sd15", "StableDiffusionPipeline", 768, "SD 2.x (v-prediction)"),
    "sdxl_base": ("sdxl", "StableDiffusionXLPipeline", 1024, "SDXL"),
    "sdxl_refiner": ("sdxl", "StableDiffusionXLImg2ImgPipeline", 1024, "SDXL refiner"),
    "sd15_inpaint": ("sd15", "StableDiffusionInpaintPipeline", 512, "SD 1.x inpainting"),
    "sd2_inpaint": ("sd15", "StableDiffusionInpaintPipeline", 512, "SD 2.x inpainting"),
    "sdxl_inpaint": ("sdxl", "StableDiffusionXLInpaintPipeline", 1024, "SDXL inpainting"),
}
#: A base kind → its inpainting kind (a 9-channel UNet: latents, mask, masked-image latents).
INPAINT_VARIANTS = {"sd15": "sd15_inpaint", "sd2": "sd2_inpaint", "sdxl_base": "sdxl_inpaint"}
PREDICTION_TYPES = ("epsilon", "v_prediction")
_MAX_HEADER = 100_000_000


@dataclass(frozen=True)
class CheckpointInfo:
    """What a single-file checkpoint is: ``variant`` (a key of :data:`VARIANTS`), ``inpaint`` (a 9-channel
    UNet), ``prediction_type`` (``None``: the config's own), the config folder it loads with."""

    variant: str
    config_dir: Path
    prediction_type: str | None = None
    inpaint: bool = False

    @property
    def family(self) -> str:
        return VARIANTS[self.variant][0]

    @property
    def class_name(self) -> str:
        return VARIANTS[self.variant][1]

    @property
    def native_size(self) -> int:
        return VARIANTS[self.variant][2]

    @property
    def label(self) -> str:
        return VARIANTS[self.variant][3]


# --- reading keys ------------------------------------------------------------------------------------

def safetensors_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file: ``{key: {"dtype", "shape", "data_offsets"}, "__metadata__"?}``.
    Reads only the header (no tensor); raises ``ValueError`` for a file that is not safetensors."""
    with open(path, "rb") as f:
        head = f.read(8)
        size = os.fstat(f.fileno()).st_size
        if len(head) < 8:
            raise ValueError("too short to be a safetensors file")
        n = int.from_bytes(head, "little")
        if n > _MAX_HEADER or 8 + n > size:
            raise ValueError("not a safetensors file (bad header length)")
        try:
            data = json.loads(f.read(n))
        except ValueError:
            raise ValueError("not a safetensors file (its header is not JSON)") from None
    if not isinstance(data, dict):
        raise ValueError("not a safetensors file (its header is not a JSON object)")
    return data


def tensor_shapes(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a checkpoint's tensors. ``.safetensors``: from the header only. A pickle
    (``.ckpt``...) is loaded (memory-mapped) only with ``allow_pickle``, since unpickling runs code."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise PermissionError(pickle_refusal(path))
        return {k: tuple(v.shape) for k, v in load_pickle_state_dict(path).items() if hasattr(v, "shape")}
    header = safetensors_header(path)
    return {k: tuple(v.get("shape", ())) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)}


def pickle_refusal(path: Path) -> str:
    return (f"{path.name} is a pickle ({path.suffix}): loading it can run code hidden in the file, so it is off "
            "unless the host sets allow_pickle = true under [models] (only for files you trust); or convert it "
            "to .safetensors")


def load_pickle_state_dict(path: Path) -> dict:
    """The state dict inside a ``.ckpt``/``.pt`` (``state_dict`` unwrapped). Only call with ``allow_pickle``."""
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 - Lightning checkpoints hold objects weights_only refuses
        data = torch.load(str(path), map_location="cpu", mmap=True, weights_only=False)
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} holds no state dict")
    return data


def detect(shapes: dict[str, tuple[int, ...]]) -> tuple[str | None, bool]:
    """``(variant, inpaint)`` from a checkpoint's keys and shapes; ``(None, False)`` when it is no Stable
    Diffusion checkpoint this package knows (a LoRA, a VAE, SD3, Flux, ...)."""
    keys = shapes.keys()

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    unet_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    if unet_in is None:
        return None, False
    inpaint = len(unet_in) == 4 and unet_in[1] == 9
    if has("conditioner.embedders.1.model."):
        return "sdxl_base", inpaint
    if has("conditioner.embedders.0.model.") and not has("conditioner.embedders.1."):
        return "sdxl_refiner", inpaint
    if has("cond_stage_model.model."):
        return "sd2", inpaint
    if has("cond_stage_model.transformer."):
        return "sd15", inpaint
    if has("model.diffusion_model.label_emb."):  # no text encoder in the file: the UNet tells
        width = _cross_width(shapes)
        return ("sdxl_refiner" if width == 1280 else "sdxl_base"), inpaint
    width = _cross_width(shapes)
    if width == 1024:
        return "sd2", inpaint
    if width == 768:
        return "sd15", inpaint
    return None, False


def _cross_width(shapes: dict[str, tuple[int, ...]]) -> int | None:
    for k, shape in shapes.items():
        if k.startswith("model.diffusion_model.") and k.endswith("attn2.to_k.weight") and len(shape) == 2:
            return shape[1]
    return None


_PARAM_RE = re.compile(r"""^\s*parameterization\s*:\s*["']?(\w+)["']?""", re.M)


def sidecar_prediction(path: Path) -> str | None:
    """``v_prediction`` when a YAML beside the checkpoint (``name.yaml``, as A1111 reads it) says
    ``parameterization: "v"``; ``epsilon`` when it names ``eps``; else ``None``."""
    for yaml in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        try:
            text = yaml.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        m = _PARAM_RE.search(text)
        if m:
            return "v_prediction" if m.group(1).lower() in ("v", "v_prediction") else "epsilon"
        return None
    return None


def beside_config(path: Path) -> Path | None:
    """A config folder next to the checkpoint: ``name.config/`` holding ``model_index.json``."""
    folder = path.with_name(path.stem + ".config")
    return folder if (folder / "model_index.json").is_file() else None


def inspect_checkpoint(path: Path, *, allow_pickle: bool = False, prediction_type: str | None = None,
                       op: str = "models", name: str | None = None) -> CheckpointInfo:
    """Detect what ``path`` holds and which config folder loads it (JSON and headers only, no weights)."""
    name = name or path.name
    try:
        shapes = tensor_shapes(path, allow_pickle=allow_pickle)
    except PermissionError as e:
        raise ScriptError(f"{op}: model {name!r}: {e}") from None
    except (OSError, ValueError, RuntimeError) as e:
        raise ScriptError(f"{op}: model {name!r}: cannot read {path.name}: {e}",
                          hint="is the file complete? A .safetensors checkpoint starts with a JSON header") from None
    variant, inpaint = detect(shapes)
    if variant is None:
        raise ScriptError(f"{op}: model {name!r} ({path.name}) is not a Stable Diffusion 1.x/2.x/SDXL checkpoint",
                          hint="no UNet under model.diffusion_model. with a known text encoder; LoRAs, VAEs and "
                               "embeddings go in lora_dir, vae_dir and embeddings_dir")
    pred = prediction_type or sidecar_prediction(path) or ("v_prediction" if "v_pred" in shapes else None)
    if pred is not None and pred not in PREDICTION_TYPES:
        raise ScriptError(f"{op}: unknown prediction_type {pred!r}", hint="epsilon or v_prediction")
    if inpaint:
        if variant not in INPAINT_VARIANTS:
            raise ScriptError(f"{op}: model {name!r} ({path.name}) is an inpainting {VARIANTS[variant][3]}, which "
                              "no pipeline runs", hint="use an SD 1.x, SD 2.x or SDXL inpainting checkpoint")
        variant = INPAINT_VARIANTS[variant]
    elif variant == "sd2" and pred == "v_prediction":
        variant = "sd2_v"
    config_dir = beside_config(path) or CONFIGS / variant
    return CheckpointInfo(variant, config_dir, pred, inpaint)


# --- names -------------------------------------------------------------------------------------------

def list_files(folder: Path | None, suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``(name, path)`` of every file under ``folder`` with one of ``suffixes``, sorted; ``name`` is the
    path relative to ``folder`` with ``/`` separators, as A1111 shows it (``sdxl/juggernaut.safetensors``)."""
    if folder is None or not folder.is_dir():
        return []
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith(".config"))
        for f in sorted(files):
            if f.lower().endswith(suffixes) and not f.startswith("."):
                p = Path(root) / f
                out.append((p.relative_to(folder).as_posix(), p))
    return out


_TITLE_HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*\Z")


def find_in_dir(name: str, folder: Path | None, suffixes: tuple[str, ...]) -> Path | None:
    """The file called ``name`` under ``folder``: its relative path with or without the extension
    (``sub/model.safetensors``, ``sub/model``, ``sub\\model``), A1111's title form with a hash
    (``model.safetensors [6ce0161689]``), or a bare file name found in any subfolder when it is unique."""
    if folder is None or not name:
        return None
    wanted = _TITLE_HASH.sub("", name).replace("\\", "/").strip()
    if not wanted or wanted.startswith("/") or ".." in wanted.split("/"):
        return None
    files = list_files(folder, suffixes)
    for rel, path in files:
        if rel == wanted or _stem(rel) == wanted:
            return path
    lower = wanted.lower()
    hits = [p for rel, p in files if rel.lower() == lower or _stem(rel).lower() == lower]
    if not hits and "/" not in wanted:
        hits = [p for rel, p in files if p.name == wanted or p.name.lower() == lower or _stem(p.name).lower() == lower]
    return hits[0] if len(hits) == 1 else None


def _stem(rel: str) -> str:
    base, dot, ext = rel.rpartition(".")
    return base if dot and "/" not in ext else rel


def checkpoint_suffixes(allow_pickle: bool) -> tuple[str, ...]:
    return CHECKPOINT_SUFFIXES if allow_pickle else SAFE_SUFFIXES


def is_checkpoint_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES + PICKLE_SUFFIXES


# --- loading -----------------------------------------------------------------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's BPE vocabulary and merges (the ones of ``openai/clip-vit-large-patch14``, also used by
    OpenCLIP), built from the shipped merges file as CLIP itself builds them."""
    import gzip

    with gzip.open(CONFIGS / "clip-merges.txt.gz", "rt", encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line]
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def tokenizer_for(folder: Path, vocab: tuple | None = None):
    """A CLIP tokenizer for a config folder's ``tokenizer*/``: its own files when it has them (a config
    folder beside a checkpoint), else the shipped vocabulary with the folder's ``tokenizer_config.json``
    settings (pad token, length)."""
    from transformers import CLIPTokenizer

    if (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file():
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab_dict, merges = vocab or clip_vocabulary()
    keep = {k: settings[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token", "model_max_length")
            if k in settings}
    return CLIPTokenizer(vocab=dict(vocab_dict), merges=list(merges), **keep)


def load_pipeline(path: Path, info: CheckpointInfo, *, dtype: Any, allow_pickle: bool = False,
                  safety_checker: bool = False, **components: Any) -> Any:
    """Load a single-file checkpoint as a diffusers pipeline (offline: a local config folder, local files
    only). ``components`` replace parts (``vae=...``)."""
    import diffusers

    cls = getattr(diffusers, info.class_name)
    cfg = info.config_dir
    index = json.loads((cfg / "model_index.json").read_text(encoding="utf-8"))
    kwargs: dict[str, Any] = dict(components)
    vocab = None
    for tok in ("tokenizer", "tokenizer_2"):
        entry = index.get(tok)
        if tok in kwargs or not (isinstance(entry, list) and entry and entry[0]):
            continue
        if vocab is None and not ((cfg / tok / "vocab.json").is_file() or (cfg / tok / "tokenizer.json").is_file()):
            vocab = clip_vocabulary()
        kwargs[tok] = tokenizer_for(cfg / tok, vocab)
    if info.prediction_type is not None and "scheduler" not in kwargs:
        sched_cls = getattr(diffusers, index["scheduler"][1])
        sched_cfg = sched_cls.load_config(str(cfg), subfolder="scheduler", local_files_only=True)
        if sched_cfg.get("prediction_type") != info.prediction_type:
            kwargs["scheduler"] = sched_cls.from_config(sched_cfg, prediction_type=info.prediction_type)
    if info.family == "sd15" and not safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    load = dict(config=str(cfg), local_files_only=True, torch_dtype=dtype, **kwargs)
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        return cls.from_single_file(str(path), **load)
    if not allow_pickle:
        raise PermissionError(pickle_refusal(path))
    try:  # diffusers unpickles with weights_only=True: plain state dicts load directly
        return cls.from_single_file(str(path), **load)
    except (ValueError, OSError, RuntimeError) as e:
        if not _refused_unpickling(e):
            raise
    return _from_pickle_copy(cls, path, load)


def _refused_unpickling(e: BaseException | None) -> bool:
    """Whether an error (or one it came from) is torch's weights-only unpickler refusing an object."""
    for _ in range(8):
        if e is None:
            return False
        if "Unpickl" in type(e).__name__ or "weights_only" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _from_pickle_copy(cls: Any, path: Path, load: dict) -> Any:
    """A pickle holding more than tensors (a Lightning checkpoint's callbacks, ...), which the host allowed:
    its tensors are copied to a temporary safetensors file beside it (else in the temp folder) and loaded
    from there."""
    import tempfile

    import torch
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in load_pickle_state_dict(path).items() if isinstance(v, torch.Tensor)}
    folder = path.parent if os.access(path.parent, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=".viwo-ckpt-", dir=folder) as tmp:
        copy = Path(tmp) / (path.stem + ".safetensors")
        save_file(tensors, str(copy))
        del tensors
        return cls.from_single_file(str(copy), **load)


__all__ = ["CONFIGS", "CheckpointInfo", "VARIANTS", "detect", "find_in_dir", "inspect_checkpoint", "list_files",
           "load_pipeline", "safetensors_header", "sidecar_prediction", "tensor_shapes", "tokenizer_for"]
