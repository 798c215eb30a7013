"""Statistics over seeds and the formatters every benchmark table uses (defined here once).

A difference between two variants of the same seed is paired: both saw the same initialization
and data order, so the mean of the per-seed differences and its Student t-interval say whether
the seeds resolve it. scipy is not a dependency; the quantiles are tabulated.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from lotteryir.data.tasks import SHORT_NAMES

# Two-sided 95% Student t quantiles by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
T975.update({10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042})
# The sample recipe's test sets as table columns (the CLI's headings).
SHORT = SHORT_NAMES


def t975(df: int) -> float:
    """Two-sided 95% Student t quantile (the nearest smaller tabulated df beyond 10; 1.96 beyond 30)."""
    if df in T975:
        return T975[df]
    if df > 30:
        return 1.96
    return T975[max(k for k in T975 if k <= df)]


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of a - b over seeds, its standard deviation and 95% t-interval (NaN bounds for one seed)."""
    diffs = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"mean": mean, "std": math.nan, "low": math.nan, "high": math.nan, "n": len(diffs)}
    sd = statistics.stdev(diffs)
    half = t975(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return {"mean": mean, "std": sd, "low": mean - half, "high": mean + half, "n": len(diffs)}


def spread(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def spreads(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per key of ``rows`` (one dict per seed): its spread over the seeds."""
    return {k: spread([r[k] for r in rows]) for k in rows[0]}


def differences(a: list[dict[str, float]], b: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per key: the paired difference a - b over seeds (``a[i]`` and ``b[i]`` are one seed's)."""
    return {k: paired([x[k] for x in a], [y[k] for y in b]) for k in a[0]}


def side(d: dict[str, float]) -> str:
    """Where a paired difference's 95% interval lies against 0: above, below, within the noise."""
    if not (d["n"] >= 2 and math.isfinite(d["low"])):
        return "unresolved (one seed)"
    return "above 0" if d["low"] > 0 else "below 0" if d["high"] < 0 else "within the noise (interval holds 0)"


def pm(s: dict[str, float], n: int, digits: int = 2) -> str:
    """``mean ± std`` over n seeds (the mean alone for one seed; ``nan`` for a missing value)."""
    if not math.isfinite(s["mean"]):
        return "nan"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if n > 1 else "")


def ci(d: dict[str, float]) -> str:
    """A paired difference: ``+mean [low, high]``, or ``+mean (1 seed)`` where there is no interval."""
    if d["n"] < 2:
        return f"{d['mean']:+.2f} (1 seed)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def col(label: str) -> str:
    """A table column: ``mean``, ``denoise mean`` or a test set's short name (``denoise_15/sample`` -> σ15)."""
    return {"mean": "mean", "denoise": "denoise mean"}.get(label) or SHORT.get(label.split("/")[0], label)


def nan(v: Any) -> float:
    """A JSON number that may be null (NaN written by json as null is read back as None)."""
    return math.nan if v is None else float(v)
