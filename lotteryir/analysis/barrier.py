"""The PSNR barrier of a linear path and the smallest stable rewind step: pure arithmetic, no torch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

DEFAULT_THRESHOLD = 0.1  # dB: a barrier this small is within the noise of two trainings
MIN_POINTS = 11  # points on the path, endpoints included: alpha = 0, 0.1, ..., 1


def alphas(points: int = MIN_POINTS) -> list[float]:
    """``points`` evenly spaced interpolation weights from 0 to 1, both included."""
    if points < MIN_POINTS:
        raise ValueError(f"the path needs at least {MIN_POINTS} points (alpha = 0, 0.1, ..., 1), got {points}")
    return [i / (points - 1) for i in range(points)]


def psnr_barrier(curve: Sequence[float]) -> float:
    """``max(0, max_alpha(mean(PSNR(0), PSNR(1)) - PSNR(alpha)))`` in dB, for PSNR along the path.

    The reference is the mean of the two endpoints (as in Frankle et al., 2020, for error), so an
    endpoint that is lower than the other counts as a drop of half their gap. A curve that stays at
    or above the endpoints' mean has barrier 0. NaN anywhere gives NaN.
    """
    if len(curve) < 2:
        raise ValueError(f"a path needs at least its two endpoints, got {len(curve)} values")
    values = [float(v) for v in curve]
    if any(math.isnan(v) for v in values):
        return math.nan
    reference = (values[0] + values[-1]) / 2
    return max(0.0, max(reference - v for v in values))


def mean_curve(curves: Mapping[str, Sequence[float]]) -> list[float]:
    """The mean over test sets at each point of the path (the curve whose barrier is the mean's)."""
    if not curves:
        raise ValueError("no test set was scored")
    lengths = {len(c) for c in curves.values()}
    if len(lengths) != 1:
        raise ValueError(f"every test set needs a score at every point of the path, got lengths {sorted(lengths)}")
    return [statistics.fmean(float(c[i]) for c in curves.values()) for i in range(lengths.pop())]


def smallest_stable(barriers: Mapping[int, float], threshold: float = DEFAULT_THRESHOLD) -> int | None:
    """The smallest rewind step whose barrier is at most ``threshold`` dB, or None when none is (NaN never is)."""
    if not threshold >= 0:
        raise ValueError(f"the stability threshold is in dB and must be >= 0, got {threshold}")
    stable = [k for k, b in barriers.items() if not math.isnan(b) and b <= threshold]
    return min(stable) if stable else None
