"""Restormer (Zamir et al., CVPR 2022), written from the paper, checkpoint-compatible.

Read top to bottom: the building blocks (channel layer norm, MDTA attention, GDFN
feed-forward, transformer block, patch embedding, pixel-(un)shuffle resampling), the
configuration, the network, then the registered sizes. Attribute names follow the
published code exactly, because they are the state-dict keys of released checkpoints.
PromptIR (promptir.py) reuses these blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .padding import pad_to_multiple
from .registry import register_model

LayerNormType = Literal["WithBias", "BiasFree"]
C = TypeVar("C")
_EPS = 1e-5


class WithBiasLayerNorm(nn.Module):
    """Layer norm over the channels of a BCHW tensor, with scale and shift."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + _EPS) * self.weight[:, None, None] + self.bias[:, None, None]


class BiasFreeLayerNorm(nn.Module):
    """Scale-only layer norm over channels: divides by the std without centring."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not centring is the published behaviour; the mean only enters through the variance.
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + _EPS) * self.weight[:, None, None]


class LayerNorm(nn.Module):
    """Channel layer norm of either published kind."""

    def __init__(self, channels: int, kind: LayerNormType) -> None:
        super().__init__()
        if kind not in ("WithBias", "BiasFree"):
            raise ValueError(f"layer_norm must be 'WithBias' or 'BiasFree', got {kind!r}")
        # The extra `body` level exists only so keys read `norm1.body.weight` as in released files.
        self.body = WithBiasLayerNorm(channels) if kind == "WithBias" else BiasFreeLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ChannelAttention(nn.Module):
    """MDTA: multi-Dconv head transposed attention.

    Queries, keys and values come from a 1x1 conv then a 3x3 depthwise conv; attention
    is taken across channels (a C/heads x C/heads map per head), so its cost grows
    linearly with the number of pixels. L2-normalised q and k make the logits cosine
    similarities, scaled by a learnable per-head temperature.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"channels ({dim}) must be divisible by heads ({num_heads})")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # Channels are split head-major: (heads, c/heads).
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 expand, 3x3 depthwise, GELU(one half) * other half, 1x1 project."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * expansion)  # truncation, as published: 48 * 2.66 -> 127
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + MDTA(LN(x)), then x + GDFN(LN(x))."""

    def __init__(
        self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, layer_norm: LayerNormType
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm)
        self.attn = ChannelAttention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm)
        self.ffn = GatedFeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv from image channels to features ("overlapping" patches of one pixel)."""

    def __init__(self, in_channels: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3x3 conv to C/2, then PixelUnshuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 3x3 conv to 2C, then PixelShuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def stage(dim: int, blocks: int, heads: int, cfg: RestormerConfig) -> nn.Sequential:
    """A sequence of `blocks` transformer blocks at `dim` channels (one level of the U)."""
    return nn.Sequential(
        *[TransformerBlock(dim, heads, cfg.ffn_expansion_factor, cfg.bias, cfg.layer_norm) for _ in range(blocks)]
    )


@dataclass(frozen=True)
class RestormerConfig:
    """Hyper-parameters of a Restormer; the defaults are the published configuration."""

    in_channels: int = 3
    out_channels: int = 3
    dim: int = 48  # channels at level 1; level k has dim * 2**(k-1)
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)  # transformer blocks per level, level 4 = latent
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False  # conv biases; the published models have none
    # "BiasFree" is what the paper's Gaussian-denoising models use; the others use "WithBias".
    layer_norm: LayerNormType = "WithBias"


class Restormer(nn.Module):
    """Four-level U-shaped transformer with a global residual (output = input + correction).

    Level-1 decoder features stay at 2*dim after concatenation (no 1x1 reduce there),
    then refinement blocks and a 3x3 output conv. Any input size works: the forward pads
    (reflect) to a multiple of `multiple` and crops back.
    """

    multiple = 8  # three 2x downsamplings

    def __init__(self, config: RestormerConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or RestormerConfig()
        d, nb, hd = cfg.dim, cfg.num_blocks, cfg.heads
        self.patch_embed = OverlapPatchEmbed(cfg.in_channels, d, cfg.bias)
        self.encoder_level1 = stage(d, nb[0], hd[0], cfg)
        self.down1_2 = Downsample(d)
        self.encoder_level2 = stage(d * 2, nb[1], hd[1], cfg)
        self.down2_3 = Downsample(d * 2)
        self.encoder_level3 = stage(d * 4, nb[2], hd[2], cfg)
        self.down3_4 = Downsample(d * 4)
        self.latent = stage(d * 8, nb[3], hd[3], cfg)
        self.up4_3 = Upsample(d * 8)
        self.reduce_chan_level3 = nn.Conv2d(d * 8, d * 4, kernel_size=1, bias=cfg.bias)
        self.decoder_level3 = stage(d * 4, nb[2], hd[2], cfg)
        self.up3_2 = Upsample(d * 4)
        self.reduce_chan_level2 = nn.Conv2d(d * 4, d * 2, kernel_size=1, bias=cfg.bias)
        self.decoder_level2 = stage(d * 2, nb[1], hd[1], cfg)
        self.up2_1 = Upsample(d * 2)
        self.decoder_level1 = stage(d * 2, nb[0], hd[0], cfg)
        self.refinement = stage(d * 2, cfg.num_refinement_blocks, hd[0], cfg)
        self.output = nn.Conv2d(d * 2, cfg.out_channels, kernel_size=3, padding=1, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1))
        out = self.output(self.refinement(dec1)) + x
        return out[..., :h, :w]


# Registered sizes. Smaller sizes keep the architecture and shrink widths and depths so
# they train on a CPU; kwargs of build_model override any config field.
_SIZES: dict[str, RestormerConfig] = {
    "full": RestormerConfig(),
    "full-biasfree": RestormerConfig(layer_norm="BiasFree"),
    "small": RestormerConfig(dim=16, num_blocks=(1, 2, 2, 2), num_refinement_blocks=1),
    "tiny": RestormerConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 1, 2, 2)),
}


def with_overrides(config: C, overrides: dict) -> C:
    """`config` with some fields replaced; unknown field names are a ValueError naming the valid ones."""
    valid = [f.name for f in fields(config)]  # type: ignore[arg-type]
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {type(config).__name__}; valid: {valid}")
    return replace(config, **overrides)  # type: ignore[type-var]


def _build(size: str, **overrides) -> Restormer:
    return Restormer(with_overrides(_SIZES[size], overrides))


@register_model("restormer", "full")
def restormer_full(**overrides) -> Restormer:
    """Published Restormer (26.1M params, WithBias layer norm; deraining, deblurring)."""
    return _build("full", **overrides)


@register_model("restormer", "full-biasfree")
def restormer_full_biasfree(**overrides) -> Restormer:
    """Published Restormer with BiasFree layer norm (the Gaussian-denoising checkpoints)."""
    return _build("full-biasfree", **overrides)


@register_model("restormer", "small")
def restormer_small(**overrides) -> Restormer:
    """Restormer at dim 16 and fewer blocks, trainable on a CPU."""
    return _build("small", **overrides)


@register_model("restormer", "tiny")
def restormer_tiny(**overrides) -> Restormer:
    """Restormer at dim 8, one block per level: smoke tests and quick experiments."""
    return _build("tiny", **overrides)
