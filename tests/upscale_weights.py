"""Random-weight networks saved with the official release files' state-dict key layouts (tests only)."""

from __future__ import annotations

from pathlib import Path


def rrdbnet_state(scale: int = 4, num_feat: int = 8, num_block: int = 1, num_grow_ch: int = 32, seed: int = 0):
    """basicsr RRDBNet keys (spandrel assumes 32 grow channels, as every release has), as in RealESRGAN_x4plus.pth / RealESRGAN_x2plus.pth (pixel-unshuffle for 2×)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    in_ch = 3 * (4 if scale == 2 else 1)
    sd = {}

    def conv(name, cin, cout):
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (0.5 / (cin * 9) ** 0.5)
        sd[f"{name}.bias"] = torch.zeros(cout)

    conv("conv_first", in_ch, num_feat)
    for b in range(num_block):
        for r in (1, 2, 3):
            for c in range(1, 6):
                cin = num_feat + (c - 1) * num_grow_ch
                conv(f"body.{b}.rdb{r}.conv{c}", cin, num_feat if c == 5 else num_grow_ch)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, num_feat, num_feat)
    conv("conv_last", num_feat, 3)
    return {"params_ema": sd}


def compact_state(scale: int = 4, num_feat: int = 8, num_conv: int = 2, seed: int = 0):
    """SRVGGNetCompact keys, as in realesr-general-x4v3.pth: body.N conv / PReLU alternating."""
    import torch

    g = torch.Generator().manual_seed(seed)
    sd = {}
    i = 0

    def conv(cin, cout):
        nonlocal i
        sd[f"body.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (0.5 / (cin * 9) ** 0.5)
        sd[f"body.{i}.bias"] = torch.zeros(cout)
        i += 1

    def prelu(n):
        nonlocal i
        sd[f"body.{i}.weight"] = torch.full((n,), 0.25)
        i += 1

    conv(3, num_feat)
    prelu(num_feat)
    for _ in range(num_conv):
        conv(num_feat, num_feat)
        prelu(num_feat)
    conv(num_feat, 3 * scale * scale)
    return {"params": sd}


def gfpgan_state(seed: int = 0):
    """GFPGANv1Clean keys, as in GFPGANv1.4.pth (spandrel's own arch code builds the network)."""
    import torch
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(seed)
    net = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                 fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    return {"params_ema": net.state_dict()}


def save(state, path: Path) -> Path:
    import torch

    torch.save(state, path)
    return path
