"""Prompt conditioning (viwoscript/models/prompts.py) and textual inversion (models/embeddings.py) on tiny
random-weight models: plain prompts give diffusers' own embeddings to the bit; ``(red:1.3)``, ``BREAK``
and prompts longer than a chunk match a reference of A1111's algorithm written here (A1111's
``tokenize_line`` / ``process_tokens`` / "Original" emphasis); clip skip; embeddings equal diffusers'
``load_textual_inversion`` and never leak into prompts that do not name them.

The tiny tokenizer reads 32 tokens, so a chunk is 30 tokens (model_max_length − 2) and every character
is a token: short prompts already span several chunks."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from viwoscript.models.embeddings import Embeddings, embedding_files  # noqa: E402
from viwoscript.models.prompt_syntax import parse_prompt_attention  # noqa: E402
from viwoscript.models.prompts import encode_prompts, final_layer_norm  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402

LONG = "a lighthouse on a cliff at dusk, oil painting, dramatic sky, seagulls"  # 59 tokens: 3 chunks


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prompt-models")
    make_tiny(root / "sd15", "sd15")
    make_tiny(root / "sdxl", "sdxl")
    lift_final_norm(root / "sd15")
    return root


def lift_final_norm(folder):
    """A fresh tiny encoder's final LayerNorm has bias 0, so its outputs average exactly 0 and A1111's
    mean restoration divides 0 by 0; real CLIP's does not: give it a bias, as a trained one has."""
    from transformers import CLIPTextModel

    te = CLIPTextModel.from_pretrained(folder / "text_encoder")
    with torch.no_grad():
        final_layer_norm(te).bias.copy_(torch.linspace(-0.2, 0.6, te.config.hidden_size))
    te.save_pretrained(folder / "text_encoder")


def load(folder, family):
    import diffusers

    if family == "sdxl":
        return diffusers.StableDiffusionXLPipeline.from_pretrained(folder / "sdxl")
    return diffusers.StableDiffusionPipeline.from_pretrained(folder / "sd15", safety_checker=None,
                                                             requires_safety_checker=False)


@pytest.fixture(scope="module")
def sd(folders):
    return load(folders, "sd15")


@pytest.fixture(scope="module")
def xl(folders):
    return load(folders, "sdxl")


# --- a reference of A1111's algorithm (sd_hijack_clip.py), written independently of the code under test ---

def a1111_chunks(tok, text):
    """A1111's tokenize_line: (tokens with start/end/padding, multipliers) per chunk."""
    length = tok.model_max_length - 2
    id_start, id_end = tok.bos_token_id, tok.eos_token_id
    comma = tok.get_vocab()[",</w>"]
    parsed = parse_prompt_attention(text)
    tokenized = tok([t for t, _ in parsed], truncation=False, add_special_tokens=False)["input_ids"]
    chunks, state = [], {"t": [], "m": [], "comma": -1}

    def next_chunk():
        t, m = state["t"], state["m"]
        to_add = length - len(t)
        t, m = t + [id_end] * to_add, m + [1.0] * to_add
        chunks.append(([id_start] + t + [id_end], [1.0] + m + [1.0]))
        state.update(t=[], m=[], comma=-1)

    for tokens, (text_, weight) in zip(tokenized, parsed, strict=True):
        if text_ == "BREAK" and weight == -1:
            next_chunk()
            continue
        for token in tokens:
            if token == comma:
                state["comma"] = len(state["t"])
            elif len(state["t"]) == length and state["comma"] != -1 and len(state["t"]) - state["comma"] <= 20:
                at = state["comma"] + 1
                rt, rm = state["t"][at:], state["m"][at:]
                state["t"], state["m"] = state["t"][:at], state["m"][:at]
                next_chunk()
                state["t"], state["m"] = rt, rm
            if len(state["t"]) == length:
                next_chunk()
            state["t"].append(token)
            state["m"].append(weight)
    if state["t"] or not chunks:
        next_chunk()
    return chunks


