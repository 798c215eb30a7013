"""Training losses by name: ``TrainConfig.loss`` picks one of :data:`LOSSES`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "charbonnier_loss", "psnr_loss"]


def psnr_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -PSNR in dB (pixel range 1), a differentiable training loss.

    The floor of 1e-5 on each image's mean squared error (50 dB) keeps flat patches, whose
    error can approach 0, from taking unbounded weight.
    """
    mse = (restored - target).pow(2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + 1e-5).mean()


def charbonnier_loss(restored: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of sqrt(d^2 + eps^2): L1 away from zero, quadratic within ``eps`` of it (MPRNet's loss).

    Unlike L1 its gradient vanishes as a pixel's error does, so pixels the input already gets
    right (exact ties) pull the output back only in proportion to how far it has strayed.
    """
    return torch.sqrt((restored - target).pow(2) + eps * eps).mean()


# "l1": the paper's loss. "psnr": NAFNet's PSNR loss, which weighs every image by its own error, so mild
# degradations (JPEG, light rain) are not drowned out by heavy ones (haze) when tasks share a batch.
# "mse": the mean squared error many denoising papers train with (DnCNN among them).
# "charbonnier": a smoothed L1 (eps 1e-3).
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "psnr": psnr_loss,
    "mse": F.mse_loss,
    "charbonnier": charbonnier_loss,
}
