"""Pruning at initialization: ``snip`` (Lee et al. 2019) and ``synflow`` (Tanaka et al. 2020).

Both prune the freshly initialized network to ``target_density`` before round 0 trains, then train
once (cost: 1 training). ``shuffle=True`` (``--shuffle-within-layers``) is their sanity-check control
(Frankle et al. 2021): the mask is permuted at random within each tensor, keeping every layer's density.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import bridge
from ..strategies import random_mask_like
from .base import Method
from .common import apply, mask_at

if TYPE_CHECKING:
    from ..context import RoundContext
    from ..mask import Mask
    from .base import IterativeMagnitudePruner

LossFn = Callable[[nn.Module], torch.Tensor]


class _AtInit(Method):
    fixed_rounds = 0
    prunes_round0 = True
    extendable = False
    shuffle: bool = False

    def scores(self, pruner: IterativeMagnitudePruner) -> Mask:
        raise NotImplementedError

    def needs(self) -> str | None:
        """What the method lacks to score (named in the error at the pruner's construction), else None."""
        return None

    def setup(self, pruner: IterativeMagnitudePruner) -> None:
        super().setup(pruner)
        missing = self.needs()
        if missing is not None:
            raise ValueError(missing)

    def before_round(self, pruner: IterativeMagnitudePruner, r: int) -> None:
        if r != 0:
            return
        mask = self.scores(pruner)
        if self.shuffle:
            mask = random_mask_like(mask, seed=pruner.seed * 100_003 + 1)
        apply(pruner, mask)

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        return {**self.config(), "target_density": self.target(pruner)}


@dataclass
class Snip(_AtInit):
    """SNIP: keep the weights with the largest |g * w| at initialization, g the gradient of ``loss_fn(model)``.

    ``loss_fn(model) -> scalar tensor`` computes the loss on a batch (or the mean over a few); runs
    build it from their training data.
    """

    name = "snip"
    options = ("shuffle",)

    loss_fn: LossFn | None = None
    shuffle: bool = False

    def needs(self) -> str | None:
        if self.loss_fn is None:
            return "method 'snip' needs loss_fn(model) -> loss: pass methods.Snip(loss_fn=...)"
        return None

    def scores(self, pruner: IterativeMagnitudePruner) -> Mask:
        assert self.loss_fn is not None  # setup() checked
        params = pruner._active_params()
        tensors = {p.name: bridge.trainable_tensor(p) for p in params}
        grads_before = {id(t): t.grad for t in pruner.model.parameters()}
        for t in pruner.model.parameters():
            t.grad = None
        with torch.random.fork_rng(devices=[]):  # dropout in the loss must not move the training's RNG
            self.loss_fn(pruner.model).backward()
        scores = {n: _score(t) for n, t in tensors.items()}
        for t in pruner.model.parameters():  # the training starts from the gradients it would have had
            t.grad = grads_before[id(t)]
        return mask_at(pruner, self.target(pruner), scores)


@dataclass
class SynFlow(_AtInit):
    """SynFlow: data-free, iterative; ``iterations`` rounds of scoring |dR/dw * w| on the linearized
    network (weights as |w|, in float64, an all-ones input of ``input_shape``), pruning to
    ``target_density ** (i / iterations)`` at iteration i (the paper's exponential schedule, 100 iterations)."""

    name = "synflow"
    options = ("iterations", "shuffle")

    input_shape: Sequence[int] | None = None
    iterations: int = 100
    shuffle: bool = False

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"synflow: iterations must be at least 1, got {self.iterations}")

    def needs(self) -> str | None:
        if self.input_shape is None:
            return "method 'synflow' needs input_shape (one batch's shape, e.g. (1, 3, 64, 64))"
        return None

    def scores(self, pruner: IterativeMagnitudePruner) -> Mask:
        assert self.input_shape is not None  # setup() checked
        net = copy.deepcopy(pruner.model).double().eval()
        with torch.no_grad():
            for t in net.parameters():
                t.abs_()
        names = set(pruner.active)
        params = [p for p in pruner._params_of(net) if p.name in names]
        tensors = {p.name: bridge.trainable_tensor(p) for p in params}
        device = next(iter(tensors.values())).device
        ones = torch.ones(tuple(self.input_shape), dtype=torch.float64, device=device)
        mask = pruner.mask
        with torch.random.fork_rng(devices=[]):  # a network that draws random numbers leaves the RNG as it was
            for i in range(1, self.iterations + 1):
                net.zero_grad(set_to_none=True)
                torch.sum(net(ones)).backward()
                scores = {n: _score(t) for n, t in tensors.items()}
                mask = mask_at(pruner, self.target(pruner) ** (i / self.iterations), scores, current=mask)
                with torch.no_grad():
                    bridge.attach_masks(net, params, mask)
        return mask


def _score(t: torch.Tensor) -> torch.Tensor:
    """|grad * w| (zeros for a tensor that got no gradient)."""
    return (t.grad * t).abs().detach() if t.grad is not None else torch.zeros_like(t).detach()
