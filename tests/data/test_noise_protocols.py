"""The two noise protocols, each checked against its definition on flat gray images with known statistics.

uint8 (PromptIR, MIR-L): noisy = floor(clip(round(255 x) + sigma Z, 0, 255)) / 255.
float (DnCNN, FFDNet, KAIR): noisy = x + sigma Z / 255, neither clipped nor quantised.
Z is one standard normal draw per pixel; the expectations below come from the normal distribution itself.
"""

from __future__ import annotations

import math

import pytest
import torch

from lotteryir.data import DataError, get_recipe
from lotteryir.data.datasets import ImageDataset
from lotteryir.data.degrade import add_gaussian_noise
from lotteryir.data.source import ImageSource

SIGMA = 25
N = 256  # a 256 x 256 image: the mean of 65536 draws is known to about 0.1 of a gray level


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _uint8_mean(level: int) -> float:
    """E[floor(clip(level + sigma Z, 0, 255))], summed over the 8-bit outcomes."""
    below = [_phi((k - level) / SIGMA) for k in range(256)]
    return sum(k * (below[k + 1] - below[k]) for k in range(255)) + 255 * (1 - below[255])


def _noisy(level: int, protocol: str, seed: int = 0) -> torch.Tensor:
    clean = torch.full((1, N, N), level / 255)
    return add_gaussian_noise(clean, SIGMA, torch.Generator().manual_seed(seed), quantize=protocol == "uint8") * 255


def test_float_noise_is_unbiased_unclipped_and_not_quantised():
    for level in (128, 250):
        noisy = _noisy(level, "float")
        assert noisy.mean().item() == pytest.approx(level, abs=0.4)
        assert noisy.std().item() == pytest.approx(SIGMA, rel=0.02)
    bright = _noisy(250, "float")
    # 250 + 25 Z passes 255 when Z > 0.2: 42.07% of the pixels, none of them clipped.
    assert (bright > 255).float().mean().item() == pytest.approx(1 - _phi(0.2), abs=0.01)
    assert bright.max().item() > 300 and _noisy(128, "float").min().item() < 30
    assert (bright != bright.round()).float().mean().item() > 0.99  # not on the 8-bit grid


def test_uint8_noise_is_clipped_truncated_and_on_the_8bit_grid():
    mid, bright = _noisy(128, "uint8"), _noisy(250, "uint8")
    for noisy in (mid, bright):
        assert torch.equal(noisy.round(), noisy) and noisy.min() >= 0 and noisy.max() <= 255
    # Truncation lowers the mean by half a level: 127.5 at 128 (rounding would leave 128) ...
    assert mid.mean().item() == pytest.approx(_uint8_mean(128), abs=0.3) and _uint8_mean(128) == pytest.approx(127.5)
    # ... and clipping at 255 pulls a bright image far down: 242.04 at 250, where float noise keeps 250.
    assert bright.mean().item() == pytest.approx(_uint8_mean(250), abs=0.3)
    assert _uint8_mean(250) == pytest.approx(242.04, abs=0.01)
    assert (bright == 255).float().mean().item() == pytest.approx(1 - _phi(0.2), abs=0.01)
    assert mid.std().item() == pytest.approx(SIGMA, rel=0.02)  # clipping is rare at mid-gray


def test_both_protocols_use_the_same_draw_and_differ_by_the_truncation():
    # Same generator state, same Z: at mid-gray (no clipping) uint8 = floor(float), half a level lower on average.
    gap = (_noisy(128, "float") - _noisy(128, "uint8")).mean().item()
    assert gap == pytest.approx(0.5, abs=0.02)


def _flat(names: list[str]) -> ImageSource:
    return ImageSource.from_tensors([(n, torch.full((1, 32, 32), 0.5)) for n in names], channels=1)


def test_test_noise_is_seeded_per_image_name_and_repeats():
    float_noise = {"quantize": False}
    a = ImageDataset(_flat(["a.png", "b.png"]), "denoise_25", degrade_options=float_noise)
    again = ImageDataset(_flat(["b.png", "a.png"]), "denoise_25", degrade_options=float_noise)
    assert torch.equal(a[0]["input"], again[1]["input"])  # the same image gets the same noise, wherever it is
    assert not torch.equal(a[0]["input"], a[1]["input"])  # two images, two draws
    assert torch.equal(a[0]["input"], a[0]["input"])  # and every read repeats
    other_seed = ImageDataset(_flat(["a.png"]), "denoise_25", seed=1, degrade_options=float_noise)
    assert not torch.equal(a[0]["input"], other_seed[0]["input"])
    assert a.protocol == {"degradation": "synthetic", "seed": 0, "degradations": 1, "noise": "float", "sigma": 25.0}
    assert ImageDataset(_flat(["a.png"]), "denoise_25").protocol["noise"] == "uint8"  # the default


def test_the_recipe_option_selects_the_protocol_for_training_and_testing():
    default = get_recipe("sample", max_images=1, test_max_side=32)
    uint8 = get_recipe("sample", max_images=1, test_max_side=32, noise="uint8")
    floats = get_recipe("sample", max_images=1, test_max_side=32, noise="float")
    item = default.test_sets(["denoise_50"])["denoise_50/sample"][0]
    assert torch.equal(item["input"], uint8.test_sets(["denoise_50"])["denoise_50/sample"][0]["input"])
    assert torch.equal(item["input"] * 255, (item["input"] * 255).round())  # what was measured so far: 8-bit
    noisy = floats.test_sets(["denoise_50"])["denoise_50/sample"][0]["input"]
    assert noisy.min() < 0 or noisy.max() > 1  # unclipped
    patch = floats.train_dataset(patch_size=16, tasks=["denoise_50"])[0]["input"]
    assert not torch.equal(patch * 255, (patch * 255).round())  # training patches follow the protocol too
    assert floats.test_sets(["derain"])["derain/sample"].protocol == {
        "degradation": "synthetic",
        "seed": 0,
        "degradations": 1,
    }
    with pytest.raises(DataError, match="uint8 or float"):
        get_recipe("sample", noise="gaussian")
