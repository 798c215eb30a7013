"""Degradations as pure, seeded functions of a CxHxW float image in [0, 1] (RGB, or grayscale with C = 1).

Every function takes a ``torch.Generator`` (or None for torch's global one) and parameter
ranges; a scalar range ``(a, a)`` or a plain number fixes a parameter. Same generator state,
same output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .io import decode_image, encode_image, to_uint8

Range = float | tuple[float, float]

# Haze depth proxy (see haze_depth_proxy): scene depth in RESIDE's units at the image centre and
# corners. With beta in [0.04, 0.2] this gives transmissions from ~0.85 (light) to ~0.14 (dense).
_DEPTH_FAR = 10.0
_DEPTH_NEAR = 4.0


def uniform(value: Range, generator: torch.Generator | None) -> float:
    """Draw from [lo, hi] (or return a fixed number)."""
    if isinstance(value, (int, float)):
        return float(value)
    lo, hi = value
    return lo + (hi - lo) * torch.rand((), generator=generator).item()


def add_gaussian_noise(
    clean: torch.Tensor, sigma: float, generator: torch.Generator | None = None, *, quantize: bool = True
) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma`` on the 0-255 scale, one draw per value.

    One draw per pixel and channel: a grayscale (1xHxW) image gets one per pixel, so its noise has the
    full ``sigma`` (averaging the channels of noisy RGB would shrink it by sqrt(3)).

    ``quantize=True`` is the ``uint8`` protocol of PromptIR / MIR-L: the noise is added to the image
    rounded to 8 bits, the sum is clipped to [0, 255] and converted to uint8 by truncation (numpy's
    astype), so the noisy input is a real 8-bit image (mean shift of about -0.5/255, and clipping shrinks
    the measured sigma near black and white). ``quantize=False`` is the ``float`` protocol (DnCNN, FFDNet):
    clean + noise, unclipped and unquantised. Both use the same draw for the same generator state.
    """
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32)
    if not quantize:
        return clean + noise * (sigma / 255.0)
    base = to_uint8(clean).float()
    noisy = (base + noise * sigma).clamp_(0.0, 255.0).floor_()
    return noisy.div_(255.0)


