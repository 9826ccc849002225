"""LoRA: which LoRAs a call asks for, the files behind their names, and switching them on shared pipelines.

A call names LoRAs in the ``loras`` option (``[["name", 0.8], ...]`` or ``[{"name": ..., "weight": ...}]``)
or in its prompt as A1111 writes them, ``<lora:name:weight>`` (removed from the prompt text, as A1111
does; ``<lora:name:te:unet>`` gives the text encoder and the UNet their own weights). A name is a file in
the host's ``[models] lora_dir`` without its suffix (``.safetensors``; ``.pt``/``.ckpt``/``.bin`` only with
``allow_pickle``, since loading a pickle runs code), also in a sub-folder (``style/ink``), as A1111 finds them.
A grant may limit them (``allowed_loras``).

Loading goes through diffusers' pipeline-level ``load_lora_weights`` (peft): diffusers/peft layouts and
kohya layouts (``lora_unet_...``/``lora_te_...``) load; kohya files of SD1.x with the original LDM block
names (``input_blocks_4_1_...``) are mapped to diffusers' names first. A ``from_pipe`` family of pipelines
(text-to-image, img2img, inpaint, ControlNet of one base) shares its UNet and text encoders, so adapters
are global to the base: each LoRA file is loaded once per base (its adapter named by its addnet hash) and
every call sets exactly its own LoRAs and weights (``set_adapters``) or switches them all off
(``disable_lora``) — never fused into the weights, so a call without LoRAs after one with them gives the
base model's image to the bit. That switch happens in :meth:`ModelManager.pipeline`, on the manager's one
worker thread, so no other call can run in between. Importing this module is cheap (no torch).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, CapabilityError

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".ckpt", ".bin")
#: Most adapters kept loaded on one base model; the least recently used beyond it are deleted.
MAX_ADAPTERS = 16
_MAX_LORAS = 32
_NAME_RE = re.compile(r"[^\x00-\x1f<>:\"|?*]+\Z")


@dataclass(frozen=True)
class LoraRequest:
    """One LoRA a call asks for: its name, the text-encoder and UNet weights, and where it was asked
    (``option`` or ``prompt``)."""

    name: str
    weight: float = 1.0
    unet_weight: float | None = None
    source: str = "option"

    @property
    def unet(self) -> float:
        return self.weight if self.unet_weight is None else self.unet_weight


@dataclass(frozen=True)
class LoraFile:
    """A requested LoRA found on disk, with the hash A1111 writes (``Lora hashes``: addnet, 12 digits)."""

    name: str
    path: Path
    weight: float
    unet_weight: float
    hash: str
    #: sha256 of the whole file (names the adapter; the addnet hash ignores the tensor names).
    full_hash: str

    @property
    def adapter(self) -> str:
        """The adapter's name on a pipeline: by the file's sha256, so one file loads once per base model."""
        return "lora_" + self.full_hash[:16]

    def to_metadata(self) -> dict:
        out = {"name": self.name, "weight": self.weight, "hash": self.hash}
        if self.unet_weight != self.weight:
            out["unet_weight"] = self.unet_weight
        return out


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ArgumentError(f"{where}: {what} must be a number, got {value!r}")
    try:
        n = float(value)
    except ValueError:
        raise ArgumentError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(n) or abs(n) > 100:
        raise ArgumentError(f"{where}: {what} must be a finite number between -100 and 100, got {value!r}")
    return n


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or not _NAME_RE.match(value) or ".." in value.split("/"):
        raise ArgumentError(f"{where}: a LoRA name must be a file name in the host's lora_dir, got {value!r}",
                            hint='e.g. "add_detail" for add_detail.safetensors')
    return value.strip()


def parse_option(value: Any, where: str) -> list[LoraRequest]:
    """The ``loras`` option → requests: ``[["name" weight] ...]``, ``[{"name": ..., "weight": ...}]``, or
    names alone (weight 1)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ArgumentError(f"{where}: loras must be a list, got {type(value).__name__}",
                            hint='e.g. [["add_detail", 0.8], ["ink_style", 1]]')
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(LoraRequest(_name(item, where)))
        elif isinstance(item, list) and 1 <= len(item) <= 3:
            ws = [_number(w, where, f"the weight of LoRA {item[0]!r}") for w in item[1:]]
            out.append(LoraRequest(_name(item[0], where), ws[0] if ws else 1.0, ws[1] if len(ws) > 1 else None))
        elif isinstance(item, dict) and "name" in item:
            unknown = set(item) - {"name", "weight", "unet_weight", "te_weight"}
            if unknown:
                raise ArgumentError(f"{where}: a LoRA entry has unknown key(s) {', '.join(sorted(unknown))}",
                                    hint="keys: name, weight, unet_weight")
            name = _name(item["name"], where)
            w = _number(item.get("weight", item.get("te_weight", 1.0)), where, f"the weight of LoRA {name!r}")
            uw = item.get("unet_weight")
            out.append(LoraRequest(name, w, None if uw is None else _number(uw, where, f"unet_weight of {name!r}")))
        else:
            raise ArgumentError(f"{where}: each LoRA is [\"name\" weight] or {{name weight}}, got {item!r}")
    if len(out) > _MAX_LORAS:
        raise ArgumentError(f"{where}: at most {_MAX_LORAS} LoRAs in one call, got {len(out)}")
    return out


