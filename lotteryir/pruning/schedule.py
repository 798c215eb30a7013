"""The pruning schedule as pure functions: rates, survivors per level, rounds, and which level masks are.

Round 0 trains dense; round r >= 1 trains at level r, where each group of
tensors keeps exactly ``round(n * (1 - rate)^r)`` of its ``n`` entries. A group
is one tensor with its own rate (``layer_rates``, or every tensor in
``layerwise`` scope), or all the other tensors together (key ``"*"``), which
share one threshold. Everything here takes sizes and counts, not a model:
change the schedule here and nowhere else.

Level detection: a pruner created on a model that is already pruned (masks
attached by an earlier pruner or by torch.nn.utils.prune, or a ticket loaded as
plain weights with exact zeros) must not train it as if it were dense. Existing
sparsity is either exactly some level k, which the pruner adopts, or it is not.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .mask import Mask

log = logging.getLogger(__name__)

SCOPES = ("global", "layerwise", "random")
MAX_ROUNDS = 1000  # far beyond any useful schedule: 0.8^1000 leaves no weight of any network
SHARED = "*"  # the key of the group that shares one threshold
_STRAY_ZEROS = 1e-3  # fewer exact zeros than this fraction happen in dense weights: no warning


def check_rate(rate: float) -> float:
    """``rate`` as a float, refused outside (0, 1)."""
    if not isinstance(rate, (int, float)) or not 0.0 < float(rate) < 1.0:
        raise ValueError(f"rate must be in (0, 1) (the fraction of remaining weights removed per round), got {rate}")
    return float(rate)


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    return scope


def rounds_for_density(target_density: float, rate: float) -> int:
    """Pruning rounds at ``rate`` needed to reach ``target_density``.

    Densities are usually quoted rounded (0.107 for 0.8^10 = 0.1074), so a
    schedule density within 0.5% above the target counts as reaching it.
    More than :data:`MAX_ROUNDS` rounds is refused: a tiny rate would otherwise
    make the answer astronomically large (or, with 1 - rate == 1.0 in floating
    point, never come).
    """
    if not 0.0 < target_density < 1.0:
        raise ValueError(f"target density must be in (0, 1), got {target_density}")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    goal = target_density * 1.005
    if goal >= 1.0:
        return 1
    needed = math.log(goal) / math.log1p(-rate)  # log1p keeps rates below machine epsilon non-zero
    if needed > MAX_ROUNDS:
        raise ValueError(
            f"target density {target_density} at rate {rate} needs about {needed:.3g} pruning rounds, more than "
            f"the {MAX_ROUNDS} allowed; use a larger rate"
        )
    k = max(1, int(needed) - 2)  # then step exactly as the schedule computes densities
    while (1.0 - rate) ** k > goal:
        k += 1
    return k


def total_rounds(rounds: int | None, target_density: float | None, rate: float) -> int | None:
    """The number of pruning rounds asked for by ``rounds`` or ``target_density`` (not both)."""
    if rounds is not None and target_density is not None:
        raise ValueError("give either rounds or target_density, not both")
    if rounds is not None and (not isinstance(rounds, int) or rounds < 0):
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    if target_density is not None:
        if target_density >= 1.0:
            raise ValueError(f"target density {target_density} is already reached: the dense model has density 1.0")
        return rounds_for_density(target_density, rate)
    return rounds


def extended_rounds(
    old_rounds: int | None, done: int, rate: float, rounds: int | None, target_density: float | None
) -> int | None:
    """The schedule's length after ``extend(rounds=...)`` or ``extend(target_density=...)``."""
    if rounds is not None and target_density is not None:
        raise ValueError("give either rounds or target_density, not both")
    if rounds is not None:
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise ValueError(f"rounds must be a positive number of further rounds, got {rounds!r}")
        return (old_rounds if old_rounds is not None else max(done, 0)) + rounds
    if target_density is not None:
        new = rounds_for_density(target_density, rate)
        if old_rounds is not None and new <= old_rounds:
            raise ValueError(
                f"target density {target_density} needs {new} rounds at rate {rate}; "
                f"this run already has {old_rounds} (density {(1 - rate) ** old_rounds:.4f})"
            )
        return new
    return old_rounds


def resolve_layer_rates(patterns: Mapping[str, float], names: Sequence[str]) -> dict[str, float]:
    """Glob -> rate overrides as name -> rate over the prunable ``names``; a glob that matches nothing is refused."""
    out: dict[str, float] = {}
    for pattern, r in patterns.items():
        if not 0.0 < float(r) < 1.0:
            raise ValueError(f"layer rate for {pattern!r} must be in (0, 1), got {r}")
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(f"layer_rates pattern {pattern!r} matches no prunable parameter")
        for name in hits:
            out[name] = float(r)
    return out


