"""A1111's ``parameters`` text: writing it exactly as A1111 does, and reading it back.

``a1111_parameters(meta)`` writes an image's generation metadata as A1111 (and Civitai, which reads it)
expects: the prompt, a ``Negative prompt:`` line, then one line of ``Key: value`` fields in A1111's order
(``Steps``, ``Sampler``, ``Schedule type``, ``CFG scale``, ``Seed``, ``Size``, ``Model hash``, ``Model``,
``VAE hash``, ``VAE``, ``Denoising strength``, ``Clip skip``, ``Lora hashes``, ``TI hashes``, ...,
``Version``), values with commas, colons or quotes JSON-quoted as A1111 quotes them.
``parse_a1111(text)`` reads one (multi-line prompts, quoted values, missing fields).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def _version() -> str:
    from .. import __version__

    return __version__


def _quote(value: Any) -> str:
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def a1111_parameters(meta: dict | None, size: tuple[int, int] | None = None) -> str | None:
    """The A1111 ``parameters`` text for an image's metadata, or None when it records no generation."""
    if not isinstance(meta, dict):
        return None
    prompt = meta.get("prompt")
    if not isinstance(prompt, str) and meta.get("seed") is None:
        return None
    lines = [_with_lora_tags(prompt if isinstance(prompt, str) else "", meta.get("loras"))]
    neg = meta.get("negative_prompt")
    if isinstance(neg, str) and neg:
        lines.append("Negative prompt: " + neg)
    fields: list[tuple[str, Any]] = []
    steps = meta.get("steps")
    sampler = meta.get("sampler") or meta.get("scheduler")
    cfg = meta.get("guidance_scale", meta.get("cfg_scale"))
    w, h = meta.get("width"), meta.get("height")
    if not (w and h) and size:
        w, h = size
    fields += [("Steps", steps), ("Sampler", sampler), ("Schedule type", meta.get("schedule_type")),
               ("CFG scale", cfg), ("Seed", meta.get("seed")),
               ("Size", f"{w}x{h}" if w and h else None), ("Model hash", meta.get("model_hash")),
               ("Model", meta.get("model")), ("VAE hash", meta.get("vae_hash")), ("VAE", _vae_name(meta.get("vae"))),
               ("Denoising strength", meta.get("strength")), ("Clip skip", _clip_skip(meta.get("clip_skip"))),
               ("Refiner", _refiner(meta)), ("Refiner switch at", meta.get("refiner_switch") if meta.get("refiner") else None),
               ("Lora hashes", _hash_list(meta.get("lora_hashes") or meta.get("loras"))),
               ("TI hashes", _hash_list(meta.get("ti_hashes") or meta.get("embeddings"))),
               ("Capability", meta.get("capability")), ("Method", meta.get("method")),
               ("Version", "viwoscript " + _version())]
    lines.append(", ".join(f"{k}: {_quote(_num(v))}" for k, v in fields
                           if v is not None and not isinstance(v, dict | list)))
    return "\n".join(lines)


def _with_lora_tags(prompt: str, loras: Any) -> str:
    """The prompt with a ``<lora:name:weight>`` tag added for each LoRA that came from the ``loras`` option
    (not from a tag already in the prompt): A1111 and Civitai read LoRAs from the prompt's tags only, so
    "Send to txt2img" and ``viwo run`` of the parameters alone apply them too."""
    if not isinstance(loras, list):
        return prompt
    tags = []
    for lora in loras:
        name = lora.get("name") if isinstance(lora, dict) else None
        if not isinstance(name, str) or f"<lora:{name}:" in prompt or f"<lora:{name}>" in prompt:
            continue
        weights = [lora.get("weight", 1)]
        if lora.get("unet_weight") is not None and lora.get("unet_weight") != lora.get("weight"):
            weights.append(lora["unet_weight"])
        tags.append(f"<lora:{name}:{':'.join(_num(w) for w in weights)}>")
    return " ".join([prompt, *tags]) if prompt and tags else prompt or " ".join(tags)


def _hash_list(value: Any) -> str | None:
    """``Lora hashes``/``TI hashes``: ``name: hash, name: hash`` from that text, a ``{name: hash}`` object
    or a list of ``{name, hash}`` (what ``loras`` in an image's metadata holds)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(v.get("name"), v.get("hash")) for v in value if isinstance(v, dict)]
    else:
        return None
    text = ", ".join(f"{n}: {h}" for n, h in pairs if isinstance(n, str) and isinstance(h, str) and h)
    return text or None


def _clip_skip(value: Any) -> Any:
    """A1111 writes ``Clip skip`` (its numbering: 1 = the last layer) only when it is above 1."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else None


def _refiner(meta: dict) -> str | None:
    """A1111's ``Refiner: name [hash]`` (the hash when the refiner is a single file)."""
    name = meta.get("refiner")
    if not isinstance(name, str) or not name:
        return None
    h = meta.get("refiner_hash")
    return f"{name} [{h}]" if isinstance(h, str) and h else name


def _vae_name(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return Path(value).stem if "/" in value or "\\" in value else value
    return None


_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _to_number(v: Any, kind=float) -> Any:
    try:
        n = kind(v)
    except (TypeError, ValueError):
        return None
    if kind is float and n.is_integer():
        return int(n)
    return n


def parse_a1111(text: str) -> dict:
    """An A1111 ``parameters`` text → ``{prompt, negative_prompt, steps, sampler, cfg_scale, seed, size,
    model, model_hash, denoise, fields}`` (``fields``: every ``Key: value`` of the last line)."""
    if not isinstance(text, str):
        raise ValueError("parameters is not text")
    *lines, last = text.strip().split("\n")
    params = _RE_PARAM.findall(last)
    if len(params) < 3 and not (params and params[0][0].strip() in ("Steps", "Seed", "Size")
                                and last.lstrip().startswith(params[0][0].strip() + ":")):
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[16:].strip()
        (negative if in_negative else prompt).append(line)
    fields: dict[str, str] = {}
    for key, value in _RE_PARAM.findall(last):
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        fields[key.strip()] = value
    out: dict[str, Any] = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    size = _RE_SIZE.match(fields.get("Size", ""))
    mapping = {"steps": ("Steps", int), "sampler": ("Sampler", str), "scheduler": ("Schedule type", str),
               "cfg_scale": ("CFG scale", float), "seed": ("Seed", int), "model": ("Model", str),
               "model_hash": ("Model hash", str), "denoise": ("Denoising strength", float),
               "capability": ("Capability", str), "method": ("Method", str)}
    for name, (key, kind) in mapping.items():
        if key in fields:
            out[name] = fields[key] if kind is str else _to_number(fields[key], kind)
    if size:
        out["size"] = [int(size.group(1)), int(size.group(2))]
    out["fields"] = fields
    return out
