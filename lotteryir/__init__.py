"""lotteryir: lottery-ticket pruning for image-restoration networks.

The core (``lotteryir.pruning``) works on any ``nn.Module`` plus a training
closure; ``lotteryir.models``, ``lotteryir.data`` and ``lotteryir.engine`` ship
the MIR-L paper's networks, data recipes and training; ``lotteryir.runs`` and
the ``lotteryir`` command line make resumable runs of it.

The names below load on first use, so ``import lotteryir`` (and the command line's
``--help``, which imports this package first) does not pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr
from ._version import __version__

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from . import data, engine, models, pruning
    from .checkpoints import LoadedCheckpoint, load_checkpoint, load_ticket, read_ticket, save_ticket
    from .engine import psnr, restore_image, ssim
    from .pruning import IterativeMagnitudePruner, Mask, RoundContext, sparsity_report

_SOURCES = {
    "data": ".data",
    "engine": ".engine",
    "models": ".models",
    "pruning": ".pruning",
    "LoadedCheckpoint": ".checkpoints",
    "load_checkpoint": ".checkpoints",
    "load_ticket": ".checkpoints",
    "read_ticket": ".checkpoints",
    "save_ticket": ".checkpoints",
    "psnr": ".engine",
    "restore_image": ".engine",
    "ssim": ".engine",
    "IterativeMagnitudePruner": ".pruning",
    "Mask": ".pruning",
    "RoundContext": ".pruning",
    "sparsity_report": ".pruning",
}

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


__getattr__ = lazy_getattr(__name__, _SOURCES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
