"""What an :class:`~lotteryir.pruning.pruner.IterativeMagnitudePruner` saves and loads: its settings and progress.

A base class of the pruner (its state on disk is one concern, the rounds another); the format is state.py's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from torch import nn

from . import bridge, distributed, state
from .rewind import Rewind, RewindPoints
from .state import RoundRecord

if TYPE_CHECKING:
    from .mask import Mask
    from .methods import Method
    from .selection import PrunableParam
    from .unused import GradientWatch


class SavedState:
    """Saving and loading the pruner's state (``config()``, ``save_state``, ``load_state``)."""

    # Set by the pruner's constructor.
    model: nn.Module
    method: Method
    rate: float
    rounds: int | None
    target_density: float | None
    scope: str
    rewind_spec: Rewind
    rewind_unpruned: bool
    layer_rates: dict[str, float]
    controls: tuple[str, ...]
    seed: int
    params: list[PrunableParam]
    rewind_points: tuple[int, ...]
    history: list[RoundRecord]
    round: int
    level: int
    _rewinds: RewindPoints

    _watch: GradientWatch

    if TYPE_CHECKING:  # the pruner's own

        @property
        def full_mask(self) -> Mask: ...

        def extend(self, rounds: int | None = None) -> None: ...

    def config(self) -> dict[str, Any]:
        """The settings that define this pruning run (saved with its state)."""
        out = {k: getattr(self, k) for k in ("rate", "rounds", "target_density", "scope")}
        out.update(rewind=str(self.rewind_spec), rewind_unpruned=self.rewind_unpruned, layer_rates=self.layer_rates)
        out.update(controls=list(self.controls), seed=self.seed, prunable=[p.name for p in self.params])
        if self.method.name != "imp":  # absent for imp: states saved before methods existed still load
            out["method"] = self.method.config()
        return {**out, "rewind_points": list(self.rewind_points)}

    def save_state(self, directory: str | os.PathLike, include_model: bool = True) -> None:
        """Write masks, rewind snapshot, round index, history (and the model) to ``directory``."""
        fields = {k: getattr(self, k) for k in state.PROGRESS}
        fields.update(config=self.config(), history=[h.to_dict() for h in self.history])
        model = self.model if include_model else None
        state.save_state(directory, fields, self.full_mask, self._rewinds, model)

    def load_state(self, directory: str | os.PathLike) -> None:
        """Restore what :meth:`save_state` wrote; the pruner must be configured the same way."""
        found = state.load_state(directory, self.config(), str(self.rewind_spec), self.model, self._rewinds)
        saved = found.state["config"]
        bridge.attach_masks(self.model, self.params, found.mask)
        for key in state.PROGRESS:
            setattr(self, key, found.state.get(key))
        if distributed.active():
            distributed.verify_masks_agree(self.full_mask, self.level, what="resumed")
        self.history = [RoundRecord(**h) for h in found.state["history"]]
        self.rewind_spec = Rewind.parse(saved["rewind"])
        self.rewind_points = tuple(sorted({*self.rewind_points, *saved.get("rewind_points", [])}))
        asked, self.target_density = self.rounds, saved.get("target_density")
        self.rounds = saved["rounds"] if saved["rounds"] is not None else asked
        if asked is not None and self.rounds is not None and asked > self.rounds:  # created longer: it grows
            self.extend(asked - self.rounds)
        if self.round >= 0:
            self._watch.stop()  # round 0 already decided which tensors are prunable (``active`` above)