def a1111_encode(tok, te, chunks, layer):
    """A1111's process_tokens for each chunk (padding after the first end token, the layer, "Original"
    emphasis), concatenated; and the first chunk's pooled output (SDXL's second encoder)."""
    zs, pooled = [], None
    for tokens, mults in chunks:
        tokens = list(tokens)
        if tok.pad_token_id != tok.eos_token_id:
            first = tokens.index(tok.eos_token_id)
            tokens[first + 1:] = [tok.pad_token_id] * (len(tokens) - first - 1)
        out = te(torch.tensor([tokens]), output_hidden_states=True)
        z = layer(te, out)
        if pooled is None and out[0].ndim == 2:
            pooled = out[0]
        original_mean = z.mean()
        z = z * torch.tensor(mults).reshape(1, -1, 1).expand(z.shape)
        z = z * (original_mean / z.mean())
        zs.append(z)
    return torch.hstack(zs), pooled


def sd1_layer(clip_skip=1):
    def layer(te, out):
        if clip_skip > 1:
            return final_layer_norm(te)(out.hidden_states[-clip_skip])
        return out.last_hidden_state
    return layer


def penultimate(te, out):
    return out.hidden_states[-2]


def pad_to(chunks, n, tok):
    return chunks + a1111_chunks(tok, "") * (n - len(chunks))


def close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# --- SD1: exact with diffusers, equal to the A1111 reference ---------------------------------------

def test_a_plain_prompt_gives_diffusers_own_embeddings_to_the_bit(sd, xl):
    with torch.no_grad():
        for neg in (None, "blurry, dark"):
            c = encode_prompts(sd, {"prompt": "a cat on a mat", "negative_prompt": neg})
            pe, ne = sd.encode_prompt("a cat on a mat", "cpu", 1, True, neg)
            assert torch.equal(c.kwargs["prompt_embeds"], pe) and torch.equal(c.kwargs["negative_prompt_embeds"], ne)
            c = encode_prompts(xl, {"prompt": "a cat on a mat", "negative_prompt": neg})
            ref = xl.encode_prompt("a cat on a mat", None, "cpu", 1, True, neg)
            keys = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
            assert all(torch.equal(c.kwargs[k], r) for k, r in zip(keys, ref, strict=True))
            assert c.notes == [] and c.chunks == 1


@pytest.mark.parametrize("text", ["(red:1.3) apple, [green] (leaf)", "a cat BREAK a dog", LONG,
                                  "(a lighthouse:1.2) on a cliff, ((oil painting)), BREAK [dramatic] sky"])
def test_sd1_conditioning_equals_the_a1111_reference(sd, text):
    tok, te = sd.tokenizer, sd.text_encoder
    with torch.no_grad():
        c = encode_prompts(sd, {"prompt": text, "negative_prompt": "blurry"})
        pos = a1111_chunks(tok, text)
        ref, _ = a1111_encode(tok, te, pos, sd1_layer())
        neg, _ = a1111_encode(tok, te, pad_to(a1111_chunks(tok, "blurry"), len(pos), tok), sd1_layer())
    assert c.chunks == len(pos) and c.notes == []
    close(c.kwargs["prompt_embeds"], ref)
    close(c.kwargs["negative_prompt_embeds"], neg)  # padded with empty-prompt chunks to the same length


def test_weights_break_and_long_prompts_change_what_the_model_reads(sd):
    with torch.no_grad():
        def emb(text):
            return encode_prompts(sd, {"prompt": text}).kwargs["prompt_embeds"]

        plain, red = emb("red apple"), emb("(red:1.3) apple")
        assert plain.shape == red.shape and not torch.equal(plain, red)
        assert emb("a cat BREAK a dog").shape[1] == 64
        long = emb(LONG)
        assert long.shape[1] == 96  # 59 tokens, broken after commas: 3 chunks, nothing cut
    assert len(a1111_chunks(sd.tokenizer, LONG)) == 3


def test_the_comma_rule_moves_the_words_after_the_last_comma(sd):
    tok = sd.tokenizer
    chunks = a1111_chunks(tok, LONG)
    first = tok.decode(chunks[0][0][1:], skip_special_tokens=True)
    assert first.endswith(",")  # the first chunk ends at a comma, not mid-word


