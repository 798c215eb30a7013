"""IterativeMagnitudePruner: train, prune, rewind, repeat, on any nn.Module.

Round 0 trains the dense model. Round r >= 1 removes the configured fraction of
the *remaining* prunable weights, rewinds the survivors, and trains again, so
the density after r rounds is (1 - rate)^r (to the nearest whole weight).

Rule for parameters that receive no gradient: during round 0 the pruner watches
every prunable tensor's gradient. Tensors that never receive one (built but
unused in forward, or frozen) are dropped from the prunable set before the
first pruning: they keep all their entries and do not count in the density.
If no prunable tensor received a gradient at all (round 0 did not train
through autograd), nothing is dropped and a warning is logged.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from .._files import atomic_save_safetensors, atomic_write_text
from . import bridge, checks, distributed, levels
from .context import RoundContext, TrainClosure
from .controls import InitFn, ModelFactory, ReinitError, check_reinit, reinitialize, untouched_message
from .mask import MASK_SUFFIX, ORIG_SUFFIX, Mask
from .report import SparsityReport, sparsity_report
from .selection import PrunableParam, find_prunable
from .strategies import global_magnitude, layerwise_magnitude, random_mask_like, random_pruning

log = logging.getLogger(__name__)

SCOPES = ("global", "layerwise", "random")
CONTROLS = ("random_reinit", "random_prune")
STATE_VERSION = 1
MAX_ROUNDS = 1000  # far beyond any useful schedule: 0.8^1000 leaves no weight of any network
_GROWABLE = ("rounds", "target_density", "rewind", "rewind_points")  # may differ when a saved run is continued


@dataclass(frozen=True)
class Rewind:
    """Where survivors return after each pruning: ``init``, ``step`` K of round 0, or ``none``."""

    kind: str
    step: int | None = None

    @classmethod
    def parse(cls, value: str | int | Rewind | None) -> Rewind:
        if isinstance(value, Rewind):
            return value
        if value is None or value == "none":
            return cls("none")
        if value == "init" or value == 0:
            return cls("init")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return cls("step", value)
        if isinstance(value, str):
            m = re.fullmatch(r"step:(\d+)", value.strip())
            if m:
                k = int(m.group(1))
                return cls("init") if k == 0 else cls("step", k)
        raise ValueError(f"rewind must be 'init', 'step:K' (K >= 0) or 'none', got {value!r}")

    def __str__(self) -> str:
        return f"step:{self.step}" if self.kind == "step" else self.kind


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def rounds_for_density(target_density: float, rate: float) -> int:
    """Pruning rounds at ``rate`` needed to reach ``target_density``.

    Densities are usually quoted rounded (0.107 for 0.8^10 = 0.1074), so a
    schedule density within 0.5% above the target counts as reaching it.
    More than :data:`MAX_ROUNDS` rounds is refused: a tiny rate would otherwise
    make the answer astronomically large (or, with 1 - rate == 1.0 in floating
    point, never come).
    """
    if not 0.0 < target_density < 1.0:
        raise ValueError(f"target density must be in (0, 1), got {target_density}")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    goal = target_density * 1.005
    if goal >= 1.0:
        return 1
    needed = math.log(goal) / math.log1p(-rate)  # log1p keeps rates below machine epsilon non-zero
    if needed > MAX_ROUNDS:
        raise ValueError(
            f"target density {target_density} at rate {rate} needs about {needed:.3g} pruning rounds, more than "
            f"the {MAX_ROUNDS} allowed; use a larger rate"
        )
    k = max(1, int(needed) - 2)  # then step exactly as the schedule computes densities
    while (1.0 - rate) ** k > goal:
        k += 1
    return k


@dataclass
class RoundRecord:
    """What one round produced (kept in ``pruner.history``)."""

    round: int
    density: float
    remaining: int
    total: int
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    rewind: str = ""  # where the survivors were rewound before this round trained ("" for round 0)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "round": self.round,
                "density": self.density,
                "remaining": self.remaining,
                "total": self.total,
                "metrics": self.metrics,
                "seconds": self.seconds,
                "controls": self.controls,
                "rewind": self.rewind,
            }
        )


class IterativeMagnitudePruner:
    """Lottery-ticket search by iterative magnitude pruning on any ``nn.Module``.

    ``train(model, ctx)`` is your training closure: it trains ``model`` in place
    for one round and returns a metrics dict (see :class:`RoundContext`).
    Masks (all ones) are attached at construction, so build optimizers and
    wrappers such as DistributedDataParallel *after* creating the pruner.

    Under torch.distributed, create the pruner on every rank from identical
    weights and run the same rounds everywhere: each rank prunes its own
    replica, and :meth:`prune` verifies with one checksum all-reduce that all
    ranks hold the same mask (:class:`MaskMismatchError` otherwise). Masks are
    updated in place, so the DDP wrapper stays valid for the whole run.

    Args:
        rate: fraction of the remaining prunable weights removed per round, in (0, 1).
        rounds / target_density: how many pruning rounds (give one, not both).
        scope: ``global`` (one magnitude threshold across all tensors),
            ``layerwise`` (each tensor loses ``rate`` of its own weights) or
            ``random`` (random pruning at the global rate, a control).
        rewind: ``"init"`` (the MIR-L paper), ``"step:K"`` (late rewinding to
            optimizer step K of round 0) or ``"none"`` (keep trained weights:
            fine-tuning, or learning-rate rewinding when the closure restarts its schedule).
        rewind_unpruned: also rewind biases, norms, other parameters and buffers
            (default True); False keeps their trained values.
        include / exclude: globs on parameter names added to / removed from the
            default set (weights of Conv*, ConvTranspose*, Linear).
        layer_rates: glob -> rate overrides. In ``layerwise`` scope a matching
            tensor loses its own rate; in ``global`` scope matching tensors are
            pruned individually at their rate and the rest share one threshold.
        controls: train these controls after every pruning round with the same
            closure: ``random_reinit`` (the ticket's mask on a fresh
            initialization) and ``random_prune`` (a random mask with the ticket's
            per-tensor densities, from the rewind point).
        model_factory: ``() -> nn.Module`` building the model afresh; ``random_reinit``
            then takes every parameter and buffer from a new model built under the
            control's seed (the most faithful fresh initialization).
        init_fn: without a factory, how ``random_reinit`` re-draws weights in place
            (default: every module's ``reset_parameters()``). Parameters it leaves
            unwritten are named by a :class:`ReinitError` when the pruner is created.
        rewind_points: further steps of round 0 (0 = init) whose weights are kept,
            so that :meth:`extend` can switch the rewind to them later.
        on_round_end / on_rewind_point: callbacks after each round (or iterate
            :meth:`iter_rounds`), and when a late-rewinding snapshot is taken
            during round 0 (to persist it).

    A model that already carries pruning masks, or whose prunable weights hold
    exact zeros, is adopted as level k when its survivor counts are exactly those
    of level k of this schedule (training then continues at round k + 1, rewinding
    to the weights as given); masks that match no level are refused. Continue a
    finished run with :meth:`extend`.
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
        on_rewind_point: Callable[[int | None], None] | None = None,
    ) -> None:
        if not isinstance(rate, (int, float)) or not 0.0 < float(rate) < 1.0:
            raise ValueError(
                f"rate must be in (0, 1) (the fraction of remaining weights removed per round), got {rate}"
            )
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if rounds is not None and target_density is not None:
            raise ValueError("give either rounds or target_density, not both")
        if rounds is not None and (not isinstance(rounds, int) or rounds < 0):
            raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
        if target_density is not None:
            if target_density >= 1.0:
                raise ValueError(f"target density {target_density} is already reached: the dense model has density 1.0")
            rounds = rounds_for_density(target_density, float(rate))
        unknown = [c for c in controls if c not in CONTROLS]
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; choose from {', '.join(CONTROLS)}")
        self.model = model
        self.train = train
        self.rate = float(rate)
        self.rounds = rounds
        self.target_density = target_density
        self.scope = scope
        self.rewind_spec = Rewind.parse(rewind)
        self.rewind_unpruned = bool(rewind_unpruned)
        self.controls = tuple(controls)
        self.init_fn = init_fn
        self.model_factory = model_factory
        if "random_reinit" in self.controls and model_factory is None:
            untouched = check_reinit(model, init_fn)  # before any training, not at round 1
            if untouched:
                raise ReinitError(untouched_message(untouched))
        self.seed = int(seed)
        self.on_round_end = on_round_end
        self.on_rewind_point = on_rewind_point
        bad_points = [k for k in rewind_points if not isinstance(k, int) or isinstance(k, bool) or k < 0]
        if bad_points:
            raise ValueError(f"rewind_points must be optimizer steps of round 0 (integers >= 0), got {bad_points}")
        self.rewind_points = tuple(sorted(set(rewind_points)))
        self.extensions: list[dict[str, Any]] = []
        self.adopted_level: int | None = None
        self._scale_warned = False
        self._counts_before: dict[str, int] = {}
        self._count_cache: dict[str, tuple[tuple[int, int], int]] = {}  # name -> ((buffer id, version), survivors)

        self._selection = (list(include or []), list(exclude or []), module_types)
        self.params: list[PrunableParam] = find_prunable(model, *self._selection)
        if not self.params:
            raise ValueError(
                "the model has no prunable parameters (no Conv/ConvTranspose/Linear weights, no include match)"
            )
        self.layer_rates = self._resolve_layer_rates(layer_rates or {})
        bridge.attach_masks(model, self.params)
        # DDP wrapped around this model later must not broadcast the masks at every forward.
        distributed.ddp_ignore_masks(model)
        if distributed.active():  # every rank must start from the same weights: the rewind point is taken now
            distributed.verify_weights_agree(self._named_tensors())
        self._by_name = {p.name: p for p in self.params}
        self.active: list[str] = [p.name for p in self.params]
        self.excluded_unused: list[str] = []
        self.round = -1  # last completed round
        self.level = 0  # prunings applied so far (round r >= 1 trains at level r)
        self.history: list[RoundRecord] = []
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._snapshot_step: int | None = None
        self._points: dict[int, dict[str, torch.Tensor]] = {}  # rewind_points kept besides the active one (CPU)
        self._grad_seen: set[str] = set()
        self._grad_hooks: list[Any] = []
        adopted = levels.adopt_existing(self)
        if adopted is not None and self.rewind_spec.kind == "step":
            raise ValueError(
                f"the model is already pruned (adopted as level {adopted}), so there is no round 0 to take step "
                f"{self.rewind_spec.step} from: use rewind='init' (the weights as given) or 'none'"
            )
        if self.rewind_spec.kind in ("init", "none"):
            self.mark_rewind_point(0)
        elif 0 in self.rewind_points:
            self.mark_rewind_point(0)
        if adopted is None:
            self._watch_gradients()

    # -- configuration -------------------------------------------------------
    def _resolve_layer_rates(self, patterns: Mapping[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for pattern, r in patterns.items():
            if not 0.0 < float(r) < 1.0:
                raise ValueError(f"layer rate for {pattern!r} must be in (0, 1), got {r}")
            hits = [p.name for p in self.params if fnmatch.fnmatchcase(p.name, pattern)]
            if not hits:
                raise ValueError(f"layer_rates pattern {pattern!r} matches no prunable parameter")
            for name in hits:
                out[name] = float(r)
        return out

    def config(self) -> dict[str, Any]:
        """The settings that define this pruning run (saved with its state)."""
        return {
            "rate": self.rate,
            "rounds": self.rounds,
            "target_density": self.target_density,
            "scope": self.scope,
            "rewind": str(self.rewind_spec),
            "rewind_unpruned": self.rewind_unpruned,
            "layer_rates": self.layer_rates,
            "controls": list(self.controls),
            "seed": self.seed,
            "prunable": [p.name for p in self.params],
            "rewind_points": list(self.rewind_points),
        }

    # -- views ---------------------------------------------------------------
    @property
    def mask(self) -> Mask:
        """The current mask over the active prunable tensors."""
        return bridge.current_mask(self._active_params())

    @property
    def full_mask(self) -> Mask:
        """The current mask over every attached tensor (dropped ones included, all ones)."""
        return bridge.current_mask(self.params)

    @property
    def density(self) -> float:
        return self.mask.density

    def report(self) -> SparsityReport:
        """Sparsity per active prunable tensor and overall."""
        return sparsity_report(self.mask)

    def _params_of(self, model: nn.Module) -> list[PrunableParam]:
        """The prunable tensors of a copy of the model (same selection rules)."""
        return find_prunable(model, *self._selection)

    def _active_params(self) -> list[PrunableParam]:
        return [self._by_name[n] for n in self.active]

    def _named_tensors(self, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Every parameter and buffer under its unpruned name (masks left out)."""
        sd = (model or self.model).state_dict(keep_vars=True)
        out = {}
        for key, t in sd.items():
            if key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX in sd:
                continue
            if key.endswith(ORIG_SUFFIX) and key[: -len(ORIG_SUFFIX)] + MASK_SUFFIX in sd:
                key = key[: -len(ORIG_SUFFIX)]
            out[key] = t
        return out

    # -- rewind point --------------------------------------------------------
    @torch.no_grad()
    def mark_rewind_point(self, step: int | None = None) -> None:
        """Snapshot the current weights (all parameters and buffers) as the rewind point.

        A ``step`` listed in ``rewind_points`` (and not the active rewind's) is kept
        aside on the CPU for :meth:`extend`.
        """
        active_step = self.rewind_spec.step if self.rewind_spec.kind == "step" else 0
        if step is not None and step != active_step and step in self.rewind_points:
            self._points[step] = {k: t.detach().to("cpu", copy=True) for k, t in self._named_tensors().items()}
            log.info("rewind point for later use recorded at step %d", step)
            return
        self._snapshot = {k: t.detach().clone() for k, t in self._named_tensors().items()}
        self._snapshot_step = step
        log.info("rewind point recorded%s", f" at step {step}" if step else "")
        if step and self.on_rewind_point is not None:
            # Late rewinding: let the caller persist the snapshot before round 0 ends.
            self.on_rewind_point(step)

    @torch.no_grad()
    def rewind(self, model: nn.Module | None = None) -> None:
        """Write the rewind point into the survivors (and, if configured, every other tensor)."""
        model = model or self.model
        params = self.params if model is self.model else self._params_of(model)
        bridge.write_weights(params, self._rewind_point())
        self._rewind_unpruned(model, params)

    def _rewind_point(self) -> dict[str, torch.Tensor]:
        if self._snapshot is None:
            raise RuntimeError(f"no rewind point recorded (rewind={self.rewind_spec})")
        return self._snapshot

    @torch.no_grad()
    def _rewind_unpruned(self, model: nn.Module, params: Sequence[PrunableParam]) -> None:
        if self.rewind_unpruned:
            # By identity, not name: a tied weight appears under every alias (``b.weight`` for
            # ``b.weight = a.weight``, each name of a module used twice), and copying the dense
            # snapshot into an alias would undo the zeros that write_weights just kept.
            prunable = {id(bridge.trainable_tensor(p)) for p in params}
            for key, t in self._named_tensors(model).items():
                if id(t) not in prunable:
                    t.copy_(self._snapshot[key])

    # -- pruning -------------------------------------------------------------
    def _targets(self, r: int) -> dict[str, int]:
        """Surviving-entry counts per group after round ``r``: exact (1 - rate)^r schedules."""

        def left(n: int, rate: float) -> int:
            return int(round(n * (1.0 - rate) ** r))

        active = self._active_params()
        if self.scope == "layerwise":
            return {
                p.name: left(bridge.trainable_tensor(p).numel(), self.layer_rates.get(p.name, self.rate))
                for p in active
            }
        out = {
            p.name: left(bridge.trainable_tensor(p).numel(), self.layer_rates[p.name])
            for p in active
            if p.name in self.layer_rates
        }
        shared = sum(bridge.trainable_tensor(p).numel() for p in active if p.name not in self.layer_rates)
        out["*"] = left(shared, self.rate)
        return out

    def next_mask(self, level: int | None = None) -> Mask:
        """The mask of pruning level ``level`` (default: the next one), from the current weights."""
        r = self.level + 1 if level is None else level
        if r < 1:
            raise ValueError("level 0 is the dense model; pruning starts at level 1")
        active = self._active_params()
        # The trainable tensors and the live mask buffers, no copies: the pruner keeps pruned
        # entries of ``_orig`` at zero, which the strategies exploit (and verify).
        weights = {p.name: bridge.trainable_tensor(p).detach() for p in active}
        mask = Mask({p.name: bridge.mask_buffer(p) for p in active})
        targets = self._targets(r)
        out: dict[str, torch.Tensor] = {}

        def amount(remaining: int, target: int) -> float:
            return (remaining - target) / remaining if remaining else 0.0

        singles = [n for n in mask if n in targets]
        counts = self._survivors(active)
        self._counts_before = counts
        if self.scope == "layerwise":
            amounts = {n: amount(counts[n], targets[n]) for n in singles}
            return layerwise_magnitude(weights, mask, amounts, pruned_are_zero=True, remaining=counts)
        if singles:
            sub = Mask({n: mask[n] for n in singles})
            amounts = {n: amount(counts[n], targets[n]) for n in singles}
            out.update(layerwise_magnitude(weights, sub, amounts, pruned_are_zero=True, remaining=counts).items())
        rest = Mask({n: mask[n] for n in mask if n not in targets})
        if len(rest):
            a = amount(sum(counts[n] for n in rest), targets["*"])
            if self.scope == "random":
                g = torch.Generator().manual_seed(self.seed * 100_003 + r)
                out.update(random_pruning(weights, rest, a, generator=g).items())
            else:
                out.update(global_magnitude(weights, rest, a, pruned_are_zero=True, remaining=counts).items())
        return Mask({n: out[n] for n in mask})

    def apply_mask(self, mask: Mask, values: Mapping[str, torch.Tensor] | None = None) -> None:
        """Attach ``mask`` (over the active tensors, or all prunable tensors) in place.

        ``values`` (name -> tensor) are written into the survivors in the same pass.
        """
        names = set(mask)
        params = self.params if names == set(self._by_name) else self._active_params()
        bridge.attach_masks(self.model, params, mask, values)

    def prune(self, rewind: bool = False) -> Mask:
        """Compute and attach the next level's mask; returns it. Does not train.

        ``rewind=True`` also rewinds the survivors (and, if configured, every other
        tensor), writing the rewind point and the new zeros in one pass over the
        weights: what :meth:`run_round` does. The first call drops the tensors that
        received no gradient so far (see module docs).
        """
        point = self._rewind_point() if rewind else None
        self._drop_unused()
        mask = self.next_mask()
        after = mask.remaining()
        if self.scope == "global":
            self._check_round(mask, after)
        self.apply_mask(mask, point)
        self._count_cache = {}
        for name, count in after.items():
            buf = bridge.mask_buffer(self._by_name[name])
            self._count_cache[name] = ((id(buf), buf._version), count)
        if point is not None:
            bridge.write_weights([p for p in self.params if p.name not in mask], point)  # unused, unpruned
            self._rewind_unpruned(self.model, self.params)
        self.level += 1
        # Under torch.distributed every rank prunes its own replica; a disagreement is an error.
        if distributed.active():  # reading every mask back costs a pass; only pay it under DDP
            distributed.verify_masks_agree(self.full_mask, self.level)
        return mask

    def _survivors(self, params: Sequence[PrunableParam]) -> dict[str, int]:
        """Survivors per tensor; counts of the pruner's own last write are reused while the mask is untouched."""
        out = {}
        for p in params:
            buf = bridge.mask_buffer(p)
            known = self._count_cache.get(p.name)
            if known is not None and buf is not None and known[0] == (id(buf), buf._version):
                out[p.name] = known[1]
            else:
                out[p.name] = int(torch.count_nonzero(buf)) if buf is not None else bridge.trainable_tensor(p).numel()
        return out

    def _check_round(self, mask: Mask, after: Mapping[str, int]) -> None:
        """Warn about layer collapse and about included tensors on another magnitude scale."""
        before = self._counts_before
        shared = [n for n in mask if n not in self.layer_rates]
        if self._selection[0] and not self._scale_warned:
            included = [n for n in shared if any(fnmatch.fnmatchcase(n, g) for g in self._selection[0])]
            weights = {n: bridge.trainable_tensor(self._by_name[n]) for n in shared}
            self._scale_warned = checks.warn_scale_mismatch(weights, before, included)
        checks.warn_collapse(
            before, {n: after[n] for n in shared}, {n: mask[n].numel() for n in shared}, self.level + 1
        )

    # -- rounds --------------------------------------------------------------
    def _context(self, r: int, density: float, kind: str = "ticket") -> RoundContext:
        ctx = RoundContext(
            round=r,
            density=density,
            rewind_step=self.rewind_spec.step if self.rewind_spec.kind == "step" else None,
            seed=self.seed,
            kind=kind,
            rewind_steps=tuple(k for k in self.rewind_points if k > 0),
        )
        if kind != "ticket":
            ctx.extras["control"] = kind  # the older spelling of ctx.kind
        ctx._on_mark = self.mark_rewind_point if r == 0 and kind == "ticket" else None
        if (
            r == 0 and kind == "ticket"
        ):  # which tensors got gradients is decided while round 0 trains: resumes must keep it
            ctx._save_state = lambda: {"grad_seen": sorted(self._grad_seen)}
            ctx._load_state = self._restore_grad_seen
        return ctx

    def _restore_grad_seen(self, state: Mapping[str, Any]) -> None:
        self._grad_seen.clear()
        self._grad_seen.update(str(n) for n in state.get("grad_seen", []))

    def _watch_gradients(self) -> None:
        for p in self._active_params():
            t = bridge.trainable_tensor(p)
            if t.requires_grad:
                self._grad_hooks.append(t.register_hook(lambda g, name=p.name: self._grad_seen.add(name)))

    def _drop_unused(self) -> None:
        if not self._grad_hooks:
            return
        for h in self._grad_hooks:
            h.remove()
        self._grad_hooks.clear()
        if not self._grad_seen:
            log.warning(
                "no prunable tensor received a gradient in round 0; keeping all %d as prunable", len(self.active)
            )
            return
        self.excluded_unused = [n for n in self.active if n not in self._grad_seen]
        self.active = [n for n in self.active if n in self._grad_seen]
        if self.excluded_unused:
            log.info(
                "not pruning %d tensor(s) that received no gradient: %s",
                len(self.excluded_unused),
                ", ".join(self.excluded_unused),
            )

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
        if r >= 1:
            self.prune(rewind=self.rewind_spec.kind != "none")
        rewound = str(self.rewind_spec) if r >= 1 else ""
        mask = self.mask
        ctx = self._context(r, mask.density)
        metrics = dict(train(self.model, ctx) or {})
        if r == 0:
            if self.rewind_spec.kind == "step" and self._snapshot is None:
                raise RuntimeError(
                    f"rewind to step {self.rewind_spec.step} was requested, but round 0 reported only "
                    f"{ctx.steps_done} optimizer steps through ctx.step(k); train longer or rewind earlier"
                )
            self._drop_unused()
            missing = [k for k in self.rewind_points if k > 0 and k not in self._points and k != self._snapshot_step]
            if missing:
                log.warning("round 0 never reported step(s) %s: those rewind points were not recorded", missing)
            mask = self.mask
        record = RoundRecord(r, mask.density, mask.num_remaining, mask.num_total, _jsonable(metrics), rewind=rewound)
        if r >= 1:
            for kind in self.controls:
                control = self.make_control(kind, seed=self.seed + 7919 * r)
                cctx = self._context(r, mask.density, kind)
                record.controls[kind] = _jsonable(dict(train(control, cctx) or {}))
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
        """Continue the run: ``rounds`` more pruning rounds (or until ``target_density``),
        optionally rewinding somewhere else from the next round on.

        ``rewind`` may be ``"none"``, or ``"init"``/``"step:K"`` when that point's
        weights were kept (the active rewind's, or one of ``rewind_points``).
        The change is recorded in :attr:`extensions`, and every round's record
        says which rewind it started from. Then call :meth:`run` again.
        """
        if rounds is not None and target_density is not None:
            raise ValueError("give either rounds or target_density, not both")
        old_rounds, old_rewind = self.rounds, str(self.rewind_spec)
        new_rounds = old_rounds
        if rounds is not None:
            if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
                raise ValueError(f"rounds must be a positive number of further rounds, got {rounds!r}")
            new_rounds = (old_rounds if old_rounds is not None else max(self.round, 0)) + rounds
        elif target_density is not None:
            new_rounds = rounds_for_density(target_density, self.rate)
            if old_rounds is not None and new_rounds <= old_rounds:
                raise ValueError(
                    f"target density {target_density} needs {new_rounds} rounds at rate {self.rate}; "
                    f"this run already has {old_rounds} (density {(1 - self.rate) ** old_rounds:.4f})"
                )
        if rewind is not None:
            self._switch_rewind(Rewind.parse(rewind))
        if new_rounds == old_rounds and str(self.rewind_spec) == old_rewind:
            raise ValueError("extend() needs rounds, target_density or a different rewind")
        self.rounds = new_rounds
        self.target_density = target_density if target_density is not None else None
        self.extensions.append(
            {
                "after_round": self.round,
                "rounds": [old_rounds, new_rounds],
                "rewind": [old_rewind, str(self.rewind_spec)],
            }
        )
        log.info(
            "run extended after round %d: rounds %s -> %s, rewind %s -> %s",
            self.round,
            old_rounds,
            new_rounds,
            old_rewind,
            self.rewind_spec,
        )

    def _switch_rewind(self, spec: Rewind) -> None:
        """Make ``spec`` the active rewind; its weights must have been kept."""
        if spec == self.rewind_spec:
            return
        if spec.kind == "none":
            self.rewind_spec = spec  # keeps the snapshot: random_prune still starts from it
            return
        wanted = spec.step if spec.kind == "step" else 0
        if wanted == self._snapshot_step or (
            wanted == 0 and self._snapshot_step is None and self._snapshot is not None
        ):
            self.rewind_spec = spec
            return
        if wanted not in self._points:
            kept = sorted({*self._points, *([self._snapshot_step or 0] if self._snapshot is not None else [])})
            raise ValueError(
                f"rewind {spec} needs the weights of step {wanted} of round 0, which this run did not keep "
                f"(kept: {', '.join('init' if k == 0 else f'step:{k}' for k in kept) or 'none'}). Create the "
                f"pruner with rewind_points=[{wanted}] to keep them, or extend with rewind='none'"
            )
        device = next(iter(self._snapshot.values())).device if self._snapshot else torch.device("cpu")
        if self._snapshot is not None:
            self._points[self._snapshot_step or 0] = {k: t.to("cpu") for k, t in self._snapshot.items()}
        self._snapshot = {k: t.to(device) for k, t in self._points.pop(wanted).items()}
        self._snapshot_step = wanted
        self.rewind_spec = spec

    # -- controls ------------------------------------------------------------
    def make_control(self, kind: str, seed: int = 0) -> nn.Module:
        """A copy of the model for a control at the current mask, ready to train.

        ``random_reinit``: the ticket's mask on a fresh, seeded initialization.
        ``random_prune``: a random mask with the ticket's per-tensor survivor counts,
        weights at the rewind point (or the current weights when rewind is ``none``).
        """
        if kind not in CONTROLS:
            raise ValueError(f"unknown control {kind!r}; choose from {', '.join(CONTROLS)}")
        control = copy.deepcopy(self.model)
        by_name = {p.name: p for p in self._params_of(control)}
        if kind == "random_reinit":
            reinitialize(control, seed, self.init_fn, self.model_factory)
            bridge.attach_masks(control, [by_name[n] for n in self.active], self.mask)
        else:
            random = random_mask_like(self.mask, seed=seed)
            bridge.attach_masks(control, [by_name[n] for n in self.active], random)
            if self._snapshot is not None:  # after the mask: entries the random mask keeps get their values
                self.rewind(control)
            distributed.verify_masks_agree(random, self.level, what="random_prune control")
        return control

    # -- export --------------------------------------------------------------
    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Plain state dict (pruned entries as zeros, no ``_orig``/``_mask``) for an unpruned model."""
        return bridge.export_state_dict(self.model)

    def remove_masks(self) -> None:
        """Make the pruning permanent (plain Parameters, no hooks). The pruner is done after this."""
        bridge.remove_masks(self.params)

    # -- state ---------------------------------------------------------------
    def save_state(self, directory: str | os.PathLike, include_model: bool = True) -> None:
        """Write masks, rewind snapshot, round index, history (and the model) to ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.full_mask.save(d / "mask.safetensors")
        if self._snapshot is not None:
            atomic_save_safetensors(self._snapshot, d / "rewind.safetensors")
        for step, weights in self._points.items():
            atomic_save_safetensors(weights, d / f"rewind_step{step}.safetensors")
        if include_model:
            atomic_save_safetensors(self.model.state_dict(), d / "model.safetensors")
        state = {
            "version": STATE_VERSION,
            "round": self.round,
            "level": self.level,
            "active": self.active,
            "excluded_unused": self.excluded_unused,
            "rewind_step": self._snapshot_step,
            "has_rewind_point": self._snapshot is not None,
            "config": self.config(),
            "history": [h.to_dict() for h in self.history],
            "extensions": self.extensions,
            "kept_rewind_points": sorted(self._points),
            "adopted_level": self.adopted_level,
        }
        atomic_write_text(d / "pruner.json", json.dumps(state, indent=2))

    def load_state(self, directory: str | os.PathLike) -> None:
        """Restore what :meth:`save_state` wrote; the pruner must be configured the same way."""
        d = Path(directory)
        path = d / "pruner.json"
        if not path.is_file():
            raise FileNotFoundError(f"{d} holds no pruner state (missing {path.name})")
        state = json.loads(path.read_text())
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"{path}: unsupported pruner state version {state.get('version')!r}")
        saved, mine = state["config"], self.config()
        # A run may have grown (extend()): its length and rewind come from the state.
        diff = [k for k in mine if k not in _GROWABLE and saved.get(k) != _jsonable(mine[k])]
        extensions = list(state.get("extensions", []))
        rewinds = [e["rewind"][0] for e in extensions] + [saved["rewind"]]
        if str(self.rewind_spec) not in rewinds:
            diff.append("rewind")
        if diff:
            details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {mine[k]!r}" for k in diff[:4])
            raise ValueError(
                f"pruner state in {d} was made with a different configuration ({details}); "
                "to change the rewind of a saved run, load it as it was made and call extend(rewind=...)"
            )
        if (d / "model.safetensors").is_file():
            weights = load_file(str(d / "model.safetensors"))
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
            if missing or unexpected:
                raise ValueError(
                    f"{d / 'model.safetensors'} does not fit the model: missing {missing[:5]}, unexpected "
                    f"{unexpected[:5]}"
                )
        bridge.attach_masks(self.model, self.params, Mask.load(d / "mask.safetensors"))
        if state["has_rewind_point"]:
            device = next(iter(self._named_tensors().values())).device
            self._snapshot = {k: v.to(device) for k, v in load_file(str(d / "rewind.safetensors")).items()}
            self._snapshot_step = state["rewind_step"]
        self.round = int(state["round"])
        self.level = int(state["level"])
        if distributed.active():
            distributed.verify_masks_agree(self.full_mask, self.level, what="resumed")
        self.active = list(state["active"])
        self.excluded_unused = list(state["excluded_unused"])
        self.history = [RoundRecord(**h) for h in state["history"]]
        self.extensions = extensions
        self.adopted_level = state.get("adopted_level")
        self.rewind_spec = Rewind.parse(saved["rewind"])
        for step in state.get("kept_rewind_points", []):
            self._points[int(step)] = load_file(str(d / f"rewind_step{step}.safetensors"))
        self.rewind_points = tuple(sorted({*self.rewind_points, *saved.get("rewind_points", [])}))
        asked, self.rounds = self.rounds, saved["rounds"]
        self.target_density = saved.get("target_density")
        if asked is not None and self.rounds is None:
            self.rounds = asked
        elif asked is not None and asked > self.rounds:  # created with more rounds than saved: the run grows
            self.extend(asked - self.rounds)
        if self.round >= 0:
            # Round 0 already decided which tensors are prunable (``active`` above).
            for h in self._grad_hooks:
                h.remove()
            self._grad_hooks.clear()
