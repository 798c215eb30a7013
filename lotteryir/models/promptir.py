"""PromptIR (Potlapalli et al., NeurIPS 2023), the network MIR-L prunes; checkpoint-compatible.

PromptIR is Restormer (whose blocks it reuses) plus a prompt at each of the three
lower decoder levels: a prompt-generation block mixes learned prompt components with
weights predicted from the features, the result is concatenated to the features, and
a transformer block ("noise_level") plus a 1x1 conv fuse it back to the level's width.
Attribute names follow the published code, because they are the checkpoint keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .padding import pad_to_multiple
from .registry import register_model
from .restormer import (
    Downsample,
    OverlapPatchEmbed,
    RestormerConfig,
    TransformerBlock,
    Upsample,
    stage,
    with_overrides,
)


class PromptGenBlock(nn.Module):
    """Input-conditioned prompt: softmax-weighted sum of learned components, resized, 3x3 conv.

    Global average pooling of the features gives, through a linear layer and a softmax,
    one weight per prompt component; the weighted sum is bilinearly resized to the
    feature map's size, so `prompt_size` only sets the prompt's own resolution.
    """

    def __init__(self, prompt_dim: int, prompt_len: int, prompt_size: int, lin_dim: int) -> None:
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        weights = F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)  # (B, prompt_len)
        prompt = (weights[:, :, None, None, None] * self.prompt_param).sum(dim=1)
        prompt = F.interpolate(prompt, (h, w), mode="bilinear", align_corners=False)
        return self.conv3x3(prompt)


@dataclass(frozen=True)
class PromptIRConfig(RestormerConfig):
    """Hyper-parameters of PromptIR; the defaults are the published all-in-one configuration.

    Level indices count from the top: prompt k is used at decoder level k + 1, where the
    features have dim * 2**k channels (prompt 3 sits on the latent, at dim * 8).
    """

    prompt_dims: tuple[int, int, int] = (64, 128, 320)  # channels of prompts 1, 2, 3
    prompt_len: int = 5  # learned components per prompt
    prompt_sizes: tuple[int, int, int] = (64, 32, 16)  # the features' size for 128x128 training crops
    # Outputs of chnl_reduce1-3. The published code builds these 1x1 convs (and
    # reduce_noise_channel_1-3) but never calls them; they are kept so checkpoints load strictly.
    unused_reduce_dims: tuple[int, int, int] = (64, 128, 256)


class PromptIR(nn.Module):
    """Restormer with prompt blocks in the decoder (the published `decoder=True` network).

    Unlike Restormer, level 4 is upsampled only after being fused back to dim * 4
    channels. Any input size works: the forward pads (reflect) to a multiple of
    `multiple` and crops back.
    """

    multiple = 8  # three 2x downsamplings

    def __init__(self, config: PromptIRConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or PromptIRConfig()
        d, nb, hd, bias = cfg.dim, cfg.num_blocks, cfg.heads, cfg.bias
        p, red = cfg.prompt_dims, cfg.unused_reduce_dims

        def fuse(channels: int) -> TransformerBlock:
            return TransformerBlock(channels, hd[2], cfg.ffn_expansion_factor, bias, cfg.layer_norm)

        # Registration order matters: it is the key order of published state dicts.
        self.patch_embed = OverlapPatchEmbed(cfg.in_channels, d, bias)
        self.prompt1 = PromptGenBlock(p[0], cfg.prompt_len, cfg.prompt_sizes[0], d * 2)
        self.prompt2 = PromptGenBlock(p[1], cfg.prompt_len, cfg.prompt_sizes[1], d * 4)
        self.prompt3 = PromptGenBlock(p[2], cfg.prompt_len, cfg.prompt_sizes[2], d * 8)
        self.chnl_reduce1 = nn.Conv2d(p[0], red[0], kernel_size=1, bias=bias)  # unused
        self.chnl_reduce2 = nn.Conv2d(p[1], red[1], kernel_size=1, bias=bias)  # unused
        self.chnl_reduce3 = nn.Conv2d(p[2], red[2], kernel_size=1, bias=bias)  # unused
        self.reduce_noise_channel_1 = nn.Conv2d(d + red[0], d, kernel_size=1, bias=bias)  # unused
        self.encoder_level1 = stage(d, nb[0], hd[0], cfg)
        self.down1_2 = Downsample(d)
        self.reduce_noise_channel_2 = nn.Conv2d(d * 2 + red[1], d * 2, kernel_size=1, bias=bias)  # unused
        self.encoder_level2 = stage(d * 2, nb[1], hd[1], cfg)
        self.down2_3 = Downsample(d * 2)
        self.reduce_noise_channel_3 = nn.Conv2d(d * 4 + red[2], d * 4, kernel_size=1, bias=bias)  # unused
        self.encoder_level3 = stage(d * 4, nb[2], hd[2], cfg)
        self.down3_4 = Downsample(d * 4)
        self.latent = stage(d * 8, nb[3], hd[3], cfg)
        self.up4_3 = Upsample(d * 4)
        self.reduce_chan_level3 = nn.Conv2d(d * 2 + d * 4, d * 4, kernel_size=1, bias=bias)
        self.noise_level3 = fuse(d * 8 + p[2])
        self.reduce_noise_level3 = nn.Conv2d(d * 8 + p[2], d * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(d * 4, nb[2], hd[2], cfg)
        self.up3_2 = Upsample(d * 4)
        self.reduce_chan_level2 = nn.Conv2d(d * 4, d * 2, kernel_size=1, bias=bias)
        self.noise_level2 = fuse(d * 4 + p[1])
        self.reduce_noise_level2 = nn.Conv2d(d * 4 + p[1], d * 4, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(d * 2, nb[1], hd[1], cfg)
        self.up2_1 = Upsample(d * 2)
        self.noise_level1 = fuse(d * 2 + p[0])
        self.reduce_noise_level1 = nn.Conv2d(d * 2 + p[0], d * 2, kernel_size=1, bias=bias)
        self.decoder_level1 = stage(d * 2, nb[0], hd[0], cfg)
        self.refinement = stage(d * 2, cfg.num_refinement_blocks, hd[0], cfg)
        self.output = nn.Conv2d(d * 2, cfg.out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        latent = self.reduce_noise_level3(self.noise_level3(torch.cat([latent, self.prompt3(latent)], 1)))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec3 = self.reduce_noise_level2(self.noise_level2(torch.cat([dec3, self.prompt2(dec3)], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec2 = self.reduce_noise_level1(self.noise_level1(torch.cat([dec2, self.prompt1(dec2)], 1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        out = self.output(self.refinement(dec1)) + x
        return out[..., :h, :w]


# Registered sizes. Small sizes keep every block (the unused convs included, so the
# pruner sees the same structure), scale prompt channels with dim (as in the published
# 64:128:320 for dim 48) and shrink the prompts' resolution to their 64x64-crop features.
_SIZES: dict[str, PromptIRConfig] = {
    "full": PromptIRConfig(),
    "small": PromptIRConfig(
        dim=12,
        num_blocks=(1, 2, 2, 2),
        num_refinement_blocks=1,
        prompt_dims=(16, 32, 80),
        prompt_sizes=(32, 16, 8),
        unused_reduce_dims=(16, 32, 64),
    ),
    "tiny": PromptIRConfig(
        dim=6,
        num_blocks=(1, 1, 1, 1),
        num_refinement_blocks=1,
        heads=(1, 1, 2, 2),
        prompt_dims=(8, 16, 40),
        prompt_sizes=(16, 8, 4),
        unused_reduce_dims=(8, 16, 32),
    ),
}


def _build(size: str, **overrides) -> PromptIR:
    return PromptIR(with_overrides(_SIZES[size], overrides))


@register_model("mirl", "full")
def mirl_full(**overrides) -> PromptIR:
    """PromptIR as published and pruned by MIR-L (35.6M params; denoise, derain, dehaze)."""
    return _build("full", **overrides)


@register_model("mirl", "small")
def mirl_small(**overrides) -> PromptIR:
    """PromptIR architecture at dim 12 and fewer blocks, trainable on a CPU."""
    return _build("small", **overrides)


@register_model("mirl", "tiny")
def mirl_tiny(**overrides) -> PromptIR:
    """PromptIR architecture at dim 6, one block per level: smoke tests and quick experiments."""
    return _build("tiny", **overrides)
