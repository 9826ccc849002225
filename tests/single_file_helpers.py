"""Tiny single-file checkpoints in the original (LDM / A1111) key layout, written by tests.

No diffusers→LDM converter ships in the package: this one exists to make test files. It inverts what
diffusers' single-file loader does (``diffusers.loaders.single_file_utils``): UNet blocks as
``input_blocks.N.M``, VAE attention weights as 1×1 convolutions, the CLIP text encoder under
``cond_stage_model.transformer.text_model.`` (SD1) or ``conditioner.embedders.0.transformer.`` (SDXL), the
OpenCLIP encoder (SD2, SDXL's second) with fused ``in_proj`` weights and a transposed ``text_projection``.
"""

from __future__ import annotations

import json
from pathlib import Path

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))


def _resnet(key: str) -> str:
    for new, old in _RESNET:
        key = key.replace(f".{new}.", f".{old}.")
    return key


def unet_to_ldm(sd: dict, config: dict, prefix: str = "model.diffusion_model.") -> dict:
    per = config["layers_per_block"] + 1
    n = len(config["block_out_channels"])
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
    out = {}
    for key, value in sd.items():
        new = None
        head, _, leaf = key.rpartition(".")
        if head in fixed:
            new = f"{fixed[head]}.{leaf}"
        parts = key.split(".")
        if parts[0] == "down_blocks":
            i, kind, j = int(parts[1]), parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            if kind == "resnets":
                new = _resnet(f"input_blocks.{per * i + j + 1}.0.{rest}")
            elif kind == "attentions":
                new = f"input_blocks.{per * i + j + 1}.1.{rest}"
            elif kind == "downsamplers":
                new = f"input_blocks.{per * (i + 1)}.0.op.{'.'.join(parts[5:])}"
        elif parts[0] == "up_blocks":
            i, kind, j = int(parts[1]), parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            attn = config["up_block_types"][i].startswith("CrossAttn")
            if kind == "resnets":
                new = _resnet(f"output_blocks.{per * i + j}.0.{rest}")
            elif kind == "attentions":
                new = f"output_blocks.{per * i + j}.1.{rest}"
            elif kind == "upsamplers":
                new = f"output_blocks.{per * i + per - 1}.{2 if attn else 1}.{'.'.join(parts[4:])}"
        elif parts[0] == "mid_block":
            kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            new = _resnet(f"middle_block.{2 * j}.{rest}") if kind == "resnets" else f"middle_block.1.{rest}"
        if new is None:
            raise KeyError(f"unet key not mapped: {key}")
        out[prefix + new] = value
    assert n  # (block count is implicit in the keys)
    return out


def vae_to_ldm(sd: dict, config: dict, prefix: str = "first_stage_model.") -> dict:
    n = len(config["up_block_types"])
    out = {}
    for key, value in sd.items():
        new = key.replace("conv_norm_out", "norm_out")
        parts = new.split(".")
        if parts[1] == "down_blocks":
            i, kind = parts[2], parts[3]
            if kind == "resnets":
                new = f"encoder.down.{i}.block.{parts[4]}." + ".".join(parts[5:])
            else:
                new = f"encoder.down.{i}.downsample." + ".".join(parts[5:])
        elif parts[1] == "up_blocks":
            i, kind = n - 1 - int(parts[2]), parts[3]
            if kind == "resnets":
                new = f"decoder.up.{i}.block.{parts[4]}." + ".".join(parts[5:])
            else:
                new = f"decoder.up.{i}.upsample." + ".".join(parts[5:])
        elif parts[1] == "mid_block":
            if parts[2] == "resnets":
                new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
            else:
                rest = ".".join(parts[4:])
                rest = {"group_norm.weight": "norm.weight", "group_norm.bias": "norm.bias",
                        "to_q.weight": "q.weight", "to_q.bias": "q.bias", "to_k.weight": "k.weight",
                        "to_k.bias": "k.bias", "to_v.weight": "v.weight", "to_v.bias": "v.bias",
                        "to_out.0.weight": "proj_out.weight", "to_out.0.bias": "proj_out.bias"}[rest]
                new = f"{parts[0]}.mid.attn_1.{rest}"
                if value.ndim == 2:
                    value = value[:, :, None, None]  # linear → 1×1 conv, as the original VAE stores them
        new = new.replace("conv_shortcut", "nin_shortcut")
        out[prefix + new] = value
    return out


def clip_to_ldm(sd: dict, prefix: str) -> dict:
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in sd.items()
            if not k.endswith("position_ids")}


