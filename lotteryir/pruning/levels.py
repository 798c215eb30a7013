"""Levels of a pruning schedule: which level a model's existing sparsity is, and adopting it.

A pruner created on a model that is already pruned (masks attached by an earlier
pruner or by torch.nn.utils.prune, or a ticket loaded as plain weights with exact
zeros) must not train it as if it were dense: round 0 would retrain the zeros, and
the next pruning would ask for a negative amount. Level k of a schedule has exact
survivor counts (``round(n * (1 - rate)^k)`` per group), so existing sparsity is
either exactly some level k, which the pruner adopts, or it is not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from . import bridge
from .mask import Mask

if TYPE_CHECKING:
    from .pruner import IterativeMagnitudePruner

log = logging.getLogger(__name__)
_MAX_LEVEL = 1000
_STRAY_ZEROS = 1e-3  # fewer exact zeros than this fraction happen in dense weights: no warning


def _matches(pruner: IterativeMagnitudePruner, counts: Mapping[str, int], level: int) -> bool:
    targets = pruner._targets(level)
    singles = {n: t for n, t in targets.items() if n != "*"}
    if any(counts[n] != t for n, t in singles.items()):
        return False
    rest = sum(c for n, c in counts.items() if n not in singles)
    return "*" not in targets or rest == targets["*"]


def find_level(pruner: IterativeMagnitudePruner, mask: Mask, active: list[str]) -> int | None:
    """The level k >= 1 of ``pruner``'s schedule whose survivor counts over ``active`` are ``mask``'s."""
    saved = pruner.active
    pruner.active = active
    try:
        counts = {n: int(torch.count_nonzero(mask[n])) for n in active}
        total, left = sum(mask[n].numel() for n in active), sum(counts.values())
        slowest = 1.0 - min([pruner.rate, *pruner.layer_rates.values()])
        for level in range(1, _MAX_LEVEL):
            if slowest**level * total < left - 1:
                return None  # past it: the schedule only shrinks
            if _matches(pruner, counts, level):
                return level
        return None
    finally:
        pruner.active = saved


def _zeros_mask(pruner: IterativeMagnitudePruner) -> Mask:
    """Exact zeros of the prunable weights; a tensor that is zero throughout is an initialisation, not pruning."""
    out = {}
    for p in pruner.params:
        alive = bridge.trainable_tensor(p).detach() != 0
        out[p.name] = alive if alive.any() else torch.ones_like(alive)
    return Mask(out)


def adopt_existing(pruner: IterativeMagnitudePruner) -> int | None:
    """Adopt the model's existing sparsity as level k of the schedule; None when the model is dense.

    Masks that match no level raise ValueError. Exact zeros that match no level
    are left alone, with a warning: they are ordinary weights of a dense model then.
    """
    if any(bridge.trainable_tensor(p).is_meta for p in pruner.params):
        return None  # no values to look at (a model built on the meta device to measure it)
    masked = pruner.full_mask
    from_masks = masked.num_remaining < masked.num_total
    mask = masked if from_masks else _zeros_mask(pruner)
    if mask.num_remaining == mask.num_total:
        return None
    everything = [p.name for p in pruner.params]
    candidates = [everything]
    # Tensors left whole: possibly ones an earlier run excluded as unused in its round 0.
    partial = [n for n in everything if int(torch.count_nonzero(mask[n])) < mask[n].numel()]
    if partial != everything:
        candidates.append(partial)
    for active in candidates:
        level = find_level(pruner, mask, active)
        if level is not None:
            break
    else:
        what = (
            "carries pruning masks"
            if from_masks
            else f"has {mask.num_total - mask.num_remaining:,} prunable weights that are exactly zero"
        )
        message = (
            f"the model {what} (density {mask.density:.4f} over {mask.num_total:,} prunable weights), which is no "
            f"level of this schedule (rate {pruner.rate}, scope {pruner.scope})"
        )
        if from_masks:
            raise ValueError(
                message + ". To continue the run that made them, load its state (pruner.load_state(dir)) and call "
                "pruner.extend(); to start over from these weights as a dense model, remove the masks first "
                "(lotteryir.pruning.remove_masks or torch.nn.utils.prune.remove)"
            )
        if mask.num_remaining < (1.0 - _STRAY_ZEROS) * mask.num_total:  # a stray exact zero is no news
            log.warning("%s; treating them as ordinary weights: round 0 trains the model dense", message)
        return None
    if not from_masks:
        pruner.apply_mask(mask)
    pruner.active = active
    pruner.excluded_unused = [n for n in everything if n not in active]
    pruner.level = pruner.round = level
    pruner.adopted_level = level
    log.info(
        "adopted the model's existing sparsity (density %.4f) as level %d; the next round is %d",
        mask.density,
        level,
        level + 1,
    )
    return level
