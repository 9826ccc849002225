"""Textual-inversion embeddings from the host's ``[models] embeddings_dir``, as A1111 uses them.

Every file in the folder (and its subfolders) is an embedding named by its file name without the
extension; the name written in a prompt uses it, matched token by token as A1111 matches it (so
``easynegative`` triggers ``EasyNegative.safetensors``, and a word that merely contains the name does
not). Formats: A1111's ``.pt``/``.bin`` (``string_to_param``), the one-tensor files of diffusers and
Civitai (``learned_embeds.safetensors``, ``emb_params``), and SDXL's ``clip_l``/``clip_g`` pairs.
``.safetensors`` always load; ``.pt``/``.bin`` are pickles and load only when the host sets
``allow_pickle = true``.

An embedding's vectors are appended as new rows of the text encoder's token-embedding table, once per
loaded base model (its ``from_pipe`` siblings share that encoder); the tokenizer is never changed, so a
prompt that does not name the embedding tokenizes and encodes exactly as before. The prompt encoder
(:mod:`viwoscript.models.prompts`) puts the rows' ids where the name was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SUFFIXES", "Embeddings", "embedding_files", "read_vectors"]

#: Embedding file suffixes; the pickle ones only with ``allow_pickle``.
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".bin")
SUFFIXES = SAFE_SUFFIXES + PICKLE_SUFFIXES
#: Attribute of a text encoder holding what was added to it: ``{(path, mtime_ns, size): [token ids]}``.
_ADDED = "_viwo_embeddings"


def embedding_files(folder: str | Path | None, allow_pickle: bool = False) -> dict[str, Path]:
    """``{name: file}`` for the embeddings in ``folder`` (recursively, sorted; the first file of a name
    wins). Pickle files are left out unless ``allow_pickle``. A missing folder has none."""
    if not folder:
        return {}
    root = Path(os.path.expanduser(str(folder)))
    if not root.is_dir():
        return {}
    from .checkpoints import list_files  # the one walk of a model folder (what `viwo models list` shows)

    out: dict[str, Path] = {}
    for _rel, path in list_files(root, SUFFIXES if allow_pickle else SAFE_SUFFIXES):
        out.setdefault(path.stem, path)
    return out


def read_vectors(path: Path, allow_pickle: bool = False) -> dict[str, Any]:
    """The vectors of an embedding file: ``{"": (n, dim)}`` for one text encoder, or ``{"clip_l": ...,
    "clip_g": ...}`` for SDXL, as float32 CPU tensors. Raises ``ValueError`` saying what is wrong."""
    import torch

    suffix = path.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        from safetensors.torch import load_file

        data: Any = load_file(str(path), device="cpu")
    elif suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ValueError(f"{path.name} is a pickle file: it loads only when the host sets allow_pickle = true")
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an older pickle; the host allowed pickles
            data = torch.load(str(path), map_location="cpu", weights_only=False)
    else:
        raise ValueError(f"{path.name}: not an embedding file (one of {', '.join(SUFFIXES)})")
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: not an embedding (a {type(data).__name__}, not a dict of tensors)")
    if "string_to_param" in data:  # A1111
        params = data["string_to_param"]
        if not isinstance(params, dict) or not params:
            raise ValueError(f"{path.name}: string_to_param is empty")
        found = {"": params["*"] if "*" in params else next(iter(params.values()))}
    elif "clip_l" in data and "clip_g" in data:  # SDXL
        found = {"clip_l": data["clip_l"], "clip_g": data["clip_g"]}
    else:
        tensors = [v for v in data.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1:
            raise ValueError(f"{path.name}: not an embedding format this reads (A1111 string_to_param, SDXL "
                             f"clip_l/clip_g, or one tensor; it has {len(tensors)} tensors)")
        found = {"": tensors[0]}
    out = {}
    for key, t in found.items():
        t = torch.as_tensor(t).detach().to("cpu", torch.float32)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[0] < 1:
            raise ValueError(f"{path.name}: vectors of shape {tuple(t.shape)} (expected vectors × width)")
        out[key] = t
    return out


@dataclass
class Embeddings:
    """The embeddings one call may use: ``files`` (:func:`embedding_files`). :meth:`ids` loads one into a
    text encoder (once per encoder) and says which token ids stand for it; ``used`` and ``notes``
    collect what happened, for the result."""

    files: dict[str, Path] = field(default_factory=dict)
    allow_pickle: bool = False
    used: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _vectors: dict[str, Any] = field(default_factory=dict)
    #: Per tokenizer (by id, for this call): first token of a name → [(its tokens, name)], longest first.
    lookups: dict[int, dict] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> Embeddings:
        """The embeddings of ``config``'s ``embeddings_dir``; a configured folder that is not there is a note
        (the prompt still runs, its embedding names read as words)."""
        allow = bool(getattr(config, "allow_pickle", False))
        folder = getattr(config, "embeddings_dir", None)
        found = cls(embedding_files(folder, allow), allow)
        if folder and not Path(os.path.expanduser(str(folder))).is_dir():
            found.notes.append(f"[models] embeddings_dir {folder} is not a folder: no embeddings are used "
                               "(check the path in viwo.toml)")
        return found

    def ids(self, name: str, text_encoder: Any, slot: str) -> list[int] | None:
        """Token ids of embedding ``name`` in ``text_encoder`` (``slot``: ``""`` for SD1/SD2's encoder,
        ``clip_l``/``clip_g`` for SDXL's two); ``None`` (with a note) when the file cannot be read or
        was made for another model."""
        path = self.files[name]
        if name not in self._vectors:
            try:
                self._vectors[name] = read_vectors(path, self.allow_pickle)
            except Exception as e:  # noqa: BLE001 - a broken file is a note, the prompt still runs
                self._vectors[name] = None
                self.notes.append(f"embedding {name} not used: {e}")
        vectors = self._vectors[name]
        if vectors is None:
            return None
        vec = vectors.get(slot)  # an SD1 embedding on SDXL (or the reverse) is skipped, as A1111 skips it
        width = text_encoder.get_input_embeddings().weight.shape[1]
        if vec is None or vec.shape[1] != width:
            note = (f"embedding {name} not used: it was made for another kind of model "
                    f"({_describe(vectors)}; this text encoder is {width} wide)")
            if note not in self.notes:
                self.notes.append(note)
            return None
        self.used[name] = path
        return install(text_encoder, path, vec)


def _describe(vectors: dict) -> str:
    return ", ".join(f"{k or 'vectors'} {tuple(v.shape)}" for k, v in vectors.items())


def install(text_encoder: Any, path: Path, vectors: Any) -> list[int]:
    """Append ``vectors`` to ``text_encoder``'s token-embedding table (once per file version) and return
    their token ids. Rows past the tokenizer's vocabulary are never produced by tokenizing text, so
    prompts that do not use the embedding are unaffected."""
    import torch

    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    added = text_encoder.__dict__.setdefault(_ADDED, {})
    if key in added:
        return added[key]
    old = text_encoder.get_input_embeddings()
    n, width = old.weight.shape
    new = torch.nn.Embedding(n + vectors.shape[0], width, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight[:n] = old.weight
        new.weight[n:] = vectors.to(old.weight.device, old.weight.dtype)
    new.weight.requires_grad_(old.weight.requires_grad)
    text_encoder.set_input_embeddings(new)
    text_encoder.config.vocab_size = n + vectors.shape[0]
    added[key] = list(range(n, n + vectors.shape[0]))
    return added[key]