def targets(
    sizes: Mapping[str, int], level: int, rate: float, layer_rates: Mapping[str, float], scope: str
) -> dict[str, int]:
    """Surviving entries per group at ``level``: one per tensor with its own rate, ``"*"`` for the rest."""

    def left(n: int, r: float) -> int:
        return int(round(n * (1.0 - r) ** level))

    if scope == "layerwise":
        return {n: left(size, layer_rates.get(n, rate)) for n, size in sizes.items()}
    out = {n: left(size, layer_rates[n]) for n, size in sizes.items() if n in layer_rates}
    out[SHARED] = left(sum(size for n, size in sizes.items() if n not in layer_rates), rate)
    return out


def amounts(counts: Mapping[str, int], goal: Mapping[str, int]) -> tuple[dict[str, float], float | None]:
    """Fractions of the survivors ``counts`` to remove to reach ``goal`` (from :func:`targets`).

    Returns (per-tensor fractions for tensors with their own group, the shared
    group's fraction or None when no tensor is in it).
    """

    def amount(remaining: int, target: int) -> float:
        return (remaining - target) / remaining if remaining else 0.0

    singles = {n: amount(c, goal[n]) for n, c in counts.items() if n in goal}
    rest = [c for n, c in counts.items() if n not in goal]
    return singles, (amount(sum(rest), goal[SHARED]) if rest else None)


def _matches(counts: Mapping[str, int], goal: Mapping[str, int]) -> bool:
    singles = {n: t for n, t in goal.items() if n != SHARED}
    if any(counts[n] != t for n, t in singles.items()):
        return False
    rest = sum(c for n, c in counts.items() if n not in singles)
    return SHARED not in goal or rest == goal[SHARED]


def find_level(
    mask: Mask, active: Sequence[str], rate: float, layer_rates: Mapping[str, float], scope: str
) -> int | None:
    """The level k >= 1 whose survivor counts over ``active`` are exactly ``mask``'s, or None."""
    counts = {n: int(torch.count_nonzero(mask[n])) for n in active}
    sizes = {n: mask[n].numel() for n in active}
    total, left = sum(sizes.values()), sum(counts.values())
    slowest = 1.0 - min([rate, *layer_rates.values()])
    for level in range(1, MAX_ROUNDS):
        if slowest**level * total < left - 1:
            return None  # past it: the schedule only shrinks
        if _matches(counts, targets(sizes, level, rate, layer_rates, scope)):
            return level
    return None


@dataclass(frozen=True)
class Adopted:
    """Existing sparsity found to be level ``level``: its mask, and which tensors it prunes."""

    level: int
    mask: Mask
    active: list[str]
    excluded: list[str]
    from_zeros: bool  # True: the mask came from exact zeros of the weights and must still be attached


def zeros_mask(weights: Mapping[str, torch.Tensor]) -> Mask:
    """Exact zeros of the weights; a tensor that is zero throughout is an initialisation, not pruning."""
    out = {}
    for name, w in weights.items():
        alive = w.detach() != 0
        out[name] = alive if alive.any() else torch.ones_like(alive)
    return Mask(out)


def existing_level(
    masked: Mask,
    weights: Mapping[str, torch.Tensor],
    rate: float,
    layer_rates: Mapping[str, float],
    scope: str,
    rewind_step: int | None = None,
) -> Adopted | None:
    """Which level of the schedule a model's existing sparsity is; None when the model is dense.

    ``masked`` is the attached mask over every prunable tensor, ``weights`` their
    trainable tensors. Masks that match no level raise ValueError. Exact zeros
    that match no level are left alone, with a warning: they are ordinary
    weights of a dense model then. A model found pruned has no round 0, so a
    late rewind (``rewind_step``) is refused.
    """
    if any(w.is_meta for w in weights.values()):
        return None  # no values to look at (a model built on the meta device to measure it)
    from_masks = masked.num_remaining < masked.num_total
    mask = masked if from_masks else zeros_mask(weights)
    if mask.num_remaining == mask.num_total:
        return None
    everything = list(weights)
    candidates = [everything]
    # Tensors left whole: possibly ones an earlier run excluded as unused in its round 0.
    partial = [n for n in everything if int(torch.count_nonzero(mask[n])) < mask[n].numel()]
    if partial != everything:
        candidates.append(partial)
    for active in candidates:
        level = find_level(mask, active, rate, layer_rates, scope)
        if level is None:
            continue
        if rewind_step is not None:
            raise ValueError(
                f"the model is already pruned (adopted as level {level}), so there is no round 0 to take step "
                f"{rewind_step} from: use rewind='init' (the weights as given) or 'none'"
            )
        log.info("adopted the model's existing sparsity (density %.4f) as level %d", mask.density, level)
        excluded = [n for n in everything if n not in active]
        return Adopted(level, mask, active, excluded, from_zeros=not from_masks)
    what = (
        "carries pruning masks"
        if from_masks
        else f"has {mask.num_total - mask.num_remaining:,} prunable weights that are exactly zero"
    )
    message = (
        f"the model {what} (density {mask.density:.4f} over {mask.num_total:,} prunable weights), which is no "
        f"level of this schedule (rate {rate}, scope {scope})"
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
