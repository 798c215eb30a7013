"""PSNR/SSIM agree with scikit-image on real photos with real degradations."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from skimage.color import rgb2ycbcr
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lotteryir.engine import psnr, ssim


def _photos() -> list[np.ndarray]:
    # Crops keep the test fast; odd sizes exercise the window's valid region.
    return [
        skimage.data.astronaut()[100:261, 150:333] / 255.0,
        skimage.data.chelsea()[:201, :257] / 255.0,
        skimage.data.coffee()[50:227, 100:311] / 255.0,
    ]


def _degrade(clean: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise25":
        return np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
    if kind == "blur":
        return gaussian(clean, sigma=1.2, channel_axis=-1)
    if kind == "rain":
        streaks = np.zeros(clean.shape[:2])
        streaks[rng.integers(0, clean.shape[0], 300), rng.integers(0, clean.shape[1], 300)] = 1.0
        streaks = gaussian(streaks, sigma=(4.0, 0.6))
        return np.clip(clean + 3.0 * streaks[..., None], 0, 1)
    if kind == "haze":
        return clean * 0.6 + 0.4 * 0.9
    raise ValueError(kind)


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


KINDS = ["noise25", "blur", "rain", "haze"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("y_channel", [False, True])
def test_psnr_and_ssim_match_skimage(kind: str, y_channel: bool) -> None:
    rng = np.random.default_rng(0)
    for clean in _photos():
        restored = _degrade(clean, kind, rng)
        if y_channel:
            ref_c, ref_r = rgb2ycbcr(clean)[..., :1] / 255.0, rgb2ycbcr(restored)[..., :1] / 255.0
        else:
            ref_c, ref_r = clean, restored
        want_psnr = peak_signal_noise_ratio(ref_c, ref_r, data_range=1)
        want_ssim = structural_similarity(ref_c, ref_r, channel_axis=-1, data_range=1)
        want_gauss = structural_similarity(ref_c, ref_r, channel_axis=-1, data_range=1, gaussian_weights=True)
        r, c = _batch([restored]), _batch([clean])
        # float64 throughout, as skimage computes: they differ only in summation order (about 1e-14 here).
        assert abs(psnr(r, c, y_channel=y_channel).item() - want_psnr) < 1e-12
        assert abs(ssim(r, c, y_channel=y_channel).item() - want_ssim) < 1e-12
        got_gauss = ssim(r, c, y_channel=y_channel, gaussian_weights=True).item()
        assert abs(got_gauss - want_gauss) < 1e-12
        want_wang = structural_similarity(
            ref_c, ref_r, channel_axis=-1, data_range=1, gaussian_weights=True, use_sample_covariance=False
        )
        got_wang = ssim(r, c, y_channel=y_channel, gaussian_weights=True, use_sample_covariance=False).item()
        assert abs(got_wang - want_wang) < 1e-12


def test_batched_float32_matches_per_image() -> None:
    rng = np.random.default_rng(1)
    clean = [skimage.data.astronaut()[:128, :160] / 255.0, skimage.data.coffee()[:128, :160] / 255.0]
    noisy = [_degrade(c, "noise25", rng) for c in clean]
    r, c = _batch(noisy).float(), _batch(clean).float()
    got_p, got_s = psnr(r, c), ssim(r, c)
    assert got_p.shape == got_s.shape == (2,)
    for i in range(2):  # float32 pixels: the rounding of the input (about 2e-8 dB here), nothing more
        assert abs(got_p[i].item() - peak_signal_noise_ratio(clean[i], noisy[i], data_range=1)) < 1e-6
        assert abs(got_s[i].item() - structural_similarity(clean[i], noisy[i], channel_axis=-1, data_range=1)) < 1e-6


def test_shape_errors_are_explained() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim(torch.zeros(1, 3, 5, 5), torch.zeros(1, 3, 5, 5))
