"""The round-based methods: ``imp``, ``lr-rewind`` (imp keeping the trained weights) and ``oneshot``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..rewind import Rewind
from .base import Method
from .common import mask_at

if TYPE_CHECKING:
    from ..context import RoundContext
    from .base import IterativeMagnitudePruner


class Imp(Method):
    """Iterative magnitude pruning: train, remove ``rate`` of the survivors, rewind, train again.

    Cost: ``rounds + 1`` trainings. Rewind: ``init``, ``step:K`` or ``none``.
    """


class LrRewind(Method):
    """Learning-rate rewinding (Renda et al. 2020): IMP that keeps the trained weights (``rewind="none"``)
    and replays the whole learning-rate schedule every round.

    The replay is the closure's: the shipped trainer restarts its warm-up + cosine schedule every
    round, so this is exactly ``imp`` with ``rewind="none"``; a closure of your own must restart
    its schedule every round too. Cost: ``rounds + 1`` trainings.
    """

    name = "lr-rewind"

    def rewind(self, spec: Rewind) -> Rewind:
        if spec.kind == "step":
            raise ValueError(f"method 'lr-rewind' keeps the trained weights (rewind none); rewind {spec} is imp's")
        return Rewind.parse("none")


class OneShot(Method):
    """Train dense, prune to ``target_density`` at once (one global threshold), rewind, train once more.

    Rewind ``init`` / ``step:K`` returns the survivors to that point; ``none`` keeps the trained
    weights and (with the shipped trainer) replays the learning-rate schedule. Cost: 2 trainings.
    """

    name = "oneshot"
    fixed_rounds = 1
    extendable = False

    def before_round(self, pruner: IterativeMagnitudePruner, r: int) -> None:
        if r == 1:
            density = self.target(pruner)
            pruner.prune(rewind=pruner.rewind_spec.kind != "none", mask_fn=lambda: mask_at(pruner, density))

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        return {"name": self.name, "target_density": self.target(pruner)} if r == 1 else {}
