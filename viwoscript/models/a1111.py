"""Replaying an A1111 image: its ``parameters`` text → the equivalent ViwoScript (``viwo run a1111.png``).

:func:`replay_script` takes what :func:`viwoscript.io.metadata.read_metadata` read from the image (the
parsed ``parameters``, ``info["a1111"]``) and the host's :class:`~.config.ModelConfig`, and builds one
``diffusers.generate`` ``textToImage`` call with the prompt (its ``<lora:…>`` tags kept), negative prompt,
steps, sampler and schedule type, CFG scale, seed, size, clip skip and VAE (found in ``[models] vae_dir``). The model is found by A1111's
``Model hash`` or ``Model`` name among the configured aliases and the checkpoints in ``[models]
checkpoints_dir`` (hashes cached, see :mod:`.hashes`); each LoRA by its name in ``[models] lora_dir``, else by
its ``Lora hashes`` entry (the tag is then renamed to the file found). What cannot be found is a
``ScriptError`` naming what to configure. Importing this module is cheap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import ScriptError, ViwoError
from .samplers import A1111_SAMPLERS, SAMPLER_SPECS, lookup, schedule_name

GENERATE = ["get_capability", "diffusers.generate"]
#: A1111 fields the replay reads; the others are listed in a note (Hires fix, ADetailer, ... do not replay).
READ = {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model", "Clip skip",
        "Lora hashes", "TI hashes", "Version", "Denoising strength", "VAE", "VAE hash"}
_IGNORED_QUIETLY = {"Capability", "Method", "Emphasis", "Downcast alphas_cumprod", "RNG"}


def replay_script(info: dict, config: Any, source: str = "image", *,
                  options_known: set | None = None) -> tuple[list, list[str]]:
    """``(script as JSON data, notes)`` for an image's A1111 parameters (``info`` from ``read_metadata``).
    ``config``: the host's ModelConfig (None: nothing configured); ``options_known``: the options
    ``textToImage`` declares (an option it lacks, such as ``clip_skip``, is left out with a note)."""
    fields = info.get("a1111")
    if not isinstance(fields, dict):
        raise ScriptError(f"{source} has no A1111 parameters")
    notes: list[str] = []
    where = f"replay {source}"
    prompt = info.get("prompt") or ""
    options: dict[str, Any] = {}
    if info.get("negative_prompt"):
        options["negative_prompt"] = info["negative_prompt"]
    for key, name, kind in (("Steps", "steps", int), ("CFG scale", "guidance_scale", float), ("Seed", "seed", int)):
        value = _number(fields.get(key), kind)
        if value is not None:
            options[name] = value
        elif key in fields:
            notes.append(f"{key} {fields[key]!r} is not a number: left to the default")
    size = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", fields.get("Size", ""))
    if size:
        options["width"], options["height"] = int(size.group(1)), int(size.group(2))
    options.update(_sampler(fields, notes))
    model = find_model(fields.get("Model"), fields.get("Model hash"), config, where)
    if model is not None:
        options["model"] = model
    vae = find_vae(fields.get("VAE"), fields.get("VAE hash"), config, notes)
    if vae is not None:
        options["vae"] = vae
    clip = _number(fields.get("Clip skip"), int)
    if clip is not None and clip > 1:
        options["clip_skip"] = clip
    prompt = _loras(prompt, fields.get("Lora hashes"), config, where)
    if "Denoising strength" in fields and "Hires upscale" not in fields:
        notes.append("Denoising strength is for img2img: the replay makes the image from the prompt (txt2img)")
    for key in [k for k in options if options_known is not None and k not in options_known]:
        notes.append(f"{key} {options.pop(key)!r} is not an option of this version: left out")
    skipped = sorted(k for k in fields if k not in READ and k not in _IGNORED_QUIETLY)
    if skipped:
        notes.append("not replayed: " + ", ".join(skipped))
    call = ["std.call_method", GENERATE, "textToImage", prompt, options]
    return call, notes


def _number(value: Any, kind: type) -> Any:
    if value is None:
        return None
    try:
        n = float(str(value).strip())
    except ValueError:
        return None
    if kind is int:
        return int(n) if n.is_integer() else None
    return int(n) if n.is_integer() else n


def _sampler(fields: dict, notes: list[str]) -> dict:
    out: dict[str, Any] = {}
    name = fields.get("Sampler")
    if name:
        try:
            lookup(name)
        except ViwoError:
            notes.append(f"sampler {name!r} has no diffusers equivalent here: the model's own scheduler runs")
        else:
            out["scheduler"] = name if name in A1111_SAMPLERS or name in SAMPLER_SPECS else lookup(name)[0]
    schedule = fields.get("Schedule type")
    if schedule and schedule != "Automatic":
        try:
            out["schedule_type"] = schedule_name(schedule)
        except ViwoError:
            notes.append(f"schedule type {schedule!r} has no diffusers equivalent here: the sampler's own runs")
    return out


# --- models -----------------------------------------------------------------------------------------

def _checkpoint_files(config: Any) -> dict[str, Path]:
    """The checkpoints in ``checkpoints_dir``: name (relative path without the extension, as a script names
    them) → file."""
    from .checkpoints import CHECKPOINT_SUFFIXES, _stem, list_files

    folder = getattr(config, "checkpoints_dir", None)
    if not folder:
        return {}
    # .ckpt files too (hashing reads bytes, never unpickles): running one without allow_pickle is then
    # the loader's error saying so, not "not among the configured models"
    files = list_files(Path(os.path.expanduser(folder)), CHECKPOINT_SUFFIXES)
    found: dict[str, Path] = {}
    for rel, path in files:
        found.setdefault(_stem(rel), path)
    return found


def find_model(name: str | None, hash_: str | None, config: Any, where: str) -> str | None:
    """The model name (an alias or a checkpoint's file name) for A1111's ``Model`` and ``Model hash``:
    the hash decides when it matches a file; else the name. ``None`` (the default model) when the image
    names none. A model that is not found is a ``ScriptError`` saying what to configure."""
    if not name and not hash_:
        return None
    aliases = dict(getattr(config, "aliases", {}) or {})
    checkpoints = _checkpoint_files(config)
    files: dict[str, Path] = {a: Path(os.path.expanduser(t)) for a, t in aliases.items()
                              if Path(os.path.expanduser(t)).is_file()}
    for stem, path in checkpoints.items():
        files.setdefault(stem, path)
    if hash_:
        from .hashes import HashCache

        cache = HashCache.for_config(config)
        ordered = sorted(files, key=lambda k: k != name)  # the named one first: usually the match
        for key in ordered:
            try:
                if cache.hashes(files[key]).matches(hash_):
                    return key
            except OSError:
                continue
    if name:
        if name in aliases or name in checkpoints:
            return name
        for alias, target in aliases.items():
            if Path(target).stem == name or Path(target).name == name:
                return alias
        # A1111 writes a checkpoint's file name without its subfolder (``Model: juggernautXL_v9`` for
        # ``sdxl/juggernautXL_v9.safetensors``) and in its own case: the checkpoints' lookup finds those
        from .checkpoints import CHECKPOINT_SUFFIXES, _stem, find_in_dir

        folder = Path(os.path.expanduser(config.checkpoints_dir)) if getattr(config, "checkpoints_dir", None) else None
        hit = find_in_dir(name, folder, CHECKPOINT_SUFFIXES)
        if hit is not None and folder is not None:
            return _stem(hit.relative_to(folder).as_posix())
    what = f"{name!r}" if name else "the model"
    raise ScriptError(f"{where}: {what}{f' (hash {hash_})' if hash_ else ''} is not among the configured models",
                      hint=f"put {name or 'the checkpoint'}.safetensors in [models] checkpoints_dir, or add an alias "
                           f"in viwo.toml: [models] {_alias_key(name)} = \"/path/to/model\"")


def find_vae(name: str | None, hash_: str | None, config: Any, notes: list[str]) -> str | None:
    """The name in ``[models] vae_dir`` of A1111's ``VAE`` (by name, else by ``VAE hash``: a renamed
    file); ``None`` with a note when it is not there (the model's own VAE then decodes)."""
    if not name and not hash_:
        return None
    from .checkpoints import _stem, find_in_dir, list_files
    from .vae import VAE_SUFFIXES

    folder = Path(os.path.expanduser(config.vae_dir)) if getattr(config, "vae_dir", None) else None
    if name and find_in_dir(name, folder, VAE_SUFFIXES) is not None:
        return name
    if hash_ and folder is not None:
        from .hashes import HashCache

        cache = HashCache.for_config(config)
        for rel, path in list_files(folder, VAE_SUFFIXES):
            try:
                if cache.hashes(path).matches(hash_):
                    return _stem(rel)
            except OSError:
                continue
    what = f"{name!r}" if name else f"with hash {hash_}"
    notes.append(f"VAE {what} is not in [models] vae_dir: the model's own VAE (or its [models] vaes entry) "
                 "decodes; put the VAE file in vae_dir to replay it")
    return None


def _alias_key(name: str | None) -> str:
    return name if name and re.fullmatch(r"[A-Za-z0-9_-]+", name) else "my-model"


# --- LoRAs ------------------------------------------------------------------------------------------

def _hash_pairs(text: Any) -> dict[str, str]:
    out = {}
    if isinstance(text, str):
        for part in text.split(","):
            name, _, h = part.rpartition(":")
            if name.strip() and h.strip():
                out[name.strip()] = h.strip()
    return out


def _loras(prompt: str, hashes: Any, config: Any, where: str) -> str:
    """The prompt with each ``<lora:name:…>`` tag naming a file in lora_dir (renamed when only its hash
    matches); a LoRA that is not there is a ScriptError."""
    from .lora import PICKLE_SUFFIXES, _candidates, from_prompt

    _, tags = from_prompt(prompt, where)
    if not tags:
        return prompt
    folder = getattr(config, "lora_dir", None)
    names = ", ".join(dict.fromkeys(t.name for t in tags))
    if not folder:
        raise ScriptError(f"{where}: the image uses LoRA {names}, and no LoRA folder is configured",
                          hint='set [models] lora_dir = "/path/to/Lora" in viwo.toml and put the LoRA files there')
    root = Path(os.path.expanduser(folder))
    files = _candidates(root, bool(getattr(config, "allow_pickle", False))) if root.is_dir() else {}
    by_hash = _hash_pairs(hashes)
    cache = None
    for tag in dict.fromkeys(t.name for t in tags):
        if tag in files:
            continue
        wanted = by_hash.get(tag)
        found = None
        if wanted:
            from .hashes import HashCache

            cache = cache or HashCache.for_config(config)
            for name, path in files.items():
                if path.suffix in PICKLE_SUFFIXES:
                    continue
                if cache.hashes(path, addnet=True).matches(wanted):
                    found = name
                    break
        if found is None:
            raise ScriptError(f"{where}: the image uses LoRA {tag!r}{f' (hash {wanted})' if wanted else ''}, "
                              f"which is not in {root}",
                              hint=f"put {tag}.safetensors in [models] lora_dir")
        prompt = re.sub(r"<lora:" + re.escape(tag) + r"([:>])", lambda m, f=found: f"<lora:{f}{m.group(1)}", prompt)
    return prompt
