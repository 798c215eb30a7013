"""The defaults of a pruning run, in a module that imports nothing heavy.

``lotteryir prune --help`` shows these values; it must answer without importing torch, so it reads
them here rather than from ``config.py`` (which imports the data, models and pruning layers).
:class:`~lotteryir.runs.config.RunConfig` declares its fields with the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

# The built-in sample recipe on CPU: `lotteryir prune --model mirl --rounds 3` must finish within
# 6 minutes on 2 cores, so the defaults there are small and step-based. Learning rate, steps, loss,
# init and the identity pairs in the mix were chosen on a validation split of the training
# photographs by benchmarks/sample_defaults.py (results/sample_defaults.json), never on test images.
SAMPLE_SIZE = "tiny"
SAMPLE_STEPS = 600
SAMPLE_PATCH = 48
SAMPLE_LR = 4e-3
SAMPLE_LOSS = "l1"
SAMPLE_INIT = "identity"
SHIPPED_MODELS = ("mirl", "restormer")  # the networks whose `output` conv the identity init zeroes
PAPER_LR = 2e-4
DEFAULT_EPOCHS = 120  # the paper's round length on real data
DEFAULT_SIZE = "full"  # the size on real data
DEFAULT_PATCH = 64
DEFAULT_LOSS = "l1"  # the paper's
DEFAULT_INIT = "default"  # as the network's builder draws it
# BatchNorm recalibration when nothing retrains (--steps 0): benchmarks/pretrained_tickets.py measured DnCNN
# pruned to 0.5 without retraining at 24.81 dB on Set12, 29.10 dB with its statistics recomputed on 10 batches.
NO_RETRAINING_BN_BATCHES = 10


@dataclass(frozen=True)
class FieldDefaults:
    """The defaults of the :class:`RunConfig` fields whose value ``prune --help`` shows."""

    model: str = "mirl"
    recipe: str = "sample"
    rate: float = 0.2
    scope: str = "global"
    batch_size: int = 8
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 50
    method: str = "imp"


FIELD_DEFAULTS = FieldDefaults()
