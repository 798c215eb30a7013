"""IterativeMagnitudePruner: train, prune, rewind, repeat, on any nn.Module.

Round 0 trains the dense model. Round r >= 1 removes the configured fraction of
the *remaining* prunable weights, rewinds the survivors, and trains again, so
the density after r rounds is (1 - rate)^r (to the nearest whole weight). The schedule is in
schedule.py, one pruning step in masking.py, rewind points in rewind.py, round records and saved
state in state.py, controls in controls.py, tensors that get no gradient in unused.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import bridge, controls, distributed, masking, methods, schedule
from .context import RoundContext, StepReport, TrainClosure
from .controls import InitFn, ModelFactory, check_controls
from .mask import Mask
from .methods import Method
from .persistence import SavedState
from .report import SparsityReport, sparsity_report
from .rewind import Rewind, RewindPoints, check_steps, named_tensors
from .schedule import MAX_ROUNDS, rounds_for_density
from .selection import PrunableParam, find_prunable, refuse_compiled_wrapper
from .state import RoundRecord, jsonable
from .unused import GradientWatch

__all__ = ["MAX_ROUNDS", "IterativeMagnitudePruner", "Rewind", "RoundRecord", "rounds_for_density"]

log = logging.getLogger(__name__)


class IterativeMagnitudePruner(SavedState):
    """Lottery-ticket search by iterative magnitude pruning on any ``nn.Module``.

    ``train(model, ctx)`` is your training closure: it trains ``model`` in place for one round and
    returns a metrics dict (see :class:`RoundContext`). Masks (all ones) are attached at construction,
    so build optimizers and wrappers such as DistributedDataParallel *after* creating the pruner.

    Under torch.distributed, create the pruner on every rank from identical weights and run the same
    rounds everywhere: each rank prunes its own replica, and :meth:`prune` verifies with one checksum
    all-reduce that all ranks hold the same mask (:class:`MaskMismatchError` otherwise). Masks are
    updated in place, so the DDP wrapper stays valid for the whole run.

    Args:
        rate: fraction of the remaining prunable weights removed per round, in (0, 1).
        rounds / target_density: how many pruning rounds (give one, not both).
        scope: ``global`` (one magnitude threshold across all tensors), ``layerwise`` (each tensor
            loses ``rate`` of its own weights) or ``random`` (random pruning at the global rate, a control).
        rewind: ``"init"`` (the MIR-L paper), ``"step:K"`` (late rewinding to optimizer step K of
            round 0) or ``"none"`` (keep trained weights: fine-tuning, or learning-rate rewinding when
            the closure restarts its schedule).
        rewind_unpruned: also rewind biases, norms, other parameters and buffers (default True).
        include / exclude: globs on parameter names added to / removed from the default set
            (weights of Conv*, ConvTranspose*, Linear).
        layer_rates: glob -> rate overrides. In ``layerwise`` scope a matching tensor loses its own
            rate; in ``global`` scope matching tensors are pruned individually at their rate and the
            rest share one threshold.
        controls: train these controls after every pruning round with the same closure:
            ``random_reinit`` (the ticket's mask on a fresh initialization) and ``random_prune``
            (a random mask with the ticket's per-tensor densities, from the rewind point).
        model_factory / init_fn: how ``random_reinit`` draws fresh weights: from a model the factory
            (``() -> nn.Module``) builds under the control's seed, or, without one, ``init_fn`` in place
            (default: ``reset_parameters()``); a :class:`ReinitError` names what it leaves unwritten.
        rewind_points: further steps of round 0 (0 = init) whose weights are kept, so that
            :meth:`extend` can switch the rewind to them later.
        on_step: called with a :class:`StepReport` after every optimizer step of every training (ticket
            and controls) whose closure calls ``ctx.step(k, **metrics)``: log your curves from here.
        on_round_end / on_rewind_point: callbacks after each round (or iterate :meth:`iter_rounds`),
            and when a late-rewinding snapshot is taken during round 0 (to persist it).
        method: how masks evolve (see :mod:`lotteryir.pruning.methods`): ``"imp"`` (the default, this
            docstring), ``"lr-rewind"``, ``"oneshot"``, ``"gmp"``, ``"early-bird"``, ``"snip"``,
            ``"synflow"``, or a configured object such as ``methods.GradualMagnitude(end=800)``. The
            methods other than imp and lr-rewind take ``target_density`` and reach it exactly.

    A model that already carries pruning masks, or whose prunable weights hold exact zeros, is
    adopted as level k when its survivor counts are exactly those of level k of this schedule
    (training then continues at round k + 1, rewinding to the weights as given); masks that match
    no level are refused. Continue a finished run with :meth:`extend`.
    """

    def __init__(
        self,
        model: nn.Module,
        train: TrainClosure | None = None,
        *,
        rate: float = 0.2,
        rounds: int | None = None,
        target_density: float | None = None,
        scope: str = "global",
        rewind: str | int | Rewind | None = "init",
        rewind_unpruned: bool = True,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        layer_rates: Mapping[str, float] | None = None,
        module_types: Sequence[type[nn.Module]] | None = None,
        controls: Sequence[str] = (),
        init_fn: InitFn | None = None,
        model_factory: ModelFactory | None = None,
        seed: int = 0,
        rewind_points: Sequence[int] = (),
        on_round_end: Callable[[RoundRecord], None] | None = None,
        on_step: Callable[[StepReport], None] | None = None,
        on_rewind_point: Callable[[int], None] | None = None,
        method: str | Method | None = None,
    ) -> None:
        refuse_compiled_wrapper(model)
        self.method = methods.resolve(method)
        self.rate, self.scope = schedule.check_rate(rate), schedule.check_scope(scope)
        self.rounds, self.target_density = self.method.total_rounds(rounds, target_density, self.rate), target_density
        self.rewind_spec = self.method.rewind(Rewind.parse(rewind))
        self.controls = check_controls(controls, model, init_fn, model_factory)
        self.model, self.train, self.init_fn, self.model_factory = model, train, init_fn, model_factory
        self.rewind_unpruned, self.seed = bool(rewind_unpruned), int(seed)
        self.on_round_end, self.on_rewind_point, self.on_step = on_round_end, on_rewind_point, on_step
        self.rewind_points = check_steps(rewind_points)
        self.extensions: list[dict[str, Any]] = []
        self.adopted_level: int | None = None
        self._selection = (list(include or []), list(exclude or []), module_types)
        self.params, self.layer_rates = masking.attach(model, self._selection, layer_rates or {})
        self._by_name = {p.name: p for p in self.params}
        self.active, self.excluded_unused = [p.name for p in self.params], list[str]()  # pruned; dropped as unused
        self.round, self.level = -1, 0  # the last completed round; prunings so far (round r trains at level r)
        self.history: list[RoundRecord] = []
        self._rewinds, self._watch, self._survivors = RewindPoints(), GradientWatch(), masking.Survivors()
        adopted = self._adopt_existing()
        if self.rewind_spec.kind in ("init", "none") or 0 in self.rewind_points:
            self.mark_rewind_point(0)
        if adopted is None:
            self._watch.start(self._active_params())
        self.method.setup(self)

    def _adopt_existing(self) -> int | None:
        """Adopt the model's existing sparsity as level k of the schedule (see schedule.existing_level)."""
        weights = {p.name: bridge.trainable_tensor(p) for p in self.params}
        schedule_of = (self.rate, self.layer_rates, self.scope, self.rewind_spec.step)
        found = schedule.existing_level(self.full_mask, weights, *schedule_of)
        if found is None:
            return None
        if found.from_zeros:
            self.apply_mask(found.mask)
        self.active, self.excluded_unused = list(found.active), list(found.excluded)
        self.level = self.round = self.adopted_level = found.level
        return found.level

    # Read-only views of the rewind points under their older names.
    _snapshot = property(lambda self: self._rewinds.snapshot)
    _snapshot_step = property(lambda self: self._rewinds.step)
    _points = property(lambda self: self._rewinds.kept)

    @property
    def mask(self) -> Mask:
        """The current mask over the active prunable tensors."""
        return bridge.current_mask(self._active_params())

    @property
    def full_mask(self) -> Mask:
        """The current mask over every attached tensor (dropped ones included, all ones)."""
        return bridge.current_mask(self.params)

    density = property(lambda self: self.mask.density, doc="The density of :attr:`mask`.")

    def report(self) -> SparsityReport:
        """Sparsity per active prunable tensor and overall."""
        return sparsity_report(self.mask)

    def _params_of(self, model: nn.Module) -> list[PrunableParam]:
        """The prunable tensors of a copy of the model (same selection rules)."""
        return find_prunable(model, *self._selection)

    def _active_params(self) -> list[PrunableParam]:
        return [self._by_name[n] for n in self.active]

    # -- rewind point, pruning ----------------------------------------------
    def mark_rewind_point(self, step: int | None = None) -> None:
        """Snapshot the current weights (all parameters and buffers) as the rewind point; a ``step``
        listed in ``rewind_points`` (and not the active rewind's) is kept aside on the CPU for :meth:`extend`."""
        tensors, active = named_tensors(self.model), self.rewind_spec.at
        self._rewinds.mark(tensors, step, active=active, keep=self.rewind_points, then=self.on_rewind_point)

    def rewind(self, model: nn.Module | None = None) -> None:
        """Write the rewind point into the survivors (and, if configured, every other tensor)."""
        model = model or self.model
        params = self.params if model is self.model else self._params_of(model)
        self._rewinds.write(self.rewind_spec, model, params, self.rewind_unpruned)

    def next_mask(self, level: int | None = None) -> Mask:
        """The mask of pruning level ``level`` (default: the next one), from the current weights."""
        r = self.level + 1 if level is None else level
        if r < 1:
            raise ValueError("level 0 is the dense model; pruning starts at level 1")
        active = self._active_params()
        counts = self._survivors.before = self._survivors.count(active)
        return masking.next_mask(
            active, r, counts, rate=self.rate, layer_rates=self.layer_rates, scope=self.scope, seed=self.seed
        )

    def apply_mask(self, mask: Mask, values: Mapping[str, torch.Tensor] | None = None) -> None:
        """Attach ``mask`` (over the active or all prunable tensors) in place; ``values`` (name -> tensor)
        are written into the survivors in the same pass."""
        params = self.params if set(mask) == set(self._by_name) else self._active_params()
        bridge.attach_masks(self.model, params, mask, values)

    def prune(self, rewind: bool = False, mask_fn: Callable[[], Mask] | None = None) -> Mask:
        """Compute and attach the next level's mask (or ``mask_fn()``'s, a method's); returns it. Does not train.

        ``rewind=True`` also rewinds the survivors (and, if configured, every other tensor), writing the
        rewind point and the new zeros in one pass over the weights: what :meth:`run_round` does. The
        first call drops the tensors that received no gradient so far (see unused.py).
        """
        point = self._rewinds.point(self.rewind_spec) if rewind else None
        self._drop_unused()
        mask = self.next_mask() if mask_fn is None else mask_fn()
        after = mask.remaining()
        if self.scope == "global" and mask_fn is None:
            self._survivors.check(self._by_name, mask, after, self.layer_rates, self._selection[0], self.level + 1)
        self.apply_mask(mask, point)
        self._survivors.remember(self._by_name, after)
        if point is not None:  # the survivors got their values in apply_mask: the rest now
            self._rewinds.write(self.rewind_spec, self.model, self.params, self.rewind_unpruned, skip=mask)
        self.level += 1
        # Under torch.distributed every rank prunes its own replica; a disagreement is an error.
        if distributed.active():  # reading every mask back costs a pass; only pay it under DDP
            distributed.verify_masks_agree(self.full_mask, self.level)
        return mask

    def _drop_unused(self) -> None:
        if self._watch.stop() and (split := self._watch.split(self.active)) is not None:
            self.active, self.excluded_unused = split

    # -- rounds --------------------------------------------------------------
    def _context(self, r: int, density: float, kind: str = "ticket") -> RoundContext:
        # Which tensors got gradients is decided while round 0 trains: a resumed round 0 must keep it.
        hooks = (self.mark_rewind_point, self._watch.state, self._watch.restore)
        ctx = RoundContext.for_round(r, density, kind, self.rewind_spec.step, self.rewind_points, self.seed, *hooks)
        if self.on_step is not None:
            on_step = self.on_step
            ctx.on_step(lambda k: on_step(StepReport(r, kind, k, density, dict(ctx.step_metrics))))
        return ctx

    @property
    def finished(self) -> bool:
        return self.rounds is not None and self.round >= self.rounds

    def run_round(self, train: TrainClosure | None = None) -> RoundRecord:
        """Run the next round: (prune, rewind,) train, record."""
        train = train or self.train
        if train is None:
            raise ValueError("no training closure: pass train= to the pruner or to run_round()")
        r = self.round + 1
        if self.rounds is not None and r > self.rounds:
            raise RuntimeError(f"all {self.rounds} pruning rounds are done")
        start = time.perf_counter()
        self.method.before_round(self, r)  # imp: from round 1 on, prune and rewind
        mask = self.mask
        ctx = self._context(r, mask.density)
        self.method.during_round(self, ctx)
        metrics = dict(train(self.model, ctx) or {})
        if r == 0:
            self._rewinds.check_round0(self.rewind_spec, ctx.steps_done, self.rewind_points)
            self._drop_unused()
        if facts := self.method.after_round(self, r, ctx):
            metrics["method"] = facts
        mask = self.mask  # a method may prune while (gmp) or after (its final step) the round trains
        rewound = str(self.rewind_spec) if r >= 1 else ""
        record = RoundRecord(r, mask.density, mask.num_remaining, mask.num_total, jsonable(metrics), rewind=rewound)
        if r >= 1:
            for kind in self.controls:
                control = self.make_control(kind, seed=self.seed + 7919 * r)
                record.controls[kind] = jsonable(dict(train(control, self._context(r, mask.density, kind)) or {}))
        record.seconds = time.perf_counter() - start
        self.round = r
        self.history.append(record)
        if self.on_round_end is not None:
            self.on_round_end(record)
        return record

    def run(self, train: TrainClosure | None = None) -> list[RoundRecord]:
        """Run every remaining round (round 0 included if not yet trained); returns the history."""
        for _ in self.iter_rounds(train):
            pass
        return self.history

    def iter_rounds(self, train: TrainClosure | None = None) -> Iterator[RoundRecord]:
        """Run the remaining rounds one by one, yielding each round's record as soon as it is done."""
        if self.rounds is None:
            raise ValueError("give rounds or target_density to run(); or call run_round() yourself")
        while not self.finished:
            yield self.run_round(train)

    def extend(
        self,
        rounds: int | None = None,
        *,
        target_density: float | None = None,
        rewind: str | int | Rewind | None = None,
    ) -> None:
        """Continue the run: ``rounds`` more pruning rounds (or until ``target_density``), optionally
        rewinding somewhere else from the next round on; then call :meth:`run` again.

        ``rewind`` may be ``"none"``, or ``"init"``/``"step:K"`` when that point's weights were kept (the
        active rewind's, or one of ``rewind_points``). The change is recorded in :attr:`extensions`,
        and every round's record says which rewind it started from.
        """
        if not self.method.extendable:
            raise ValueError(f"method {self.method.name!r} reaches its target in one go; extend() continues imp runs")
        old_rounds, old_rewind = self.rounds, str(self.rewind_spec)
        new_rounds = schedule.extended_rounds(old_rounds, self.round, self.rate, rounds, target_density)
        if rewind is not None:
            self.rewind_spec = self._rewinds.switch(Rewind.parse(rewind))
        if new_rounds == old_rounds and str(self.rewind_spec) == old_rewind:
            raise ValueError("extend() needs rounds, target_density or a different rewind")
        self.rounds, self.target_density = new_rounds, target_density
        change = {"rounds": [old_rounds, new_rounds], "rewind": [old_rewind, str(self.rewind_spec)]}
        self.extensions.append({"after_round": self.round, **change})
        log.info("run extended after round %d: %s", self.round, change)

    def make_control(self, kind: str, seed: int = 0) -> nn.Module:
        """A copy of the model for a control (``random_reinit``, ``random_prune``) at the current mask,
        ready to train; see :func:`lotteryir.pruning.controls.make_control`."""
        rewind = self.rewind if self._rewinds.snapshot is not None else None
        extra = (rewind, self.init_fn, self.model_factory)
        return controls.make_control(self.model, kind, seed, self._params_of, self.mask, self.level, *extra)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Plain state dict (pruned entries as zeros, no ``_orig``/``_mask``) for an unpruned model."""
        return bridge.export_state_dict(self.model)

    def remove_masks(self) -> None:
        """Make the pruning permanent (plain Parameters, no hooks). The pruner is done after this."""
        bridge.remove_masks(self.params)