def test_sdxl_conditioning_equals_the_a1111_reference(xl):
    text = "(red:1.3) apple BREAK " + LONG
    with torch.no_grad():
        c = encode_prompts(xl, {"prompt": text, "negative_prompt": "blurry"})
        parts, pooled = [], None
        for tok, te in ((xl.tokenizer, xl.text_encoder), (xl.tokenizer_2, xl.text_encoder_2)):
            z, p = a1111_encode(tok, te, a1111_chunks(tok, text), penultimate)
            parts.append(z)
            pooled = p if p is not None else pooled
        ref = torch.cat(parts, dim=-1)
    close(c.kwargs["prompt_embeds"], ref)
    close(c.kwargs["pooled_prompt_embeds"], pooled)
    assert c.kwargs["negative_prompt_embeds"].shape == ref.shape


def test_sdxl_empty_negative_is_zeros_as_in_diffusers_and_a1111(xl):
    with torch.no_grad():
        c = encode_prompts(xl, {"prompt": LONG})
    assert c.chunks == 3 and not c.kwargs["negative_prompt_embeds"].any()
    assert not c.kwargs["negative_pooled_prompt_embeds"].any()


def test_unsupported_tags_and_syntax_are_noted(sd):
    with torch.no_grad():
        c = encode_prompts(sd, {"prompt": "a cat <hypernet:x:1> [dog:fox:0.5]"})
        quiet = encode_prompts(sd, {"prompt": "a cat <lora:x:1>"}, handled_tags=("lora",))
    assert any("<hypernet:x:1> removed" in n for n in c.notes)
    assert any("prompt editing [dog:fox:0.5]" in n for n in c.notes)
    assert quiet.notes == []


# --- clip skip --------------------------------------------------------------------------------------

def test_clip_skip_reads_an_earlier_layer_a1111_numbering(sd):
    with torch.no_grad():
        plain = encode_prompts(sd, {"prompt": "(red:1.2) apple"}).kwargs["prompt_embeds"]
        one = encode_prompts(sd, {"prompt": "(red:1.2) apple"}, clip_skip=1).kwargs["prompt_embeds"]
        two = encode_prompts(sd, {"prompt": "(red:1.2) apple"}, clip_skip=2).kwargs["prompt_embeds"]
        ref, _ = a1111_encode(sd.tokenizer, sd.text_encoder, a1111_chunks(sd.tokenizer, "(red:1.2) apple"),
                              sd1_layer(2))
    assert torch.equal(plain, one) and not torch.allclose(plain, two)
    close(two, ref)
    from viwoscript.errors import ArgumentError

    with pytest.raises(ArgumentError, match="clip_skip 3 is more than"):
        encode_prompts(sd, {"prompt": "x"}, clip_skip=3)


def test_sdxl_clip_skip_reads_further_back_in_both_encoders(xl):
    from types import SimpleNamespace

    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    def deeper(te, cls):  # the tiny encoders have 2 layers: SDXL's default already reads layer -2
        torch.manual_seed(1)
        cfg = te.config.__class__(**{**te.config.to_dict(), "num_hidden_layers": 4})
        return cls(cfg).eval()

    te1, te2 = deeper(xl.text_encoder, CLIPTextModel), deeper(xl.text_encoder_2, CLIPTextModelWithProjection)
    pipe = SimpleNamespace(components={"text_encoder_2": te2}, tokenizer=xl.tokenizer, tokenizer_2=xl.tokenizer_2,
                           text_encoder=te1, text_encoder_2=te2, _execution_device=torch.device("cpu"),
                           config=SimpleNamespace(force_zeros_for_empty_prompt=True))
    text = "(red:1.3) apple"
    with torch.no_grad():
        default = encode_prompts(pipe, {"prompt": text}).kwargs
        assert torch.equal(encode_prompts(pipe, {"prompt": text}, clip_skip=2).kwargs["prompt_embeds"],
                           default["prompt_embeds"])
        three = encode_prompts(pipe, {"prompt": text}, clip_skip=3).kwargs

        def layer(te, out):
            return out.hidden_states[-3]

        ref = torch.cat([a1111_encode(tok, te, a1111_chunks(tok, text), layer)[0]
                         for tok, te in ((xl.tokenizer, te1), (xl.tokenizer_2, te2))], dim=-1)
    close(three["prompt_embeds"], ref)
    assert not torch.allclose(three["prompt_embeds"], default["prompt_embeds"])
    assert torch.equal(three["pooled_prompt_embeds"], default["pooled_prompt_embeds"])  # pooled: the last layer


