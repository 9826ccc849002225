"""Tiny random-weight diffusers models, made locally (``viwo models make-tiny DIR``).

They have the real architectures (UNet, VAE, CLIP text encoders and tokenizers, ControlNet) at a
minute size, so the real resolution, loading and generation code runs on a CPU in milliseconds with
no download. Pictures are noise-like: these models exist for tests, examples and benchmarks.

The CLIP tokenizer works offline from a ``vocab.json`` of single characters (plus their ``</w>``
end-of-word variants) and a ``merges.txt`` holding only its version line.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

#: What :func:`make_tiny` can build.
FAMILIES = ("sd15", "sdxl", "sd15-inpaint", "sd15-controlnet", "sdxl-controlnet")
_MAX_TOKENS = 32


def _vocab() -> dict[str, int]:
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return vocab


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(_vocab()), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=_MAX_TOKENS)
    return tok


def _text_encoder(vocab_size: int, hidden: int, projection: int | None = None):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_attention_heads=2, num_hidden_layers=2, max_position_embeddings=_MAX_TOKENS,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=projection or hidden,
                         hidden_act="gelu")
    return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(4, 8), layers_per_block=1,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         latent_channels=4, norm_num_groups=2, sample_size=32)


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def _unet(*, in_channels: int = 4, cross: int = 8, sdxl: bool = False, scale: int = 1):
    from diffusers import UNet2DConditionModel

    kw = {}
    if sdxl:
        kw = dict(addition_embed_type="text_time", addition_time_embed_dim=4,
                  projection_class_embeddings_input_dim=6 * 4 + 8, transformer_layers_per_block=(1, 1))
    return UNet2DConditionModel(sample_size=16, in_channels=in_channels, out_channels=4, layers_per_block=1,
                                block_out_channels=(8 * scale, 16 * scale), norm_num_groups=4, cross_attention_dim=cross,
                                attention_head_dim=2,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), **kw)


def _controlnet(*, cross: int = 8, sdxl: bool = False, scale: int = 1):
    from diffusers import ControlNetModel

    kw = {}
    if sdxl:
        kw = dict(addition_embed_type="text_time", addition_time_embed_dim=4,
                  projection_class_embeddings_input_dim=6 * 4 + 8, transformer_layers_per_block=(1, 1))
    import torch

    net = ControlNetModel(in_channels=4, layers_per_block=1, block_out_channels=(8 * scale, 16 * scale), norm_num_groups=4,
                          cross_attention_dim=cross, attention_head_dim=2,
                          down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                          conditioning_embedding_out_channels=(4, 8), **kw)
    with torch.no_grad():  # a fresh ControlNet's output convolutions are zero: give it some influence
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
    return net


def make_tiny(directory: str | Path, family: str = "sd15", *, seed: int = 0, scale: int = 1) -> Path:
    """Build a tiny random-weight model of ``family`` (one of :data:`FAMILIES`) and save it to
    ``directory`` in the diffusers layout (``model_index.json`` + components, or a ControlNet's
    ``config.json``). Returns the directory. Same ``seed`` → same weights. ``scale`` multiplies the
    UNet's and ControlNet's channel counts (weights grow about ``scale²``; benchmarks use it so that
    weights, not the interpreter, dominate memory); a base and its ControlNet need the same scale."""
    import torch

    if scale < 1:
        raise ValueError(f"make_tiny: scale must be at least 1, not {scale}")
    if family not in FAMILIES:
        raise ValueError(f"make_tiny: unknown family {family!r} (one of {', '.join(FAMILIES)})")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    if family.endswith("controlnet"):
        sdxl = family.startswith("sdxl")
        _controlnet(cross=16 if sdxl else 8, sdxl=sdxl, scale=scale).save_pretrained(out)
        return out
    tmp_tok = out / "tokenizer"
    tok = _tokenizer(tmp_tok)
    n = len(tok)
    if family == "sdxl":
        from diffusers import StableDiffusionXLPipeline

        tok2 = _tokenizer(out / "tokenizer_2")
        pipe = StableDiffusionXLPipeline(vae=_vae(), text_encoder=_text_encoder(n, 8),
                                         text_encoder_2=_text_encoder(n, 8, projection=8), tokenizer=tok,
                                         tokenizer_2=tok2, unet=_unet(cross=16, sdxl=True, scale=scale), scheduler=_scheduler())
    else:
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

        cls = StableDiffusionInpaintPipeline if family == "sd15-inpaint" else StableDiffusionPipeline
        pipe = cls(vae=_vae(), text_encoder=_text_encoder(n, 8), tokenizer=tok,
                   unet=_unet(in_channels=9 if family == "sd15-inpaint" else 4, scale=scale), scheduler=_scheduler(),
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out


__all__ = ["FAMILIES", "make_tiny"]
