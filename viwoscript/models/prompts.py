"""Prompt conditioning as AUTOMATIC1111 computes it, handed to diffusers as ``prompt_embeds``.

For each text encoder (one for SD1.x/2.x, two for SDXL):

1. extra-network tags (``<lora:…>``, …) are removed (:func:`~.prompt_syntax.extract_tags`) and the
   text parsed into weighted fragments (:func:`~.prompt_syntax.parse_prompt_attention`);
2. each fragment is tokenized on its own and the tokens are packed into chunks of ``model_max_length −
   2`` tokens (75 for CLIP): a full chunk whose last comma is within its last 20 tokens breaks after that
   comma (the rest moves to the next chunk), ``BREAK`` starts a new chunk, an embedding's vectors never
   straddle two chunks (:func:`chunk_tokens`, A1111's ``tokenize_line``);
3. each chunk is wrapped in start/end tokens and padding and encoded on its own; the hidden states are
   multiplied by the fragments' weights and rescaled to their original mean (A1111's "Original"
   emphasis); chunks are concatenated along the token axis;
4. the positive and negative sides are padded with empty-prompt chunks to the same number of chunks
   (diffusers needs equal lengths). SDXL concatenates its two encoders' penultimate hidden states and
   takes the pooled embedding from the first chunk of its second encoder.

A prompt with no weights that fits one chunk gives exactly the embeddings diffusers computes from the
prompt string. Clip skip (``clip_skip``, A1111's numbering) reads an earlier layer. Nothing is cut
silently: everything that was dropped or read differently is a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .embeddings import Embeddings
from .prompt_syntax import BREAK, extract_tags, parse_prompt_attention, unsupported_syntax

__all__ = ["COMMA_BACKTRACK", "MAX_CHUNKS", "Chunk", "Conditioning", "chunk_tokens", "condition", "encode_prompts",
           "final_layer_norm", "replace_prompts"]

#: A1111's ``comma_padding_backtrack``: how far back a full chunk looks for a comma to break after.
COMMA_BACKTRACK = 20
#: Most chunks one prompt is encoded in (A1111 has no limit; 32 CLIP chunks are 2400 tokens).
MAX_CHUNKS = 32
#: The keyword arguments of the pipelines' prompt texts.
PROMPT_KEYS = ("prompt", "negative_prompt", "prompt_2", "negative_prompt_2")


@dataclass
class Chunk:
    """One chunk's tokens (without the start/end tokens and padding) and each token's weight."""

    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)


#: ``find_embedding(tokens, position)`` → ``(ids that stand for it, tokens of the prompt it replaces)`` or None.
FindEmbedding = Callable[[list[int], int], "tuple[list[int], int] | None"]


def chunk_tokens(fragments: list[list], tokenized: list[list[int]], *, chunk_length: int, comma_token: int | None,
                 find_embedding: FindEmbedding | None = None, backtrack: int = COMMA_BACKTRACK) -> list[Chunk]:
    """A1111's ``tokenize_line``: the fragments' tokens (``tokenized[i]`` for ``fragments[i]``) packed into
    chunks of at most ``chunk_length`` tokens. Always at least one chunk (an empty prompt: one empty
    chunk)."""
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def next_chunk() -> None:
        nonlocal chunk, last_comma
        last_comma = -1
        chunks.append(chunk)
        chunk = Chunk()

    for tokens, (text, weight) in zip(tokenized, fragments, strict=True):
        if text == BREAK and weight == -1:
            next_chunk()
            continue
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == comma_token:
                last_comma = len(chunk.tokens)
            elif (backtrack and len(chunk.tokens) == chunk_length and last_comma != -1
                  and len(chunk.tokens) - last_comma <= backtrack):
                at = last_comma + 1
                moved, moved_w = chunk.tokens[at:], chunk.multipliers[at:]
                chunk.tokens, chunk.multipliers = chunk.tokens[:at], chunk.multipliers[:at]
                next_chunk()
                chunk.tokens, chunk.multipliers = moved, moved_w
            if len(chunk.tokens) == chunk_length:
                next_chunk()
            found = find_embedding(tokens, position) if find_embedding else None
            if found is None:
                chunk.tokens.append(token)
                chunk.multipliers.append(weight)
                position += 1
                continue
            ids, consumed = found
            if len(chunk.tokens) + len(ids) > chunk_length:
                next_chunk()
            chunk.tokens += ids
            chunk.multipliers += [weight] * len(ids)
            position += consumed
    if chunk.tokens or not chunks:
        next_chunk()
    return chunks


@dataclass
class Conditioning:
    """What :func:`encode_prompts` computed: the pipeline's keyword arguments (``prompt_embeds``,
    ``negative_prompt_embeds`` and, for SDXL, the pooled ones), notes for the result, the embeddings used
    (name → file) and the number of chunks per side."""

    kwargs: dict
    notes: list[str]
    embeddings: dict
    chunks: int


@dataclass
class _Encoder:
    tokenizer: Any
    model: Any
    slot: str  # embedding slot: "" (SD1/SD2), "clip_l" or "clip_g" (SDXL)
    pooled: bool  # SDXL's second encoder: its projected pooled output is the pooled embedding

    @property
    def chunk_length(self) -> int:
        return int(self.tokenizer.model_max_length) - 2


def encoders_of(pipe: Any) -> tuple[list[_Encoder], bool]:
    """The pipeline's (tokenizer, text encoder) pairs and whether it is an SDXL-style pipeline."""
    comps = getattr(pipe, "components", {})
    if "text_encoder_2" in comps:
        out = []
        if getattr(pipe, "text_encoder", None) is not None:
            out.append(_Encoder(pipe.tokenizer, pipe.text_encoder, "clip_l", False))
        if getattr(pipe, "text_encoder_2", None) is not None:
            out.append(_Encoder(pipe.tokenizer_2, pipe.text_encoder_2, "clip_g", True))
        return out, True
    return [_Encoder(pipe.tokenizer, pipe.text_encoder, "", False)], False


