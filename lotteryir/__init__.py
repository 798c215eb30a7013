"""lotteryir: lottery-ticket pruning for image-restoration networks.

The core (``lotteryir.pruning``) works on any ``nn.Module`` plus a training
closure; ``lotteryir.models``, ``lotteryir.data`` and ``lotteryir.engine`` ship
the MIR-L paper's networks, data recipes and training; ``lotteryir.runs`` and
the ``lotteryir`` command line make resumable runs of it.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"
"""The installed lotteryir version (PEP 440)."""

from . import data, engine, models, pruning  # noqa: E402
from .checkpoints import LoadedCheckpoint, load_checkpoint, load_ticket, read_ticket, save_ticket  # noqa: E402
from .engine import psnr, restore_image, ssim  # noqa: E402
from .pruning import IterativeMagnitudePruner, Mask, RoundContext, sparsity_report  # noqa: E402

__all__ = [
    "IterativeMagnitudePruner",
    "LoadedCheckpoint",
    "Mask",
    "RoundContext",
    "__version__",
    "data",
    "engine",
    "load_checkpoint",
    "load_ticket",
    "models",
    "pruning",
    "psnr",
    "read_ticket",
    "restore_image",
    "save_ticket",
    "sparsity_report",
    "ssim",
]
