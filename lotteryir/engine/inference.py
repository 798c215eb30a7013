"""Restore one image of any size: pad to the network's multiple, optionally in blended tiles."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lotteryir.models.padding import pad_to_multiple

__all__ = ["restore_image"]


def restore_image(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
    multiple: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``model`` on one image (C x H x W or 1 x C x H x W) of any size; returns the same shape.

    The input is reflect-padded to ``multiple`` (default ``model.multiple`` or 1)
    and the output cropped back. With ``tile`` set, the image is processed in
    overlapping ``tile`` x ``tile`` windows (rounded up to the multiple) whose
    outputs are blended with raised-cosine ramps across each overlap. Besides
    the input and the output, memory then depends on the tile size only. The
    output lives on the input's device; tiles run on ``device`` (default: the
    model's), so a large image can stay in CPU memory while tiles use the GPU.
    """
    squeeze = image.dim() == 3
    if squeeze:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"restore_image takes one image, C x H x W or 1 x C x H x W; found shape {tuple(image.shape)}")
    if multiple is None:
        multiple = int(getattr(model, "multiple", 1))
    if device is None:
        device = _model_device(model, image.device)
    device = torch.device(device)

    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        # no_grad rather than inference_mode: callers may modify the result in place.
        with torch.no_grad():
            if tile is None:
                out = _run_padded(model, image, multiple, device)
            else:
                out = _run_tiled(model, image, tile, overlap, multiple, device)
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    return out.squeeze(0) if squeeze else out


def _model_device(model: object, fallback: torch.device) -> torch.device:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return fallback


def _run_padded(model: Callable, image: torch.Tensor, multiple: int, device: torch.device) -> torch.Tensor:
    padded, (h, w) = pad_to_multiple(image.to(device), multiple)
    out = model(padded)
    if out.shape[-2:] != padded.shape[-2:]:
        raise ValueError(f"model changed the spatial size: {tuple(padded.shape)} -> {tuple(out.shape)}")
    return out[..., :h, :w].to(image.device)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, size), spread evenly so neighbours share at least ``overlap``."""
    if size <= tile:
        return [0]
    count = math.ceil((size - tile) / (tile - overlap)) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def _ramp(length: int, before: int, after: int) -> torch.Tensor:
    """1-D blending weight: raised-cosine rise over ``before`` samples, fall over ``after``, 1 between.

    Weights stay strictly positive so every pixel has a defined blend, and tile
    edges on the image border get no ramp, so border pixels keep full weight.
    """
    pos = torch.arange(length, dtype=torch.float32) + 0.5
    w = torch.ones(length)
    if before > 0:
        w *= 0.5 - 0.5 * torch.cos(math.pi * pos.clamp(max=before) / before)
    if after > 0:
        w *= 0.5 - 0.5 * torch.cos(math.pi * pos.flip(0).clamp(max=after) / after)
    return w


def _run_tiled(
    model: Callable, image: torch.Tensor, tile: int, overlap: int, multiple: int, device: torch.device
) -> torch.Tensor:
    if tile <= 0 or overlap < 0:
        raise ValueError(f"tile must be positive and overlap non-negative; got tile={tile}, overlap={overlap}")
    tile = -(-tile // multiple) * multiple
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile} after rounding to {multiple})")
    _, _, h, w = image.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = _starts(h, th, overlap), _starts(w, tw, overlap)
    # Blend weights are separable and the tiles form a grid, so the sum of all tile weights at a
    # pixel is row_sum[y] * col_sum[x]: normalising each tile by it needs no full-size weight plane.
    row_w, row_sum = _axis_weights(ys, th, h)
    col_w, col_sum = _axis_weights(xs, tw, w)

    out: torch.Tensor | None = None
    for y0, wy in zip(ys, row_w):
        wy = wy / row_sum[y0 : y0 + th]
        for x0, wx in zip(xs, col_w):
            blend = (wy[:, None] * (wx / col_sum[x0 : x0 + tw])[None, :]).to(image.device)
            patch = _run_padded(model, image[..., y0 : y0 + th, x0 : x0 + tw], multiple, device)
            if out is None:
                out = torch.zeros(1, patch.shape[1], h, w, dtype=patch.dtype, device=image.device)
            out[..., y0 : y0 + th, x0 : x0 + tw].addcmul_(patch, blend.to(patch.dtype))
    assert out is not None
    return out


def _axis_weights(starts: list[int], length: int, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-tile 1-D ramps along one axis (each spanning the overlap shared with its neighbours) and their sum."""
    ramps = []
    total = torch.zeros(size)
    for i, s in enumerate(starts):
        before = starts[i - 1] + length - s if i > 0 else 0
        after = s + length - starts[i + 1] if i + 1 < len(starts) else 0
        ramp = _ramp(length, before, after)
        total[s : s + length] += ramp
        ramps.append(ramp)
    return ramps, total
