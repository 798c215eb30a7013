"""The closure boundary: what a training closure learns about the round it trains."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch


@dataclass
class RoundContext:
    """Handed to ``train(model, ctx)`` once per round.

    A closure trains ``model`` in place and returns a dict of metrics (floats or
    anything JSON-serialisable). It should call ``ctx.step(k)`` after its k-th
    optimizer step (k counted from 1 within the round): in round 0 this is how
    late rewinding ("rewind to step K") captures its snapshot. Closures that
    count differently may call ``ctx.mark_rewind_point()`` themselves.

    A closure that checkpoints mid-round saves ``ctx.state_dict()`` with each
    checkpoint and hands it to ``ctx.load_state_dict()`` when it resumes from
    one: it holds what the pruner decided while the round trained (in round 0,
    which tensors received gradients; a method's own progress, e.g. early-bird's
    last mask), so a resumed round decides the same.

    Methods that prune *during* training (``gmp``, ``early-bird``) act inside
    ``ctx.step(k)``: a closure used with them must (1) call ``ctx.step(k)`` after
    every optimizer step, (2) set ``ctx.total_steps`` to the round's length before
    its first step (gmp's default end step is read from it), and (3) stop training
    as soon as ``ctx.stop_requested`` is True after a step (early-bird asks for it),
    returning its metrics as usual. The shipped trainer does all three.
    """

    round: int
    density: float
    rewind_step: int | None = None
    seed: int = 0
    checkpoint_dir: Path | None = None
    # What is trained: "ticket" (the pruned network itself) or a control's name
    # ("random_reinit", "random_prune"), which trains a copy at the same density.
    kind: str = "ticket"
    # Further steps of round 0 to snapshot (``rewind_points``), besides ``rewind_step``.
    rewind_steps: tuple[int, ...] = ()
    # Free-form slot for the layer that drives the pruner (run directory, rank, ...).
    extras: dict[str, Any] = field(default_factory=dict)
    _on_mark: Callable[[int | None], None] | None = field(default=None, repr=False)
    _marked: bool = field(default=False, repr=False)
    _save_state: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)
    _load_state: Callable[[Mapping[str, Any]], None] | None = field(default=None, repr=False)
    steps_done: int = 0
    step_metrics: dict[str, float] = field(default_factory=dict)  # what the last ``step()`` call reported
    # Optimizer steps this round will take, when the closure knows (the shipped trainer sets it).
    total_steps: int | None = None
    stop_reason: str | None = None  # set by request_stop(): why the round ends early
    _step_hooks: list[Callable[[int], None]] = field(default_factory=list, repr=False)
    _states: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = field(default_factory=dict, repr=False)

    @classmethod
    def for_round(
        cls,
        r: int,
        density: float,
        kind: str = "ticket",
        rewind_step: int | None = None,
        rewind_steps: tuple[int, ...] = (),
        seed: int = 0,
        on_mark: Callable[[int | None], None] | None = None,
        save_state: Callable[[], dict[str, Any]] | None = None,
        load_state: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> RoundContext:
        """The context the pruner hands out for round ``r``; the hooks serve round 0 of the ticket only."""
        steps = tuple(k for k in rewind_steps if k > 0)
        ctx = cls(round=r, density=density, rewind_step=rewind_step, seed=seed, kind=kind, rewind_steps=steps)
        if kind != "ticket":
            ctx.extras["control"] = kind  # the older spelling of ctx.kind
        elif r == 0:
            ctx._on_mark, ctx._save_state, ctx._load_state = on_mark, save_state, load_state
        return ctx

    @property
    def is_control(self) -> bool:
        """True when this training is a control (see :attr:`kind`), not the ticket."""
        return self.kind != "ticket"

    def state_dict(self) -> dict[str, Any]:
        """The pruner's bookkeeping for this round so far (JSON-able); save it with a checkpoint."""
        out = self._save_state() if self._save_state is not None else {}
        return {**out, **{key: save() for key, (save, _) in self._states.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned when the checkpoint was written."""
        if self._load_state is not None:
            self._load_state(state)
        for key, (_, load) in self._states.items():
            if key in state:
                load(state[key])

    def add_state(self, key: str, save: Callable[[], Any], load: Callable[[Any], None]) -> None:
        """Let a method keep its own JSON-able progress in :meth:`state_dict` under ``key``."""
        self._states[key] = (save, load)

    def on_step(self, hook: Callable[[int], None]) -> None:
        """Call ``hook(k)`` from :meth:`step` after optimizer step ``k`` (how a method prunes while training)."""
        self._step_hooks.append(hook)

    def request_stop(self, reason: str) -> None:
        """Ask the closure to end this round after the current step (see :attr:`stop_requested`)."""
        self.stop_reason = reason

    @property
    def stop_requested(self) -> bool:
        """True when a method asked the closure to stop training this round now."""
        return self.stop_reason is not None

    def step(self, k: int, **metrics: float) -> None:
        """Report that optimizer step ``k`` (1-based, within this round) finished.

        ``metrics`` (e.g. ``loss=``, ``lr=``) reach the pruner's ``on_step`` callback as they are: how
        a user's loop logs its curves wherever it likes. The shipped trainer passes ``loss`` and ``lr``.
        """
        self.steps_done = max(self.steps_done, k)
        self.step_metrics = metrics
        if self.round == 0 and (k == self.rewind_step or k in self.rewind_steps):
            self.mark_rewind_point(k)
        for hook in self._step_hooks:
            hook(k)

    def mark_rewind_point(self, k: int | None = None) -> None:
        """Snapshot the current weights as the point survivors are rewound to."""
        if self._on_mark is not None:
            self._on_mark(k)
        if k is None or k == self.rewind_step or self.rewind_step is None:
            self._marked = True

    @property
    def rewind_marked(self) -> bool:
        """Whether a rewind snapshot was taken during this round."""
        return self._marked


@dataclass(frozen=True)
class StepReport:
    """One optimizer step, as the pruner's ``on_step`` callback receives it."""

    round: int
    kind: str  # "ticket" or the control's name
    step: int  # 1-based, within the round
    density: float
    metrics: Mapping[str, float]  # what the closure passed to ctx.step (the shipped trainer: loss, lr)


class TrainClosure(Protocol):
    """``train(model, ctx) -> metrics``: trains ``model`` in place for one round."""

    # Positional-only: the pruner calls ``train(model, ctx)``, so any parameter names will do.
    def __call__(self, model: torch.nn.Module, ctx: RoundContext, /) -> Mapping[str, Any] | None: ...
