"""Degradations: measured statistics, monotonicity, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from lotteryir.data.degrade import (
    add_gaussian_noise,
    add_haze,
    add_rain,
    add_web_degradation,
    haze_depth_proxy,
    jpeg_compress,
    synthesize,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    from lotteryir.data.sample import load_sample_image

    return load_sample_image("astronaut", 128).float() / 255


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_noise_sigma_measured_back_within_2_percent(sigma):
    clean = torch.full((3, 256, 256), 0.5)
    noisy = add_gaussian_noise(clean, sigma, _gen(sigma), quantize=False)
    measured = float((noisy - clean).std()) * 255
    assert abs(measured - sigma) / sigma < 0.02


@pytest.mark.parametrize("sigma", [15, 25])
def test_promptir_noise_is_8_bit_and_keeps_sigma(sigma):
    clean = torch.full((3, 256, 256), 128 / 255)
    noisy = add_gaussian_noise(clean, sigma, _gen(sigma))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert torch.equal((noisy * 255).round(), noisy * 255)  # exact 8-bit levels
    diff = (noisy - clean) * 255
    assert abs(float(diff.std()) - sigma) / sigma < 0.02
    assert -1.0 < float(diff.mean()) < 0.0  # truncation, as numpy's astype(uint8) does


def test_promptir_noise_clips(photo):
    noisy = add_gaussian_noise(photo, 50, _gen())
    assert noisy.min() == 0 and noisy.max() == 1


def test_degradations_are_seeded(photo):
    for task in ("denoise_25", "derain", "dehaze", "web"):
        a, b = synthesize(task, photo, _gen(3)), synthesize(task, photo, _gen(3))
        assert torch.equal(a, b), task
        assert not torch.equal(a, synthesize(task, photo, _gen(4))), task
        assert a.shape == photo.shape and a.min() >= 0 and a.max() <= 1


def test_rain_only_brightens_and_is_sparse(photo):
    rainy = add_rain(photo, _gen(), density=0.004, brightness=0.8)
    added = rainy - photo
    assert added.min() >= -1e-6
    touched = float((added.abs().amax(0) > 0.05).float().mean())
    assert 0.01 < touched < 0.6


def test_rain_streaks_follow_the_angle():
    dark = torch.zeros(3, 96, 96)
    vertical = add_rain(dark, _gen(), angle=0.0, density=0.003, length=20)[0]
    # vertical streaks: pixels 4 apart along y agree far more than 4 apart along x
    along_y = float((vertical[4:] * vertical[:-4]).mean())
    along_x = float((vertical[:, 4:] * vertical[:, :-4]).mean())
    assert along_y > 2 * along_x


def _contrast(image: torch.Tensor) -> float:
    return float(image.std())


def test_haze_reduces_contrast_monotonically_with_beta(photo):
    betas = [0.04, 0.08, 0.12, 0.16, 0.2]
    contrasts = [_contrast(add_haze(photo, beta=b, airlight=0.9)) for b in betas]
    assert all(a > b for a, b in zip(contrasts, contrasts[1:]))
    assert contrasts[0] < _contrast(photo)


def test_haze_follows_the_scattering_model(photo):
    depth = torch.full(photo.shape[-2:], 5.0)
    hazy = add_haze(photo, beta=0.1, airlight=0.9, depth=depth)
    t = math.exp(-0.5)
    assert torch.allclose(hazy, photo * t + 0.9 * (1 - t), atol=1e-6)


def test_depth_proxy_is_farthest_at_the_centre_and_crops_agree():
    depth = haze_depth_proxy(65, 65)
    assert depth[32, 32] == depth.max() and depth[0, 0] == depth.min()
    assert 3.9 < float(depth.min()) and float(depth.max()) <= 10.0
    crop = haze_depth_proxy(16, 20, region=(10, 30, 65, 65))
    assert torch.allclose(crop, depth[10:26, 30:50])


def test_jpeg_q10_is_worse_than_q90(photo):
    assert _psnr(jpeg_compress(photo, 10), photo) + 5 < _psnr(jpeg_compress(photo, 90), photo)


def test_web_degradation_keeps_size_and_resizes(photo):
    out = add_web_degradation(photo[:, :100, :90], _gen(), quality=50, scale=0.5)
    assert out.shape == (3, 100, 90)
    sharp = add_web_degradation(photo, _gen(), quality=50, scale=None)
    soft = add_web_degradation(photo, _gen(), quality=50, scale=0.5)
    assert _psnr(soft, photo) < _psnr(sharp, photo)
