"""Instability analysis (linear mode connectivity) for any network and training closure.

From one state (the weights at rewind step k, with a mask applied or dense), two copies train with
different data orders and nothing else different; the network is then scored along the straight
line between the two trained copies. A path without a PSNR dip (barrier at most a threshold) means
training from that state is *stable*: SGD noise no longer decides which solution it reaches
(Frankle et al., 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..pruning import Mask, RoundContext, TrainClosure, attach_masks
from ..pruning.rewind import named_tensors
from .barrier import MIN_POINTS, alphas, mean_curve, psnr_barrier

Evaluate = Callable[[nn.Module], Mapping[str, float]]
"""``evaluate(model) -> {test set: PSNR in dB}``: scores the model as it is (it must not train it)."""

DEFAULT_SEEDS = (1, 2)


@dataclass
class PathResult:
    """PSNR along the linear path between two copies trained from one state, and its barriers."""

    alphas: list[float]
    psnr: dict[str, list[float]]  # test set -> PSNR at each alpha
    seeds: tuple[int, int]
    train: list[dict[str, Any]] = field(default_factory=list)  # what each copy's closure returned

    @property
    def mean_psnr(self) -> list[float]:
        return mean_curve(self.psnr)

    @property
    def barriers(self) -> dict[str, float]:
        """Per test set: ``max(0, max_alpha(mean(PSNR(0), PSNR(1)) - PSNR(alpha)))`` in dB."""
        return {label: psnr_barrier(curve) for label, curve in self.psnr.items()}

    @property
    def mean_barrier(self) -> float:
        """The barrier of the mean-over-sets curve (not the mean of the per-set barriers)."""
        return psnr_barrier(self.mean_psnr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alphas": self.alphas,
            "seeds": list(self.seeds),
            "psnr": self.psnr,
            "mean_psnr": self.mean_psnr,
            "barrier": self.barriers,
            "mean_barrier": self.mean_barrier,
            "train": self.train,
        }


def instability(
    model: nn.Module,
    train: TrainClosure,
    evaluate: Evaluate,
    *,
    state: Mapping[str, torch.Tensor] | None = None,
    mask: Mask | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    points: int = MIN_POINTS,
    round: int = 0,
    on_point: Callable[[float], None] | None = None,
) -> PathResult:
    """Train two copies of ``model`` from ``state`` with different data orders; score the path between them.

    ``model`` is not changed. ``state`` (parameter and buffer names -> tensors, e.g. a ``state_dict()``
    of the unpruned network) is the point both copies start from: the weights at rewind step k;
    without it the model's current weights are. ``mask`` (prunable tensor names -> bool) is attached
    to both copies, so their pruned weights stay zero while they train and every point of the path
    has them at zero.

    ``train(model, ctx)`` must train in place and draw its data order from ``ctx.seed`` (and
    nothing else random from anywhere but that seed and fixed settings): the two copies get
    ``ctx.seed = seeds[0]`` and ``seeds[1]``, and the same ``ctx.round`` (``round``) and density. A
    closure that ignores ``ctx.seed`` trains two identical copies and measures a barrier of 0.
    ``evaluate(model)`` returns PSNR in dB per test set (same keys every call).
    """
    if len(seeds) != 2 or seeds[0] == seeds[1]:
        raise ValueError(f"instability needs two different seeds (one per copy), got {list(seeds)}")
    grid = alphas(points)
    start = start_from(model, state)
    copies, trained = [], []
    for seed in seeds:
        net = copy.deepcopy(start)
        if mask is not None:
            attach_masks(net, mask)
        ctx = RoundContext(round=round, density=mask.density if mask is not None else 1.0, seed=int(seed))
        trained.append(dict(train(net, ctx) or {}))
        copies.append({k: t.detach().clone() for k, t in named_tensors(net).items()})
    probe = copy.deepcopy(start)  # plain copy: the interpolated weights, pruned entries zeroed, go in here
    if mask is not None:
        attach_masks(probe, mask)
    curves: dict[str, list[float]] = {}
    for alpha in grid:
        write_interpolation(probe, copies[0], copies[1], alpha, mask)
        with torch.no_grad():
            scores = evaluate(probe.eval())
        if curves and set(scores) != set(curves):
            raise ValueError(f"evaluate returned test sets {sorted(scores)}, earlier {sorted(curves)}")
        for label, value in scores.items():
            curves.setdefault(label, []).append(float(value))
        if on_point is not None:
            on_point(alpha)
    return PathResult(alphas=grid, psnr=curves, seeds=(int(seeds[0]), int(seeds[1])), train=trained)


def start_from(model: nn.Module, state: Mapping[str, torch.Tensor] | None) -> nn.Module:
    """A copy of ``model`` holding ``state`` (names as in an unpruned state_dict); shapes and names are checked."""
    start = copy.deepcopy(model)
    if state is not None:
        live = named_tensors(start)
        missing = [k for k in live if k not in state]
        if missing:
            raise ValueError(f"the rewind state lacks {len(missing)} tensors of the model, e.g. {missing[:3]}")
        with torch.no_grad():
            for key, t in live.items():
                if tuple(state[key].shape) != tuple(t.shape):
                    raise ValueError(
                        f"rewind state tensor {key!r} has shape {tuple(state[key].shape)}, the model's {tuple(t.shape)}"
                    )
                t.copy_(state[key].to(t.device))
    return start


@torch.no_grad()
def write_interpolation(
    model: nn.Module,
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    alpha: float,
    mask: Mask | None = None,
) -> None:
    """Write ``(1 - alpha) * a + alpha * b`` into ``model``'s parameters and floating buffers, in place.

    Integer buffers (counters) are taken from ``a``. With ``mask``, pruned entries are written as zero,
    whatever the endpoints hold there.
    """
    for key, t in named_tensors(model).items():
        if t.is_floating_point():
            value = torch.lerp(a[key].to(t.device, t.dtype), b[key].to(t.device, t.dtype), float(alpha))
        else:
            value = a[key].to(t.device)
        if mask is not None and key in mask:
            value = value * mask[key].to(t.device)
        t.copy_(value)
