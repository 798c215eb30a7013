"""Padding, cropping and tiled inference keep shapes and agree with untiled inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.engine import restore_image
from lotteryir.models.padding import pad_to_multiple


class PointwiseNet(nn.Module):
    """Identity-like: a per-pixel residual map that insists on sizes divisible by 8."""

    multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)
        torch.manual_seed(0)
        nn.init.normal_(self.mix.weight, std=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0, x.shape
        return x + torch.tanh(self.mix(x))


class ContextNet(nn.Module):
    """A network with a receptive field, so tile borders would show without blending."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * self.body(x)


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (1, 3, 300, 517), (3, 37, 53), (1, 3, 5, 3)])
@pytest.mark.parametrize("tile", [None, 64])
def test_shapes_survive_padding_and_tiling(shape: tuple[int, ...], tile: int | None) -> None:
    image = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    out = restore_image(PointwiseNet(), image, tile=tile, overlap=16)
    assert out.shape == image.shape


def test_pad_to_multiple_reflects_and_records_size() -> None:
    image = torch.rand(1, 3, 37, 53)
    padded, size = pad_to_multiple(image, 8)
    assert padded.shape == (1, 3, 40, 56) and size == (37, 53)
    assert torch.equal(padded[..., 37, :53], image[..., 35, :])  # reflection mirrors around the last row
    same, _ = pad_to_multiple(padded, 8)
    assert same is padded


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (1, 3, 300, 517)])
def test_tiled_equals_untiled_for_pointwise_network(shape: tuple[int, ...]) -> None:
    image = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    net = PointwiseNet()
    full = restore_image(net, image)
    tiled = restore_image(net, image, tile=96, overlap=24)
    torch.testing.assert_close(tiled, full, rtol=0, atol=1e-5)


def test_tiling_blends_context_network_smoothly() -> None:
    image = torch.rand(1, 3, 150, 170, generator=torch.Generator().manual_seed(3))
    net = ContextNet()
    full = restore_image(net, image)
    tiled = restore_image(net, image, tile=64, overlap=16)
    # Only a thin strip near tile borders differs, and only by the network's border effect.
    assert (tiled - full).abs().max() < 0.05
    assert (tiled - full).pow(2).mean() < 1e-5


def test_constant_output_is_preserved_by_the_blend() -> None:
    image = torch.rand(1, 3, 131, 97)
    out = restore_image(lambda x: torch.ones_like(x), image, tile=48, overlap=20)
    torch.testing.assert_close(out, torch.ones_like(image))


def test_restores_training_mode_and_rejects_bad_tiles() -> None:
    net = PointwiseNet().train()
    restore_image(net, torch.rand(3, 16, 16), tile=8, overlap=0)
    assert net.training
    with pytest.raises(ValueError, match="overlap"):
        restore_image(net, torch.rand(3, 16, 16), tile=8, overlap=8)
    with pytest.raises(ValueError, match="one image"):
        restore_image(net, torch.rand(2, 3, 16, 16))
