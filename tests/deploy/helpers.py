"""Pruned networks for the deploy tests: every layer keeps a share of its weights.

Layerwise magnitude pruning rather than global: at initialization global magnitude empties
whole layers (the output conv among them), and a network whose output is its input would
let a broken export pass.
"""

from __future__ import annotations

import copy
from functools import cache

import torch
from torch import nn

from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, find_prunable, remove_masks


def pruned(name: str, size: str, rounds: int = 10, seed: int = 0) -> nn.Module:
    """``name/size`` after ``rounds`` layerwise 20% prunings (density 0.8**rounds), masks removed."""
    return copy.deepcopy(_pruned(name, size, rounds, seed))


@cache
def _pruned(name: str, size: str, rounds: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, size)
    if rounds:
        pruner = IterativeMagnitudePruner(model, rate=0.2, scope="layerwise")
        for _ in range(rounds):
            pruner.prune()
        remove_masks(find_prunable(model))
    return model.eval()
