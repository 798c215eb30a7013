"""One pruning step on live tensors: the schedule's targets, through the strategy registry, into a mask.

The pruner keeps pruned entries of ``<attr>_orig`` at zero, which the strategies
exploit (``pruned_are_zero``, verified there); survivor counts of the pruner's own
last write are reused while a mask buffer is untouched, saving a pass per tensor.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from . import bridge, checks, distributed, schedule
from .mask import Mask
from .rewind import named_tensors
from .selection import PrunableParam, find_prunable
from .strategies import STRATEGIES

Selection = tuple[list[str], list[str], "Sequence[type[nn.Module]] | None"]  # include, exclude, module types


def attach(
    model: nn.Module, selection: Selection, layer_rates: Mapping[str, float]
) -> tuple[list[PrunableParam], dict[str, float]]:
    """Find ``model``'s prunable tensors, resolve the ``layer_rates`` globs over them, attach all-ones masks."""
    params = find_prunable(model, *selection)
    if not params:
        raise ValueError(
            "the model has no prunable parameters (no Conv/ConvTranspose/Linear weights, no include match)"
        )
    rates = schedule.resolve_layer_rates(layer_rates, [p.name for p in params])
    bridge.attach_masks(model, params)
    # DDP wrapped around this model later must not broadcast the masks at every forward.
    distributed.ddp_ignore_masks(model)
    if distributed.active():  # every rank must start from the same weights: the rewind point is taken now
        distributed.verify_weights_agree(named_tensors(model))
    return params, rates


class Survivors:
    """Survivors per tensor, with the counts of the last write remembered per mask buffer version."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int], int]] = {}  # name -> ((buffer id, version), survivors)
        self.before: dict[str, int] = {}  # the counts the last pruning started from
        self.scale_warned = False  # the scale-mismatch warning is given once per pruner

    def count(self, params: Sequence[PrunableParam]) -> dict[str, int]:
        out = {}
        for p in params:
            buf = bridge.mask_buffer(p)
            known = self._cache.get(p.name)
            if known is not None and buf is not None and known[0] == (id(buf), buf._version):
                out[p.name] = known[1]
            else:
                out[p.name] = int(torch.count_nonzero(buf)) if buf is not None else bridge.trainable_tensor(p).numel()
        return out

    def remember(self, by_name: Mapping[str, PrunableParam], after: Mapping[str, int]) -> None:
        """Record ``after`` as the counts of the masks just written (read back while their buffers are unchanged)."""
        self._cache = {}
        for name, count in after.items():
            buf = bridge.mask_buffer(by_name[name])
            if buf is not None:  # always, once attached
                self._cache[name] = ((id(buf), buf._version), count)

    def check(
        self,
        by_name: Mapping[str, PrunableParam],
        mask: Mask,
        after: Mapping[str, int],
        layer_rates: Mapping[str, float],
        include: Sequence[str],
        level: int,
    ) -> None:
        """Warn about layer collapse and (once) about included tensors on another magnitude scale."""
        args = (by_name, mask, self.before, after, layer_rates, include, level, self.scale_warned)
        self.scale_warned = check_round(*args)


def next_mask(
    params: Sequence[PrunableParam],
    level: int,
    counts: Mapping[str, int],
    *,
    rate: float,
    layer_rates: Mapping[str, float],
    scope: str,
    seed: int,
) -> Mask:
    """The mask of ``level`` over ``params`` from their current weights and survivor ``counts``.

    Tensors with a rate of their own are pruned alone by magnitude; the rest share one
    selection by the scope's strategy (``STRATEGIES[scope]``).
    """
    # The trainable tensors and the live mask buffers, no copies.
    weights = {p.name: bridge.trainable_tensor(p).detach() for p in params}
    # Every param is attached (the pruner attaches all in masking.attach), so no buffer is None.
    mask = Mask({p.name: cast(torch.Tensor, bridge.mask_buffer(p)) for p in params})
    goal = schedule.targets({n: m.numel() for n, m in mask.items()}, level, rate, layer_rates, scope)
    singles, shared = schedule.amounts(counts, goal)
    options = {"pruned_are_zero": True, "remaining": counts}
    out: dict[str, torch.Tensor] = {}
    if singles:
        sub = Mask({n: mask[n] for n in singles})
        out.update(STRATEGIES["layerwise"](weights, sub, singles, **options).items())
    if shared is not None:
        rest = Mask({n: mask[n] for n in mask if n not in singles})
        out.update(STRATEGIES[scope](weights, rest, shared, seed=seed * 100_003 + level, **options).items())
    return Mask({n: out[n] for n in mask})


def check_round(
    by_name: Mapping[str, PrunableParam],
    mask: Mask,
    before: Mapping[str, int],
    after: Mapping[str, int],
    layer_rates: Mapping[str, float],
    include: Sequence[str],
    level: int,
    scale_warned: bool,
) -> bool:
    """Warn about layer collapse and about included tensors on another magnitude scale (once).

    Returns whether the scale warning has been given.
    """
    shared = [n for n in mask if n not in layer_rates]
    if include and not scale_warned:
        included = [n for n in shared if any(fnmatch.fnmatchcase(n, g) for g in include)]
        weights = {n: bridge.trainable_tensor(by_name[n]) for n in shared}
        scale_warned = checks.warn_scale_mismatch(weights, before, included)
    checks.warn_collapse(before, {n: after[n] for n in shared}, {n: mask[n].numel() for n in shared}, level)
    return scale_warned
