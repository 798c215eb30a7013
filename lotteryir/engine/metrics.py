"""PSNR and SSIM in torch, batched, matching scikit-image's definitions.

The published MIR-L / PromptIR numbers come from ``skimage.metrics`` called as
``peak_signal_noise_ratio(clean, restored, data_range=1)`` and
``structural_similarity(clean, restored, data_range=1, channel_axis=-1)`` on
images clipped to [0, 1]. These functions reproduce those calls on NCHW tensors,
one value per image, on whichever device the tensors live.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "rgb_to_y"]

# ITU-R BT.601 luma on the studio-swing [16, 235] scale, the convention of MATLAB's
# rgb2ycbcr that Restormer's deraining evaluation (and BasicSR's test_y_channel) uses.
_BT601 = (65.481, 128.553, 24.966)


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """Convert RGB in [0, 1] (N x 3 x H x W) to BT.601 luma Y in [16/255, 235/255] (N x 1 x H x W)."""
    image = _as_batch(image, "image")
    if image.shape[1] != 3:
        raise ValueError(f"rgb_to_y needs 3 channels (RGB); found {image.shape[1]} in shape {tuple(image.shape)}")
    r, g, b = image.unbind(1)
    y = (16.0 + _BT601[0] * r + _BT601[1] * g + _BT601[2] * b) / 255.0
    return y.unsqueeze(1)


def psnr(
    restored: torch.Tensor,
    clean: torch.Tensor,
    *,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (shape N), as ``skimage.metrics.peak_signal_noise_ratio``.

    Computed in float64 over all channels and pixels of each image; identical
    images give ``inf``. ``crop_border`` pixels are cut from each side first (KAIR's
    ``border``, BasicSR's ``crop_border``).
    """
    x, y = _prepare(restored, clean, y_channel, crop_border)
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(
    restored: torch.Tensor,
    clean: torch.Tensor,
    *,
    data_range: float = 1.0,
    y_channel: bool = False,
    crop_border: int = 0,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    win_size: int | None = None,
    use_sample_covariance: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per image (shape N), as ``skimage.metrics.structural_similarity``.

    Defaults reproduce skimage's defaults, which are what the PromptIR / MIR-L
    evaluation code calls: a 7x7 uniform window with sample covariance.
    ``gaussian_weights=True`` gives skimage's Gaussian convention (11 taps,
    sigma 1.5, truncate 3.5); add ``use_sample_covariance=False`` for Wang et
    al. (2004). Like skimage, the map is averaged only where the window lies
    fully inside the image, so border handling never enters the value; the
    per-channel means are then averaged. ``crop_border`` as in :func:`psnr`.
    """
    x, y = _prepare(restored, clean, y_channel, crop_border)
    if win_size is None:
        # skimage: the Gaussian filter is truncated at 3.5 sigma, radius rounded as ndimage does.
        win_size = 2 * int(3.5 * sigma + 0.5) + 1 if gaussian_weights else 7
    if win_size % 2 != 1:
        raise ValueError(f"win_size must be odd; got {win_size}")
    n, c, h, w = x.shape
    if h < win_size or w < win_size:
        raise ValueError(f"images of {h}x{w} are smaller than the SSIM window ({win_size}x{win_size})")

    taps = _window(win_size, sigma, gaussian_weights, x.device)
    # One separable valid-mode filter over all five moment maps at once.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1).reshape(n * 5 * c, 1, h, w)
    stack = F.conv2d(stack, taps.view(1, 1, win_size, 1))
    stack = F.conv2d(stack, taps.view(1, 1, 1, win_size))
    ux, uy, uxx, uyy, uxy = stack.reshape(n, 5, c, h - win_size + 1, w - win_size + 1).unbind(1)

    npix = win_size**2
    cov_norm = npix / (npix - 1) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def _window(size: int, sigma: float, gaussian: bool, device: torch.device) -> torch.Tensor:
    if not gaussian:
        return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device)
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    taps = torch.exp(-0.5 * (r / sigma) ** 2)
    return taps / taps.sum()


def _as_batch(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() == 3:
        return t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"{name} must be N x C x H x W (or C x H x W); found shape {tuple(t.shape)}")
    return t


def _prepare(
    restored: torch.Tensor, clean: torch.Tensor, y_channel: bool, crop_border: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    restored = _as_batch(restored, "restored")
    clean = _as_batch(clean, "clean")
    if restored.shape != clean.shape:
        raise ValueError(f"restored and clean differ in shape: {tuple(restored.shape)} vs {tuple(clean.shape)}")
    if crop_border:
        h, w = restored.shape[-2:]
        if crop_border < 0 or 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border must be >= 0 and leave pixels of a {h}x{w} image; got {crop_border}")
        restored = restored[..., crop_border : h - crop_border, crop_border : w - crop_border]
        clean = clean[..., crop_border : h - crop_border, crop_border : w - crop_border]
    # float64 throughout: skimage accumulates in float64, and agreement to 1e-12 needs it.
    x = restored.detach().to(torch.float64)
    y = clean.detach().to(device=x.device, dtype=torch.float64)
    if y_channel:
        x, y = rgb_to_y(x), rgb_to_y(y)
    return x, y