# --- textual inversion ------------------------------------------------------------------------------

def write_embedding(path, tensors):
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def test_an_embedding_equals_diffusers_load_textual_inversion_and_never_leaks(folders, tmp_path):
    torch.manual_seed(5)
    f = write_embedding(tmp_path / "emb" / "zqx.safetensors", {"emb_params": torch.randn(2, 8)})
    sd = load(folders, "sd15")
    vocab, rows = len(sd.tokenizer), sd.text_encoder.get_input_embeddings().weight.shape[0]
    plain_before, _ = sd.encode_prompt("a zqxy cat", "cpu", 1, False)
    with torch.no_grad():
        emb = Embeddings(embedding_files(tmp_path / "emb"))
        used = encode_prompts(sd, {"prompt": "a zqx cat, (zqx:1.2)"}, embeddings=emb)
        without = encode_prompts(sd, {"prompt": "a zqx cat, (zqx:1.2)"})
        again = encode_prompts(sd, {"prompt": "a zqx cat"}, embeddings=Embeddings(embedding_files(tmp_path / "emb")))
    assert used.embeddings == {"zqx": f} and not torch.equal(used.kwargs["prompt_embeds"],
                                                             without.kwargs["prompt_embeds"])
    # the tokenizer is untouched: the embedding is 2 rows of the encoder's table, added once, not per call
    assert len(sd.tokenizer) == vocab and sd.text_encoder.get_input_embeddings().weight.shape[0] == rows + 2
    # a prompt that does not name it (even one containing its letters) is exactly what diffusers makes
    plain_after, _ = sd.encode_prompt("a zqxy cat", "cpu", 1, False)
    with torch.no_grad():
        mine = encode_prompts(sd, {"prompt": "a zqxy cat"}, embeddings=emb).kwargs["prompt_embeds"]
    assert torch.equal(plain_before, plain_after) and torch.equal(mine, plain_before)

    ref = load(folders, "sd15")
    ref.load_textual_inversion(str(f), token="zqx")
    with torch.no_grad():
        expected, _ = ref.encode_prompt("a zqx cat", "cpu", 1, False)
    assert torch.equal(again.kwargs["prompt_embeds"], expected)


def test_embedding_formats_pickles_and_the_wrong_model(folders, tmp_path, sd, xl):
    torch.manual_seed(6)
    torch.save({"string_to_param": {"*": torch.randn(1, 8)}, "name": "pk", "step": 3}, tmp_path / "pk.pt")
    write_embedding(tmp_path / "sub" / "xlemb.safetensors", {"clip_l": torch.randn(1, 8), "clip_g": torch.randn(2, 8)})
    assert set(embedding_files(tmp_path)) == {"xlemb"}  # pickles only with allow_pickle
    files = embedding_files(tmp_path, allow_pickle=True)
    assert set(files) == {"xlemb", "pk"}
    with torch.no_grad():
        plain = encode_prompts(sd, {"prompt": "a pk"}).kwargs["prompt_embeds"]
        c = encode_prompts(sd, {"prompt": "a pk"}, embeddings=Embeddings(files, allow_pickle=True))
        assert c.embeddings == {"pk": tmp_path / "pk.pt"} and not torch.equal(plain, c.kwargs["prompt_embeds"])
        c = encode_prompts(sd, {"prompt": "a xlemb"}, embeddings=Embeddings(files, allow_pickle=True))
        assert c.embeddings == {} and any("xlemb not used: it was made for another kind of model" in n
                                          for n in c.notes)
        plain = encode_prompts(xl, {"prompt": "a xlemb"}).kwargs["prompt_embeds"]
        c = encode_prompts(xl, {"prompt": "a xlemb"}, embeddings=Embeddings(files, allow_pickle=True))
        assert c.embeddings == {"xlemb": files["xlemb"]} and not torch.equal(plain, c.kwargs["prompt_embeds"])


# --- through the capabilities ------------------------------------------------------------------------

GEN = '(std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0) (std.arg 1))'


