"""The training losses by name, each against a value worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lotteryir.engine.losses import LOSSES, charbonnier_loss
from lotteryir.runs import RunConfig


def test_each_loss_on_a_worked_example() -> None:
    target = torch.zeros(2, 1, 1, 2)
    restored = torch.tensor([0.3, -0.4, 0.0, 0.0]).reshape(2, 1, 1, 2)  # errors 0.3, 0.4 on image 0; none on 1
    assert LOSSES["l1"](restored, target).item() == pytest.approx(0.7 / 4)
    assert LOSSES["mse"](restored, target).item() == pytest.approx(0.25 / 4)
    # sqrt(d^2 + eps^2) per pixel: 0.3 and 0.4 with eps 1e-3 are almost |d|, an exact tie costs eps.
    expected = (math.sqrt(0.09 + 1e-6) + math.sqrt(0.16 + 1e-6) + 2e-3) / 4
    assert LOSSES["charbonnier"](restored, target).item() == pytest.approx(expected)
    # -PSNR per image, floored at 50 dB: image 0 has MSE 0.125, image 1 none.
    psnr_terms = [10 * math.log10(0.125 + 1e-5), 10 * math.log10(1e-5)]
    assert LOSSES["psnr"](restored, target).item() == pytest.approx(sum(psnr_terms) / 2, rel=1e-5)


def test_charbonnier_gradient_vanishes_at_an_exact_tie_and_is_l1_like_away_from_it() -> None:
    d = torch.tensor([0.0, 1e-3, 0.1], requires_grad=True)
    charbonnier_loss(d, torch.zeros(3), eps=1e-3).backward()
    grad = d.grad * 3  # undo the mean
    assert grad[0] == 0 and grad[1].item() == pytest.approx(1 / math.sqrt(2)) and grad[2].item() > 0.9999


def test_every_loss_is_a_run_option_and_others_are_refused() -> None:
    for name in LOSSES:
        assert RunConfig(rounds=0, loss=name).resolved().loss == name
    with pytest.raises(ValueError, match="--loss must be one of l1, psnr, mse, charbonnier"):
        RunConfig(rounds=0, loss="ssim").resolved()