def from_prompt(prompt: Any, where: str) -> tuple[Any, list[LoraRequest]]:
    """``<lora:name:weight>`` tags of a prompt → (the prompt without them, requests). A1111's reading:
    ``<lora:name>`` is weight 1, ``<lora:name:te:unet>`` gives the UNet its own weight, ``te=``/``unet=``
    name them. Anything that is not text comes back as it is."""
    if not isinstance(prompt, str) or "<" not in prompt:
        return prompt, []
    out = []
    text, tags = _lora_tags(prompt)
    for tag in tags:
        positional = [a for a in tag.args[1:] if "=" not in a]
        named = dict(a.split("=", 1) for a in tag.args[1:] if "=" in a)
        what = f"the weight in {tag.text}"
        te = _number(named.get("te", positional[0] if positional else 1.0), where, what)
        unet = named.get("unet", positional[1] if len(positional) > 1 else None)
        out.append(LoraRequest(_name(tag.args[0], where), te, None if unet is None else _number(unet, where, what),
                               "prompt"))
    return text, out


def _lora_tags(prompt: str) -> tuple[str, list]:
    from .prompt_syntax import extract_tags  # the one reading of A1111's tags

    return extract_tags(prompt, ("lora",))


def requests_for(options: dict, prompts: dict, where: str) -> tuple[dict, list[LoraRequest]]:
    """A call's LoRA requests (option first, then the prompts' tags) and its prompt arguments with the
    tags removed (only ``prompt`` and ``prompt_2``: A1111 leaves the negative prompt as written)."""
    requests = parse_option(options.get("loras"), where)
    cleaned = {}
    for key in ("prompt", "prompt_2"):
        if key in prompts:
            cleaned[key], found = from_prompt(prompts[key], where)
            requests += found
    return cleaned, requests


def _candidates(folder: Path, allow_pickle: bool) -> dict[str, Path]:
    """Every LoRA file under ``folder``: ``name`` (path without suffix, ``/``-separated) → path; a plain
    file name also finds a file in a sub-folder (A1111 lists them by file name), and a name with its suffix
    (as `viwo models list` shows it) finds that file."""
    from .checkpoints import _stem, list_files

    found: dict[str, Path] = {}
    short: dict[str, Path] = {}
    full: dict[str, Path] = {}
    for rel, path in list_files(folder, SAFE_SUFFIXES + (PICKLE_SUFFIXES if allow_pickle else ())):
        name = _stem(rel)
        if name not in found or path.suffix.lower() == ".safetensors":
            found[name] = path
        short.setdefault(path.stem, path)
        full[rel] = path
        full.setdefault(path.name, path)
    out = {**short, **found}  # names without a suffix first (what a replay by hash picks), then with one
    for name, path in full.items():
        out.setdefault(name, path)
    return out


def resolve(requests: list[LoraRequest], config: Any, allowed: list | None, where: str,
            hashes: Any = None) -> list[LoraFile]:
    """The files of ``requests`` in ``config.lora_dir``, checked against a grant's ``allowed_loras``
    (``None``: all); the same LoRA asked twice adds its weights. Hashes come from ``hashes`` (a
    :class:`~viwoscript.models.hashes.HashCache`; default: the configuration's)."""
    if not requests:
        return []
    merged: dict[str, LoraRequest] = {}
    for r in requests:
        if r.name in merged:
            old = merged[r.name]
            r = LoraRequest(r.name, old.weight + r.weight, old.unet + r.unet, old.source)
        merged[r.name] = r
    if allowed is not None:
        refused = [n for n in merged if n not in allowed]
        if refused:
            raise CapabilityError(f"{where}: LoRA {', '.join(map(repr, refused))} is not allowed by this grant's "
                                  "allowed_loras", hint="allowed: " + (", ".join(map(str, allowed)) or "nothing")
                                  + "; the host sets allowed_loras in the grant")
    folder = getattr(config, "lora_dir", None)
    if not folder:
        raise CapabilityError(f"{where}: LoRA {', '.join(map(repr, merged))} asked for, but no LoRA folder is "
                              "configured", hint='set [models] lora_dir = "/path/to/Lora" in viwo.toml (e.g. '
                              "A1111's models/Lora folder)")
    root = Path(os.path.expanduser(folder))
    if not root.is_dir():
        raise CapabilityError(f"{where}: the LoRA folder {root} does not exist",
                              hint="check [models] lora_dir in viwo.toml")
    allow_pickle = bool(getattr(config, "allow_pickle", False))
    files = _candidates(root, allow_pickle)
    if hashes is None:
        from .hashes import HashCache

        hashes = HashCache.for_config(config)
    out = []
    for name, r in merged.items():
        path = files.get(name)
        if path is None:
            pickled = [p for s in PICKLE_SUFFIXES if (p := root / f"{name}{s}").is_file()]
            known = ", ".join(sorted(files)[:12]) or "none"
            raise CapabilityError(
                f"{where}: LoRA {name!r} not found in {root}" + (
                    f" (there is {pickled[0].name}, a pickle: loading one runs code)" if pickled else ""),
                hint=("set [models] allow_pickle = true to load .pt/.ckpt files you trust" if pickled else
                      f"put {name}.safetensors in [models] lora_dir; LoRAs there: {known}"))
        h = hashes.hashes(path, addnet=path.suffix == ".safetensors")
        out.append(LoraFile(name, path, r.weight, r.unet, (h.addnet or h.sha256)[:12], h.sha256))
    return out


