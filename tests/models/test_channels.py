"""A network's input channels are read from the first convolution its forward pass calls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.models.channels import image_channels, input_channels


class TailFirst(nn.Module):
    """Registers its 3-channel output conv before the 1-channel conv that sees the image."""

    def __init__(self) -> None:
        super().__init__()
        self.tail = nn.Conv2d(8, 1, 3, padding=1)
        self.head = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(torch.relu(self.head(x)))


class Unshuffled(nn.Module):
    """FFDNet-like: its first conv sees 4 pixel-unshuffled channels of a 1-channel image, and it says so."""

    in_channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_shuffle(self.conv(nn.functional.pixel_unshuffle(x, 2)), 2)


def test_the_first_convolution_called_decides_not_the_first_registered():
    model = TailFirst().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    assert input_channels(model) == 1
    assert model.training and torch.equal(torch.get_rng_state(), state)  # mode and RNG as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_pre_hooks for m in model.modules())  # hooks removed
    assert input_channels(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())) == 3


def test_a_declared_count_wins_and_a_network_without_convolutions_must_declare_one():
    assert input_channels(Unshuffled()) == 1
    with pytest.raises(ValueError, match="input channels of Sequential .* in_channels"):
        input_channels(nn.Sequential(nn.ReLU()))


def test_an_unsupported_count_names_both_counts():
    assert image_channels(TailFirst(), (1, 3)) == 1
    with pytest.raises(ValueError) as caught:
        image_channels(nn.Conv2d(2, 2, 3), (1, 3), "--model nets.py:Net")
    message = str(caught.value)
    assert "--model nets.py:Net takes 2-channel images" in message and "1 (grayscale) or 3 (RGB)" in message
