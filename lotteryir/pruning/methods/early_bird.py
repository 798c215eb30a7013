"""``early-bird`` (You et al. 2020): find the ticket early in a dense training, then retrain it.

Round 0 trains dense and, every ``every`` steps, computes the global magnitude mask at
``target_density``; the normalized Hamming distance between consecutive masks (differing entries /
all entries) is recorded, and once it stays below ``epsilon`` for ``patience`` consecutive checks
the method asks the closure to stop (``ctx.request_stop``). Round 1 prunes to that mask (from the
weights at the stop), rewinds and trains the full round. Cost: 1 + (stop step / round length)
trainings. If the masks never settle, round 0 trains to its end and this is ``oneshot``. With a late
rewind (``step:K``) the search does not stop before step K, whose weights the ticket rewinds to.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .base import Method
from .common import mask_at

if TYPE_CHECKING:
    from ..context import RoundContext
    from ..mask import Mask
    from .base import IterativeMagnitudePruner

_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(flat: torch.Tensor) -> str:
    """A bool vector as base64 text (8 entries a byte), so a checkpoint's JSON can hold the last mask."""
    bits = torch.cat([flat.cpu(), torch.zeros((-flat.numel()) % 8, dtype=torch.bool)]).view(-1, 8)
    packed = (bits.to(torch.uint8) * _BITS).sum(1).to(torch.uint8)
    return base64.b64encode(packed.numpy().tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> torch.Tensor:
    """The inverse of :func:`pack_bits` for a vector of ``n`` entries."""
    packed = torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)
    return ((packed[:, None] & _BITS) > 0).flatten()[:n]


def flat_mask(mask: Mask) -> torch.Tensor:
    return torch.cat([m.flatten().cpu() for m in mask.values()])


@dataclass
class EarlyBird(Method):
    """Early-bird tickets; ``every`` steps between mask checks, ``epsilon`` the distance threshold,
    ``patience`` the consecutive checks below it before stopping. The closure must call
    ``ctx.step(k)`` every step and stop when ``ctx.stop_requested`` is True."""

    name = "early-bird"
    options = ("every", "epsilon", "patience")
    fixed_rounds = 1
    extendable = False
    dense_round0 = False  # its search runs while round 0 trains

    every: int = 10
    epsilon: float = 0.1
    patience: int = 3
    distances: list[list[float]] = field(default_factory=list, init=False, repr=False)  # [step, distance]
    stopped_at: int | None = field(default=None, init=False)
    _last: torch.Tensor | None = field(default=None, init=False, repr=False)
    _below: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.every < 1 or self.patience < 1 or not 0.0 < self.epsilon < 1.0:
            raise ValueError(
                f"early-bird needs every >= 1, patience >= 1 and epsilon in (0, 1); got every={self.every}, "
                f"patience={self.patience}, epsilon={self.epsilon}"
            )

    def during_round(self, pruner: IterativeMagnitudePruner, ctx: RoundContext) -> None:
        if ctx.round != 0:
            return
        self.distances, self.stopped_at, self._last, self._below = [], None, None, 0
        ctx.add_state("early_bird", self._save, lambda s: self._load(s, ctx))
        ctx.on_step(lambda k: self._check(pruner, ctx, k))

    def _save(self) -> dict[str, Any]:
        last = None if self._last is None else pack_bits(self._last)
        size = 0 if self._last is None else self._last.numel()
        progress = {"distances": self.distances, "stopped_at": self.stopped_at, "below": self._below}
        return {**progress, "last": last, "size": size}

    def _load(self, saved: dict[str, Any], ctx: RoundContext) -> None:
        self.distances = [list(d) for d in saved["distances"]]
        self.stopped_at, self._below = saved["stopped_at"], int(saved["below"])
        self._last = None if saved["last"] is None else unpack_bits(saved["last"], int(saved["size"]))
        if self.stopped_at is not None:
            ctx.request_stop(f"early-bird mask converged at step {self.stopped_at}")

    def _check(self, pruner: IterativeMagnitudePruner, ctx: RoundContext, k: int) -> None:
        if k % self.every or ctx.stop_requested:
            return
        flat = flat_mask(mask_at(pruner, self.target(pruner)))
        if self._last is not None:
            distance = float(torch.count_nonzero(flat != self._last)) / flat.numel()
            self.distances.append([k, distance])
            self._below = self._below + 1 if distance < self.epsilon else 0
        self._last = flat
        # A late rewind needs its snapshot: the search goes on at least to the rewind step.
        if self._below >= self.patience and (ctx.rewind_step is None or k >= ctx.rewind_step):
            self.stopped_at = k
            ctx.request_stop(f"early-bird mask converged at step {k}")

    def before_round(self, pruner: IterativeMagnitudePruner, r: int) -> None:
        if r == 1:
            density = self.target(pruner)
            pruner.prune(rewind=pruner.rewind_spec.kind != "none", mask_fn=lambda: mask_at(pruner, density))

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        if r != 0:
            return {"name": self.name, "target_density": self.target(pruner)}
        return {
            **self.config(),
            "stopped_at": self.stopped_at,
            "steps": ctx.steps_done,
            "total_steps": ctx.total_steps,
            "distances": self.distances,
        }
