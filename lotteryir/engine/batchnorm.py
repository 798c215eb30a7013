"""A network's BatchNorm statistics recomputed after pruning, and a gradient probe for a round that does not train.

Pruning changes every activation downstream of a pruned weight, so the running means and variances a
network learned no longer describe what its BatchNorm layers see. A network that is retrained updates
them as it trains; one that is not (magnitude pruning without retraining, ``--steps 0``) keeps stale
statistics. :func:`recalibrate_batchnorm` recomputes them as the plain average over a few training
batches (momentum None), and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate

from lotteryir.engine.losses import LOSSES
from lotteryir.engine.sampling import unpack_batch

__all__ = ["batchnorm_layers", "gradient_probe", "recalibrate_batchnorm", "training_batches"]


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Recompute every BatchNorm layer's running mean and variance over ``batches`` (network inputs).

    Each layer's statistics become the average of the batch statistics it sees (momentum None); its
    weight and bias, and every other tensor of the model, are left as they were, and so are the
    model's train/eval modes. Returns the number of batches used (0: no BatchNorm layer, nothing done).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in layers}
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, whatever their number
    model.eval()
    for m in layers:
        m.train()  # only BatchNorm collects statistics; dropout and the like stay in eval mode
    used = 0
    try:
        for x in batches:
            model(x)
            used += 1
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for module, training in modes.items():
            module.train(training)
    if not used:
        raise ValueError("recalibrate_batchnorm got no batches: the statistics were reset and not recomputed")
    return used


def training_batches(
    train_set: Any, batches: int, batch_size: int, seed: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` (input, target) batches of ``train_set`` in an order drawn from ``seed``: the same ones for the
    same seed, the training's own order and RNG untouched."""
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(0)  # the crops of epoch 0; the trainer sets its own epoch when it starts
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))
    for b in range(batches):
        picked = [int(order[(b * batch_size + i) % len(order)]) for i in range(batch_size)]
        yield unpack_batch(default_collate([train_set[i] for i in picked]), device)


def gradient_probe(
    model: nn.Module, train_set: Any, batch_size: int, loss: str, seed: int, device: torch.device
) -> None:
    """One backward pass of the training loss on one training batch, then the gradients are dropped.

    For a round that does not train: gradient hooks (the pruner's watch for never-called layers) see
    which tensors take part. In eval mode (BatchNorm statistics untouched), RNG state restored.
    """
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        inputs, targets = next(training_batches(train_set, 1, batch_size, seed, device))
        model.eval()
        try:
            LOSSES[loss](model(inputs).float(), targets.float()).backward()
        finally:
            model.zero_grad(set_to_none=True)
            model.train(was_training)
