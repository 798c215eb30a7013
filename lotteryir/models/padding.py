"""Padding images to a size the networks' down/up-sampling can round-trip."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad a BCHW tensor at the bottom/right so H and W are multiples of `multiple`.

    Returns the padded tensor and the original (h, w), so callers crop back with
    `y[..., :h, :w]`. Reflect padding, as Restormer's test code does; a no-op (the same
    tensor) when both sides are already divisible.
    """
    h, w = x.shape[-2:]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    # Reflect needs the pad to be smaller than the side; only tiny images fall back.
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)
