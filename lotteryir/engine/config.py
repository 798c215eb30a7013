"""How one round trains: :class:`TrainConfig`, every choice of the default training closure in one place."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lotteryir.engine.losses import LOSSES

__all__ = ["TrainConfig", "config_to_dict"]


@dataclass
class TrainConfig:
    """How one round trains. Defaults follow the MIR-L paper / PromptIR code."""

    # Round length: give epochs or optimizer steps; neither means the paper's 120 epochs.
    epochs: int | None = None
    steps: int | None = None
    # The global batch: under torchrun each of N processes trains on batch_size / N of every batch.
    batch_size: int = 8
    lr: float = 2e-4
    # PromptIR builds AdamW(params, lr=2e-4) and nothing else, i.e. torch's default decay of 0.01.
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    # Linear warm-up length, first match wins: steps, epochs, fraction of the round (paper: 15 of 120 epochs).
    warmup_steps: int | None = None
    warmup_epochs: float | None = None
    warmup_fraction: float = 15 / 120
    # The cosine reaches 0 at schedule_horizon x the round's length. PromptIR's code trains 120
    # epochs of a 150-epoch LinearWarmupCosineAnnealingLR, i.e. 1.25, ending near lr/9, not 0.
    schedule_horizon: float = 1.0
    grad_accum: int = 1
    # "l1": the paper's loss. "psnr": the mean over images of -PSNR(restored, target); see engine/losses.py.
    loss: str = "l1"
    clip_grad: float | None = None
    amp: str | None = None  # None, "bf16" or "fp16"; CUDA only, ignored with a warning on CPU
    device: str | torch.device | None = None  # None: CUDA when present, else CPU
    # Intra-op CPU threads: "auto" uses the cores that are idle when the first round starts
    # (OMP_NUM_THREADS wins if set), an int fixes the count, None leaves torch's setting alone.
    threads: int | str | None = "auto"
    num_workers: int = 0
    # DistributedDataParallel only: look for parameters without a gradient after each backward. The
    # published PromptIR (MIR-L) has six such layers and trains with it on; False is a little faster.
    find_unused_parameters: bool = True
    checkpoint_every: int | None = 500  # optimizer steps between mid-round checkpoints
    seed: int | None = None  # None: use the pruner's ctx.seed
    # Seeding torch/NumPy/Python global RNGs makes dropout and dataset augmentations repeatable too.
    seed_global_rngs: bool = True
    # torch.compile the forward pass (masks included) once per model: True for the default backend
    # (inductor), or a backend's name. A pruning round changes mask values, not the graph, so later rounds
    # reuse the compiled code. None/False trains eagerly.
    compile: bool | str | None = False
    # Polled after every optimizer step (a threading.Event's is_set works): checkpoint, then raise TrainingStopped.
    should_stop: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise ValueError(f"give epochs or steps, not both (epochs={self.epochs}, steps={self.steps})")
        for name in ("epochs", "steps", "batch_size", "grad_accum", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"TrainConfig.{name} must be at least 1; got {value}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a finite number > 0; got {self.lr}")
        if self.threads is not None and not (
            self.threads == "auto" or (type(self.threads) is int and self.threads >= 1)
        ):
            raise ValueError(f"TrainConfig.threads must be 'auto', a positive int or None; got {self.threads!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"TrainConfig.amp must be None, 'bf16' or 'fp16'; got {self.amp!r}")
        if not (self.compile in (None, False, True) or (isinstance(self.compile, str) and self.compile)):
            raise ValueError(f"TrainConfig.compile must be a bool or a torch.compile backend; got {self.compile!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"TrainConfig.warmup_fraction must be in [0, 1); got {self.warmup_fraction}")
        if self.schedule_horizon < 1:
            raise ValueError(f"TrainConfig.schedule_horizon must be at least 1; got {self.schedule_horizon}")


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-able data (the ``should_stop`` callable is dropped)."""
    data = asdict(config)
    data.pop("should_stop")
    data["device"] = None if config.device is None else str(config.device)
    return data
