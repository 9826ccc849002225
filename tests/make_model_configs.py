"""Writes viwoscript/models/configs/: the published architecture configs of SD 1.x, SD 2.x (epsilon and v),
SDXL base and refiner (no weights), and CLIP's BPE merges (from open_clip's bpe_simple_vocab_16e6.txt.gz).

    python tests/make_model_configs.py viwoscript/models/configs path/to/bpe_simple_vocab_16e6.txt.gz

tests/test_models_checkpoints.py checks the result against the published models' parameter counts and
CLIP's token ids."""
import gzip
import json
import shutil
import sys
from pathlib import Path

from accelerate import init_empty_weights
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig

OUT = Path(sys.argv[1])
def unet(**kw):
    with init_empty_weights():
        m = UNet2DConditionModel(**kw)
    return m
def vae(sample_size, scaling_factor=0.18215, force_upcast=True):
    with init_empty_weights():
        return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"]*4,
            up_block_types=["UpDecoderBlock2D"]*4, block_out_channels=[128,256,512,512], layers_per_block=2,
            act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=sample_size,
            scaling_factor=scaling_factor, force_upcast=force_upcast)
def clip_l():
    return CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
def open_clip_h():
    return CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
        num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
        bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
def open_clip_g():
    return CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
        num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280,
        bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
SD_SCHED = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                steps_offset=1, set_alpha_to_one=False)
def tok(pad):
    return {"tokenizer_class": "CLIPTokenizer", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>", "pad_token": pad, "model_max_length": 77, "do_lower_case": True}
def index(cls, parts, **extra):
    d = {"_class_name": cls, "_diffusers_version": "0.42.1"}
    d.update(extra)
    for k, v in parts.items():
        d[k] = v
    return d
def write(name, idx, comps):
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")
    for sub, obj in comps.items():
        d = root / sub
        d.mkdir()
        if isinstance(obj, dict):
            (d / "tokenizer_config.json").write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        elif isinstance(obj, CLIPTextConfig):
            obj.architectures = [obj._arch]
            cfg = obj.to_dict()
            cfg.pop("transformers_version", None)
            (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        else:
            cfg = dict(obj.config)
            cfg = {"_class_name": type(obj).__name__, **{k: v for k, v in cfg.items() if not k.startswith("_")}}
            (d / ("scheduler_config.json" if sub == "scheduler" else "config.json")).write_text(
                json.dumps(cfg, indent=2, sort_keys=True, default=list) + "\n")
def te(cfg, arch):
    cfg._arch = arch
    return cfg
SD1_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320,640,1280,1280],
    down_block_types=["CrossAttnDownBlock2D"]*3+["DownBlock2D"], up_block_types=["UpBlock2D"]+["CrossAttnUpBlock2D"]*3,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
null = [None, None]
def sd(sched):
    return {"feature_extractor": null, "image_encoder": null, "safety_checker": null, "scheduler": ["diffusers", sched],
      "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
      "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
write("sd15", index("StableDiffusionPipeline", sd("PNDMScheduler"), requires_safety_checker=False),
      {"unet": unet(**SD1_UNET), "vae": vae(512), "text_encoder": te(clip_l(), "CLIPTextModel"),
       "tokenizer": tok("<|endoftext|>"), "scheduler": PNDMScheduler(**SD_SCHED, skip_prk_steps=True)})
SD2_UNET = dict(SD1_UNET, cross_attention_dim=1024, attention_head_dim=[5,10,20,20], use_linear_projection=True)
write("sd2", index("StableDiffusionPipeline", sd("PNDMScheduler"), requires_safety_checker=False),
      {"unet": unet(**SD2_UNET), "vae": vae(512), "text_encoder": te(open_clip_h(), "CLIPTextModel"),
       "tokenizer": tok("!"), "scheduler": PNDMScheduler(**SD_SCHED, skip_prk_steps=True)})
write("sd2_v", index("StableDiffusionPipeline", sd("DDIMScheduler"), requires_safety_checker=False),
      {"unet": unet(**dict(SD2_UNET, sample_size=96)), "vae": vae(768), "text_encoder": te(open_clip_h(), "CLIPTextModel"),
       "tokenizer": tok("!"), "scheduler": DDIMScheduler(**SD_SCHED, clip_sample=False, prediction_type="v_prediction")})
XL_SCHED = EulerDiscreteScheduler(**{k: v for k, v in SD_SCHED.items() if k != "set_alpha_to_one"}, interpolation_type="linear",
                                  timestep_spacing="leading", use_karras_sigmas=False)
xl = {"feature_extractor": null, "image_encoder": null, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
      "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
      "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
      "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
write("sdxl_base", index("StableDiffusionXLPipeline", xl, force_zeros_for_empty_prompt=True),
      {"unet": unet(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320,640,1280],
                    down_block_types=["DownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D"],
                    up_block_types=["CrossAttnUpBlock2D","CrossAttnUpBlock2D","UpBlock2D"], cross_attention_dim=2048,
                    attention_head_dim=[5,10,20], use_linear_projection=True, transformer_layers_per_block=[1,2,10],
                    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
                    norm_num_groups=32),
       "vae": vae(1024, 0.13025), "text_encoder": te(clip_l(), "CLIPTextModel"),
       "text_encoder_2": te(open_clip_g(), "CLIPTextModelWithProjection"),
       "tokenizer": tok("<|endoftext|>"), "tokenizer_2": tok("!"), "scheduler": XL_SCHED})
xr = dict(xl, text_encoder=null, tokenizer=null)
write("sdxl_refiner", index("StableDiffusionXLImg2ImgPipeline", xr, force_zeros_for_empty_prompt=False, requires_aesthetics_score=True),
      {"unet": unet(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[384,768,1536,1536],
                    down_block_types=["DownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
                    up_block_types=["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","UpBlock2D"], cross_attention_dim=1280,
                    attention_head_dim=[6,12,24,24], use_linear_projection=True, transformer_layers_per_block=4,
                    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2560,
                    norm_num_groups=32),
       "vae": vae(1024, 0.13025), "text_encoder_2": te(open_clip_g(), "CLIPTextModelWithProjection"),
       "tokenizer_2": tok("!"), "scheduler": XL_SCHED})
# inpainting models: the same, with a 9-channel UNet input (latents, mask, masked-image latents)
for name, cls in (("sd15", "StableDiffusionInpaintPipeline"), ("sd2", "StableDiffusionInpaintPipeline"),
                  ("sdxl_base", "StableDiffusionXLInpaintPipeline")):
    src, dst = OUT / name, OUT / (name.removesuffix("_base") + "_inpaint")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    idx = json.loads((dst / "model_index.json").read_text())
    idx["_class_name"] = cls
    (dst / "model_index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")
    unet_cfg = json.loads((dst / "unet" / "config.json").read_text())
    unet_cfg["in_channels"] = 9
    (dst / "unet" / "config.json").write_text(json.dumps(unet_cfg, indent=2, sort_keys=True) + "\n")
# the CLIP BPE merges, once for every config (the vocabulary is derived from them)
bpe = gzip.open(sys.argv[2]).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]  # as CLIP reads it
merges = ("#version: 0.2\n" + "\n".join(bpe) + "\n").encode()
with gzip.GzipFile(OUT / "clip-merges.txt.gz", "wb", mtime=0) as f:
    f.write(merges)