def add_rain(
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    density: Range = (0.002, 0.008),
    length: Range = (8.0, 24.0),
    angle: Range = (-25.0, 25.0),
    brightness: Range = (0.35, 0.8),
) -> torch.Tensor:
    """Add a layer of light rain streaks (O = B + S, clipped), in the spirit of Rain100L.

    Random drops (``density`` = fraction of pixels seeding a streak) are motion-blurred along one
    direction (``angle`` in degrees from vertical) over ``length`` pixels, softened, scaled by
    ``brightness`` and added to all channels; streaks are near-white like real rain.
    """
    _, height, width = clean.shape
    p = uniform(density, generator)
    size = max(3, int(round(uniform(length, generator))))
    theta = math.radians(uniform(angle, generator))
    level = uniform(brightness, generator)
    kernel = _line_kernel(size, theta)
    k = kernel.shape[-1]
    # Drops are seeded on a margin around the image so streaks enter from outside the frame.
    canvas = (height + k - 1, width + k - 1)
    drops = (torch.rand(canvas, generator=generator) < p).float()
    drops *= 0.5 + 0.5 * torch.rand(canvas, generator=generator)
    streaks = F.conv2d(drops[None, None], kernel[None, None])[0]
    streaks = F.avg_pool2d(F.pad(streaks[None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[0]
    return (clean + level * streaks.clamp_(max=1.0)).clamp_(0.0, 1.0)


def _line_kernel(length: int, theta: float) -> torch.Tensor:
    """An anti-aliased, one-pixel-wide line of the given length, peak weight 1."""
    k = length + 2 if length % 2 else length + 3
    coords = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    along = x * math.sin(theta) + y * math.cos(theta)
    across = x * math.cos(theta) - y * math.sin(theta)
    weight = (1.0 - across.abs()).clamp(min=0.0) * (along.abs() <= length / 2).float()
    return weight


def haze_depth_proxy(height: int, width: int, *, region: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Scene depth to use when no depth map exists: farthest at the image centre, nearest at the corners.

    d(x) = 10 - 6 r(x), with r the distance to the image centre over the half-diagonal. This is a
    scale-free version of the centre-distance proxy common in synthetic-haze scripts (outdoor photos
    tend to look toward a distant vanishing point). ``region = (top, left, full_h, full_w)`` evaluates
    it for a crop of a larger image, so training patches see the same depth as whole test images.
    """
    top, left, full_h, full_w = region if region is not None else (0, 0, height, width)
    ys = torch.arange(top, top + height, dtype=torch.float32) - (full_h - 1) / 2
    xs = torch.arange(left, left + width, dtype=torch.float32) - (full_w - 1) / 2
    half_diagonal = max(math.hypot(full_h, full_w) / 2, 1.0)
    r = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2) / half_diagonal
    return _DEPTH_FAR - (_DEPTH_FAR - _DEPTH_NEAR) * r.clamp(max=1.0)


def add_haze(
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    beta: Range = (0.04, 0.2),
    airlight: Range = (0.8, 1.0),
    depth: torch.Tensor | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """Haze by the atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d).

    Defaults draw A and beta from RESIDE OTS's ranges. ``depth`` (HxW) is used when given,
    otherwise :func:`haze_depth_proxy` (``region`` as there).
    """
    _, height, width = clean.shape
    b = uniform(beta, generator)
    a = uniform(airlight, generator)
    d = depth if depth is not None else haze_depth_proxy(height, width, region=region)
    t = torch.exp(-b * d.to(clean.dtype))
    return clean * t + a * (1.0 - t)


def jpeg_compress(clean: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode to JPEG at ``quality`` (1..100) with 4:2:0 chroma (grayscale: one plane), decode back to float."""
    encoded = encode_image(to_uint8(clean).contiguous(), ".jpg", quality=int(quality))
    return decode_image(encoded, f"JPEG at quality {quality}", channels=clean.shape[0]).float().div_(255.0)


# The named web degradations (the recipes' ``web`` option, described in options.WEB_DEGRADATIONS).
# "jpeg" is the default: the sample network trained on web alone learns it at its budget (+0.56 dB on
# the validation split). "resize-jpeg" also halves the resolution at worst; trained alone on it, the
# same network gained +0.06 dB in 600 steps, losing most on fine texture (benchmarks/sample_defaults.py).
WEB_OPTIONS: dict[str, dict[str, Any]] = {
    "jpeg": {"quality": (10, 40), "scale": None},
    "resize-jpeg": {"quality": (20, 70), "scale": (0.5, 1.0)},
}


def add_web_degradation(
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    quality: Range = (10, 40),
    scale: Range | None = None,
) -> torch.Tensor:
    """Degrade as the web does: optionally downscale, JPEG-compress, and scale back up for viewing.

    ``scale`` is the downscale factor (None or 1 keeps the size); quality is drawn as an integer.
    The defaults are ``WEB_OPTIONS["jpeg"]``.
    """
    _, height, width = clean.shape
    q = int(round(uniform(quality, generator)))
    s = 1.0 if scale is None else uniform(scale, generator)
    small = clean
    if s < 1.0:
        size = (max(8, round(height * s)), max(8, round(width * s)))
        small = F.interpolate(clean[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    out = jpeg_compress(small, q)
    if out.shape[-2:] != clean.shape[-2:]:
        out = F.interpolate(out[None], size=(height, width), mode="bicubic", align_corners=False)[0]
    return out.clamp_(0.0, 1.0)


def synthesize(
    task: str,
    clean: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    region: tuple[int, int, int, int] | None = None,
    **options,
) -> torch.Tensor:
    """Apply the synthetic degradation of a task ('denoise_25', 'derain', 'dehaze', 'web').

    ``options`` go to the degradation function (e.g. ``quantize=False``, ``quality=(10, 30)``);
    ``region`` locates a crop inside its image for the haze depth proxy.
    """
    from .tasks import noise_sigma, task_family  # tasks is tiny; a local import keeps degrade standalone

    family = task_family(task)
    if family == "denoise":
        return add_gaussian_noise(clean, noise_sigma(task), generator, **options)
    if family == "derain":
        return add_rain(clean, generator, **options)
    if family == "dehaze":
        return add_haze(clean, generator, region=region, **options)
    if family == "identity":
        return clean.clone()
    return add_web_degradation(clean, generator, **options)
