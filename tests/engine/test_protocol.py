"""The metric's published choices: border crop and the Y channel, and the protocol every result records."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lotteryir.data.datasets import ImageDataset
from lotteryir.data.source import ImageSource
from lotteryir.engine import evaluate, psnr, ssim


def _ringed(size: int = 16, error: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean image and a copy wrong by ``error`` on its outermost ring of pixels only."""
    clean = torch.linspace(0.2, 0.8, size * size).reshape(1, 1, size, size)
    wrong = clean.clone()
    wrong[..., 0, :] += error
    wrong[..., -1, :] += error
    wrong[..., 1:-1, 0] += error
    wrong[..., 1:-1, -1] += error
    return wrong, clean


def test_crop_border_cuts_that_many_pixels_from_each_side_before_scoring():
    wrong, clean = _ringed()
    # The ring holds 4 * 16 - 4 = 60 of 256 pixels: MSE = 60 * 0.01 / 256, PSNR = 10 log10(256 / 0.6) = 26.30 dB.
    assert psnr(wrong, clean).item() == pytest.approx(10 * math.log10(256 / 0.6), abs=1e-6)
    assert psnr(wrong, clean, crop_border=1).item() == math.inf  # the ring is all that differed
    assert ssim(wrong, clean, crop_border=1).item() == pytest.approx(1.0)
    assert ssim(wrong, clean).item() < 0.999
    with pytest.raises(ValueError, match="crop_border"):
        psnr(wrong, clean, crop_border=8)  # nothing left of a 16 px image


class _Shift(nn.Module):
    """Adds 0.1 on the outer ring, whatever the input: a restorer whose only error is at the border."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ring = torch.ones_like(x)
        ring[..., 1:-1, 1:-1] = 0
        return self.conv(x) + 0.1 * ring


def _gray_set() -> dict[str, ImageDataset]:
    source = ImageSource.from_tensors([("flat.png", torch.full((1, 16, 16), 0.5))], channels=1)
    return {"denoise_25/flat": ImageDataset(source, "denoise_25", degrade_options={"quantize": False})}


def test_evaluate_records_its_protocol_and_crops_the_restored_and_the_input_alike():
    whole = evaluate(_Shift(1), _gray_set(), device="cpu")
    cropped = evaluate(_Shift(1), _gray_set(), device="cpu", crop_border=1)
    assert cropped.sets["denoise_25/flat"].psnr > whole.sets["denoise_25/flat"].psnr  # the border error is gone
    assert cropped.sets["denoise_25/flat"].input_psnr != whole.sets["denoise_25/flat"].input_psnr
    assert cropped.protocol() == {
        "channels": 1,
        "y_channel": False,
        "crop_border": 1,
        "clip": "[0, 1]",
        "sets": {
            "denoise_25/flat": {
                "degradation": "synthetic",
                "seed": 0,
                "degradations": 1,
                "noise": "float",
                "sigma": 25.0,
            }
        },
    }


def test_the_y_channel_is_refused_for_gray_images():
    with pytest.raises(ValueError, match="y_channel scores the luma of RGB images, but these have 1 channel"):
        evaluate(_Shift(1), _gray_set(), device="cpu", y_channel=True)
