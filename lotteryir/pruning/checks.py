"""Warnings about a global pruning round that is probably not what you meant.

One magnitude threshold across all tensors is what makes global pruning find
good tickets, and also how it can empty a layer: a tensor whose weights are all
small (a layer initialised near zero, gains and offsets added with ``include=``)
loses most of them in one round. lotteryir warns, and says what to change; it
never refuses, since a deliberately sparse layer is a legitimate choice.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch

COLLAPSE_DENSITY = 0.01  # a tensor that falls below this fraction of its weights has collapsed
SCALE_RATIO = 10.0  # included tensors whose typical magnitude differs more than this from the rest


class PruningWarning(UserWarning):
    """A pruning round does something you probably did not mean (see the message for the fix)."""


def warn_collapse(before: Mapping[str, int], after: Mapping[str, int], sizes: Mapping[str, int], level: int) -> None:
    """Warn about tensors that this round took from above to below :data:`COLLAPSE_DENSITY`."""
    fallen = [n for n in after if after[n] < COLLAPSE_DENSITY * sizes[n] <= before[n]]
    if not fallen:
        return
    details = ", ".join(f"{n} {before[n] / sizes[n]:.3f} -> {after[n] / sizes[n]:.3f}" for n in fallen[:5])
    more = f" and {len(fallen) - 5} more" if len(fallen) > 5 else ""
    warnings.warn(
        f"level {level}: global pruning left {len(fallen)} tensor(s) with less than {COLLAPSE_DENSITY:.0%} of their "
        f"weights (layer collapse): {details}{more}. Their weights are small next to the others'; give them their "
        "own rate (layer_rates={'name': 0.05}), leave them out (exclude=[...]) or prune layerwise",
        PruningWarning,
        stacklevel=5,  # check_round <- Survivors.check <- prune <- the user's call
    )


def warn_scale_mismatch(
    weights: Mapping[str, torch.Tensor], counts: Mapping[str, int], included: Sequence[str]
) -> bool:
    """Warn when the ``included`` tensors' mean |w| differs from the others' by more than :data:`SCALE_RATIO`.

    ``weights`` hold zeros at pruned entries, so a sum over all entries divided
    by the survivors is the survivors' mean magnitude. Returns whether it warned.
    """
    rest = [n for n in weights if n not in included]
    if not included or not rest:
        return False

    def mean_abs(names: Sequence[str]) -> float:
        total = sum(float(weights[n].detach().abs().sum()) for n in names)
        return total / max(1, sum(counts[n] for n in names))

    mine, others = mean_abs(included), mean_abs(rest)
    ratio = max(mine, others) / max(min(mine, others), 1e-30)
    if ratio <= SCALE_RATIO:
        return False
    warnings.warn(
        f"the tensors added with include= ({', '.join(list(included)[:5])}{' ...' if len(included) > 5 else ''}) "
        f"have a mean |w| of {mine:.3g}, the other prunable tensors {others:.3g} ({ratio:.0f}x apart): one global "
        "magnitude threshold will prune them far more (or far less) than the rest. Give them their own rate "
        "(layer_rates={'pattern': rate}) or prune layerwise",
        PruningWarning,
        stacklevel=5,  # check_round <- Survivors.check <- prune <- the user's call
    )
    return True
