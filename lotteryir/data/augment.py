"""Patch sampling and the 8 flips/rotations, applied identically to input and target."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_at_least(image: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect-pad a float image at the bottom/right so both sides are at least ``size``.

    Images smaller than the patch size are mirrored rather than rejected. One reflection adds at
    most side - 1 pixels, so tiny images are reflected repeatedly; a 1-pixel side is replicated.
    """
    while image.shape[-2] < size or image.shape[-1] < size:
        height, width = image.shape[-2:]
        pad_h = min(size - height, height - 1) if height < size else 0
        pad_w = min(size - width, width - 1) if width < size else 0
        if (height < size and pad_h == 0) or (width < size and pad_w == 0):
            rest = (0, max(0, size - width), 0, max(0, size - height))
            return F.pad(image[None], rest, mode="replicate")[0]
        image = F.pad(image[None], (0, pad_w, 0, pad_h), mode="reflect")[0]
    return image


def random_box(height: int, width: int, size: int, generator: torch.Generator | None) -> tuple[int, int]:
    """Top-left corner of a uniformly random ``size`` x ``size`` crop."""
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return top, left


def crop(image: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """A ``size`` x ``size`` view of an image."""
    return image[..., top : top + size, left : left + size]


def dihedral(image: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations: rotate by 90 degrees (k % 4) times, then flip if k >= 4."""
    out = torch.rot90(image, k % 4, dims=(-2, -1)) if k % 4 else image
    return out.flip(-1) if k >= 4 else out


def random_dihedral(generator: torch.Generator | None) -> int:
    """Draw one of the 8 flips/rotations."""
    return int(torch.randint(0, 8, (), generator=generator))