def encode_prompts(pipe: Any, texts: dict, *, clip_skip: int | None = None, embeddings: Embeddings | None = None,
                   handled_tags: tuple[str, ...] = ()) -> Conditioning:
    """Encode ``texts`` (``prompt``, ``negative_prompt``, ``prompt_2``, ``negative_prompt_2``; missing or
    ``None`` as diffusers reads them) for ``pipe`` the way A1111 does. ``clip_skip`` is A1111's "Clip
    skip" (1 or ``None``: the model's usual layer). ``handled_tags`` are extra-network kinds the caller
    acts on (``("lora",)``); other tags are removed with a note."""
    import torch

    encs, xl = encoders_of(pipe)
    notes: list[str] = []
    emb = embeddings if embeddings is not None else Embeddings()
    prompt = _text(texts.get("prompt"), "prompt", handled_tags, notes)
    negative = _text(texts.get("negative_prompt"), "negative_prompt", handled_tags, notes)
    prompt_2 = _text(texts.get("prompt_2"), "prompt_2", handled_tags, notes) or None
    negative_2 = _text(texts.get("negative_prompt_2"), "negative_prompt_2", handled_tags, notes) or None
    skip = _layer(clip_skip, encs, xl)
    device = _device(pipe, encs[0].model)

    def side(first: str, second: str | None, key: str) -> list[list[Chunk]]:
        out = []
        for enc in encs:
            text = second if (xl and enc.slot == "clip_g" and second is not None) else first
            out.append(_chunks(pipe, enc, text, emb, notes, key))
        return out

    pos = side(prompt, prompt_2, "prompt")
    zero_negative = xl and not negative and not negative_2 and bool(
        getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    neg = None if zero_negative else side(negative, negative_2, "negative_prompt")
    n = max(len(c) for c in pos + (neg or []))
    with torch.no_grad():
        embeds, pooled = _encode_side(encs, pos, n, skip, device)
        kwargs: dict[str, Any] = {"prompt_embeds": embeds}
        if neg is None:
            kwargs["negative_prompt_embeds"] = torch.zeros_like(embeds)
            if pooled is not None:
                kwargs["negative_pooled_prompt_embeds"] = torch.zeros_like(pooled)
        else:
            kwargs["negative_prompt_embeds"], neg_pooled = _encode_side(encs, neg, n, skip, device)
            if neg_pooled is not None:
                kwargs["negative_pooled_prompt_embeds"] = neg_pooled
        if pooled is not None:
            kwargs["pooled_prompt_embeds"] = pooled
    notes += [n for n in emb.notes if n not in notes]
    return Conditioning(kwargs, notes, dict(emb.used), n)


def condition(pipe: Any, kwargs: dict, *, config: Any = None, clip_skip: int | None = None,
              handled_tags: tuple[str, ...] = ()) -> tuple[dict, dict, list[str]]:
    """A pipeline call's keyword arguments with its prompt texts replaced by A1111 conditioning: ``(new
    kwargs, metadata, notes)``. The metadata records ``clip_skip`` (when given) and the ``embeddings``
    used (their names; the capability adds their A1111 ``ti_hashes``); embeddings come from ``config``'s
    ``embeddings_dir`` (a :class:`ModelConfig`)."""
    emb = Embeddings.from_config(config) if config is not None else Embeddings()
    cond = encode_prompts(pipe, kwargs, clip_skip=clip_skip, embeddings=emb, handled_tags=handled_tags)
    meta: dict[str, Any] = {}
    if clip_skip is not None:
        meta["clip_skip"] = clip_skip
    if cond.embeddings:
        meta["embeddings"] = sorted(cond.embeddings)
    return replace_prompts(kwargs, cond), meta, cond.notes


def _device(pipe: Any, model: Any) -> Any:
    """Where the text encoder runs: its weights' device, or the pipeline's execution device when an
    offload hook moves it there (``pipe._execution_device`` walks every module: kept for that case)."""
    if hasattr(model, "_hf_hook") or not hasattr(model, "parameters"):
        return pipe._execution_device
    return next(model.parameters()).device


def replace_prompts(kwargs: dict, cond: Conditioning) -> dict:
    """``kwargs`` of a pipeline call with its prompt texts replaced by ``cond``'s embeddings."""
    out = {k: v for k, v in kwargs.items() if k not in PROMPT_KEYS}
    out.update(cond.kwargs)
    return out


def _text(value: Any, key: str, handled: tuple[str, ...], notes: list[str]) -> str:
    text = value if isinstance(value, str) else ""
    text, tags = extract_tags(text)
    for tag in tags:
        if tag.kind not in handled:
            notes.append(f"{key}: {tag.text} removed: {tag.kind} tags are not supported here")
    for problem in unsupported_syntax(text):
        notes.append(f"{key}: {problem}")
    return text


def _layer(clip_skip: int | None, encs: list[_Encoder], xl: bool) -> int | None:
    """Index into ``hidden_states`` for A1111's clip skip; ``None``: the model's usual output."""
    if clip_skip is None or clip_skip <= (2 if xl else 1):
        return None
    layers = min(int(e.model.config.num_hidden_layers) for e in encs)
    if clip_skip > layers:
        from ..errors import ArgumentError

        raise ArgumentError(f"clip_skip {clip_skip} is more than this model's text encoder has layers ({layers})",
                            hint=f"use 1 (no skip) to {layers}")
    return -clip_skip


def _chunks(pipe: Any, enc: _Encoder, text: str, emb: Embeddings, notes: list[str], key: str) -> list[Chunk]:
    tok = enc.tokenizer
    fragments = parse_prompt_attention(text)
    convert = getattr(pipe, "maybe_convert_prompt", None)  # tokens a host added with load_textual_inversion
    if convert is not None and not any(t.endswith("_1") for t in tok.added_tokens_encoder):
        convert = None  # no multi-vector token to expand: spare a tokenization per fragment
    texts = [f if (f == BREAK and w == -1) or convert is None else convert(f, tok) for f, w in fragments]
    tokenized = tok(texts, truncation=False, add_special_tokens=False, verbose=False).input_ids if texts else []
    chunks = chunk_tokens(fragments, tokenized, chunk_length=enc.chunk_length, comma_token=_comma(tok),
                          find_embedding=_finder(tok, enc, emb))
    if len(chunks) > MAX_CHUNKS:
        dropped = sum(len(c.tokens) for c in chunks[MAX_CHUNKS:])
        notes.append(f"{key} cut: it is {len(chunks)} chunks of {enc.chunk_length} tokens and at most {MAX_CHUNKS} "
                     f"are read; the last {dropped} tokens were dropped")
        chunks = chunks[:MAX_CHUNKS]
    return chunks


def _comma(tok: Any) -> int | None:
    """The id of the comma token ``,</w>`` (A1111's ``comma_token``), or None."""
    found = tok.convert_tokens_to_ids(",</w>")
    return None if found is None or found == tok.unk_token_id else found


def _finder(tok: Any, enc: _Encoder, emb: Embeddings) -> FindEmbedding | None:
    """A1111's ``find_embedding_at_position``: an embedding whose name's tokens start at ``position``
    (the longest name first)."""
    if not emb.files:
        return None
    lookup = emb.lookups.get(id(tok))
    if lookup is None:  # once per tokenizer and call, whatever the number of prompts
        names = list(emb.files)
        ids = tok(names, truncation=False, add_special_tokens=False, verbose=False).input_ids
        lookup = emb.lookups[id(tok)] = {}
        for name, name_ids in zip(names, ids, strict=True):
            if name_ids:
                lookup.setdefault(name_ids[0], []).append((name_ids, name))
        for entries in lookup.values():
            entries.sort(key=lambda e: -len(e[0]))

    def find(tokens: list[int], position: int) -> tuple[list[int], int] | None:
        for name_ids, name in lookup.get(tokens[position], ()):
            if tokens[position:position + len(name_ids)] == name_ids:
                vec_ids = emb.ids(name, enc.model, enc.slot)
                if vec_ids is None:
                    continue
                if len(vec_ids) > enc.chunk_length:  # A1111 would overfill the chunk and fail
                    note = (f"embedding {name} cut: it has {len(vec_ids)} vectors and a chunk holds "
                            f"{enc.chunk_length} tokens; the first {enc.chunk_length} were used")
                    if note not in emb.notes:
                        emb.notes.append(note)
                    vec_ids = vec_ids[:enc.chunk_length]
                return vec_ids, len(name_ids)
        return None

    return find


def _encode_side(encs: list[_Encoder], chunks: list[list[Chunk]], n: int, skip: int | None, device: Any):
    """``(embeddings (1, n × tokens, width), pooled or None)``: every encoder's chunks (padded with empty
    chunks to ``n``) encoded and concatenated; the encoders' outputs side by side (SDXL)."""
    import torch

    per_encoder, pooled = [], None
    for enc, enc_chunks in zip(encs, chunks, strict=True):
        parts = []
        for i in range(n):
            chunk = enc_chunks[i] if i < len(enc_chunks) else Chunk()
            z, p = _encode_chunk(enc, chunk, skip, device)
            parts.append(z)
            if i == 0 and enc.pooled:
                pooled = p
        per_encoder.append(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
    out = torch.cat(per_encoder, dim=-1) if len(per_encoder) > 1 else per_encoder[0]
    return out, pooled


def final_layer_norm(model: Any) -> Any:
    """The text encoder's final LayerNorm (transformers 5 keeps it on the model, 4 under ``text_model``;
    diffusers' own ``clip_skip`` looks only under ``text_model`` and fails on SD1 with transformers 5)."""
    norm = getattr(model, "final_layer_norm", None)
    return norm if norm is not None else model.text_model.final_layer_norm


def _encode_chunk(enc: _Encoder, chunk: Chunk, skip: int | None, device: Any):
    """One chunk through the text encoder: ``(hidden states (1, tokens, width), pooled or None)``."""
    import torch

    tok, model = enc.tokenizer, enc.model
    length = enc.chunk_length
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = [tok.bos_token_id, *chunk.tokens, tok.eos_token_id] + [pad] * (length - len(chunk.tokens))
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    mask = None
    if getattr(model.config, "use_attention_mask", False):
        mask = torch.tensor([[1] * (len(chunk.tokens) + 2) + [0] * (length - len(chunk.tokens))], device=device)
    xl = enc.slot != ""
    if not xl and skip is None:
        out = model(input_ids, attention_mask=mask)
        z, pooled = out[0], None
    else:
        out = model(input_ids, attention_mask=mask, output_hidden_states=True)
        pooled = out[0] if enc.pooled and out[0].ndim == 2 else None
        if xl:  # SDXL reads the penultimate layer (A1111 and diffusers); clip skip goes further back
            z = out.hidden_states[skip if skip is not None else -2]
        else:
            z = final_layer_norm(model)(out.hidden_states[skip])
    weights = chunk.multipliers + [1.0] * (length - len(chunk.multipliers))
    if any(w != 1.0 for w in weights):  # A1111's "Original" emphasis: multiply, then restore the mean
        dtype, original_mean = z.dtype, z.mean()
        z = z * torch.tensor([1.0, *weights, 1.0], device=z.device, dtype=torch.float32).reshape(1, -1, 1)
        new_mean = z.mean()
        z = (z * (original_mean / new_mean) if new_mean != 0 else z).to(dtype)
    return z, pooled