def test_through_the_capability_plain_prompts_weights_clip_skip_and_embeddings(folders, tmp_path):
    import numpy as np

    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.models import ModelConfig
    from viwoscript.models.images import to_uint8
    from viwoscript.models.manager import ModelManager

    torch.manual_seed(7)
    write_embedding(tmp_path / "emb" / "zqx.safetensors", {"emb_params": torch.randn(2, 8)})
    config = ModelConfig(aliases={"tiny": str(folders / "sd15")}, default="tiny", embeddings_dir=str(tmp_path / "emb"),
                         cache_dir=str(tmp_path / "cache"))
    rt = Runtime(capabilities=capabilities(config), grants="default")
    rt.models = ModelManager()
    opts = {"steps": 2, "seed": 3, "width": 64, "height": 64}

    def run(prompt, **kw):
        return rt.run(GEN, args=[prompt, {**opts, **kw}])

    # a plain prompt: the very image diffusers makes from the prompt string
    ref = load(folders, "sd15")
    out = ref(prompt="a red comet", negative_prompt="dark", num_inference_steps=2, width=64, height=64,
              generator=[torch.Generator("cpu").manual_seed(3)], output_type="np")
    plain = run("a red comet", negative_prompt="dark")
    assert np.array_equal(plain["image"].pixels, to_uint8(out.images)[0]) and "notes" not in plain
    assert not np.array_equal(run("(a red:1.3) comet", negative_prompt="dark")["image"].pixels, plain["image"].pixels)
    # clip skip: A1111's numbering, recorded; 1 is the default layer
    two = run("a red comet", negative_prompt="dark", clip_skip=2)
    assert two["image"].metadata["clip_skip"] == 2 and not np.array_equal(two["image"].pixels, plain["image"].pixels)
    assert np.array_equal(run("a red comet", negative_prompt="dark", clip_skip=1)["image"].pixels,
                          plain["image"].pixels)
    # an embedding from embeddings_dir, by its file name; the shared pipelines stay as they were
    emb = run("a zqx comet")
    import hashlib

    short = hashlib.sha256((tmp_path / "emb" / "zqx.safetensors").read_bytes()).hexdigest()[:12]
    assert emb["image"].metadata["embeddings"] == ["zqx"]
    assert emb["image"].metadata["ti_hashes"] == {"zqx": short}  # A1111's TI hashes
    assert not np.array_equal(emb["image"].pixels, run("a zq comet")["image"].pixels)
    assert np.array_equal(run("a red comet", negative_prompt="dark")["image"].pixels, plain["image"].pixels)


def test_what_does_not_fit_is_cut_with_a_note(sd, tmp_path, monkeypatch):
    from viwoscript.models import prompts

    torch.manual_seed(8)
    write_embedding(tmp_path / "big.safetensors", {"emb_params": torch.randn(33, 8)})  # a chunk holds 30
    with torch.no_grad():
        c = encode_prompts(sd, {"prompt": "a big cat"}, embeddings=Embeddings(embedding_files(tmp_path)))
        assert c.embeddings and c.chunks == 3  # [a] [30 vectors] [cat]: an embedding never straddles chunks
        assert c.notes == ["embedding big cut: it has 33 vectors and a chunk holds 30 tokens; the first 30 were used"]
        monkeypatch.setattr(prompts, "MAX_CHUNKS", 2)
        c = encode_prompts(sd, {"prompt": LONG, "negative_prompt": "blurry"})
    assert c.chunks == 2 and c.kwargs["prompt_embeds"].shape[1] == 64
    assert c.kwargs["negative_prompt_embeds"].shape[1] == 64
    (note,) = c.notes
    assert note.startswith("prompt cut: it is 3 chunks of 30 tokens and at most 2 are read; the last ")


def test_a_configured_embeddings_folder_that_is_not_there_is_a_note(tmp_path):
    from viwoscript.models.config import ModelConfig

    missing = Embeddings.from_config(ModelConfig(embeddings_dir=str(tmp_path / "nope")))
    assert missing.files == {} and "is not a folder" in missing.notes[0] and "nope" in missing.notes[0]
    (tmp_path / "emb").mkdir()
    assert Embeddings.from_config(ModelConfig(embeddings_dir=str(tmp_path / "emb"))).notes == []
    assert Embeddings.from_config(ModelConfig()).notes == []
