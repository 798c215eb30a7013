"""Masks at an exact density, by magnitude or by any score: what the methods other than IMP prune with.

Exactness: each group keeps exactly ``round(density * size)`` entries, where a group is every active
tensor without a rate of its own (one global threshold; with ``scope="layerwise"`` each tensor is
its own group) and, alone, each tensor with a ``layer_rates`` entry. Without layer rates, in global
scope, the mask keeps exactly ``round(density * N)`` of the N prunable weights. Ties at the
threshold are broken by position: the first tied entries in (parameter, row-major) order are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from .. import bridge
from ..mask import Mask
from ..strategies import global_magnitude

if TYPE_CHECKING:
    from .base import IterativeMagnitudePruner


def groups(pruner: IterativeMagnitudePruner, names: list[str]) -> list[list[str]]:
    """The groups that each keep ``round(density * size)`` entries (see the module docstring)."""
    if pruner.scope == "layerwise":
        return [[n] for n in names]
    if pruner.scope != "global":
        raise ValueError(f"method {pruner.method.name!r} prunes by score: scope must be global or layerwise")
    own = [[n] for n in names if n in pruner.layer_rates]
    shared = [n for n in names if n not in pruner.layer_rates]
    return own + ([shared] if shared else [])


def mask_at(
    pruner: IterativeMagnitudePruner,
    density: float,
    scores: Mapping[str, torch.Tensor] | None = None,
    current: Mask | None = None,
) -> Mask:
    """The mask over the pruner's active tensors at ``density``: the lowest ``scores`` (default: |weight|)
    among the survivors of ``current`` (default: the live mask) are removed. Does not attach it."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    current = current if current is not None else pruner.mask
    params = {p.name: p for p in pruner._active_params()}
    keys = scores if scores is not None else {n: bridge.trainable_tensor(p).detach() for n, p in params.items()}
    counts = current.remaining()
    out: dict[str, torch.Tensor] = {}
    for group in groups(pruner, list(current)):
        size = sum(current[n].numel() for n in group)
        alive = sum(counts[n] for n in group)
        goal = int(round(density * size))
        if goal > alive:
            raise ValueError(f"cannot reach density {density:g}: only {alive} of {size} entries survive already")
        amount = (alive - goal) / alive if alive else 0.0
        sub = Mask({n: current[n] for n in group})
        chosen = global_magnitude({n: keys[n] for n in group}, sub, amount, remaining=counts)
        out.update(chosen.items())
    return Mask({n: out[n] for n in current})


def apply(pruner: IterativeMagnitudePruner, mask: Mask) -> None:
    """Attach ``mask`` to the pruner's model in place (pruned entries of ``_orig`` become zero)."""
    with torch.no_grad():
        pruner.apply_mask(mask)
