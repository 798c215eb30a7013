"""A round's length and learning rate: steps per epoch, total steps, linear warm-up then cosine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lotteryir.engine.config import TrainConfig

__all__ = ["RoundPlan", "lr_at", "plan_round"]


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Learning rate for 0-based optimizer step ``step``: linear warm-up to ``base``, then cosine to 0 at ``total``.

    Per step, not per epoch as in PromptIR's LinearWarmupCosineAnnealingLR, and
    warm-up starts at base/warmup rather than 0 so no step is wasted at lr 0.
    """
    if step < warmup:
        return base * (step + 1) / warmup
    if total <= warmup:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@dataclass(frozen=True)
class RoundPlan:
    """How many optimizer steps one round takes and the learning rate of each."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    # Where the cosine reaches 0: total_steps or later (TrainConfig.schedule_horizon).
    schedule_steps: int
    base_lr: float

    def lr(self, step: int) -> float:
        """Learning rate of 0-based optimizer step ``step``."""
        return lr_at(step, self.schedule_steps, self.warmup_steps, self.base_lr)


def plan_round(dataset_len: int, config: TrainConfig) -> RoundPlan:
    """The round's plan for a dataset of ``dataset_len`` items; the last partial batch of an epoch is dropped."""
    per_epoch = (dataset_len // config.batch_size) // config.grad_accum
    if per_epoch < 1:
        raise ValueError(
            f"dataset of {dataset_len} items is too small for batch_size={config.batch_size} "
            f"x grad_accum={config.grad_accum}"
        )
    total = config.steps if config.steps is not None else (config.epochs or 120) * per_epoch
    if config.warmup_steps is not None:
        warmup = config.warmup_steps
    elif config.warmup_epochs is not None:
        warmup = round(config.warmup_epochs * per_epoch)
    else:
        warmup = round(config.warmup_fraction * total)
    horizon = max(total, round(config.schedule_horizon * total))
    return RoundPlan(per_epoch, total, min(warmup, total), horizon, config.lr)