# --- switching adapters on a pipeline (the manager's worker thread) -------------------------------

def activate(pipe: Any, loaded: dict, files: list[LoraFile], family: str | None = None) -> None:
    """Make ``pipe`` (and every ``from_pipe`` sibling: they share the modules) run with exactly ``files``
    at their weights, or with no LoRA at all. ``loaded``: adapter name → path of what this base already
    has (the manager keeps it per base model; updated here)."""
    if not files:
        if loaded:
            pipe.disable_lora()
        return
    for f in files:
        if f.adapter in loaded:
            loaded[f.adapter] = loaded.pop(f.adapter)  # most recently used last
            continue
        _load(pipe, f, family)
        loaded[f.adapter] = str(f.path)
    keep = {f.adapter for f in files}
    for old in [a for a in loaded if a not in keep][:max(0, len(loaded) - MAX_ADAPTERS)]:
        pipe.delete_adapters(old)
        del loaded[old]
    weights = [f.weight if f.unet_weight == f.weight else _split(pipe, f) for f in files]
    pipe.set_adapters([f.adapter for f in files], weights)


def _split(pipe: Any, f: LoraFile) -> dict:
    """diffusers' per-component weights: the text encoders get ``weight``, the UNet ``unet_weight``."""
    return {c: (f.unet_weight if c == "unet" else f.weight)
            for c in getattr(pipe, "_lora_loadable_modules", ("unet", "text_encoder")) if getattr(pipe, c, None)}


def _load(pipe: Any, f: LoraFile, family: str | None) -> None:
    state = _state_dict(f)
    if any(k.startswith("lora_unet_") for k in state):  # kohya: LDM block names → diffusers' (SD1.x)
        try:
            from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers
        except ImportError:  # pragma: no cover - a diffusers without it reads diffusers names only
            pass
        else:
            state = _maybe_map_sgm_blocks_to_diffusers(dict(state), pipe.unet.config)
    try:
        pipe.load_lora_weights(state, adapter_name=f.adapter)
    except Exception as e:  # noqa: BLE001 - peft/diffusers raise many kinds for a LoRA that does not fit
        try:
            pipe.delete_adapters(f.adapter)
        except Exception:  # noqa: BLE001 - nothing was injected
            pass
        what = {"sd15": "a Stable Diffusion 1.x/2.x model", "sdxl": "an SDXL model"}.get(family or "", "this model")
        raise CapabilityError(f"LoRA {f.name!r} ({f.path.name}) cannot be applied to {what}: "
                              f"{_first_line(e)}",
                              hint="a LoRA works only with the model family it was trained for (SD1.5 LoRAs "
                                   "with SD1.5 models, SDXL LoRAs with SDXL models)") from None


def _first_line(e: Exception) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = next((line for line in lines if "size mismatch" in line or "not found" in line), lines[0] if lines else "")
    return f"{type(e).__name__}: {detail[:240]}"


def _state_dict(f: LoraFile) -> dict:
    if f.path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(f.path))
        except Exception as e:  # noqa: BLE001 - a damaged file
            raise CapabilityError(f"LoRA {f.name!r}: cannot read {f.path}: {e}",
                                  hint="the file is damaged or not a safetensors file") from None
    import torch

    data = torch.load(str(f.path), map_location="cpu", weights_only=False)  # allow_pickle was set by the host
    return data.get("state_dict", data) if isinstance(data, dict) else data


def lora_hashes(files: list[LoraFile]) -> str | None:
    """A1111's ``Lora hashes`` value: ``name: hash, name: hash``."""
    return ", ".join(f"{f.name}: {f.hash}" for f in files) or None
