"""Rewind points: where the survivors return after each pruning, and the snapshots that hold them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import bridge
from .mask import MASK_SUFFIX, ORIG_SUFFIX
from .selection import PrunableParam

log = logging.getLogger(__name__)

Weights = dict[str, torch.Tensor]


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

    @property
    def at(self) -> int:
        """The step of round 0 whose weights this rewind needs (0 for init and none)."""
        return self.step if self.kind == "step" and self.step is not None else 0

    def __str__(self) -> str:
        return f"step:{self.step}" if self.kind == "step" else self.kind


def check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    """``rewind_points`` sorted, without repeats; anything but a step of round 0 (an int >= 0) is refused."""
    bad = [k for k in steps if not isinstance(k, int) or isinstance(k, bool) or k < 0]
    if bad:
        raise ValueError(f"rewind_points must be optimizer steps of round 0 (integers >= 0), got {bad}")
    return tuple(sorted(set(steps)))


def named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer under its unpruned name (masks left out), the live tensors."""
    sd = model.state_dict(keep_vars=True)
    out = {}
    for key, t in sd.items():
        if key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX in sd:
            continue
        if key.endswith(ORIG_SUFFIX) and key[: -len(ORIG_SUFFIX)] + MASK_SUFFIX in sd:
            key = key[: -len(ORIG_SUFFIX)]
        out[key] = t
    return out


def _label(step: int) -> str:
    return "init" if step == 0 else f"step:{step}"


class RewindPoints:
    """The active rewind point (on the model's device) and further steps of round 0 kept aside (CPU).

    ``snapshot`` is what the survivors return to; ``step`` its step of round 0
    (None or 0 for the weights at creation); ``kept`` maps other steps to their
    weights, so that a run can switch its rewind later (``extend(rewind=...)``).
    """

    def __init__(self) -> None:
        self.snapshot: Weights | None = None
        self.step: int | None = None
        self.kept: dict[int, Weights] = {}

    @torch.no_grad()
    def mark(
        self,
        tensors: Mapping[str, torch.Tensor],
        step: int | None,
        *,
        active: int,
        keep: tuple[int, ...],
        then: Callable[[int], None] | None = None,
    ) -> None:
        """Record ``tensors`` at ``step``: aside when ``step`` is only one to keep, else as the active point.

        ``then(step)`` is called when a late-rewinding point (step > 0) became the active one, so that
        the caller can persist it before round 0 ends.
        """
        if step is not None and step != active and step in keep:
            self.kept[step] = {k: t.detach().to("cpu", copy=True) for k, t in tensors.items()}
            log.info("rewind point for later use recorded at step %d", step)
            return
        self.snapshot = {k: t.detach().clone() for k, t in tensors.items()}
        self.step = step
        log.info("rewind point recorded%s", f" at step {step}" if step else "")
        if step and then is not None:
            then(step)

    def point(self, spec: Rewind) -> Weights:
        """The weights to rewind to; an error when none was recorded."""
        if self.snapshot is None:
            raise RuntimeError(f"no rewind point recorded (rewind={spec})")
        return self.snapshot

    def has(self, step: int) -> bool:
        """Whether the active snapshot is that of ``step`` (0: the weights at creation)."""
        return self.snapshot is not None and (step == self.step or (step == 0 and self.step is None))

    def check_round0(self, spec: Rewind, steps_done: int, wanted: tuple[int, ...]) -> None:
        """After round 0: refuse a late rewind whose step never came; warn about other steps that did not."""
        if spec.kind == "step" and self.snapshot is None:
            raise RuntimeError(
                f"rewind to step {spec.step} was requested, but round 0 reported only {steps_done} optimizer "
                "steps through ctx.step(k); train longer or rewind earlier"
            )
        missing = [k for k in wanted if k > 0 and k not in self.kept and k != self.step]
        if missing:
            log.warning("round 0 never reported step(s) %s: those rewind points were not recorded", missing)

    def switch(self, spec: Rewind) -> Rewind:
        """Make ``spec``'s weights the active snapshot (the current one is kept aside); refused if not kept.

        Returns ``spec``.
        """
        if spec.kind == "none" or self.has(spec.at):
            return spec  # "none" keeps the snapshot: random_prune still starts from it
        wanted = spec.at
        if wanted not in self.kept:
            kept = sorted({*self.kept, *([self.step or 0] if self.snapshot is not None else [])})
            raise ValueError(
                f"rewind {spec} needs the weights of step {wanted} of round 0, which this run did not keep "
                f"(kept: {', '.join(_label(k) for k in kept) or 'none'}). Create the "
                f"pruner with rewind_points=[{wanted}] to keep them, or extend with rewind='none'"
            )
        device = next(iter(self.snapshot.values())).device if self.snapshot else torch.device("cpu")
        if self.snapshot is not None:
            self.kept[self.step or 0] = {k: t.to("cpu") for k, t in self.snapshot.items()}
        self.snapshot = {k: t.to(device) for k, t in self.kept.pop(wanted).items()}
        self.step = wanted
        return spec

    @torch.no_grad()
    def write(
        self,
        spec: Rewind,
        model: nn.Module,
        params: Sequence[PrunableParam],
        unpruned: bool,
        skip: Collection[str] = (),
    ) -> None:
        """Rewind ``model``: the point's values into the survivors of ``params`` (but ``skip``),
        and with ``unpruned`` into every other parameter and buffer."""
        point = self.point(spec)
        bridge.write_weights([p for p in params if p.name not in skip], point)
        if unpruned:
            # By identity, not name: a tied weight appears under every alias (``b.weight`` for
            # ``b.weight = a.weight``, each name of a module used twice), and copying the dense
            # snapshot into an alias would undo the zeros that write_weights just kept.
            prunable = {id(bridge.trainable_tensor(p)) for p in params}
            for key, t in named_tensors(model).items():
                if id(t) not in prunable:
                    t.copy_(point[key])
