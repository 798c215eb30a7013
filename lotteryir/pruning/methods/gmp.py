"""``gmp``: gradual magnitude pruning (Zhu & Gupta 2017) inside one training.

Sparsity follows the cubic schedule s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))^3 with s_i = 0,
from step ``start`` (t0) to step ``end`` (t0 + n Δt); the mask is recomputed every ``every`` (Δt)
steps and at ``end``, always from the survivors, so a pruned weight never returns and stays zero
between updates. The masks live in the model's ``weight_mask`` buffers, which a checkpoint of the
model's state dict saves; a resumed round therefore continues with the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Method
from .common import apply, mask_at

if TYPE_CHECKING:
    from ..context import RoundContext
    from .base import IterativeMagnitudePruner

DEFAULT_END_FRACTION = 0.75  # of the round: the rest fine-tunes at the final sparsity, as in the paper
DEFAULT_UPDATES = 10


def cubic_sparsity(t: int, start: int, end: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's sparsity at step ``t``: ``initial`` up to ``start``, ``final`` from ``end`` on."""
    if t <= start:
        return initial
    if t >= end:
        return final
    return final + (initial - final) * (1.0 - (t - start) / (end - start)) ** 3


@dataclass
class GradualMagnitude(Method):
    """Gradual magnitude pruning in one training (round 0 only); cost: 1 training.

    ``start`` / ``end``: the steps between which sparsity rises from 0 to ``1 - target_density``
    (``end`` None: 3/4 of the round, read from ``ctx.total_steps``); ``every``: steps between mask
    updates (None: the span in 10 updates). The closure must call ``ctx.step(k)`` after every
    optimizer step and set ``ctx.total_steps`` (or give ``end``).
    """

    name = "gmp"
    options = ("start", "end", "every")
    fixed_rounds = 0
    prunes_round0 = True
    dense_round0 = False
    extendable = False

    start: int = 0
    end: int | None = None
    every: int | None = None
    updates: list[list[float]] = field(default_factory=list, init=False, repr=False)  # [step, density] of each update
    _span: tuple[int, int, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise ValueError(f"gmp needs 0 <= start < end, got start={self.start}, end={self.end}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"gmp: every must be at least 1, got {self.every}")

    def span(self, total_steps: int | None) -> tuple[int, int, int]:
        """(start, end, every) for a round of ``total_steps`` steps."""
        end = self.end
        if end is None:
            if total_steps is None:
                raise ValueError("gmp needs end=STEP: the closure did not set ctx.total_steps")
            end = max(self.start + 1, round(DEFAULT_END_FRACTION * total_steps))
        if total_steps is not None and end > total_steps:
            raise ValueError(f"gmp: end step {end} is past the round's {total_steps} steps")
        every = self.every if self.every is not None else max(1, (end - self.start) // DEFAULT_UPDATES)
        return self.start, end, every

    def during_round(self, pruner: IterativeMagnitudePruner, ctx: RoundContext) -> None:
        self._span, self.updates = None, []
        ctx.add_state("gmp", lambda: [list(u) for u in self.updates], self._load)
        ctx.on_step(lambda k: self._update(pruner, ctx, k))

    def _load(self, saved: list[list[float]]) -> None:
        self.updates = [list(u) for u in saved]

    def _resolved(self, ctx: RoundContext) -> tuple[int, int, int]:
        # The closure sets ctx.total_steps when it starts, after the context was equipped: read it late.
        if self._span is None:
            self._span = self.span(ctx.total_steps)
        return self._span

    def _update(self, pruner: IterativeMagnitudePruner, ctx: RoundContext, k: int) -> None:
        start, end, every = self._resolved(ctx)
        if k < start or k > end or ((k - start) % every and k != end):
            return
        density = 1.0 - cubic_sparsity(k, start, end, 1.0 - self.target(pruner))
        apply(pruner, mask_at(pruner, density))
        self.updates.append([k, pruner.mask.density])

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        start, end, every = self._resolved(ctx)
        reached = bool(self.updates) and self.updates[-1][0] == end
        # The closure stopped before ``end``: the run still ends at the target density. Either way the
        # pruned entries of ``_orig``, which the optimizer's momentum moved since their update (the
        # forward pass multiplies them by zero), are zeroed, as the pruner keeps them elsewhere.
        apply(pruner, pruner.mask if reached else mask_at(pruner, self.target(pruner)))
        facts = {"name": self.name, "start": start, "end": end, "every": every, "updates": self.updates}
        return {**facts, "reached_end": reached}
