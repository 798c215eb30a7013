from __future__ import annotations

import pytest
import torch

from lotteryir.models import pad_to_multiple


def test_divisible_input_is_returned_unchanged() -> None:
    x = torch.rand(1, 3, 16, 24)
    y, hw = pad_to_multiple(x, 8)
    assert y is x and hw == (16, 24)


@pytest.mark.parametrize("h,w", [(37, 53), (9, 8), (3, 2)])
def test_pads_to_multiple_and_crops_back(h: int, w: int) -> None:
    x = torch.rand(2, 3, h, w)
    y, (oh, ow) = pad_to_multiple(x, 8)
    assert y.shape[-2] % 8 == 0 and y.shape[-1] % 8 == 0
    assert (oh, ow) == (h, w)
    assert torch.equal(y[..., :h, :w], x)


def test_reflect_mode() -> None:
    x = torch.arange(6.0).reshape(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()
    y, _ = pad_to_multiple(x, 8)
    assert y[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3]
