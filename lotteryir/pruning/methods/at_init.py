"""Pruning at initialization: ``snip`` (Lee et al. 2019) and ``synflow`` (Tanaka et al. 2020).

Both prune the freshly initialized network to ``target_density`` before round 0 trains, then train
once (cost: 1 training). ``shuffle=True`` (``--shuffle-within-layers``) is their sanity-check control
(Frankle et al. 2021): the mask is permuted at random within each tensor, keeping every layer's density.

Two guards keep the scores meaningful:

- A prunable tensor that starts at zero (``--init identity`` zeroes the last convolution) makes every
  score zero: its own (|g * 0|) and, since it blocks the gradient, those of every layer before it.
  The scores are therefore taken on a copy whose all-zero tensors are redrawn with the default init
  of Conv/Linear layers (Kaiming uniform, a = sqrt(5)); the mask then applies to the real network.
- Equal scores are ranked in a seeded random order, not by position: positional tie-breaking removed
  whole tensors (or output channels) in parameter order.

Tensors that get no gradient at all (parameters the forward never uses) score zero and are pruned
first; the history entry lists them under ``unscored``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import bridge
from ..selection import PrunableParam
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
    dense_round0 = False
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
        self.unscored: list[str] = []
        mask = self.scores(pruner)
        if self.shuffle:
            mask = random_mask_like(mask, seed=pruner.seed * 100_003 + 1)
        apply(pruner, mask)

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        return {
            **self.config(),
            "target_density": self.target(pruner),
            "unscored": list(getattr(self, "unscored", [])),
        }

    def scoring_copy(self, pruner: IterativeMagnitudePruner) -> tuple[nn.Module, list[PrunableParam]]:
        """A copy of the model to score, its all-zero prunable tensors redrawn, and its active params."""
        net = copy.deepcopy(pruner.model)
        names = set(pruner.active)
        params = [p for p in pruner._params_of(net) if p.name in names]
        gen = torch.Generator().manual_seed(pruner.seed * 100_003 + 7)
        with torch.no_grad():
            for p in params:
                t = bridge.trainable_tensor(p)
                if t.dim() >= 2 and not bool(t.any()):
                    # nn.Conv2d / nn.Linear's default: Kaiming uniform with a = sqrt(5), bound 1/sqrt(fan_in)
                    bound = 1.0 / math.sqrt(t[0].numel())
                    t.copy_((torch.rand(t.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
        return net, params

    def ranked(self, pruner: IterativeMagnitudePruner, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scores replaced by their global rank, equal scores in a seeded random order (see the module docstring)."""
        names = list(scores)
        flat = torch.cat([scores[n].detach().reshape(-1).double().cpu() for n in names])
        gen = torch.Generator().manual_seed(pruner.seed * 100_003 + 11)
        shuffle = torch.randperm(flat.numel(), generator=gen)
        order = shuffle[torch.sort(flat[shuffle], stable=True).indices]
        rank = torch.empty(flat.numel(), dtype=torch.float64)
        rank[order] = torch.arange(flat.numel(), dtype=torch.float64)
        out, at = {}, 0
        for n in names:
            k = scores[n].numel()
            out[n] = rank[at : at + k].reshape(scores[n].shape).to(scores[n].device)
            at += k
        return out

    def note_unscored(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.unscored = [n for n, t in tensors.items() if t.grad is None]


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
        # A copy: the training starts from the model, its gradients and its zero tensors untouched.
        net, params = self.scoring_copy(pruner)
        tensors = {p.name: bridge.trainable_tensor(p) for p in params}
        for t in net.parameters():
            t.grad = None
        with torch.random.fork_rng(devices=[]):  # dropout in the loss must not move the training's RNG
            self.loss_fn(net).backward()
        self.note_unscored(tensors)
        scores = {n: _score(t) for n, t in tensors.items()}
        return mask_at(pruner, self.target(pruner), self.ranked(pruner, scores))


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
        net, params = self.scoring_copy(pruner)
        net = net.double().eval()
        with torch.no_grad():
            for t in net.parameters():
                t.abs_()
        tensors = {p.name: bridge.trainable_tensor(p) for p in params}
        device = next(iter(tensors.values())).device
        ones = torch.ones(tuple(self.input_shape), dtype=torch.float64, device=device)
        mask = pruner.mask
        with torch.random.fork_rng(devices=[]):  # a network that draws random numbers leaves the RNG as it was
            for i in range(1, self.iterations + 1):
                net.zero_grad(set_to_none=True)
                torch.sum(net(ones)).backward()
                if i == 1:
                    self.note_unscored(tensors)
                scores = self.ranked(pruner, {n: _score(t) for n, t in tensors.items()})
                mask = mask_at(pruner, self.target(pruner) ** (i / self.iterations), scores, current=mask)
                with torch.no_grad():
                    bridge.attach_masks(net, params, mask)
        return mask


def _score(t: torch.Tensor) -> torch.Tensor:
    """|grad * w| (zeros for a tensor that got no gradient)."""
    return (t.grad * t).abs().detach() if t.grad is not None else torch.zeros_like(t).detach()
