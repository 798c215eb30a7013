"""The method interface: how a pruner's rounds prune, train and record.

A method is a small object the pruner calls at fixed points of every round; the pruner keeps the
bookkeeping (masks, rewind points, history, saved state). :class:`Method` itself is IMP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from torch import nn

from .. import schedule
from ..rewind import Rewind

if TYPE_CHECKING:
    from ..context import RoundContext
    from ..mask import Mask
    from ..selection import PrunableParam
    from ..unused import GradientWatch


class IterativeMagnitudePruner(Protocol):
    """What a method uses of the pruner (a protocol: methods/ must not import pruner.py, which imports it)."""

    model: nn.Module
    method: Method
    scope: str
    seed: int
    active: list[str]
    layer_rates: dict[str, float]
    controls: tuple[str, ...]
    target_density: float | None
    adopted_level: int | None
    rewind_spec: Rewind
    _watch: GradientWatch

    @property
    def mask(self) -> Mask: ...
    def _active_params(self) -> list[PrunableParam]: ...
    def _params_of(self, model: nn.Module) -> list[PrunableParam]: ...
    def apply_mask(self, mask: Mask, values: Any = None) -> None: ...
    def prune(self, rewind: bool = False, mask_fn: Callable[[], Mask] | None = None) -> Mask: ...


class Method:
    """Iterative magnitude pruning (``imp``): round r >= 1 prunes ``rate`` of the survivors, rewinds, trains.

    Subclasses override the hooks; the pruner calls, for each round r:
    :meth:`before_round` (prune, rewind), then the closure with a context that :meth:`during_round`
    may equip (step hooks, a stop request, saved progress), then :meth:`after_round`, whose dict is
    stored in the round's metrics under ``"method"``.
    """

    name: ClassVar[str] = "imp"
    # The method's settings that define its results (saved with the pruner's state, compared on load).
    options: ClassVar[tuple[str, ...]] = ()
    # None: the IMP schedule's rounds (rate and rounds / target_density); else this many pruning rounds.
    fixed_rounds: ClassVar[int | None] = None
    # Masks change before or during round 0: no tensors are dropped as unused, and no controls run.
    prunes_round0: ClassVar[bool] = False
    # Round 0 is the plain dense training (imp, lr-rewind, oneshot), so a run that starts from trained
    # weights may skip it; False where the method searches or prunes while round 0 trains.
    dense_round0: ClassVar[bool] = True
    # Whether extend() may add rounds to a finished run.
    extendable: ClassVar[bool] = True

    def total_rounds(self, rounds: int | None, target_density: float | None, rate: float) -> int | None:
        """The number of pruning rounds (after round 0) this method runs."""
        if self.fixed_rounds is None:
            return schedule.total_rounds(rounds, target_density, rate)
        if rounds is not None and rounds != self.fixed_rounds:
            raise ValueError(f"method {self.name!r} prunes to target_density at once; give target_density, not rounds")
        if target_density is None or not 0.0 < target_density < 1.0:
            raise ValueError(f"method {self.name!r} needs target_density in (0, 1), got {target_density!r}")
        return self.fixed_rounds

    def rewind(self, spec: Rewind) -> Rewind:
        """The rewind this method uses, given the one asked for."""
        return spec

    def setup(self, pruner: IterativeMagnitudePruner) -> None:
        """Check the pruner this method drives (called at the end of its construction)."""
        if self.fixed_rounds is not None and pruner.adopted_level is not None:
            raise ValueError(f"method {self.name!r} starts from a dense model; this one is already pruned")
        if self.prunes_round0:
            if pruner.controls:
                raise ValueError(
                    f"method {self.name!r} has no pruning round for controls to follow; "
                    "use controls with imp, lr-rewind, oneshot or early-bird"
                )
            pruner._watch.stop()  # every selected tensor stays prunable: masks change before round 0 ends

    def target(self, pruner: IterativeMagnitudePruner) -> float:
        """The final density of a fixed-round method."""
        if pruner.target_density is None:
            raise ValueError(f"method {self.name!r} needs target_density")
        return float(pruner.target_density)

    def before_round(self, pruner: IterativeMagnitudePruner, r: int) -> None:
        """Prune (and rewind) before round ``r`` trains."""
        if r >= 1:
            pruner.prune(rewind=pruner.rewind_spec.kind != "none")

    def during_round(self, pruner: IterativeMagnitudePruner, ctx: RoundContext) -> None:
        """Equip the ticket's context of a round before the closure trains it."""

    def after_round(self, pruner: IterativeMagnitudePruner, r: int, ctx: RoundContext) -> dict[str, Any]:
        """Facts of round ``r`` worth recording (empty: nothing is added to the metrics)."""
        return {}

    def trainings(self, rounds: int) -> int:
        """Trainings of the ticket (controls aside) for ``rounds`` pruning rounds: round 0 and each round."""
        return rounds + 1

    def config(self) -> dict[str, Any]:
        """The method's name and result-defining settings (JSON-able)."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.options}}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({settings})"
