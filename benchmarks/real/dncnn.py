"""DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017) as a lotteryir model, for published weights.

The network is a plain stack of 3x3 convolutions with ReLUs that predicts the noise; the restored
image is ``input - body(input)``. Three weight files fit three layouts of the same stack:

- ``dncnn()``: the paper's own DnCNN-S, as KAIR ships it (``model_zoo/dncnn_25.pth``): BatchNorm folded
  into the convolutions, so every convolution has a bias and there is no BatchNorm. Keys
  ``model.{0,2,...,32}.{weight,bias}`` for depth 17 (ReLUs sit at the odd indices).
- ``dncnn_bn()``: a PyTorch re-training with BatchNorm (SaoYan/DnCNN-PyTorch, ``logs/DnCNN-S-25/net.pth``):
  convolutions without bias, BatchNorm after each middle convolution. Keys ``dncnn.{i}.*`` with
  convolutions at 0, 2, 5, 8, ..., 47 and BatchNorm at 3, 6, ..., 45. That file was saved from
  ``nn.DataParallel``, so its keys carry a leading ``module.``; strip it before a strict load
  (:func:`strip_prefix`). It also predates ``num_batches_tracked``; BatchNorm fills that in on load.
- ``dncnn_paper_bn()``: the paper's own DnCNN-S *before* its BatchNorm was folded (cszn/DnCNN,
  ``utilities/sigma=25_Bnorm.mat``, MatConvNet), converted by ``convert_dncnn_mat.py``: BatchNorm after
  each middle convolution, biases on the first and the last convolution only (the middle ones were
  zero and frozen in training). Keys ``model.{i}.*``, convolutions at 0, 2, 5, ..., 47.

Both factories take no required argument, so ``--model benchmarks/real/dncnn.py:dncnn`` works.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["DnCNN", "dncnn", "dncnn_bn", "dncnn_paper_bn", "dncnn_tiny", "strip_prefix"]


class DnCNN(nn.Module):
    """A residual denoiser: ``depth`` 3x3 convolutions predict the noise, which is subtracted from the input.

    ``batch_norm=True`` puts BatchNorm after every convolution but the first and the last (the
    trained-with-BN layout); ``False`` gives none (weights whose BatchNorm was folded in).
    ``middle_bias`` and ``end_bias`` say whether the middle and the first/last convolutions have a
    bias. ``body`` names the attribute that holds the layer stack, the first part of every key.
    """

    multiple = 1  # fully convolutional with padding 1: any image size works unpadded

    def __init__(
        self,
        channels: int = 1,
        depth: int = 17,
        features: int = 64,
        *,
        batch_norm: bool = False,
        middle_bias: bool = True,
        end_bias: bool = True,
        body: str = "model",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN needs depth >= 2 (a first and a last convolution); got {depth}")
        layers: list[nn.Module] = [_conv(channels, features, end_bias), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(_conv(features, features, middle_bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(_conv(features, channels, end_bias))
        self.channels = channels
        self.body_name = body
        self.add_module(body, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = self.get_submodule(self.body_name)(x)
        return x - noise


def _conv(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=bias)


def dncnn(channels: int = 1, depth: int = 17, features: int = 64) -> DnCNN:
    """The paper's DnCNN-S with BatchNorm folded in: keys of KAIR's ``model_zoo/dncnn_25.pth``."""
    return DnCNN(channels, depth, features, batch_norm=False, middle_bias=True, end_bias=True, body="model")


def dncnn_bn(channels: int = 1, depth: int = 17, features: int = 64) -> DnCNN:
    """DnCNN-S with BatchNorm: keys of SaoYan/DnCNN-PyTorch's ``net.pth`` once ``module.`` is stripped."""
    return DnCNN(channels, depth, features, batch_norm=True, middle_bias=False, end_bias=False, body="dncnn")


def dncnn_paper_bn(channels: int = 1, depth: int = 17, features: int = 64) -> DnCNN:
    """The paper's DnCNN-S with its BatchNorm: keys of the file ``convert_dncnn_mat.py`` writes."""
    return DnCNN(channels, depth, features, batch_norm=True, middle_bias=False, end_bias=True, body="model")


def dncnn_tiny(channels: int = 1) -> DnCNN:
    """Three layers of four features, with BatchNorm (the paper-BN layout): the benchmark's smoke run."""
    return DnCNN(channels, 3, 4, batch_norm=True, middle_bias=False, end_bias=True, body="model")


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """``state`` with ``prefix`` removed from the start of every key that has it (DataParallel's wrapper)."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