def open_clip_to_ldm(sd: dict, prefix: str) -> dict:
    import torch

    sd = {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v for k, v in sd.items()}
    out = {}
    fixed = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias"}
    for k, v in sd.items():
        if k in fixed:
            out[prefix + fixed[k]] = v
        elif k == "text_projection.weight":
            out[prefix + "text_projection"] = v.T.contiguous()
    layers = sorted({int(k.split(".")[3]) for k in sd if k.startswith("text_model.encoder.layers.")})
    for i in layers:
        src = f"text_model.encoder.layers.{i}."
        dst = f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat([sd[src + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
            out[dst + f"attn.out_proj.{kind}"] = sd[src + f"self_attn.out_proj.{kind}"]
            out[dst + f"ln_1.{kind}"] = sd[src + f"layer_norm1.{kind}"]
            out[dst + f"ln_2.{kind}"] = sd[src + f"layer_norm2.{kind}"]
            out[dst + f"mlp.c_fc.{kind}"] = sd[src + f"mlp.fc1.{kind}"]
            out[dst + f"mlp.c_proj.{kind}"] = sd[src + f"mlp.fc2.{kind}"]
    return out


def pipeline_to_ldm(pipe, kind: str = "sd15") -> dict:
    """The state dict of a diffusers pipeline in the original layout (``sd15``, ``sd2``, ``sdxl``)."""
    sd = unet_to_ldm(pipe.unet.state_dict(), dict(pipe.unet.config))
    sd.update(vae_to_ldm(pipe.vae.state_dict(), dict(pipe.vae.config)))
    if kind == "sd15":
        sd.update(clip_to_ldm(pipe.text_encoder.state_dict(), "cond_stage_model.transformer."))
    elif kind == "sd2":
        sd.update(open_clip_to_ldm(pipe.text_encoder.state_dict(), "cond_stage_model.model."))
    elif kind == "sdxl":
        sd.update(clip_to_ldm(pipe.text_encoder.state_dict(), "conditioner.embedders.0.transformer."))
        sd.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model."))
    elif kind == "sdxl_refiner":
        sd.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), "conditioner.embedders.0.model."))
    else:
        raise ValueError(kind)
    return {k: v.contiguous() for k, v in sd.items()}


def save_single_file(pipe, path: Path, kind: str = "sd15") -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(pipe_state(pipe, kind), str(path))
    return path


def pipe_state(pipe, kind):
    return pipeline_to_ldm(pipe, kind)


def config_folder(pipe_dir: Path, out: Path) -> Path:
    """A config folder (no weights) from a saved diffusers pipeline folder: what ships in the package for
    real models, made here for tiny ones."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    for f in Path(pipe_dir).rglob("*"):
        if f.is_file() and f.suffix in (".json", ".txt"):
            dest = out / f.relative_to(pipe_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    json.loads((out / "model_index.json").read_text())
    return out


def tiny_sdxl(out: Path, *, seed: int = 0, refiner: bool = False):
    """A tiny SDXL base (or refiner) whose two text encoders have different widths (8 and 16, projection
    16), as diffusers' single-file loader tells the encoders apart by width."""
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline, UNet2DConditionModel

    from viwoscript.models import tiny

    torch.manual_seed(seed)
    tok = tiny._tokenizer(out / "tokenizer")
    tok2 = tiny._tokenizer(out / "tokenizer_2")
    n = len(tok)
    te2 = tiny._text_encoder(n, 16, projection=16)
    cross = 16 if refiner else 8 + 16
    time_ids = 5 if refiner else 6
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=cross,
                                attention_head_dim=2, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
                                addition_time_embed_dim=4, projection_class_embeddings_input_dim=time_ids * 4 + 16,
                                transformer_layers_per_block=(1, 1))
    if refiner:
        pipe = StableDiffusionXLImg2ImgPipeline(vae=tiny._vae(), text_encoder=None, text_encoder_2=te2, tokenizer=None,
                                                tokenizer_2=tok2, unet=unet, scheduler=tiny._scheduler(),
                                                requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    else:
        pipe = StableDiffusionXLPipeline(vae=tiny._vae(), text_encoder=tiny._text_encoder(n, 8), text_encoder_2=te2,
                                         tokenizer=tok, tokenizer_2=tok2, unet=unet, scheduler=tiny._scheduler())
    pipe.save_pretrained(out)
    return pipe


def tiny_sd2(out: Path, *, seed: int = 0):
    """A tiny SD 2.x-layout model: the SD1 tiny architecture with an OpenCLIP-style (gelu) text encoder,
    written to the original file under ``cond_stage_model.model.``."""
    import torch
    from diffusers import StableDiffusionPipeline

    from viwoscript.models import tiny

    torch.manual_seed(seed)
    tok = tiny._tokenizer(out / "tokenizer")
    pipe = StableDiffusionPipeline(vae=tiny._vae(), text_encoder=tiny._text_encoder(len(tok), 8), tokenizer=tok,
                                   unet=tiny._unet(), scheduler=tiny._scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    return pipe


def single_file_model(pipe, folder: Path, name: str, kind: str = "sd15", *, pipe_dir: Path) -> Path:
    """``folder/name.safetensors`` plus its config folder beside it (``name.config/``, tokenizer files
    included), as a user with a tiny model would lay them out."""
    path = save_single_file(pipe, Path(folder) / f"{name}.safetensors", kind)
    config_folder(pipe_dir, Path(folder) / f"{name}.config")
    return path
