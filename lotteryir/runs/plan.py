"""What a run tells whoever draws it: its plan before the first step, and hooks while it trains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import TrainProgress


@dataclass
class RunPlan:
    """What a run is about to do (the CLI's first line)."""

    recipe: str
    model: str
    size: str
    params: int
    device: str
    rounds: int
    trainings: int
    steps_per_training: int
    expected_seconds: float | None
    resumed_from_round: int
    data: str | None = None  # the absolute data root (None for the built-in sample)
    extended_from: int | None = None  # the run had this many rounds; this command continues it
    world_size: int = 1  # processes (DistributedDataParallel ranks)
    batch_size: int = 8  # the global batch
    batch_per_rank: int = 8
    lr: float = 2e-4
    backend: str | None = None  # gloo or nccl under torchrun
    threads: int | None = None  # intra-op CPU threads in use
    threads_reason: str = ""
    method: str = "imp"  # the pruning method (lotteryir.pruning.methods)
    rebuild: list[str] = field(default_factory=list)  # missing files of finished rounds, rebuilt before training


@dataclass
class RunCallbacks:
    """Hooks for whoever draws progress; the library itself prints nothing. Called on rank 0 only."""

    on_plan: Callable[[RunPlan], None] | None = None
    on_train_start: Callable[[int, float, str, int], None] | None = None  # round, density, kind, total steps
    on_step: Callable[[TrainProgress, str], None] | None = None
    on_evaluate: Callable[[int, str], None] | None = None
    on_round_end: Callable[[dict[str, Any]], None] | None = None
